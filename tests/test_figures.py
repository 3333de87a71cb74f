"""`make figures` regenerates exactly the committed figures/ (STYLE: figures are outputs, not assets).

Read without running anything: the figure names each notebook passes to `plots.save_figure` and to the
`plots` functions that call it (`save_class_heatmaps` saves `<name>_<n>`), with the parameters `make figures`
gives it (notebooks/full_run/<notebook>.yaml). A name built at run time (an f-string field, a loop variable)
becomes a pattern whose `{…}` stands for any text, so a stale file whose name fits a pattern (e.g. an old
`fig_table_4_2_row6_confusion.png` fits notebook 02's `fig_{…}_{…}_row{…}_confusion.png`) is not caught here.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

import nsfw_mobilenet

CHECKOUT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((CHECKOUT / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the Makefile's $(NOTEBOOKS)
FULL_RUN = CHECKOUT / "notebooks" / "full_run"  # `make figures` parameters, papermill -f
FIGURES = CHECKOUT / "figures"
PACKAGE_DIR = Path(nsfw_mobilenet.__file__).parent  # its functions that pass a `name` on to save_figure are savers
BASE_SAVER = "save_figure"  # writes figures/<name>.png
WILD = "{…}"


@dataclass(frozen=True)
class WrittenFigure:
    """A figure file name (or pattern, with `WILD`) a notebook writes, and where."""

    name: str
    where: str

    @property
    def is_pattern(self) -> bool:
        return WILD in self.name

    def matches(self, file_name: str) -> bool:
        regex = ".*".join(re.escape(part) for part in self.name.split(WILD))
        return re.fullmatch(regex, file_name) is not None


def _template(node: ast.AST | None, names: dict[str, str]) -> str:
    """The text a string expression evaluates to, `WILD` where it depends on what is known only at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_template(part, names) for part in node.values)
    if isinstance(node, ast.FormattedValue) and node.conversion == -1 and node.format_spec is None:
        return _template(node.value, names)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left, names) + _template(node.right, names)
    return WILD


def _is_string(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_string(node.left))


def _name_argument(call: ast.Call, position: int, parameter: str) -> ast.AST | None:
    """The argument a call passes to `parameter` (the `position`-th positional one)."""
    keyword = next((k.value for k in call.keywords if k.arg == parameter), None)
    return keyword if keyword is not None else (call.args[position] if len(call.args) > position else None)


def _called(call: ast.Call) -> str | None:
    """`save_figure` of `plots.save_figure(...)` and of `save_figure(...)`."""
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def figure_savers(source: str) -> dict[str, tuple[int, list[ast.AST]]]:
    """function of `source` → (position of its `name` parameter, the names it passes to `save_figure`)."""
    savers: dict[str, tuple[int, list[ast.AST]]] = {}
    for function in ast.parse(source).body:
        if not isinstance(function, ast.FunctionDef):
            continue
        parameters = [argument.arg for argument in function.args.args]
        calls = [node for node in ast.walk(function) if isinstance(node, ast.Call) and _called(node) == BASE_SAVER]
        if function.name == BASE_SAVER:
            savers[BASE_SAVER] = (parameters.index("name"), [ast.Name("name")])
        elif calls and "name" in parameters:
            savers[function.name] = (parameters.index("name"), [_name_argument(call, 1, "name") for call in calls])
    return savers


def _code(source: str) -> str:
    """A cell's Python, IPython magics and shell lines blanked (line numbers kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def package_source() -> str:
    """Every module of the package, one text: `plots.save_figure` and the functions that call it with a name."""
    return "\n".join(path.read_text() for path in sorted(PACKAGE_DIR.rglob("*.py")))


def written_figures(notebook: Path, source: str, full_run: Path = FULL_RUN) -> list[WrittenFigure]:
    """Every figure file name `notebook` writes when `make figures` runs it, read from its code cells in order.

    String variables are followed through the cells (the parameters cell with full_run/<notebook>.yaml
    applied, as papermill does, replacing a stored injected-parameters cell); a name bound any other way
    (loop, comprehension, function result) is unknown, i.e. `WILD`.
    """
    savers = figure_savers(source)
    params_file = full_run / f"{notebook.stem}.yaml"
    overrides = (yaml.safe_load(params_file.read_text()) or {}) if params_file.is_file() else {}
    names: dict[str, str] = {}
    written = []
    cells = json.loads(notebook.read_text())["cells"]
    for number, cell in enumerate(cells, start=1):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or "injected-parameters" in tags:
            continue
        tree = ast.parse(_code("".join(cell["source"])), filename=f"{notebook.name} cell {number}")
        single_targets = {id(node.targets[0]): node.value for node in ast.walk(tree)
                          if isinstance(node, ast.Assign) and len(node.targets) == 1}
        comprehension_targets = {name.id for node in ast.walk(tree) if isinstance(node, ast.comprehension)
                                 for name in ast.walk(node.target) if isinstance(name, ast.Name)}
        for name in comprehension_targets:
            names.pop(name, None)
        events = [node for node in ast.walk(tree) if isinstance(node, (ast.Name, ast.Call))]
        for node in sorted(events, key=lambda n: (n.lineno, n.col_offset)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                value = single_targets.get(id(node))
                if value is not None and _is_string(value):
                    names[node.id] = _template(value, names)
                else:
                    names.pop(node.id, None)
            elif isinstance(node, ast.Call) and _called(node) in savers:
                position, saved = savers[_called(node)]
                given = _template(_name_argument(node, position, "name"), names)
                for expression in saved:
                    name = re.sub(f"(?:{re.escape(WILD)})+", WILD, _template(expression, {"name": given}))
                    written.append(WrittenFigure(f"{name}.png",  # save_figure writes <name>.png
                                                 f"notebooks/{notebook.name} cell {number} line {node.lineno}"))
        if "parameters" in tags:  # papermill injects full_run/<notebook>.yaml right after this cell
            for name, value in overrides.items():
                if isinstance(value, str):
                    names[name] = value
                else:
                    names.pop(name, None)
    return written


def _every_written_figure() -> list[WrittenFigure]:
    source = package_source()
    return [figure for notebook in NOTEBOOKS for figure in written_figures(notebook, source)]


def _listing(figures: list[WrittenFigure]) -> str:
    return "\n".join(f"  {figure.name}  ({figure.where})" for figure in figures)


# --- The specifications -----------------------------------------------------------------------------
def test_every_committed_figure_is_rewritten_by_a_notebook_that_make_figures_runs():
    written = _every_written_figure()
    orphans = sorted(path.name for path in FIGURES.iterdir() if not any(f.matches(path.name) for f in written))
    assert not orphans, (
        "figures/ holds files no notebook writes through plots.save_figure/save_class_heatmaps, so `make figures` "
        "never regenerates them (written by a script, by hand, or by a notebook that no longer saves them):\n  "
        + "\n  ".join(orphans) + "\nnames and patterns the notebooks write:\n" + _listing(written))


def test_every_figure_a_notebook_writes_is_committed():
    committed = sorted(path.name for path in FIGURES.iterdir())
    missing = [figure for figure in _every_written_figure()
               if not any(figure.matches(name) for name in committed)]
    assert not missing, (
        "notebooks write figures that figures/ does not hold, so `make figures` adds files to a fresh clone "
        "(a pattern here matches no committed file):\n" + _listing(missing))


def _parameters(notebook: Path) -> set[str]:
    """The names a notebook's `parameters` cell assigns (what papermill -f may set)."""
    cell = next(c for c in json.loads(notebook.read_text())["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse(_code("".join(cell["source"])))
    return {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}


def test_full_run_parameters_set_parameters_of_a_notebook_and_name_committed_folders():
    problems = []
    for params_file in sorted(FULL_RUN.glob("*.yaml")):
        notebook = CHECKOUT / "notebooks" / f"{params_file.stem}.ipynb"
        if notebook not in NOTEBOOKS:
            problems.append(f"{params_file.name}: no notebook {notebook.name} for `make figures` to pass it to")
            continue
        for name, value in (yaml.safe_load(params_file.read_text()) or {}).items():
            if name not in _parameters(notebook):
                problems.append(f"{params_file.name}: {name} is not assigned in the parameters cell of {notebook.name} "
                                "(papermill would only warn)")
            elif isinstance(value, str) and value.startswith("../") and not (notebook.parent / value).exists():
                problems.append(f"{params_file.name}: {name}: {value} does not exist from notebooks/ (papermill --cwd)")
    assert not problems, "\n".join(problems)


def test_figure_names_are_read_through_parameters_f_strings_loops_and_save_class_heatmaps(tmp_path):
    cells = [
        ("code", ["parameters"], 'FIGURE = "fig_x"\nPREFIX = "fig_default"'),
        ("code", ["injected-parameters"], 'PREFIX = "fig_stale"'),
        ("code", [], 'plots.save_figure(f, FIGURE, smoke=SMOKE)\nplots.save_figure(f, f"{PREFIX}_a", smoke=SMOKE)\n'
                     'for number in (1, 2):\n    plots.save_figure(f, f"fig_4_{number}", smoke=SMOKE)\n'
                     'plots.save_class_heatmaps(examples, name="fig_5_2", smoke=SMOKE)\n%matplotlib inline'),
    ]
    notebook = tmp_path / "09_example.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": kind, "metadata": {"tags": tags}, "source": source}
                                              for kind, tags, source in cells]}))
    (tmp_path / "09_example.yaml").write_text('PREFIX: "fig_full_run"\n')
    figures = written_figures(notebook, package_source(), full_run=tmp_path)
    assert [f.name for f in figures] == ["fig_x.png", "fig_full_run_a.png", "fig_4_{…}.png", "fig_5_2_{…}.png"]
    assert [f.is_pattern for f in figures] == [False, False, True, True]
    assert figures[2].matches("fig_4_12.png") and not figures[2].matches("fig_5_12.png")

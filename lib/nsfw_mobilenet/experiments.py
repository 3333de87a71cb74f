"""Experiment configs (one YAML file per thesis table row) and the thesis's own numbers.

Configs are plain data in `configs/table_<T>/row_<NN>.yaml`, overriding the defaults of
`ExperimentConfig`; the thesis's numbers live in `reference/thesis_results.yaml`. Both folders are
package data, so an installed wheel has them; in the repository `experiments/` and `reference/`
link to them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .models import IMAGENET, RANDOM_INIT

PACKAGE_DIR = Path(__file__).resolve().parent
EXPERIMENTS_DIR = PACKAGE_DIR / "configs"
REFERENCE_FILE = PACKAGE_DIR / "reference" / "thesis_results.yaml"
FINAL_CONFIG = Path("final") / "two_classes.yaml"  # in EXPERIMENTS_DIR
FINAL_CONFIG_FILE = f"experiments/{FINAL_CONFIG.as_posix()}"  # as model cards name it (the repository's link)
CONFUSION_COLUMNS = ("TN", "FN", "TP", "FP")


def _project_root() -> Path:
    """The folder runs/, results/ and figures/ belong to: the checkout when the package runs from one
    (lib/nsfw_mobilenet/ beside pyproject.toml, as after `pip install -e .`), else the current folder."""
    checkout = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "lib" and (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


PROJECT_ROOT = _project_root()  # fixed at import


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run. Defaults are the thesis's (§4.1–4.2): SGD, lr 1e-3, batch 64, 10 epochs."""

    table: str
    row: int
    backbone: str
    trainable_layers: int
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    head: str = "thesis"
    augmentation: str = ""  # thesis letters A–F, e.g. "CDE"
    order: str = "thesis"  # where augmentation sits relative to preprocess_input
    taxonomy: str = "binary"
    weights: str | None = "imagenet"
    class_weights: bool = False
    seed: int = 1

    @property
    def name(self) -> str:
        return f"table_{self.table}_row_{self.row:02d}"

    def with_overrides(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def repo_relative(path: Path | str) -> str:
    """How results and notebook outputs name a file or folder: relative to `PROJECT_ROOT` when it
    lies inside it (the same name from the repository root and from notebooks/), `~/…` under the
    home folder (no machine's user name in stored outputs), else as given."""
    absolute = Path(os.path.abspath(path))
    for base, prefix in ((PROJECT_ROOT, ""), (Path.home(), "~/")):
        if absolute.is_relative_to(base):
            return prefix + absolute.relative_to(base).as_posix()
    return str(path)


def load_config(path: Path | str) -> ExperimentConfig:
    """Read one config file; unknown keys are an error naming the file."""
    path = Path(path)
    values = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    try:
        return ExperimentConfig(**values)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from None


def table_configs(table: str, experiments_dir: Path = EXPERIMENTS_DIR) -> list[ExperimentConfig]:
    """All rows of one thesis table, in row order."""
    folder = experiments_dir / f"table_{table}"
    files = sorted(folder.glob("row_*.yaml"))
    if not files:
        tables = sorted(f.name.removeprefix("table_") for f in experiments_dir.glob("table_*"))
        raise FileNotFoundError(f"no configs for table {table} in {folder}; tables with configs: {tables}")
    return [load_config(f) for f in files]


def final_config() -> ExperimentConfig:
    """The final two-class model's config (`experiments/final/two_classes.yaml`), used by notebooks 06–08."""
    return load_config(EXPERIMENTS_DIR / FINAL_CONFIG)


@lru_cache(maxsize=1)
def thesis_reference() -> dict[str, Any]:
    """The parsed `reference/thesis_results.yaml`."""
    return yaml.safe_load(REFERENCE_FILE.read_text())


def thesis_row(table: str, row: int | str) -> dict[str, Any]:
    """The thesis's numbers for one row, merged with its confusion-matrix row when it has one."""
    tables = thesis_reference()["tables"]
    numbers = dict(tables[table]["rows"].get(row, {}))
    for other in tables.values():
        if other.get("confusion_of") == table and row in other["rows"]:
            numbers.update(other["rows"][row])
    return numbers


def weights_name(result: dict[str, Any]) -> str:
    """The weights a result was trained from, as every output names them (older results lack `source`)."""
    weights = result["weights"]
    return weights.get("source") or (IMAGENET if weights["used"] else RANDOM_INIT)


def _run_columns(result: dict[str, Any]) -> dict[str, Any]:
    final, test = result["final"], result.get("test") or {}
    columns = {"time_min": result["time_min"], "train_loss": final["loss"], "train_accuracy": final["accuracy"],
               "val_loss": final["val_loss"], "val_accuracy": final["val_accuracy"]}
    columns.update({k: test.get(k) for k in CONFUSION_COLUMNS})
    return columns


def thesis_vs_run(results: list[dict[str, Any]]) -> Any:
    """A table with one row per run: its config, then each metric as thesis | this run."""
    import pandas as pd

    rows = []
    for result in results:
        config = result["config"]
        thesis = thesis_row(config["table"], config["row"])
        row = {"table": config["table"], "row": config["row"], "N": config["trainable_layers"],
               "optimizer": config["optimizer"], "augmentation": config["augmentation"] or "-",
               "order": config["order"] if config["augmentation"] else "-", "epochs": config["epochs"],
               "weights": weights_name(result)}
        for column, value in _run_columns(result).items():
            row[(column, "thesis")] = thesis.get(column)
            row[(column, "run")] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.columns = [c if isinstance(c, str) else f"{c[0]} [{c[1]}]" for c in frame.columns]
    return frame


def _thesis_and_run(thesis: float | None, run: float | None, style: str) -> str:
    shown = ["–" if value is None else style.format(value) for value in (thesis, run)]
    return " | ".join(shown)


def _test_accuracy(counts: dict[str, Any]) -> float | None:
    values = [counts.get(k) for k in CONFUSION_COLUMNS]
    if any(v is None for v in values) or not sum(values):
        return None
    tn, fn, tp, fp = values
    return (tn + tp) / (tn + fn + tp + fp)


def compact_thesis_vs_run(results: list[dict[str, Any]]) -> Any:
    """The terminal's view of `thesis_vs_run` (which keeps every column): row, N, optimizer, validation and
    test accuracy and minutes as "thesis | run", and this run's TN/FN/TP/FP; fits an 80-column terminal."""
    import pandas as pd

    rows = []
    for result in results:
        config, test = result["config"], result.get("test") or {}
        thesis = thesis_row(config["table"], config["row"])
        rows.append({"row": config["row"], "N": config["trainable_layers"], "opt.": config["optimizer"],
                     "val acc": _thesis_and_run(thesis.get("val_accuracy"), result["final"]["val_accuracy"], "{:.3f}"),
                     "test acc": _thesis_and_run(_test_accuracy(thesis), test.get("accuracy"), "{:.3f}"),
                     "TN/FN/TP/FP": "/".join(str(test.get(k, "–")) for k in CONFUSION_COLUMNS),
                     "minutes": _thesis_and_run(thesis.get("time_min"), result["time_min"], "{:.1f}")})
    return pd.DataFrame(rows)


def load_result(path: Path | str) -> dict[str, Any]:
    """One results JSON written by `train.run_experiment`."""
    return json.loads(Path(path).read_text())


def same_training_groups(results: list[dict[str, Any]]) -> Any:
    """Rows that train exactly the same weights with the same optimizer, side by side with the thesis.

    With a fixed seed such rows give identical results; the spread of the thesis's numbers within
    a group is then run-to-run noise, not an effect of N.
    """
    import pandas as pd

    rows = [{"table": r["config"]["table"], "row": r["config"]["row"], "N": r["config"]["trainable_layers"],
             "optimizer": r["config"]["optimizer"], "trained weights": ", ".join(r["trainable_layers_with_weights"]),
             "val_accuracy [thesis]": thesis_row(r["config"]["table"], r["config"]["row"]).get("val_accuracy"),
             "val_accuracy [run]": r["final"]["val_accuracy"]} for r in results]
    frame = pd.DataFrame(rows)
    spread = frame.groupby(["optimizer", "trained weights"]).agg(
        rows=("row", list), N=("N", list),
        thesis_spread=("val_accuracy [thesis]", lambda v: max(v) - min(v)),
        run_spread=("val_accuracy [run]", lambda v: max(v) - min(v)))
    return spread[spread["rows"].map(len) > 1].reset_index()

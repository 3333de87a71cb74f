"""Specifications for the notebooks as files: their parameters cells as papermill reads them, their stored outputs,
and where a run on a user's data writes its figures."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import papermill
import pytest
from PIL import Image

CHECKOUT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((CHECKOUT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIGURES = CHECKOUT / "figures"


def parameters_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_papermill_reads_every_name_the_parameters_cell_assigns(notebook):
    """A line papermill cannot parse (an '=' in its comment, say) makes `-p NAME value` an "unknown parameter"."""
    assigned = [target.id for node in ast.parse(parameters_cell(notebook)).body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)]
    assert list(papermill.inspect_notebook(str(notebook))) == assigned


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_stored_output_is_a_stderr_block_of_progress_bars_or_native_lines(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    stderr = ["".join(output.get("text", ""))[:120] for cell in cells for output in cell.get("outputs", [])
              if output.get("name") == "stderr"]
    assert stderr == []


def figures_digest() -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(FIGURES.glob("*.png"))}


@pytest.mark.slow
def test_notebook_00_on_a_users_dataset_writes_its_figures_under_runs_not_figures(tmp_path, environment):
    data = tmp_path / f"my_photos_{tmp_path.name}"
    for split in ("train", "test"):
        for name in ("cats", "dogs"):
            (data / split / name).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(data / split / name / f"{i}.png")
    before = figures_digest()
    executed = subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(CHECKOUT / "notebooks"), "-p", "DATA_DIR",
                               str(data), str(NOTEBOOKS[0]), str(tmp_path / "00.ipynb")], capture_output=True,
                              text=True, env={**environment, "NSFW_MOBILENET_SMOKE": "0"})
    assert executed.returncode == 0, executed.stderr[-3000:]
    assert "unknown parameter" not in executed.stderr.lower()
    assert figures_digest() == before
    written = CHECKOUT / "runs" / "figures" / data.name
    assert (written / "fig_00_class_counts.png").is_file() and (written / "fig_00_samples.png").is_file()
    shutil.rmtree(written)

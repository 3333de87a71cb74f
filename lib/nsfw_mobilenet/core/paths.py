"""Where things live: the package's folder, the project root that runs/, results/ and figures/ belong to,
how outputs name a path (`repo_relative`), and the decode cache's default folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lib/nsfw_mobilenet, whose package data sits here


def _project_root() -> Path:
    """The folder runs/, results/ and figures/ belong to: the checkout when the package runs from one
    (lib/nsfw_mobilenet/ beside pyproject.toml, as after `pip install -e .`), else the current folder."""
    checkout = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "lib" and (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


PROJECT_ROOT = _project_root()  # fixed at import


def repo_relative(path: Path | str) -> str:
    """How results and notebook outputs name a file or folder: relative to `PROJECT_ROOT` when it
    lies inside it (the same name from the repository root and from notebooks/), `~/…` under the
    home folder (no machine's user name in stored outputs), else as given."""
    absolute = Path(os.path.abspath(path))
    for base, prefix in ((PROJECT_ROOT, ""), (Path.home(), "~/")):
        if absolute.is_relative_to(base):
            return prefix + absolute.relative_to(base).as_posix()
    return str(path)


# Where outputs go and inputs are found, under PROJECT_ROOT: notebooks and scripts take paths from here.
RESULTS_DIR = PROJECT_ROOT / "results"  # committed results JSONs (results/README.md)
FIGURES_DIR = PROJECT_ROOT / "figures"  # written by the notebooks, never by hand
SMOKE_FIGURES_DIR = PROJECT_ROOT / "runs" / "smoke_figures"  # a smoke run's figures, never over figures/
RUNS_DIR = PROJECT_ROOT / "runs"  # local outputs: checkpoints, models, exports (not committed)
DATA_DIR = PROJECT_ROOT / "data"  # datasets made here, e.g. the roses-vs-tulips proxy (not committed)
DEFAULT_CACHE_DIR = RUNS_DIR / "cache"  # decoded images (224x224x3 bytes each); delete to reclaim
SHARED_DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"  # ../shared/datasets beside a checkout, if any
LATENCY_FILE = PROJECT_ROOT / "benchmarks" / "results" / "latency.json"  # written by benchmarks/latency.py
ARTIFACTS_DIR = PROJECT_ROOT / "artifacts"  # git-ignored notebook products: .tflite exports, Kangas grids

OWN_DATA_FIGURES_DIR = RUNS_DIR / "figures"  # figures of a notebook run on a user's dataset, never over figures/


def figures_folder(smoke: bool, data_dir: str | Path | None = None) -> Path:
    """Where a notebook's figures go: figures/ only for a full run on the default data (`make figures`);
    runs/smoke_figures/ for a smoke run; runs/figures/<dataset folder name>/ for a run on a user's `data_dir`."""
    if smoke:
        return SMOKE_FIGURES_DIR
    return OWN_DATA_FIGURES_DIR / Path(data_dir).resolve().name if data_dir else FIGURES_DIR

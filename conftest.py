"""Shared test set-up: quiet TensorFlow, offline weights folder, smoke mode for notebooks."""

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NSFW_MOBILENET_SMOKE", "1")
if (SHARED / "weights").is_dir():
    os.environ.setdefault("NSFW_MOBILENET_WEIGHTS_DIR", str(SHARED / "weights"))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the items' ids
def pytest_collection_modifyitems(items):
    """For pytest-xdist's `--dist loadgroup` (`make test`): a test module's tests run on one worker, so its module
    fixtures are built once, and the notebooks all run on one worker, in order (a notebook's cells share one kernel,
    and several notebooks make and reuse the same data and smoke models, e.g. runs/final/<data folder>/smoke/)."""
    for item in items:
        group = "notebooks" if item.path.suffix == ".ipynb" else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.path.suffix != ".ipynb")  # the notebooks, the longest group, start first

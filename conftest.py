"""Shared test set-up: quiet TensorFlow, offline weights folder, smoke mode for notebooks."""

import os
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent / "shared"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NSFW_MOBILENET_SMOKE", "1")
if (SHARED / "weights").is_dir():
    os.environ.setdefault("NSFW_MOBILENET_WEIGHTS_DIR", str(SHARED / "weights"))


def pytest_collection_modifyitems(items):
    """For pytest-xdist's `--dist loadgroup` (`make test`): a test module's tests run on one worker, so its module
    fixtures are built once, and the notebooks all run on one worker, in order, because several make and reuse the
    same data and smoke models (e.g. runs/final/<data folder>/smoke/)."""
    import pytest

    for item in items:
        group = "notebooks" if item.path.suffix == ".ipynb" else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))

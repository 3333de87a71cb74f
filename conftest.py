"""Shared test set-up: quiet TensorFlow, offline weights folder, smoke mode for notebooks."""

import os
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent / "shared"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NSFW_MOBILENET_SMOKE", "1")
if (SHARED / "weights").is_dir():
    os.environ.setdefault("NSFW_MOBILENET_WEIGHTS_DIR", str(SHARED / "weights"))

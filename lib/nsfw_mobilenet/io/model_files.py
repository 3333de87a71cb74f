"""A Keras model file checked before Keras opens it: its suffix and, for .h5, its HDF5 signature."""

from __future__ import annotations

import zipfile
from pathlib import Path

# --- Trained model files ------------------------------------------------------------------------
KERAS_SUFFIXES = (".keras", ".h5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_keras_model_file(path: Path) -> None:
    """Say what a file is not before Keras says "File not found" about a file that exists (ValueError)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    if path.suffix not in KERAS_SUFFIXES:
        raise ValueError(f"{path}: unknown model format; expected one of {KERAS_SUFFIXES}")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a Keras model file (a .keras file is a zip archive; this one is not)")
    with open(path, "rb") as handle:
        if path.suffix == ".h5" and handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ValueError(f"{path}: not a Keras model file (a .h5 file is HDF5; this one is not)")


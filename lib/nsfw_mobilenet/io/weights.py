"""Offline ImageNet weights: the files in `weights_dir` (../shared/weights/README.md), md5-checked, and how
results name them. Keras downloads them when online; nothing ever falls back silently to random weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nsfw_mobilenet.core.backbones import IMAGENET, RANDOM_INIT, get_backbone
from nsfw_mobilenet.core.settings import WEIGHTS_ENV

RANDOM = "random"  # `train --weights random`: random initialisation, asked for


class WeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but cannot be had; says what to set."""


class WeightsChecksumError(WeightsUnavailable):
    """A local weights file does not have the expected md5."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_folder(weights_dir: Path | str | None) -> Path | None:
    """`weights_dir` as a path; None (no offline folder: Keras downloads) when not given. The folder comes
    from the edges: `cli` and the notebooks' parameter cells read NSFW_MOBILENET_WEIGHTS_DIR."""
    return Path(weights_dir) if weights_dir else None


def local_weights_path(name: str, include_top: bool = True, weights_dir: Path | str | None = None) -> Path | None:
    """The md5-checked offline ImageNet weights file for `name` in `weights_dir`, or None if it has none."""
    folder = weights_folder(weights_dir)
    expected = get_backbone(name).offline_file(include_top)
    if not folder or expected is None:
        return None
    path = Path(folder) / expected.name
    if not path.exists():
        return None
    actual = file_md5(path)
    if actual != expected.md5:
        raise WeightsChecksumError(
            f"{path}: md5 {actual} does not match the expected {expected.md5}; "
            "the file is corrupt or not the MobileNet weights it is named after. Replace it, or unset "
            f"{WEIGHTS_ENV} to let Keras download the official weights."
        )
    return path


def resolve_weights(name: str, weights: str | Path | None, include_top: bool = True,
                    weights_dir: Path | str | None = None) -> str | None:
    """What to pass to the Keras builder for `weights` ("imagenet", a file, or None for random init).

    "imagenet" prefers the offline folder `weights_dir`; without one, Keras downloads (and caches) the
    official file. A failed download raises `WeightsUnavailable` rather than training from random weights.
    """
    if weights is None:
        return None
    if weights != "imagenet":
        return str(weights)
    local = local_weights_path(name, include_top, weights_dir)
    return str(local) if local else "imagenet"


def weights_source(name: str, weights: str | Path | None, include_top: bool = True,
                   weights_dir: Path | str | None = None) -> str:
    """How outputs name the weights: "ImageNet", "ImageNet (dequantized from TFLite)", "random init"
    or the file given."""
    if weights is None:
        return RANDOM_INIT
    if weights != "imagenet":
        return str(weights)
    return get_backbone(name).offline_source if local_weights_path(name, include_top, weights_dir) else IMAGENET


def weights_identity(name: str, weights: str | Path | None, include_top: bool = True,
                     weights_dir: Path | str | None = None) -> str:
    """Which weights a run actually starts from, for deciding whether a stored result can be reused:
    "random", the md5 of the offline ImageNet file (checked on reading) or of the file given, or
    "imagenet download" (Keras's own file for this Keras version)."""
    if weights is None:
        return RANDOM
    if weights != "imagenet":
        path = Path(weights)
        return f"md5 {file_md5(path)}" if path.is_file() else str(weights)
    local = local_weights_path(name, include_top, weights_dir)
    return f"md5 {get_backbone(name).offline_file(include_top).md5}" if local else "imagenet download"


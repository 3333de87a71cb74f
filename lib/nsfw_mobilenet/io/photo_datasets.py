"""Real photo folders given by path, shaped like the thesis's: a train/test split made as symlinks, and the
harmless roses-vs-tulips two-class proxy (or the generated stand-in when the photos are absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nsfw_mobilenet.io.image_files import SPLIT_SEED, class_names, is_hidden, walk_files
from nsfw_mobilenet.io.standin import ensure_standin

# ---------------------------------------------------------------- validation


# ---------------------------------------------------------------- loading and caching


# ---------------------------------------------------------------- tf.data pipeline


def make_test_split(source: Path | str, out_dir: Path | str, test_fraction: float = 0.2,
                    seed: int = SPLIT_SEED, classes: Sequence[str] | None = None) -> Path:
    """A train/ + test/ view of a dataset that has no test folder, made of symlinks (no copies).

    The thesis kept a separate test set (§4.2); a real dataset given as one ImageFolder gets a
    deterministic per-class hold-out here, so listing 4.4's split then runs on train/ only.
    `classes` keeps only those class folders (e.g. roses and tulips of flower_photos, a two-class proxy).
    """
    source, out_dir = Path(source).resolve(), Path(out_dir)
    rng = np.random.RandomState(seed)
    for name in classes or class_names(source):
        files = sorted(p for p in walk_files(source / name) if not is_hidden(p, source))
        test = set(rng.permutation(len(files))[: int(round(test_fraction * len(files)))])
        for i, path in enumerate(files):
            link = out_dir / ("test" if i in test else "train") / name / path.relative_to(source / name)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(path)
    return out_dir


FLOWER_TWO_CLASS_PROXY = ("roses", "tulips")  # harmless two-class proxy: roses play "normal", tulips "sexual"


def two_class_proxy(flower_photos: Path | str, out_dir: Path | str) -> Path:
    """The harmless real-photo two-class proxy: roses vs tulips of flower_photos, with a 20 % test hold-out
    (symlinks). Harder than Caltech airplanes/motorbikes, which every configuration separates."""
    return make_test_split(flower_photos, out_dir, classes=FLOWER_TWO_CLASS_PROXY)


def two_class_data(flower_photos: Path | str, proxy_dir: Path | str, standin_dir: Path | None = None) -> Path:
    """The two-class data of notebooks 02, 03 and 06–08: the roses-vs-tulips proxy, made in `proxy_dir` when the
    `flower_photos` folder exists, else the generated stand-in's binary dataset in `standin_dir` (e.g. on CI)."""
    if Path(flower_photos).is_dir():
        return two_class_proxy(flower_photos, proxy_dir)
    return ensure_standin(standin_dir, progress=False) / "binary"


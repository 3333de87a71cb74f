"""The subsets one training run reads: listing 4.4's training/validation split and the test folder, decoded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import data
from .experiments import PROJECT_ROOT

SMOKE_IMAGES_PER_CLASS = {"training": 8, "validation": 4, "test": 4}
DEFAULT_CACHE_DIR = PROJECT_ROOT / "runs" / "cache"  # decoded images (224x224x3 bytes each); delete to reclaim


@dataclass
class RunData:
    """Decoded training, validation and test images of one dataset."""

    classes: list[str]
    training: data.LoadedImages
    validation: data.LoadedImages
    test: data.LoadedImages | None

    def counts(self) -> dict[str, int]:
        subsets = {"training": self.training, "validation": self.validation, "test": self.test}
        return {name: len(s.labels) for name, s in subsets.items() if s is not None}

    def bad_files(self) -> list[str]:
        subsets = (self.training, self.validation, self.test)
        return [str(bad) for s in subsets if s is not None for bad in s.bad_files]


def _first_per_class(items: list[data.LabeledImage], per_class: int) -> list[data.LabeledImage]:
    taken: dict[str, int] = {}
    kept = []
    for item in items:
        if taken.get(item.label, 0) < per_class:
            taken[item.label] = taken.get(item.label, 0) + 1
            kept.append(item)
    return kept


def run_files(data_dir: Path | str, *, smoke: bool = False) -> dict[str, list[data.LabeledImage]]:
    """The files a run reads, per subset: listing 4.4's training/validation split of `data_dir` (or its
    train/) and its test/ folder. Listed, not decoded. `smoke` keeps a few images per class."""
    root = Path(data_dir)
    subsets = ["training", "validation"] + (["test"] if (root / "test").is_dir() else [])
    files = {subset: data.split_files(root, subset) for subset in subsets}
    if smoke:
        files = {subset: _first_per_class(items, SMOKE_IMAGES_PER_CLASS[subset]) for subset, items in files.items()}
    return files


def load_run_data(data_dir: Path | str, *, smoke: bool = False, cache_dir: Path | None = DEFAULT_CACHE_DIR,
                  progress: bool = True, image_size: tuple[int, int] = data.IMAGE_SIZE) -> RunData:
    """The decoded `run_files` of `data_dir`; `smoke` keeps a few images per class so a run takes seconds.

    The images stay in `cache_dir` and are read a batch at a time (`data.StoredArray`), so a dataset
    larger than RAM trains; a second load decodes nothing. `cache_dir=None` holds them in RAM.
    """
    classes = data.training_classes(data_dir)
    loaded = {subset: data.load_images(items, classes, image_size=image_size, cache_dir=cache_dir, progress=progress)
              for subset, items in run_files(data_dir, smoke=smoke).items()}
    return RunData(classes, loaded["training"], loaded["validation"], loaded.get("test"))

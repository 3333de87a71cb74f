"""The subsets one training run reads: listing 4.4's training/validation split and the test folder, decoded."""


from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR
from nsfw_mobilenet.io import image_cache, image_files

SMOKE_IMAGES_PER_CLASS = {"training": 8, "validation": 4, "test": 4}

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """Decoded training, validation and test images of one dataset."""

    classes: list[str]
    training: image_cache.LoadedImages
    validation: image_cache.LoadedImages
    test: image_cache.LoadedImages | None

    def counts(self) -> dict[str, int]:
        subsets = {"training": self.training, "validation": self.validation, "test": self.test}
        return {name: len(s.labels) for name, s in subsets.items() if s is not None}

    def bad_files(self) -> list[str]:
        subsets = (self.training, self.validation, self.test)
        return [str(bad) for s in subsets if s is not None for bad in s.bad_files]

    def missing_test_classes(self) -> list[str]:
        """Classes without a test image: the test accuracy says nothing about them."""
        if self.test is None:
            return []
        present = set(self.test.labels.tolist())
        return [name for index, name in enumerate(self.classes) if index not in present]

    def warnings(self) -> list[str]:
        """What a result must say about its own data (written into it, logged when loaded)."""
        missing = self.missing_test_classes()
        return [f"test/ has no usable image of class {', '.join(missing)}: the test figures leave it out (see "
                "test.per_class)"] if missing else []


def _first_per_class(items: list[image_files.LabeledImage], per_class: int) -> list[image_files.LabeledImage]:
    taken: dict[str, int] = {}
    kept = []
    for item in items:
        if taken.get(item.label, 0) < per_class:
            taken[item.label] = taken.get(item.label, 0) + 1
            kept.append(item)
    return kept


def run_files(data_dir: Path | str, *, smoke: bool = False) -> dict[str, list[image_files.LabeledImage]]:
    """The files a run reads, per subset: listing 4.4's training/validation split of `data_dir` (or its
    train/) and its test/ folder. Listed, not decoded. `smoke` keeps a few images per class."""
    root = Path(data_dir)
    subsets = ["training", "validation"] + (["test"] if (root / "test").is_dir() else [])
    files = {subset: image_files.split_files(root, subset) for subset in subsets}
    if smoke:
        files = {subset: _first_per_class(items, SMOKE_IMAGES_PER_CLASS[subset]) for subset, items in files.items()}
    return files


def load_run_data(data_dir: Path | str, *, smoke: bool = False, cache_dir: Path | None = DEFAULT_CACHE_DIR,
                  progress: bool = True, image_size: tuple[int, int] = image_files.IMAGE_SIZE) -> RunData:
    """The decoded `run_files` of `data_dir`; `smoke` keeps a few images per class so a run takes seconds.

    The images stay in `cache_dir` and are read a batch at a time (`image_cache.StoredArray`), so a dataset
    larger than RAM trains; a second load decodes nothing. `cache_dir=None` holds them in RAM.
    """
    classes = image_files.training_classes(data_dir)
    files = run_files(data_dir, smoke=smoke)
    check_split(files, classes, Path(data_dir))
    loaded = {subset: image_cache.load_images(items, classes, image_size=image_size, cache_dir=cache_dir, progress=progress)
              for subset, items in files.items()}
    run_data = RunData(classes, loaded["training"], loaded["validation"], loaded.get("test"))
    for warning in run_data.warnings():
        log.warning("%s: %s", data_dir, warning)
    return run_data


def check_split(files: dict[str, list[image_files.LabeledImage]], classes: list[str], data_dir: Path) -> None:
    """One line saying how many images listing 4.4's split needs, instead of Keras's error on an empty
    validation set or a class the training part never shows."""
    total = len(files["training"]) + len(files["validation"])
    needed = math.ceil(1 / image_files.VALIDATION_SPLIT)
    if not files["validation"]:
        raise ValueError(f"{data_dir}: {total} training images leave listing 4.4's {image_files.VALIDATION_SPLIT:.0%} "
                         f"validation split empty; it needs at least {needed} images (add images to the class folders)")
    untaught = sorted(set(classes) - {item.label for item in files["training"]})
    if untaught:
        raise ValueError(f"{data_dir}: the validation split took every image of class {', '.join(untaught)}, so "
                         f"training never sees it; give each class at least {needed} images")


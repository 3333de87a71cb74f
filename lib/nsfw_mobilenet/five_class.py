"""§4.4's five-class datasets: three datasets shaped like the thesis's, derived from one source.

The thesis's datasets are private; their *shapes* are in `reference/thesis_results.yaml`
(`five_class_datasets`). `derive_datasets` cuts three datasets with those shapes out of one source
ImageFolder, as file lists (nothing is copied): Dataset 1 imbalanced, Dataset 2 its balanced
subsample, Dataset 3 larger and balanced ("obtained from the Dataset 1 and filled up with new
images"). Training and scoring them is `five_class_runs`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import data, image_cache
from .data import LabeledImage
from .image_cache import LoadedImages
from .experiments import thesis_reference
from .subsets import RunData, load_run_data
from .taxonomy import FIVE_CLASS

DATASETS = ("dataset_1", "dataset_2", "dataset_3")
MIN_IMAGES_PER_CLASS = 2
# §5.1's flower proxy: five harmless flower folders standing in for the five class folders.
FLOWER_PROXY = {"daisy": "drawings", "roses": "hentai", "dandelion": "neutral", "tulips": "porn",
                "sunflowers": "sexy"}


# --- Datasets 1–3 --------------------------------------------------------------------------------
def thesis_dataset_shapes() -> dict[str, dict[str, int]]:
    """Images per class of the thesis's Datasets 1–3 (§4.4), read from the reference file."""
    reference = thesis_reference()["five_class_datasets"]
    return {name: dict(reference[name]) for name in DATASETS}


@dataclass(frozen=True)
class DerivedDataset:
    """One of Datasets 1–3 as file lists: listing 4.4's 80 % training and 20 % validation."""

    name: str
    training: list[LabeledImage]
    validation: list[LabeledImage]

    def counts(self) -> dict[str, int]:
        """Images per class, training and validation together (the numbers §4.4 gives)."""
        counts: dict[str, int] = defaultdict(int)
        for item in self.training + self.validation:
            counts[item.label] += 1
        return dict(sorted(counts.items()))

    def proportions(self) -> dict[str, float]:
        counts = self.counts()
        total = sum(counts.values())
        return {label: n / total for label, n in counts.items()}


def largest_scale(available: Mapping[str, int], shapes: Mapping[str, Mapping[str, int]]) -> float:
    """The largest factor at which every dataset's every class still fits in the source."""
    classes = {c for shape in shapes.values() for c in shape}
    return min(available.get(c, 0) / max(shape[c] for shape in shapes.values()) for c in classes)


def dataset_sizes(available: Mapping[str, int], scale: float | None = None,
                  shapes: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Images per class of each dataset at `scale` × the thesis's sizes (default: the largest that fits).

    Every class keeps at least two images (one to train, one to validate), so that a tiny source
    still has all five classes on both sides of the split.
    """
    shapes = shapes or thesis_dataset_shapes()
    scale = largest_scale(available, shapes) if scale is None else scale
    sizes = {name: {c: max(MIN_IMAGES_PER_CLASS, int(scale * n)) for c, n in shape.items()} for name, shape in shapes.items()}
    for name, size in sizes.items():
        short = {c: f"{n} needed, {available.get(c, 0)} available" for c, n in size.items() if n > available.get(c, 0)}
        if short:
            raise ValueError(f"{name} at scale {scale:.3g} does not fit the source: {short}; lower `scale` "
                             "or use a larger source dataset")
    return sizes


def derive_datasets(pool: Sequence[LabeledImage], *, seed: int = data.SPLIT_SEED, scale: float | None = None,
                    validation_split: float = data.VALIDATION_SPLIT,
                    shapes: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, DerivedDataset]:
    """Datasets 1–3 of §4.4 cut out of `pool` (the source's training files), deterministic from `seed`.

    Each class is shuffled once and every dataset takes a prefix of that order, which gives the
    thesis's relations: Dataset 2 is a subsample of Dataset 1, and Dataset 3 holds Dataset 1's
    images of its small classes plus new ones. Each dataset is then split per class into training
    and validation (listing 4.4's 80/20, stratified: every class of two or more images has at least
    one validation image and every class keeps at least one training image).
    """
    shapes = shapes or thesis_dataset_shapes()
    by_class: dict[str, list[LabeledImage]] = defaultdict(list)
    for item in sorted(pool, key=lambda item: str(item.path)):
        by_class[item.label].append(item)
    missing = sorted({c for shape in shapes.values() for c in shape} - set(by_class))
    if missing:
        raise ValueError(f"the source has no images of {missing}; found classes {sorted(by_class)}")
    rng = np.random.default_rng(seed)
    order = {label: [items[i] for i in rng.permutation(len(items))] for label, items in sorted(by_class.items())}
    sizes = dataset_sizes({label: len(items) for label, items in order.items()}, scale, shapes)
    datasets = {}
    for number, (name, size) in enumerate(sizes.items()):
        split_rng = np.random.default_rng([seed, number])
        training, validation = [], []
        for label, n in size.items():
            chosen = [order[label][i] for i in split_rng.permutation(n)]
            held_out = min(n - 1, max(1, round(validation_split * n)))
            training += chosen[: n - held_out]
            validation += chosen[n - held_out:]
        datasets[name] = DerivedDataset(name, training, validation)
    return datasets


def subset(decoded: LoadedImages, items: Sequence[LabeledImage]) -> LoadedImages:
    """The already decoded images of `items` (files that failed to decode are left out)."""
    row = {path: i for i, path in enumerate(decoded.paths)}
    wanted = {item.path for item in items}
    kept = [row[item.path] for item in items if item.path in row]
    return LoadedImages(image_cache.select_images(decoded.images, kept), decoded.labels[kept],
                        [decoded.paths[i] for i in kept],
                        decoded.classes, [bad for bad in decoded.bad_files if bad.path in wanted])


@dataclass
class FiveClassData:
    """A five-class source decoded once: its Datasets 1–3 and the shared test set (§4.4)."""

    datasets: dict[str, DerivedDataset]
    decoded: LoadedImages  # every training/validation image of the source
    test: LoadedImages

    def run_data(self, name: str) -> RunData:
        """The `RunData` of one derived dataset."""
        dataset = self.datasets[name]
        return RunData(self.decoded.classes, subset(self.decoded, dataset.training),
                       subset(self.decoded, dataset.validation), self.test)


def prepare(five_class_dir: Path | str, *, smoke: bool = False, seed: int = data.SPLIT_SEED,
            progress: bool = True) -> FiveClassData:
    """Decode a five-class ImageFolder (train/ and test/) once and derive Datasets 1–3 from train/.

    Smoke mode starts from `load_run_data`'s few images per class, so the datasets are tiny.
    """
    loaded = load_run_data(five_class_dir, smoke=smoke, progress=progress)
    if loaded.test is None:
        raise FileNotFoundError(f"{five_class_dir}: no test/ folder; §4.4 tests every dataset on one test set")
    if tuple(loaded.classes) != FIVE_CLASS.classes:
        raise ValueError(f"{five_class_dir}: classes {loaded.classes}, expected {FIVE_CLASS.classes}")
    parts = (loaded.training, loaded.validation)
    decoded = LoadedImages(image_cache.concatenate_images([p.images for p in parts]),
                           np.concatenate([p.labels for p in parts]),
                           [path for p in parts for path in p.paths], loaded.classes,
                           [bad for p in parts for bad in p.bad_files])
    pool = [LabeledImage(path, decoded.classes[label]) for path, label in zip(decoded.paths, decoded.labels)]
    return FiveClassData(derive_datasets(pool, seed=seed), decoded, loaded.test)


def flower_proxy(out_dir: Path | str, source: Path | str, mapping: Mapping[str, str] = FLOWER_PROXY) -> Path:
    """A PROXY five-class ImageFolder: flower folders symlinked under the five class names.

    Harmless real photos, so that the five-class plumbing is tried on photographs; the class names
    mean nothing here. Then split into train/ and test/ (symlinks, `data.make_test_split`).
    """
    source, out_dir = Path(source).resolve(), Path(out_dir)
    renamed = out_dir / "renamed"
    for flower, label in mapping.items():
        if not (source / flower).is_dir():
            raise FileNotFoundError(f"{source / flower}: missing flower folder; expected {sorted(mapping)}")
        link = renamed / label
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(source / flower, target_is_directory=True)
    return data.make_test_split(renamed, out_dir / "split")

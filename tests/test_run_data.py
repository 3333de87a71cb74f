"""Specifications of io.run_data: the training, validation and test subsets one training run reads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from image_corpus import encoded, noise, write

from nsfw_mobilenet.io import image_files, run_data

SIZE = (8, 8)


def _folder(root: Path, train: dict[str, int], test: dict[str, int] | None = None) -> Path:
    """train/<class>/ (and test/<class>/ when given) holding that many noise PNGs per class."""
    for split, counts in (("train", train), ("test", test or {})):
        for name, count in counts.items():
            for index in range(count):
                write(root / split / name / f"{index:02d}.png", encoded(noise(size=(12, 10)), "PNG"))
    return root


def test_counts_name_each_subset_and_a_class_without_test_images_is_warned_about(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"a": 10, "b": 10}, {"a": 2})
    data = run_data.load_run_data(root, cache_dir=None, progress=False, image_size=SIZE)
    assert data.classes == ["a", "b"]
    assert data.counts() == {"training": 16, "validation": 4, "test": 2}
    assert data.missing_test_classes() == ["b"] and "class b" in data.warnings()[0]
    without_test = run_data.load_run_data(_folder(tmp_path / "no_test", {"a": 10, "b": 10}), cache_dir=None,
                                          progress=False, image_size=SIZE)
    assert set(without_test.counts()) == {"training", "validation"} and without_test.warnings() == []


def test_a_smoke_run_takes_the_first_images_of_each_class_in_every_subset(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"a": 40, "b": 40}, {"a": 6, "b": 6})
    full, smoke = run_data.run_files(root), run_data.run_files(root, smoke=True)
    assert set(smoke) == set(full) == {"training", "validation", "test"}
    for subset, items in smoke.items():
        per_class = run_data.SMOKE_IMAGES_PER_CLASS[subset]
        available = Counter(item.label for item in full[subset])
        assert Counter(item.label for item in items) == {label: min(per_class, available[label]) for label in "ab"}
        for label in ("a", "b"):
            assert ([item for item in items if item.label == label]
                    == [item for item in full[subset] if item.label == label][:per_class])


def test_check_split_refuses_an_empty_validation_split_and_a_class_the_training_part_never_shows(tmp_path) -> None:
    def files(training: list[str], validation: list[str]) -> dict[str, list[image_files.LabeledImage]]:
        return {subset: [image_files.LabeledImage(tmp_path / label / f"{index}.png", label)
                         for index, label in enumerate(labels)]
                for subset, labels in (("training", training), ("validation", validation))}

    run_data.check_split(files(["a", "b", "a", "b"], ["a"]), ["a", "b"], tmp_path)  # every class taught: accepted
    with pytest.raises(ValueError, match="validation split empty; it needs at least 5 images"):
        run_data.check_split(files(["a", "b", "a"], []), ["a", "b"], tmp_path)
    with pytest.raises(ValueError, match="took every image of class b, so training never sees it"):
        run_data.check_split(files(["a", "a", "a", "a"], ["b"]), ["a", "b"], tmp_path)

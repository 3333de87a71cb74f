"""Specification of the stand-in dataset: layout, determinism, videos, and the built-in traps."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.core.taxonomy import BINARY, FIVE_CLASS, Taxonomy
from nsfw_mobilenet.io.standin import (
    MANIFEST,
    VIDEO_SIZE,
    draw_standin_image,
    ensure_standin,
    make_standin,
    skin_fraction,
)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """Half the images held out, so the baseline checks see enough unseen images."""
    return make_standin(tmp_path_factory.mktemp("standin"), seed=0, images_per_class=60, test_fraction=0.5,
                        progress=False).root


def _file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _images(root: Path, taxonomy: Taxonomy, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    images, labels = [], []
    for index, label in enumerate(taxonomy.classes):
        for path in sorted((root / taxonomy.name / split / label).glob("*.jpg")):
            images.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(index)
    return images, np.array(labels)


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    small = {"images_per_class": 4, "progress": False}
    first = _file_hashes(make_standin(tmp_path / "a", seed=3, **small).root)
    again = _file_hashes(make_standin(tmp_path / "b", seed=3, **small).root)
    other = _file_hashes(make_standin(tmp_path / "c", seed=4, **small).root)
    assert first == again
    images = [name for name in first if name.endswith(".jpg")]
    assert images and all(first[name] != other[name] for name in images)


def test_both_taxonomies_have_train_and_test_folders_with_the_requested_counts(standin):
    manifest = json.loads((standin / MANIFEST).read_text())
    assert manifest["complete"] and manifest["seed"] == 0
    for taxonomy in (BINARY, FIVE_CLASS):
        for split in ("train", "test"):
            folders = sorted(p.name for p in (standin / taxonomy.name / split).iterdir())
            assert tuple(folders) == taxonomy.classes
            for label in taxonomy.classes:
                assert len(list((standin / taxonomy.name / split / label).glob("*.jpg"))) == 30
                assert manifest["counts"][taxonomy.name][split][label] == 30


def test_binary_classes_mix_the_five_class_generators_by_their_safety(standin):
    for label in BINARY.classes:
        sources = {p.name.split("_")[0] for p in (standin / "binary" / "train" / label).glob("*.jpg")}
        assert sources == {c for c in FIVE_CLASS.classes if FIVE_CLASS.is_unsafe(c) == BINARY.is_unsafe(label)}


def test_readme_says_it_is_a_stand_in_not_for_accuracy_claims(standin):
    readme = (standin / "README.md").read_text()
    assert "STAND-IN" in readme and "not for accuracy claims" in readme.lower()


def test_images_decode_with_varied_sizes_and_aspect_ratios(standin):
    sizes = set()
    for path in (standin / "five_class" / "test").rglob("*.jpg"):
        with Image.open(path) as image:
            image.load()
            assert image.mode == "RGB"
            sizes.add(image.size)
    widths, heights = zip(*sizes)
    aspects = [w / h for w, h in sizes]
    assert min(widths + heights) >= 120 and max(widths + heights) <= 400
    assert len(sizes) > 50 and min(aspects) < 0.8 and max(aspects) > 1.4


def test_draw_standin_image_is_pure_and_rejects_unknown_classes():
    first = draw_standin_image("porn", np.random.default_rng(7), (200, 150))
    again = draw_standin_image("porn", np.random.default_rng(7), (200, 150))
    assert first.size == (200, 150) and np.array_equal(np.asarray(first), np.asarray(again))
    with pytest.raises(KeyError, match="five_class"):
        draw_standin_image("people", np.random.default_rng(0), (200, 150))


def test_videos_are_readable_by_opencv_with_the_frame_counts_in_labels_csv(standin):
    with open(standin / "videos" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["label"] for row in rows} == {"safe", "unsafe", "mixed"}
    assert {Path(row["file"]).suffix for row in rows} == {".mp4", ".avi"}
    for row in rows:
        capture = cv2.VideoCapture(str(standin / "videos" / row["file"]))
        frames = []
        while (frame := capture.read())[0]:
            frames.append(frame[1])
        capture.release()
        assert len(frames) == int(row["frames"]) > 0
        assert frames[0].shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3)
        if row["label"] == "mixed":
            first, last = map(int, row["unsafe_frames"].split("-"))
            assert 0 < first <= last < len(frames)


def test_mean_colour_nearest_centroid_cannot_tell_the_five_classes_apart(standin):
    train_images, train_labels = _images(standin, FIVE_CLASS, "train")
    test_images, test_labels = _images(standin, FIVE_CLASS, "test")
    train_means = np.array([image.reshape(-1, 3).mean(axis=0) for image in train_images])
    test_means = np.array([image.reshape(-1, 3).mean(axis=0) for image in test_images])
    centroids = np.array([train_means[train_labels == k].mean(axis=0) for k in range(FIVE_CLASS.num_classes)])
    predicted = np.argmin(((test_means[:, None] - centroids) ** 2).sum(axis=-1), axis=1)
    assert np.mean(predicted == test_labels) < 0.5


def test_skin_colour_baseline_fails_on_binary_like_on_the_thesis_swimsuit_photos(standin):
    train_images, train_labels = _images(standin, BINARY, "train")
    test_images, test_labels = _images(standin, BINARY, "test")
    train_skin = np.array([skin_fraction(image) for image in train_images])
    test_skin = np.array([skin_fraction(image) for image in test_images])
    thresholds = np.unique(train_skin)
    best = thresholds[np.argmax([np.mean((train_skin > t) == train_labels) for t in thresholds])]
    assert np.mean((test_skin > best) == test_labels) <= 0.65

    five_images, five_labels = _images(standin, FIVE_CLASS, "test")
    five_skin = np.array([skin_fraction(image) for image in five_images])
    neutral, porn = FIVE_CLASS.index("neutral"), FIVE_CLASS.index("porn")
    assert five_skin[five_labels == neutral].mean() > five_skin[five_labels == porn].mean() + 0.3


def test_skin_fraction_counts_skin_tones_and_not_blue():
    skin = np.full((4, 4, 3), (224, 172, 105), dtype=np.uint8)
    blue = np.full((4, 4, 3), (40, 80, 160), dtype=np.uint8)
    assert skin_fraction(skin) == 1.0 and skin_fraction(blue) == 0.0
    assert skin_fraction(np.concatenate([skin, blue])) == 0.5


def test_ensure_standin_regenerates_only_when_parameters_change(tmp_path):
    options = {"images_per_class": 4, "videos": False, "progress": False}
    root = ensure_standin(tmp_path / "data", **options)
    manifest = root / MANIFEST
    written = manifest.stat().st_mtime_ns
    assert ensure_standin(tmp_path / "data", **options) == root
    assert manifest.stat().st_mtime_ns == written
    ensure_standin(tmp_path / "data", **{**options, "images_per_class": 8})
    assert len(list((root / "five_class" / "train" / "sexy").glob("*.jpg"))) == 6


def test_a_folder_that_is_not_a_stand_in_is_never_overwritten(tmp_path):
    real = tmp_path / "real_dataset"
    (real / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a stand-in"):
        make_standin(real, images_per_class=4, progress=False)
    assert cli.main(["make-standin", str(real), "--quiet"]) == 2
    assert list(real.iterdir()) == [real / "train"]


def test_make_standin_command_writes_the_dataset(tmp_path, capsys):
    code = cli.main(["make-standin", str(tmp_path / "s"), "--seed", "2", "--images-per-class", "4",
                     "--no-videos", "--quiet"])
    assert code == 0 and "STAND-IN" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["seed"] == 2 and manifest["videos"] is False
    assert not (tmp_path / "s" / "videos").exists()

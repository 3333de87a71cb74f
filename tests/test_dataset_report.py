"""Specifications of io.dataset_report: validate_dataset's report, and its demo folder of deliberately bad files (notebook 00)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from image_corpus import BAD, IGNORE_BOMB_WARNING, encoded, noise, write, write_corpus
from PIL import Image

from nsfw_mobilenet.io import dataset_report


def _good_images(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(folder / f"good_{index}.jpg")
    return folder


def test_broken_dataset_report_names_the_empty_truncated_and_text_files_and_the_duplicate(tmp_path):
    broken = dataset_report.make_broken_dataset(tmp_path / "broken", _good_images(tmp_path / "good"))
    report = dataset_report.validate_dataset(broken, progress=False)
    assert sorted(bad.path.name for bad in report.bad_files) == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    assert [sorted(path.name for path in group) for group in report.duplicates] == [["duplicate.jpg", "good_0.jpg"]]
    assert report.splits == {"all": {"normal": 3, "sexual": 1}}


def test_broken_dataset_needs_three_good_images_and_says_so(tmp_path):
    with pytest.raises(ValueError, match="needs three"):
        dataset_report.make_broken_dataset(tmp_path / "broken", _good_images(tmp_path / "good", count=2))


# ---------------------------------------------------------------- validate_dataset and its report


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """train/{neutral,drawings} with every kind of good and bad file, test/ with a leaked duplicate."""
    return write_corpus(tmp_path / "data")


@IGNORE_BOMB_WARNING
def test_every_bad_file_is_reported_with_its_reason_not_fatal(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    reasons = {bad.path.name: bad.reason for bad in report.bad_files}
    assert set(reasons) == set(BAD)
    for name, (_, expected) in BAD.items():
        assert expected in reasons[name], (name, reasons[name])
    assert str(report.bad_files[0]).endswith("(skipped)")
    assert str(corpus) in str(report.bad_files[0])


@IGNORE_BOMB_WARNING
def test_report_counts_usable_images_per_split_and_class(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    assert report.classes == ["drawings", "neutral"]
    assert report.splits == {"train": {"drawings": 3, "neutral": 6}, "test": {"drawings": 1, "neutral": 1}}
    assert report.imbalance_ratio == pytest.approx(2.0)
    assert report.taxonomy is None


@IGNORE_BOMB_WARNING
def test_exact_duplicate_across_train_and_test_is_found(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    assert report.duplicates == [[corpus / "train" / "neutral" / "rgb.jpg", corpus / "test" / "neutral" / "leaked.jpg"]]


@IGNORE_BOMB_WARNING
def test_report_round_trips_through_json_and_prints_a_table(corpus: Path, tmp_path: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    report.save_json(tmp_path / "report.json")
    assert dataset_report.DatasetReport.from_json((tmp_path / "report.json").read_text()) == report
    text = str(report)
    assert "drawings" in text and "truncated JPEG" in text and "imbalance ratio" in text
    assert "<table>" in report._repr_html_()


def test_empty_class_gives_infinite_imbalance_that_survives_json(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.png", encoded(noise(), "PNG"))
    (tmp_path / "b").mkdir()
    report = dataset_report.validate_dataset(tmp_path, progress=False)
    assert report.splits == {"all": {"a": 1, "b": 0}}
    assert dataset_report.DatasetReport.from_json(report.to_json()).imbalance_ratio == float("inf")


def test_known_class_folders_name_their_taxonomy(tmp_path: Path) -> None:
    for name in ("normal", "sexual"):  # folder names only; the images are noise
        write(tmp_path / name / "x.png", encoded(noise(), "PNG"))
    assert dataset_report.validate_dataset(tmp_path, progress=False).taxonomy == "binary"


def test_jpeg_cut_inside_its_header_is_reported_not_fatal(tmp_path):
    source = tmp_path / "full.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(source, quality=90)
    write(tmp_path / "data" / "normal" / "cut.jpg", source.read_bytes()[:300])
    report = dataset_report.validate_dataset(tmp_path / "data", progress=False)
    assert [(b.path.name, b.reason.split(" (")[0]) for b in report.bad_files] == [("cut.jpg", "truncated or corrupt header")]


@IGNORE_BOMB_WARNING
def test_files_beside_the_class_folders_are_reported_as_stray_hidden_ones_are_not(corpus: Path) -> None:
    stray = [write(corpus / "README.txt", b"about"), write(corpus / "train" / "list.csv", b"a,b"),
             write(corpus / "test" / "orphan.jpg", encoded(noise(), "JPEG"))]
    write(corpus / ".DS_Store", b"\0")
    reasons = {bad.path: bad.reason for bad in dataset_report.validate_dataset(corpus, progress=False).bad_files}
    assert {path for path, reason in reasons.items() if "not in a class folder" in reason} == set(stray)
    assert f"move it into {corpus / 'train'}/<class>/" in reasons[corpus / "train" / "list.csv"]


def test_an_unreadable_file_is_reported_not_skipped_silently(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.png", encoded(noise(), "PNG"))
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "deleted.png")
    [bad] = dataset_report.validate_dataset(tmp_path, progress=False).bad_files
    assert bad.path.name == "gone.png" and bad.reason.startswith("unreadable")


def test_the_report_samples_as_many_training_images_as_there_are_when_fewer_than_asked(tmp_path):
    for i in range(3):
        write(tmp_path / "train" / "cats" / f"{i}.png", encoded(noise(), "PNG"))
    sample = dataset_report.sample_training_images(tmp_path, count=10, seed=0)
    assert sorted(item.path.name for item in sample) == ["0.png", "1.png", "2.png"]
    assert dataset_report.sample_training_images(tmp_path, count=10, seed=0) == sample  # same seed, same sample

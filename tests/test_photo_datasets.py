"""Specifications of io.photo_datasets: a test split made from real photo folders, and the two-class data a demo uses."""

from __future__ import annotations

from pathlib import Path

from image_corpus import noise

from nsfw_mobilenet.io import photo_datasets


def _relative_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))


def test_test_split_of_chosen_classes_ignores_the_others_and_is_deterministic(tmp_path: Path) -> None:
    for name, count in (("daisy", 5), ("roses", 10), ("tulips", 5)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(count):
            noise().save(tmp_path / "src" / name / f"{i}.png")
    first = photo_datasets.make_test_split(tmp_path / "src", tmp_path / "a", classes=("roses", "tulips"))
    again = photo_datasets.make_test_split(tmp_path / "src", tmp_path / "b", classes=("roses", "tulips"))
    assert sorted(p.name for p in (first / "train").iterdir()) == ["roses", "tulips"]
    assert len(list((first / "test" / "roses").iterdir())) == 2
    assert _relative_files(first) == _relative_files(again)


def test_two_class_data_is_the_flower_proxy_when_flower_photos_exists_else_the_stand_in(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    for name in ("daisy", "roses", "tulips"):
        (tmp_path / "flower_photos" / name).mkdir(parents=True)
        for i in range(5):
            noise().save(tmp_path / "flower_photos" / name / f"{i}.png")
    proxy = photo_datasets.two_class_data(tmp_path / "flower_photos", tmp_path / "proxy")
    assert proxy == tmp_path / "proxy" and sorted(p.name for p in (proxy / "test").iterdir()) == ["roses", "tulips"]
    monkeypatch.setattr(photo_datasets, "ensure_standin", lambda folder, progress: tmp_path / "standin")
    assert photo_datasets.two_class_data(tmp_path / "no_such_folder", tmp_path / "other") == tmp_path / "standin" / "binary"

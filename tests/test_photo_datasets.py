"""Specifications of io.photo_datasets: a test split made from real photo folders, and the two-class data a demo uses."""

from __future__ import annotations

from pathlib import Path

from image_corpus import noise, shared_datasets_miniature

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


def test_the_open_world_proxy_keeps_unseen_categories_out_of_train_and_test_and_names_each_images_category(
        tmp_path: Path) -> None:
    datasets = shared_datasets_miniature(tmp_path / "datasets")
    proxy = photo_datasets.open_world_proxy(datasets, tmp_path / "proxy")
    assert sorted(p.name for p in (proxy.root / "train").iterdir()) == ["everything_else", "tulips"]  # tulips last
    seen = {photo_datasets.category_of(p) for split in ("train", "test") for p in (proxy.root / split).rglob("*.jpg")}
    assert not seen & set(proxy.unseen_categories)
    assert {"flower_photos/roses", "flower_photos/tulips", "caltech101_faces/faces"} <= seen
    assert proxy.unseen_categories[:4] == ["flower_photos/sunflowers", "caltech101_objects/bonsai",
                                           "caltech101_objects/joshua_tree", "caltech101_objects/strawberry"]
    assert proxy.unseen_categories[4:] == ["caltech101_objects/object_07", "caltech101_objects/object_15"]
    assert proxy.counts["test"]["tulips"] == 8 and proxy.counts["train"]["tulips"] == 32  # 20 % of each category
    assert proxy.prevalence == 40 / (40 + 5 * 21) and "unseen/" in (proxy.root / "README.md").read_text()


def test_the_open_world_proxy_is_the_same_files_every_time(tmp_path: Path) -> None:
    datasets = shared_datasets_miniature(tmp_path / "datasets")
    made = [photo_datasets.open_world_proxy(datasets, tmp_path / name).root for name in ("a", "b")]
    listed = [sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg")) for root in made]
    assert listed[0] == listed[1] and len(listed[0]) == 5 * 27 + 40  # every photo once: train, test or unseen


def test_open_world_data_is_the_proxy_with_its_unseen_folders_when_the_sources_exist_else_the_stand_in(
        tmp_path: Path, monkeypatch) -> None:
    datasets = shared_datasets_miniature(tmp_path / "datasets")
    root = photo_datasets.open_world_data(datasets, tmp_path / "proxy")
    assert root == tmp_path / "proxy"
    assert [folder.name for folder in photo_datasets.unseen_folders(root)][:2] == [
        "caltech101_objects__bonsai", "caltech101_objects__joshua_tree"]
    assert len(photo_datasets.unseen_folders(root)) == 6
    monkeypatch.setattr(photo_datasets, "ensure_standin", lambda folder, progress: tmp_path / "standin")
    standin = photo_datasets.open_world_data(tmp_path / "nothing", tmp_path / "other")
    assert standin == tmp_path / "standin" / "binary" and photo_datasets.unseen_folders(standin) == []

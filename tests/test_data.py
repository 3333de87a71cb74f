"""Specifications of the data module: discovery, validation, Keras split parity, loading, tf.data."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nsfw_mobilenet.io import dataset_report, image_cache, image_files, input_pipeline, photo_datasets

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RNG = np.random.default_rng(0)
# The corpus holds a header claiming 1e8 pixels: Pillow warns, validate_dataset reports it.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def _noise(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def _bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _bomb_png(side: int = 100_000) -> bytes:
    """A valid PNG header claiming side x side pixels, crafted without allocating them."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + _png_chunk(b"IEND", b""))


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


GOOD = {
    "rgb.jpg": lambda: _bytes(_noise(), "JPEG"),
    "rgb.png": lambda: _bytes(_noise(), "PNG"),
    "cmyk.jpg": lambda: _bytes(_noise("CMYK"), "JPEG"),
    "rgba.png": lambda: _bytes(_noise("RGBA"), "PNG"),
    "gray.jpg": lambda: _bytes(_noise("L"), "JPEG"),
    "palette.png": lambda: _bytes(_noise("P"), "PNG", transparency=0),
}
BAD = {
    "empty.jpg": (lambda: b"", "zero bytes"),
    "truncated.jpg": (lambda: _bytes(_noise(size=(200, 200)), "JPEG")[:3000], "truncated JPEG"),
    "text.jpg": (lambda: b"this is a text file, not a JPEG\n", "not an image"),
    "bomb.png": (_bomb_png, "decompression bomb"),  # Pillow refuses it while reading the header
    "bomb_below_2x.png": (lambda: _bomb_png(10_000), "decompression bomb"),  # Pillow only warns; we refuse
    "notes.txt": (lambda: b"hello", "extension '.txt'"),
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """train/{neutral,drawings} with every kind of good and bad file, test/ with a leaked duplicate."""
    root = tmp_path / "data"
    for name, make in GOOD.items():
        _write(root / "train" / "neutral" / name, make())
    for name, (make, _) in BAD.items():
        _write(root / "train" / "drawings" / name, make())
    for i in range(3):
        _write(root / "train" / "drawings" / f"d{i}.png", _bytes(_noise(), "PNG"))
    _write(root / "train" / "neutral" / ".DS_Store", b"\0\0")
    _write(root / "test" / "neutral" / "leaked.jpg", (root / "train" / "neutral" / "rgb.jpg").read_bytes())
    _write(root / "test" / "drawings" / "t0.png", _bytes(_noise(), "PNG"))
    return root


def test_every_bad_file_is_reported_with_its_reason_not_fatal(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    reasons = {bad.path.name: bad.reason for bad in report.bad_files}
    assert set(reasons) == set(BAD)
    for name, (_, expected) in BAD.items():
        assert expected in reasons[name], (name, reasons[name])
    assert str(report.bad_files[0]).endswith("(skipped)")
    assert str(corpus) in str(report.bad_files[0])


def test_report_counts_usable_images_per_split_and_class(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    assert report.classes == ["drawings", "neutral"]
    assert report.splits == {"train": {"drawings": 3, "neutral": 6}, "test": {"drawings": 1, "neutral": 1}}
    assert report.imbalance_ratio == pytest.approx(2.0)
    assert report.taxonomy is None


def test_exact_duplicate_across_train_and_test_is_found(corpus: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    assert report.duplicates == [[corpus / "train" / "neutral" / "rgb.jpg", corpus / "test" / "neutral" / "leaked.jpg"]]


def test_report_round_trips_through_json_and_prints_a_table(corpus: Path, tmp_path: Path) -> None:
    report = dataset_report.validate_dataset(corpus, progress=False)
    report.save_json(tmp_path / "report.json")
    assert dataset_report.DatasetReport.from_json((tmp_path / "report.json").read_text()) == report
    text = str(report)
    assert "drawings" in text and "truncated JPEG" in text and "imbalance ratio" in text
    assert "<table>" in report._repr_html_()


def test_empty_class_gives_infinite_imbalance_that_survives_json(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "x.png", _bytes(_noise(), "PNG"))
    (tmp_path / "b").mkdir()
    report = dataset_report.validate_dataset(tmp_path, progress=False)
    assert report.splits == {"all": {"a": 1, "b": 0}}
    assert dataset_report.DatasetReport.from_json(report.to_json()).imbalance_ratio == float("inf")


def test_known_class_folders_name_their_taxonomy(tmp_path: Path) -> None:
    for name in ("normal", "sexual"):  # folder names only; the images are noise
        _write(tmp_path / name / "x.png", _bytes(_noise(), "PNG"))
    assert dataset_report.validate_dataset(tmp_path, progress=False).taxonomy == "binary"


def test_list_images_skips_hidden_files_and_is_sorted(corpus: Path) -> None:
    items = image_files.list_images(corpus, "train")
    assert all(not item.path.name.startswith(".") for item in items)
    assert items == sorted(items, key=lambda item: (item.label, str(item.path)))
    assert [item.path.name for item in image_files.list_images(corpus, "test")] == ["t0.png", "leaked.jpg"]


def test_missing_test_folder_names_the_path_and_the_fix(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "x.png", _bytes(_noise(), "PNG"))
    with pytest.raises(FileNotFoundError, match="test/<class>"):
        image_files.split_files(tmp_path, "test")


def test_good_files_including_cmyk_rgba_gray_palette_load_as_rgb_uint8(corpus: Path) -> None:
    items = image_files.list_images(corpus, "train")
    loaded = image_cache.load_images(items, ["drawings", "neutral"], progress=False)
    assert loaded.images.shape == (9, 224, 224, 3) and loaded.images.dtype == np.uint8
    assert {p.name for p in loaded.paths} >= set(GOOD)
    assert {bad.path.name for bad in loaded.bad_files} == set(BAD)
    assert loaded.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_cache_is_reused_and_invalidated_when_a_file_changes(corpus: Path, tmp_path: Path) -> None:
    items = image_files.list_images(corpus, "train")
    cache = tmp_path / "cache"
    first = image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 1 and not list(cache.glob("*.partial"))
    again = image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    np.testing.assert_array_equal(first.images, again.images)
    assert again.bad_files == first.bad_files
    _write(corpus / "train" / "drawings" / "d0.png", _bytes(_noise(size=(9, 9)), "PNG"))
    image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 2


def test_split_matches_keras_image_dataset_from_directory_file_for_file(tmp_path: Path) -> None:
    """Listing 4.4 (validation_split=0.2, seed=1): every image has a unique pixel value as its id."""
    import keras

    ids = {}
    for i in range(23):
        cls = ("cat", "dog", "eel")[i % 3]
        name = f".hidden{i}.png" if i == 5 else f"sub/{i}.png" if i == 7 else f"{i:02d}.png"
        ids[_write(tmp_path / cls / name, _bytes(Image.new("RGB", (4, 4), (i, i, i)), "PNG"))] = i
    _write(tmp_path / "cat" / "readme.txt", b"not indexed by keras")
    for subset in ("training", "validation"):
        ours = [ids[item.path] for item in image_files.split_files(tmp_path, subset)]
        keras_ds = keras.utils.image_dataset_from_directory(
            tmp_path, validation_split=0.2, subset=subset, seed=1, image_size=(4, 4), batch_size=None,
            interpolation="nearest", verbose=False)
        theirs = sorted(int(image[0, 0, 0]) for image, _ in keras_ds.as_numpy_iterator())
        assert sorted(ours) == [i for i in theirs if i != 5]  # the hidden file is dropped after the split


@pytest.mark.parametrize("order", ["thesis", "corrected"])
@pytest.mark.parametrize("backbone, low, high", [
    ("mobilenet_v1", -1.0, 1.0), ("mobilenet_v2", -1.0, 1.0),
    ("mobilenet_v3_small", 0.0, 255.0), ("mobilenet_v3_large", 0.0, 255.0)])
def test_make_dataset_batches_float32_images_and_one_hot_labels(backbone, low, high, order) -> None:
    images = RNG.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 255, 0)
    dataset = input_pipeline.make_dataset(images, np.array([0, 1, 2, 1, 0]), 3, backbone, batch_size=2, order=order)
    batches = list(dataset.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(2, 8, 8, 3), (2, 8, 8, 3), (1, 8, 8, 3)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and x.min() == pytest.approx(low) and x.max() == pytest.approx(high)
    np.testing.assert_array_equal(y.argmax(1), [0, 1, 2, 1, 0])
    assert y.dtype == np.float32 and y.sum() == 5


def _shift(x, training=False):
    """A stand-in augmentation that is easy to trace: +1000 on every pixel."""
    return x + 1000.0


def test_thesis_order_augments_after_preprocess_and_corrected_order_before() -> None:
    images = np.full((2, 4, 4, 3), 255, dtype=np.uint8)
    labels = np.array([0, 1])
    thesis = next(input_pipeline.make_dataset(images, labels, 2, "mobilenet_v1", augmentation=_shift, order="thesis")
                  .as_numpy_iterator())[0]
    corrected = next(input_pipeline.make_dataset(images, labels, 2, "mobilenet_v1", augmentation=_shift, order="corrected")
                     .as_numpy_iterator())[0]
    assert np.allclose(thesis, 1001.0)  # listing 4.5: [-1, 1] values, then augmentation
    assert np.allclose(corrected, 1255.0 / 127.5 - 1.0)


def test_shuffle_is_seeded_and_keeps_images_with_their_labels() -> None:
    images = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)
    labels = np.arange(10) % 2
    dataset = input_pipeline.make_dataset(images, labels, 2, "mobilenet_v3_small", batch_size=10, shuffle=True, seed=1)
    x, y = next(dataset.as_numpy_iterator())
    order = x[:, 0, 0, 0].astype(int)
    assert sorted(order) == list(range(10)) and order.tolist() != list(range(10))
    np.testing.assert_array_equal(y.argmax(1), order % 2)


def test_killed_run_keeps_finished_cache_chunks(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    items, cache = image_files.list_images(corpus, "train"), tmp_path / "cache"
    monkeypatch.setattr(image_cache, "CACHE_CHUNK", 4)
    image_cache.load_images(items, ["drawings", "neutral"], image_size=(8, 8), cache_dir=cache, progress=False)
    next(iter(sorted(cache.glob("*.json")))).unlink()  # as if the run died while writing this chunk
    decoded = []
    real_decode_chunk = image_cache._decode_chunk
    monkeypatch.setattr(image_cache, "_decode_chunk",
                        lambda paths, *rest: decoded.append(paths) or real_decode_chunk(paths, *rest))
    image_cache.load_images(items, ["drawings", "neutral"], image_size=(8, 8), cache_dir=cache, progress=False)
    assert len(decoded) == 1 and len(decoded[0]) <= 4


def test_jpeg_cut_inside_its_header_is_reported_not_fatal(tmp_path):
    source = tmp_path / "full.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(source, quality=90)
    _write(tmp_path / "data" / "normal" / "cut.jpg", source.read_bytes()[:300])
    report = dataset_report.validate_dataset(tmp_path / "data", progress=False)
    assert [(b.path.name, b.reason.split(" (")[0]) for b in report.bad_files] == [("cut.jpg", "truncated or corrupt header")]


def test_test_split_of_chosen_classes_ignores_the_others_and_is_deterministic(tmp_path: Path) -> None:
    for name, count in (("daisy", 5), ("roses", 10), ("tulips", 5)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(count):
            _noise().save(tmp_path / "src" / name / f"{i}.png")
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
            _noise().save(tmp_path / "flower_photos" / name / f"{i}.png")
    proxy = photo_datasets.two_class_data(tmp_path / "flower_photos", tmp_path / "proxy")
    assert proxy == tmp_path / "proxy" and sorted(p.name for p in (proxy / "test").iterdir()) == ["roses", "tulips"]
    monkeypatch.setattr(photo_datasets, "ensure_standin", lambda folder, progress: tmp_path / "standin")
    assert photo_datasets.two_class_data(tmp_path / "no_such_folder", tmp_path / "other") == tmp_path / "standin" / "binary"


def _relative_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))


def test_files_beside_the_class_folders_are_reported_as_stray_hidden_ones_are_not(corpus: Path) -> None:
    stray = [_write(corpus / "README.txt", b"about"), _write(corpus / "train" / "list.csv", b"a,b"),
             _write(corpus / "test" / "orphan.jpg", _bytes(_noise(), "JPEG"))]
    _write(corpus / ".DS_Store", b"\0")
    reasons = {bad.path: bad.reason for bad in dataset_report.validate_dataset(corpus, progress=False).bad_files}
    assert {path for path, reason in reasons.items() if "not in a class folder" in reason} == set(stray)
    assert f"move it into {corpus / 'train'}/<class>/" in reasons[corpus / "train" / "list.csv"]


def test_an_unreadable_file_is_reported_not_skipped_silently(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "x.png", _bytes(_noise(), "PNG"))
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "deleted.png")
    [bad] = dataset_report.validate_dataset(tmp_path, progress=False).bad_files
    assert bad.path.name == "gone.png" and bad.reason.startswith("unreadable")


def test_a_class_folder_with_only_hidden_or_non_image_files_is_refused_for_training(corpus: Path) -> None:
    assert image_files.training_classes(corpus) == ["drawings", "neutral"]
    _write(corpus / "train" / "empty" / ".hidden.png", _bytes(_noise(), "PNG"))
    _write(corpus / "train" / "empty" / "notes.txt", b"hello")
    with pytest.raises(image_files.EmptyClassFolder, match=f"{corpus / 'train' / 'empty'}: .*remove it"):
        image_files.training_classes(corpus)


def test_split_indexes_webp_and_tiff_which_keras_skips(tmp_path: Path) -> None:
    for i, extension in enumerate((".png", ".webp", ".tif", ".tiff", ".txt")):
        _write(tmp_path / "a" / f"{i}{extension}", _bytes(_noise(), "PNG"))
    files = image_files.split_files(tmp_path, "training") + image_files.split_files(tmp_path, "validation")
    assert sorted(item.path.name for item in files) == ["0.png", "1.webp", "2.tif", "3.tiff"]


# ---------------------------------------------------------------- issue 21: images read as what they are


def _twelve_bit_tiff(path: Path, value: int, side: int = 64) -> Path:
    """An uncompressed grayscale TIFF declaring 12 bits per sample (pixels packed two in three bytes)."""
    pair = bytes([value >> 4, ((value & 0xF) << 4) | (value >> 8), value & 0xFF])
    pixels = pair * (side // 2) * side
    tags = [(256, 3, side), (257, 3, side), (258, 3, 12), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 3, side), (279, 4, len(pixels))]  # width, height, bits, no compression, gray, strip...
    directory = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", tag, kind, 1, value)
                                                        for tag, kind, value in tags) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + directory)
    return path


def test_a_12_bit_tiff_is_scaled_by_4095_not_as_16_bit(tmp_path: Path) -> None:
    path = _twelve_bit_tiff(tmp_path / "sensor.tif", 2000)
    assert Image.open(path).mode == "I;16" and image_files.bit_depth(Image.open(path)) == 12
    assert image_files.decode_image(path, (32, 32))[0, 0].tolist() == [125, 125, 125]  # 2000 * 255 / 4095, not 2000 / 257


def test_a_png_over_pillows_text_chunk_limit_names_the_limit_not_corruption(tmp_path: Path, monkeypatch) -> None:
    from PIL import PngImagePlugin

    metadata = PngImagePlugin.PngInfo()
    metadata.add_text("comment", "x" * 5000)
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "chatty.png", pnginfo=metadata)
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 4096)  # the 64 MiB limit, scaled down to the test
    with pytest.raises(image_files.CorruptImage, match="PNG text chunks over Pillow's limit") as raised:
        image_files.read_image(tmp_path / "chatty.png")
    assert "corrupt" not in str(raised.value) and "MAX_TEXT_MEMORY" in str(raised.value)


def test_a_fifo_is_refused_from_its_stat_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(image_files.CorruptImage, match=r"not a regular file \(FIFO\)"):
        image_files.read_image(tmp_path / "pipe.png")  # opening it would wait forever for a writer


def test_a_file_name_that_is_not_utf8_is_listed_as_a_bad_file_not_fatal(tmp_path: Path) -> None:
    odd = tmp_path / "normal" / os.fsdecode(b"caf\xe9.png")
    odd.parent.mkdir()
    _noise().save(odd)
    _noise().save(tmp_path / "normal" / "plain.png")
    loaded = image_cache.load_images(image_files.list_images(tmp_path), ["normal"], image_size=(16, 16), cache_dir=tmp_path / "c",
                              progress=False)
    assert [path.name for path in loaded.paths] == ["plain.png"]
    assert [bad.path for bad in loaded.bad_files] == [odd] and "not valid UTF-8" in loaded.bad_files[0].reason


def test_a_class_sub_folder_that_cannot_be_read_is_refused_by_name_not_skipped(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "normal" / "locked").mkdir(parents=True)
    _noise().save(tmp_path / "normal" / "a.png")
    real_scandir = os.scandir

    def permission_denied(path):  # what chmod 000 does to anyone but root, who runs these tests
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", permission_denied)
    with pytest.raises(ValueError, match=r"normal/locked: folder cannot be read \(Permission denied\)"):
        image_files.list_images(tmp_path)

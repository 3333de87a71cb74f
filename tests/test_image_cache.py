"""Specifications of the decode cache: images stay on disk (`image_cache.StoredArray`) and are read a batch at a time."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from image_corpus import BAD, GOOD, IGNORE_BOMB_WARNING, encoded, noise, write, write_corpus
from PIL import Image

from nsfw_mobilenet.io import image_cache, image_files, input_pipeline, run_data
from nsfw_mobilenet.studies import five_classes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = ["drawings", "neutral"]
SIZE = (12, 12)


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """train/<class>/ with 11 good images and one truncated file; test/<class>/ with 2 images each."""
    root = tmp_path / "data"
    for i in range(11):
        path = root / "train" / CLASSES[i % 2] / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(i))
    (root / "train" / "drawings" / "cut.png").write_bytes(_png(99)[:60])
    for i, name in enumerate(CLASSES * 2):
        (root / "test" / name).mkdir(parents=True, exist_ok=True)
        (root / "test" / name / f"t{i}.png").write_bytes(_png(100 + i))
    return root


@pytest.fixture
def chunked(monkeypatch) -> None:
    monkeypatch.setattr(image_cache, "CACHE_CHUNK", 4)  # several cache files, one image of them bad


def _load(root: Path, cache_dir: Path | None) -> image_cache.LoadedImages:
    return image_cache.load_images(image_files.list_images(root, "train"), CLASSES, image_size=SIZE, cache_dir=cache_dir,
                            progress=False)


def _bytes_read() -> int:
    """Bytes this process has read through read() calls (page-cache hits included): Linux's /proc/self/io."""
    io_file = Path("/proc/self/io")
    if not io_file.exists():
        pytest.skip("needs Linux's /proc/self/io")
    return int(dict(line.split(": ") for line in io_file.read_text().splitlines())["rchar"])


def test_stored_images_equal_an_in_memory_decode_under_every_kind_of_index(folder, tmp_path, chunked) -> None:
    in_memory, stored = _load(folder, None), _load(folder, tmp_path / "cache")
    images = stored.images
    assert isinstance(images, image_cache.StoredArray) and isinstance(in_memory.images, np.ndarray)
    assert images.shape == in_memory.images.shape == (11, *SIZE, 3) and images.dtype == np.uint8
    assert len(images) == 11 and images.ndim == 4
    np.testing.assert_array_equal(np.asarray(images), in_memory.images)
    mask = np.arange(11) % 3 == 0
    for key in (0, -1, slice(2, 9, 3), slice(None, None, -1), [10, 0, 4, 4], np.array([[1, 2], [3, 4]]), mask,
                (slice(None), 0), (3, 1, 2)):
        np.testing.assert_array_equal(images[key], in_memory.images[key])
    np.testing.assert_array_equal(np.stack(list(images)), in_memory.images)
    assert (stored.labels.tolist(), stored.paths) == (in_memory.labels.tolist(), in_memory.paths)


def test_an_index_beyond_the_rows_is_an_index_error(folder, tmp_path) -> None:
    images = _load(folder, tmp_path / "cache").images
    with pytest.raises(IndexError):
        images[11]
    with pytest.raises(IndexError):
        images[[0, -12]]


def test_a_second_load_decodes_nothing(folder, tmp_path, chunked, monkeypatch) -> None:
    first = _load(folder, tmp_path / "cache")
    monkeypatch.setattr(image_cache, "_decode_chunk", lambda *args: pytest.fail("decoded again"))
    again = _load(folder, tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images))
    assert again.bad_files == first.bad_files


def test_a_corrupt_file_is_skipped_and_reported_from_the_cache_too(folder, tmp_path, chunked, caplog) -> None:
    for _ in range(2):  # decoded, then read back from the cache
        loaded = _load(folder, tmp_path / "cache")
        reasons = [(bad.path.name, bad.reason.split(" (")[0]) for bad in loaded.bad_files]
        assert reasons == [("cut.png", "truncated PNG")]
        assert len(loaded.images) == len(loaded.labels) == len(loaded.paths) == 11
    assert "cut.png" in caplog.text


def test_a_cache_file_cut_short_is_decoded_again_with_a_warning(folder, tmp_path, chunked, caplog) -> None:
    cache = tmp_path / "cache"
    expected = np.asarray(_load(folder, cache).images)
    damaged = sorted(cache.glob("*.npy"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-100])  # e.g. a full disk; its reasons file says it is finished
    np.testing.assert_array_equal(np.asarray(_load(folder, cache).images), expected)
    assert str(damaged) in caplog.text and "decoding this chunk again" in caplog.text


def test_a_batch_read_reads_only_its_rows_and_maps_no_file(tmp_path) -> None:
    rows = np.random.default_rng(0).integers(0, 256, (400, 64, 64, 3), dtype=np.uint8)  # 4.9 MB in 4 files
    for i in range(4):
        np.save(tmp_path / f"{i}.npy", rows[i * 100:(i + 1) * 100])
    images = image_cache.StoredArray(sorted(tmp_path.glob("*.npy")))
    batch = [399, 7, 150, 42, 8]
    before = _bytes_read()
    np.testing.assert_array_equal(images[batch], rows[batch])
    assert _bytes_read() - before < 2 * len(batch) * rows[0].nbytes
    assert str(tmp_path) not in Path("/proc/self/maps").read_text()


def test_select_and_concatenate_are_views_that_read_nothing(tmp_path) -> None:
    rows = np.random.default_rng(1).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "rows.npy", rows)
    images = image_cache.StoredArray([tmp_path / "rows.npy"])
    extra = np.zeros((2, 32, 32, 3), np.uint8)  # e.g. video frames held in memory
    before = _bytes_read()
    view = image_cache.concatenate_images([image_cache.select_images(images, [5, 250, 7]), extra])
    assert _bytes_read() - before < rows[0].nbytes and isinstance(view, image_cache.StoredArray)
    np.testing.assert_array_equal(np.asarray(view), np.concatenate([rows[[5, 250, 7]], extra]))
    np.testing.assert_array_equal(image_cache.concatenate_images([rows[:2], extra]), np.concatenate([rows[:2], extra]))


def test_make_dataset_batches_a_stored_array_as_its_in_memory_array(folder, tmp_path) -> None:
    stored, in_memory = _load(folder, tmp_path / "cache"), _load(folder, None)

    def batches(images: image_cache.Images) -> list:
        dataset = input_pipeline.make_dataset(images, stored.labels, 2, "mobilenet_v2", batch_size=4, shuffle=True, seed=3)
        return list(dataset.as_numpy_iterator())

    for (x_stored, y_stored), (x_memory, y_memory) in zip(batches(stored.images), batches(in_memory.images),
                                                          strict=True):
        np.testing.assert_array_equal(x_stored, x_memory)
        np.testing.assert_array_equal(y_stored, y_memory)


def test_run_data_streams_from_its_cache_folder_and_none_keeps_it_in_memory(folder, tmp_path) -> None:
    stored = run_data.load_run_data(folder, cache_dir=tmp_path / "cache", progress=False, image_size=SIZE)
    in_memory = run_data.load_run_data(folder, cache_dir=None, progress=False, image_size=SIZE)
    for name in ("training", "validation", "test"):
        assert isinstance(getattr(stored, name).images, image_cache.StoredArray)
        np.testing.assert_array_equal(np.asarray(getattr(stored, name).images), getattr(in_memory, name).images)
    assert stored.bad_files() == in_memory.bad_files() and len(stored.bad_files()) == 1


def test_a_five_class_subset_of_stored_images_stays_on_disk(folder, tmp_path) -> None:
    decoded = _load(folder, tmp_path / "cache")
    items = [image_files.LabeledImage(path, CLASSES[label]) for path, label in zip(decoded.paths, decoded.labels)][::3]
    part = five_classes.subset(decoded, items)
    assert isinstance(part.images, image_cache.StoredArray)
    np.testing.assert_array_equal(np.asarray(part.images), np.asarray(decoded.images)[::3])


# ---------------------------------------------------------------- decoding a corpus of good and bad files


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """train/{neutral,drawings} with every kind of good and bad file, test/ with a leaked duplicate."""
    return write_corpus(tmp_path / "data")


@IGNORE_BOMB_WARNING
def test_good_files_including_cmyk_rgba_gray_palette_load_as_rgb_uint8(corpus: Path) -> None:
    items = image_files.list_images(corpus, "train")
    loaded = image_cache.load_images(items, ["drawings", "neutral"], progress=False)
    assert loaded.images.shape == (9, 224, 224, 3) and loaded.images.dtype == np.uint8
    assert {p.name for p in loaded.paths} >= set(GOOD)
    assert {bad.path.name for bad in loaded.bad_files} == set(BAD)
    assert loaded.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]


@IGNORE_BOMB_WARNING
def test_cache_is_reused_and_invalidated_when_a_file_changes(corpus: Path, tmp_path: Path) -> None:
    items = image_files.list_images(corpus, "train")
    cache = tmp_path / "cache"
    first = image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 1 and not list(cache.glob("*.partial"))
    again = image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    np.testing.assert_array_equal(first.images, again.images)
    assert again.bad_files == first.bad_files
    write(corpus / "train" / "drawings" / "d0.png", encoded(noise(size=(9, 9)), "PNG"))
    image_cache.load_images(items, ["drawings", "neutral"], image_size=(16, 16), cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 2


@IGNORE_BOMB_WARNING
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


def test_a_file_name_that_is_not_utf8_is_listed_as_a_bad_file_not_fatal(tmp_path: Path) -> None:
    odd = tmp_path / "normal" / os.fsdecode(b"caf\xe9.png")
    odd.parent.mkdir()
    noise().save(odd)
    noise().save(tmp_path / "normal" / "plain.png")
    loaded = image_cache.load_images(image_files.list_images(tmp_path), ["normal"], image_size=(16, 16), cache_dir=tmp_path / "c",
                              progress=False)
    assert [path.name for path in loaded.paths] == ["plain.png"]
    assert [bad.path for bad in loaded.bad_files] == [odd] and "not valid UTF-8" in loaded.bad_files[0].reason
    assert "caf\\xe9.png: file name is not valid UTF-8" in str(loaded.bad_files[0]).encode("utf-8").decode()

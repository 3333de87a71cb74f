"""Specifications of io.image_files: finding image files, listing 4.4's split, and decoding them as a viewer sees them."""

from __future__ import annotations

import os
import struct
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from image_corpus import BAD_EXIF, encoded, noise, write, write_corpus
from PIL import Image

from nsfw_mobilenet.io import image_files


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """train/{neutral,drawings} with every kind of good and bad file, test/ with a leaked duplicate."""
    return write_corpus(tmp_path / "data")


# ---------------------------------------------------------------- finding files and the split


def test_list_images_skips_hidden_files_and_is_sorted(corpus: Path) -> None:
    items = image_files.list_images(corpus, "train")
    assert all(not item.path.name.startswith(".") for item in items)
    assert items == sorted(items, key=lambda item: (item.label, str(item.path)))
    assert [item.path.name for item in image_files.list_images(corpus, "test")] == ["t0.png", "leaked.jpg"]


def test_missing_test_folder_names_the_path_and_the_fix(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.png", encoded(noise(), "PNG"))
    with pytest.raises(FileNotFoundError, match="test/<class>"):
        image_files.split_files(tmp_path, "test")


def test_split_matches_keras_image_dataset_from_directory_file_for_file(tmp_path: Path) -> None:
    """Listing 4.4 (validation_split=0.2, seed=1): every image has a unique pixel value as its id."""
    import keras

    ids = {}
    for i in range(23):
        cls = ("cat", "dog", "eel")[i % 3]
        name = f".hidden{i}.png" if i == 5 else f"sub/{i}.png" if i == 7 else f"{i:02d}.png"
        ids[write(tmp_path / cls / name, encoded(Image.new("RGB", (4, 4), (i, i, i)), "PNG"))] = i
    write(tmp_path / "cat" / "readme.txt", b"not indexed by keras")
    for subset in ("training", "validation"):
        ours = [ids[item.path] for item in image_files.split_files(tmp_path, subset)]
        keras_ds = keras.utils.image_dataset_from_directory(
            tmp_path, validation_split=0.2, subset=subset, seed=1, image_size=(4, 4), batch_size=None,
            interpolation="nearest", verbose=False)
        theirs = sorted(int(image[0, 0, 0]) for image, _ in keras_ds.as_numpy_iterator())
        assert sorted(ours) == [i for i in theirs if i != 5]  # the hidden file is dropped after the split


def test_a_class_folder_with_only_hidden_or_non_image_files_is_refused_for_training(corpus: Path) -> None:
    assert image_files.training_classes(corpus) == ["drawings", "neutral"]
    write(corpus / "train" / "empty" / ".hidden.png", encoded(noise(), "PNG"))
    write(corpus / "train" / "empty" / "notes.txt", b"hello")
    with pytest.raises(image_files.EmptyClassFolder, match=f"{corpus / 'train' / 'empty'}: .*remove it"):
        image_files.training_classes(corpus)


def test_split_indexes_webp_and_tiff_which_keras_skips(tmp_path: Path) -> None:
    for i, extension in enumerate((".png", ".webp", ".tif", ".tiff", ".txt")):
        write(tmp_path / "a" / f"{i}{extension}", encoded(noise(), "PNG"))
    files = image_files.split_files(tmp_path, "training") + image_files.split_files(tmp_path, "validation")
    assert sorted(item.path.name for item in files) == ["0.png", "1.webp", "2.tif", "3.tiff"]


def test_a_class_sub_folder_that_cannot_be_read_is_refused_by_name_not_skipped(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "normal" / "locked").mkdir(parents=True)
    noise().save(tmp_path / "normal" / "a.png")
    real_scandir = os.scandir

    def permission_denied(path):  # what chmod 000 does to anyone but root, who runs these tests
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", permission_denied)
    with pytest.raises(ValueError, match=r"normal/locked: folder cannot be read \(Permission denied\)"):
        image_files.list_images(tmp_path)


# ---------------------------------------------------------------- images read as what they are


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


def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped_to_white(tmp_path):
    path = tmp_path / "depth16.png"
    Image.fromarray(np.full((64, 64), 30000, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    assert image_files.decode_image(path, (32, 32))[0, 0].tolist() == [117, 117, 117]  # 30000 / 257


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_composited_on_white_not_their_hidden_colour(tmp_path, mode):
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[..., 0] = 255  # red hidden under alpha 0 on the left half
    pixels[:, 32:, 3] = 255
    image = Image.fromarray(pixels)
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        pixels[:, 32:, :3] = (0, 0, 255)
        image = Image.fromarray(pixels[..., :3]).quantize(2)
        image.info["transparency"] = image.getpixel((0, 0))  # the left half's palette entry
    path = tmp_path / f"transparent_{mode}.png"
    image.save(path, transparency=image.info["transparency"]) if mode == "P" else image.save(path)
    decoded = image_files.decode_image(path, (64, 64))
    assert decoded[10, 5].tolist() == list(image_files.TRANSPARENT_BACKGROUND)
    assert decoded[10, 50].tolist() != list(image_files.TRANSPARENT_BACKGROUND)


def test_a_non_image_is_rejected_from_its_header(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"PK\x03\x04" + bytes(1000))
    with pytest.raises(image_files.CorruptImage, match="not an image"):
        image_files.read_image(fake)


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


# ---------------------------------------------------------------- Pillow's warnings as notes, thread by thread


def test_read_image_on_many_threads_at_once_gives_each_file_its_own_notes(tmp_path):
    paths = []
    for index in range(12):
        paths.append(tmp_path / f"{index:02d}.jpg")
        Image.new("RGB", (64, 64), (index, 20, 20)).save(paths[-1], **({"exif": BAD_EXIF} if index % 2 else {}))
    with ThreadPoolExecutor(8) as pool:
        notes = list(pool.map(lambda path: image_files.read_image(path, (32, 32)).notes, paths * 10))
    assert [bool(note) for note in notes] == [index % 2 == 1 for index in range(12)] * 10


def test_a_warning_of_another_thread_is_not_taken_as_a_note(tmp_path):
    collecting, release = threading.Event(), threading.Event()

    def notes_of_a_quiet_block():
        with image_files.pillow_warnings_as_notes() as notes:
            collecting.set()
            release.wait(timeout=10)
        return notes

    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(1) as pool:
        warnings.simplefilter("always")
        quiet = pool.submit(notes_of_a_quiet_block)
        collecting.wait(timeout=10)
        warnings.warn("raised by the main thread", UserWarning)
        release.set()
        assert quiet.result() == []
    assert [str(warning.message) for warning in caught] == ["raised by the main thread"]

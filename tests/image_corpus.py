"""Image files written at test time, good and bad, shared by the specifications of the io modules and the scan.

Nothing binary is committed: every file, odd ones included, is generated here (noise, text, crafted headers).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

RNG = np.random.default_rng(0)
BAD_EXIF = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12"  # an IFD cut short: "Corrupt EXIF data"
# The corpus holds a header claiming 1e8 pixels: Pillow warns while decoding it, the decoders report it.
IGNORE_BOMB_WARNING = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def noise(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(side: int = 100_000) -> bytes:
    """A valid PNG header claiming side x side pixels, crafted without allocating them."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + _png_chunk(b"IEND", b""))


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


GOOD = {
    "rgb.jpg": lambda: encoded(noise(), "JPEG"),
    "rgb.png": lambda: encoded(noise(), "PNG"),
    "cmyk.jpg": lambda: encoded(noise("CMYK"), "JPEG"),
    "rgba.png": lambda: encoded(noise("RGBA"), "PNG"),
    "gray.jpg": lambda: encoded(noise("L"), "JPEG"),
    "palette.png": lambda: encoded(noise("P"), "PNG", transparency=0),
}
BAD = {
    "empty.jpg": (lambda: b"", "zero bytes"),
    "truncated.jpg": (lambda: encoded(noise(size=(200, 200)), "JPEG")[:3000], "truncated JPEG"),
    "text.jpg": (lambda: b"this is a text file, not a JPEG\n", "not an image"),
    "bomb.png": (bomb_png, "decompression bomb"),  # Pillow refuses it while reading the header
    "bomb_below_2x.png": (lambda: bomb_png(10_000), "decompression bomb"),  # Pillow only warns; we refuse
    "notes.txt": (lambda: b"hello", "extension '.txt'"),
}


def write_corpus(root: Path) -> Path:
    """train/{neutral,drawings} with every kind of good and bad file, test/ with a leaked duplicate."""
    for name, make in GOOD.items():
        write(root / "train" / "neutral" / name, make())
    for name, (make, _) in BAD.items():
        write(root / "train" / "drawings" / name, make())
    for i in range(3):
        write(root / "train" / "drawings" / f"d{i}.png", encoded(noise(), "PNG"))
    write(root / "train" / "neutral" / ".DS_Store", b"\0\0")
    write(root / "test" / "neutral" / "leaked.jpg", (root / "train" / "neutral" / "rgb.jpg").read_bytes())
    write(root / "test" / "drawings" / "t0.png", encoded(noise(), "PNG"))
    return root


def shared_datasets_miniature(root: Path) -> Path:
    """A miniature ../shared/datasets: the four sources with five tiny photos per category, forty tulips (the
    open-world proxy's concept: enough for a validation split that holds some)."""
    folders = {"flower_photos": ["daisy", "dandelion", "roses", "sunflowers", "tulips"],
               "caltech101_objects": ["bonsai", "joshua_tree", "strawberry", "background_google",
                                      *(f"object_{i:02d}" for i in range(16))],
               "caltech101_faces": ["faces"], "caltech101_airplanes_motorbikes": ["airplanes", "motorbikes"]}
    for source, categories in folders.items():
        for category in categories:
            (root / source / category).mkdir(parents=True)
            for i in range(40 if category == "tulips" else 5):
                noise().save(root / source / category / f"image_{i}.jpg")
    return root

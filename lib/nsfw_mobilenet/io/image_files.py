"""Finding and decoding image files (thesis §4.1).

The thesis read ImageFolder trees with Keras (`flow_from_directory`, later
`image_dataset_from_directory`, listing 4.4): one sub-folder per class, the
class index being the alphabetical folder order. This module reads the same
layout, optionally split into `train/` and `test/` folders, and decodes every
file with Pillow, so that one corrupt image is reported and skipped instead of
crashing an epoch (`CorruptImage`, `BadFile`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from nsfw_mobilenet.core.backbones import INPUT_SHAPE

IMAGE_SIZE = INPUT_SHAPE[:2]  # §4.1: every MobileNet takes 224x224 inputs (tables 3.1-3.4)
VALIDATION_SPLIT = 0.2  # listing 4.4
SPLIT_SEED = 1  # listing 4.4
SPLIT_FOLDERS = ("train", "test")
# Extensions keras.utils.image_dataset_from_directory indexes (ALLOWLIST_FORMATS)...
KERAS_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# ...and the common photo formats Pillow also reads, which Keras would silently skip: training and scanning
# read all of them (the split equals Keras's for folders holding only Keras's formats).
IMAGE_EXTENSIONS = KERAS_IMAGE_EXTENSIONS + (".tif", ".tiff", ".webp")
MAX_IMAGE_BYTES = 256 * 2**20  # far above any photo; a bigger file is refused from its size, never read
TIFF_BITS_PER_SAMPLE = 258  # the TIFF tag declaring a 12-bit image stored in 16-bit pixels
TRANSPARENT_BACKGROUND = (255, 255, 255)  # transparent pixels are seen on white, as on a web page

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabeledImage:
    """One file and its class, the folder name it sits in."""

    path: Path
    label: str


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be used, with the reason; it is skipped, never fatal."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path)}: {self.reason} (skipped)"


def printable(path: Path | str) -> str:
    """A path as text any log or stream can write: bytes of a name that is not UTF-8 shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class CorruptImage(Exception):
    """Raised by `_decode` with the reason a file is unusable."""


# ---------------------------------------------------------------- discovery


def is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def has_split_folders(root: Path | str) -> bool:
    """Whether `root` holds `train/` (and maybe `test/`) rather than class folders."""
    return (Path(root) / "train").is_dir()


def split_folder(root: Path | str, split: str | None) -> Path:
    """The folder whose sub-folders are the classes: root/<split>/ or root/ itself."""
    root = Path(root)
    if split not in (None, *SPLIT_FOLDERS):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if not has_split_folders(root):
        if split == "test":
            raise FileNotFoundError(f"{root / 'test'}: no test folder; put test images in {root}/test/<class>/")
        return root
    class_root = root / (split or "train")
    if not class_root.is_dir():
        raise FileNotFoundError(f"{class_root}: missing split folder; expected {root}/{split}/<class>/")
    return class_root


def class_names(class_root: Path) -> list[str]:
    """Class folders in Keras order: sorted, hidden folders ignored."""
    names = sorted(p.name for p in class_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise FileNotFoundError(f"{class_root}: no class folders; expected {class_root}/<class>/<image>")
    return names


class EmptyClassFolder(ValueError):
    """A class folder without images: Keras would still make it a class that no image teaches."""


def training_classes(root: Path | str) -> list[str]:
    """The classes a model trained on `root` learns: its (train/) class folders, none of them empty.

    An empty folder once turned a binary run into a three-class model (issue 10); it is refused.
    """
    class_root = split_folder(root, "train")
    names = class_names(class_root)
    empty = [str(class_root / name) for name in names if not image_files(class_root / name)]
    if empty:
        raise EmptyClassFolder(f"{', '.join(empty)}: class folder without images ({' '.join(IMAGE_EXTENSIONS)}); "
                               "add images to it or remove it, else it becomes an extra class")
    return names


def _unreadable_folder(error: OSError) -> None:
    """`os.walk` would skip the folder in silence, and train on a dataset without its images."""
    raise ValueError(f"{error.filename}: folder cannot be read ({error.strerror}); fix its permissions or move it "
                     "out of the dataset")


def walk_files(class_dir: Path) -> Iterator[Path]:
    """Every file under `class_dir` in Keras's `iter_valid_files` order (hidden ones included); ValueError
    naming a folder that cannot be read."""
    for dirpath, _, files in sorted(os.walk(class_dir, onerror=_unreadable_folder), key=lambda walked: walked[0]):
        for name in sorted(files):
            yield Path(dirpath) / name


def list_images(root: Path | str, split: str | None = None) -> list[LabeledImage]:
    """All non-hidden files of root/<class>/ (or root/<split>/<class>/), in a fixed order.

    Every file is listed, whatever its extension, so that `validate_dataset`
    can report stray files; `split_files` keeps only image files (IMAGE_EXTENSIONS).
    """
    class_root = split_folder(root, split)
    return [
        LabeledImage(path, name)
        for name in class_names(class_root)
        for path in walk_files(class_root / name)
        if not is_hidden(path, class_root)
    ]


def image_files(folder: Path | str) -> list[Path]:
    """Every non-hidden file with an image extension under `folder`, recursively, in a fixed order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    return [path for path in walk_files(folder)
            if path.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(path, folder)]


def split_files(
    root: Path | str, subset: str, validation_split: float = VALIDATION_SPLIT, seed: int = SPLIT_SEED
) -> list[LabeledImage]:
    """The files of one subset: "training"/"validation" as listing 4.4, or the "test" folder.

    Training and validation reproduce keras.utils.image_dataset_from_directory
    (`validation_split`, `seed`, `subset`) file for file: Keras shuffles the
    whole index with `np.random.RandomState(seed)` and keeps the last
    `int(validation_split * n)` files for validation. Hidden files take part in
    that shuffle (Keras indexes them) and are dropped afterwards, so every
    other file lands where Keras puts it. Returned in Keras's shuffled order.
    TIFF and WebP files, which Keras skips, are indexed too (training reads what
    `scan` reads), so only folders holding them split differently from Keras.
    """
    if subset == "test":
        return [item for item in list_images(root, "test") if item.path.suffix.lower() in IMAGE_EXTENSIONS]
    if subset not in ("training", "validation"):
        raise ValueError(f"subset must be 'training', 'validation' or 'test', got {subset!r}")
    class_root = split_folder(root, "train")
    items = [
        LabeledImage(path, name)
        for name in class_names(class_root)
        for path in walk_files(class_root / name)
        if path.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    np.random.RandomState(seed).shuffle(items)
    num_validation = int(validation_split * len(items))
    chosen = items[len(items) - num_validation :] if subset == "validation" else items[: len(items) - num_validation]
    return [item for item in chosen if not is_hidden(item.path, class_root)]


# ---------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DecodedImage:
    """One decoded image: pixels at the requested size, its stored size and what Pillow warned about."""

    pixels: np.ndarray  # uint8 [H, W, 3] RGB
    original_size: tuple[int, int]  # (width, height) as stored, before EXIF rotation
    notes: tuple[str, ...] = ()  # e.g. corrupt EXIF data, kept with the image instead of printed


FILE_KINDS = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
              stat.S_IFBLK: "block device", stat.S_IFDIR: "folder"}


def not_regular_file(mode: int) -> str | None:
    """Why a file of this `st_mode` is not read ("not a regular file (FIFO)"): opening a FIFO or a device would
    hang or never end, and their size says nothing. None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file ({FILE_KINDS.get(stat.S_IFMT(mode), 'unknown kind')})"


def _check_size(path: Path) -> None:
    """Refuse special files, empty and oversized files from their `stat` alone, before opening them."""
    try:
        status = path.stat()
    except OSError as error:
        raise CorruptImage(f"unreadable ({error.strerror})") from None
    special, size = not_regular_file(status.st_mode), status.st_size
    if special:
        raise CorruptImage(special)
    if size == 0:
        raise CorruptImage("zero bytes")
    if size > MAX_IMAGE_BYTES:
        raise CorruptImage(f"{size / 2**20:,.0f} MiB: above the {MAX_IMAGE_BYTES // 2**20} MiB limit for one image "
                           "(not read)")


def _over_pillow_limit(error: Exception) -> str | None:
    """A PNG whose text chunks pass Pillow's safety limit is whole, not corrupt: say which limit."""
    if "MAX_TEXT" not in str(error):
        return None
    return (f"PNG text chunks over Pillow's limit of {PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MiB a chunk, "
            f"{PngImagePlugin.MAX_TEXT_MEMORY // 2**20} MiB in all (PngImagePlugin.MAX_TEXT_CHUNK, "
            f"MAX_TEXT_MEMORY): too much metadata to read safely; strip it to scan the image ({error})")


def identify(source: BinaryIO) -> Image.Image:
    """Open an image from its header (no pixel decoded yet), or raise CorruptImage with the reason."""
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise CorruptImage(f"decompression bomb: {error}") from None
    except UnidentifiedImageError:
        raise CorruptImage("not an image: Pillow cannot identify its format") from None
    except (OSError, SyntaxError, ValueError) as error:  # e.g. a JPEG cut inside its header
        raise CorruptImage(_over_pillow_limit(error) or f"truncated or corrupt header ({error})") from None
    width, height = image.size  # header only: checked before any pixel is decoded
    if width * height > (Image.MAX_IMAGE_PIXELS or math.inf):
        raise CorruptImage(f"decompression bomb: header claims {width}x{height} pixels > {Image.MAX_IMAGE_PIXELS}")
    return image


def load_pixels(image: Image.Image, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode the pixels (raising CorruptImage for truncated or corrupt data)."""
    try:
        if draft_size is not None:
            image.draft("RGB", draft_size)  # JPEG: decode at 1/2..1/8 scale, still >= target size
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        kind = "truncated" if "truncated" in str(error) else "corrupt"
        raise CorruptImage(_over_pillow_limit(error) or f"{kind} {image.format or 'image'} ({error})") from None
    return image


def bit_depth(image: Image.Image) -> int:
    """Bits per sample as the file declares them: a 12-bit TIFF is stored in 16-bit pixels holding 0..4095."""
    declared = getattr(image, "tag_v2", {}).get(TIFF_BITS_PER_SAMPLE) if image.format == "TIFF" else None
    bits = declared[0] if isinstance(declared, tuple) and declared else declared
    return int(bits) if isinstance(bits, int) and 8 < bits <= 16 else 16


def _eight_bit(image: Image.Image, bits: int = 16) -> Image.Image:
    """16-bit and 32-bit grayscale scaled from `bits` to 0..255 (converting would clip everything above 255 to
    white, and scaling 12-bit pixels as 16-bit would make them almost black)."""
    if image.mode.startswith("I;16") or (image.mode == "I" and image.getextrema()[1] > 255):
        scaled = np.asarray(image, dtype=np.float64) * 255 / (2**bits - 1)
        return Image.fromarray(scaled.round().clip(0, 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255 if values.max(initial=0) <= 1 else 1  # floats in 0..1 or already in 0..255
        return Image.fromarray((values * scale).round().clip(0, 255).astype(np.uint8))
    return image


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _to_rgb(image: Image.Image) -> Image.Image:
    """EXIF-upright RGB as a viewer shows it: CMYK, 16-bit, grayscale and palette images are converted,
    and transparent pixels are composited on `TRANSPARENT_BACKGROUND` (not the colours hidden under them)."""
    image = _eight_bit(ImageOps.exif_transpose(image), bit_depth(image))
    if _has_transparency(image):
        background = Image.new("RGBA", image.size, (*TRANSPARENT_BACKGROUND, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image if image.mode == "RGB" else image.convert("RGB")


def rgb_pixels(image: Image.Image, image_size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """uint8 [H, W, 3] of a loaded Pillow image (or animation frame), squashed to `image_size` (bilinear)."""
    resized = _to_rgb(image).resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def read_file(path: Path) -> bytes:
    _check_size(path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise CorruptImage(f"unreadable ({error.strerror})") from None


@contextlib.contextmanager
def open_image(path: Path | str) -> Iterator[Image.Image]:
    """The image of `path` opened from its header (size checked first, pixels not yet decoded).
    Raises CorruptImage."""
    path = Path(path)
    _check_size(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise CorruptImage(f"unreadable ({error.strerror})") from None
    with handle, identify(handle) as image:
        yield image


class _WarningsByThread:
    """One process-wide warnings hook, installed while any thread collects notes, that hands each warning to
    the innermost `pillow_warnings_as_notes` block of the thread that raised it (elsewhere as before).

    `warnings.catch_warnings` alone swaps process-wide state: two threads entering and leaving it out of
    order take each other's warnings and can leave the filters changed for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks = 0  # open blocks, all threads together
        self._saved: warnings.catch_warnings | None = None
        self._showwarning: Callable[..., None] = warnings.showwarning
        self._local = threading.local()  # .notes: this thread's open blocks' note lists, innermost last

    def _show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: Any = None, line: str | None = None) -> None:
        notes = getattr(self._local, "notes", None)
        if notes:
            notes[-1].append(f"{category.__name__}: {str(message).strip()}")
        else:
            self._showwarning(message, category, filename, lineno, file, line)

    @contextlib.contextmanager
    def collecting(self) -> Iterator[list[str]]:
        notes: list[str] = []
        with self._lock:
            if self._blocks == 0:
                self._saved = warnings.catch_warnings()
                self._saved.__enter__()
                warnings.simplefilter("always")  # a warning met before is still this file's note
                self._showwarning, warnings.showwarning = warnings.showwarning, self._show
            self._blocks += 1
        self._local.__dict__.setdefault("notes", []).append(notes)
        try:
            yield notes
        finally:
            self._local.notes.pop()
            with self._lock:
                self._blocks -= 1
                if self._blocks == 0:
                    self._saved.__exit__(None, None, None)  # filters and showwarning as they were
            notes[:] = dict.fromkeys(notes)


_WARNINGS_BY_THREAD = _WarningsByThread()


def pillow_warnings_as_notes() -> contextlib.AbstractContextManager[list[str]]:
    """Collect the warnings Pillow gives inside the block (corrupt EXIF data...) as notes for the image's
    row instead of stderr lines. Only this thread's: files decoded on a pool keep their own notes."""
    return _WARNINGS_BY_THREAD.collecting()


def _resized(image: Image.Image, image_size: tuple[int, int]) -> np.ndarray:
    return rgb_pixels(load_pixels(image, draft_size=(max(image_size),) * 2), image_size)


def frames_note(image: Image.Image) -> str:
    """What a still image with several frames is judged on: its first. An MPO (many phone cameras) is one photo
    plus previews or a second view; a multi-page TIFF (scans, faxes) gets no row per page."""
    try:
        count = getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError) as error:  # counting seeks through the file
        return f"frames cannot be counted ({error}); only the first was judged"
    if count <= 1:
        return ""
    if image.format == "MPO":
        return f"MPO: judged as one photo, its first image (of {count})"
    return f"{image.format} with {count} pages or frames: only page 1 was judged"


def read_image(path: Path | str, image_size: tuple[int, int] = IMAGE_SIZE) -> DecodedImage:
    """`decode_image`, with the stored size and Pillow's warnings as notes (for `scan`'s rows; any thread)."""
    with pillow_warnings_as_notes() as notes, open_image(path) as image:
        original_size = image.size
        pixels = _resized(image, image_size)
        frames = frames_note(image)
    return DecodedImage(pixels, original_size, (*notes, *filter(None, [frames])))


def decode_image(path: Path, image_size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """uint8 [H, W, 3] RGB, resized by squashing (bilinear) like image_dataset_from_directory.

    Differences from Keras, on purpose: EXIF orientation is applied (photos are
    seen upright, as a person sees them), transparent pixels are shown on white,
    16-bit images are scaled rather than clipped, any format Pillow reads is read,
    and Pillow's bilinear filter is antialiased when shrinking. Raises CorruptImage.
    Safe to call from several threads (training decodes on a pool).
    """
    with open_image(path) as image:
        return _resized(image, image_size)

def parallel_map(function: Callable, items: list, bar: tqdm) -> list:
    """`function` over `items` on a thread pool (Pillow releases the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = []
        for result in pool.map(function, items):
            results.append(result)
            bar.update()
    return results


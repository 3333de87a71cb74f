"""Dataset discovery, validation and the tf.data input pipeline (thesis §4.1).

The thesis read ImageFolder trees with Keras (`flow_from_directory`, later
`image_dataset_from_directory`, listing 4.4): one sub-folder per class, the
class index being the alphabetical folder order. This module reads the same
layout, optionally split into `train/` and `test/` folders, but checks every
file with Pillow first so that one corrupt image is reported and skipped
instead of crashing an epoch. Decoded, resized images are cached on disk as
uint8 chunks and read a batch at a time, so that training is bound neither by
JPEG decoding nor by RAM.

TensorFlow is imported only by `preprocess_for` and `make_dataset`.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import logging
import math
import os
import stat
import threading
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from nsfw_mobilenet.experiments import repo_relative
from nsfw_mobilenet.models import INPUT_SHAPE, get_backbone
from nsfw_mobilenet.standin import ensure_standin
from nsfw_mobilenet.taxonomy import taxonomy_for_classes

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_SIZE = INPUT_SHAPE[:2]  # §4.1: every MobileNet takes 224x224 inputs (tables 3.1-3.4)
BATCH_SIZE = 64  # §4.1: "we usually set to 64"
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
CACHE_CHUNK = 512  # images per cache file: a killed run loses at most one chunk
ORDERS = ("thesis", "corrected")  # augmentation after preprocess_input (listing 4.5), or before it

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
        return f"{self.path}: {self.reason} (skipped)"


class CorruptImage(Exception):
    """Raised by `_decode` with the reason a file is unusable."""


# ---------------------------------------------------------------- discovery


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def has_split_folders(root: Path | str) -> bool:
    """Whether `root` holds `train/` (and maybe `test/`) rather than class folders."""
    return (Path(root) / "train").is_dir()


def _class_root(root: Path | str, split: str | None) -> Path:
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
    class_root = _class_root(root, "train")
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


def _walk_files(class_dir: Path) -> Iterator[Path]:
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
    class_root = _class_root(root, split)
    return [
        LabeledImage(path, name)
        for name in class_names(class_root)
        for path in _walk_files(class_root / name)
        if not _is_hidden(path, class_root)
    ]


def image_files(folder: Path | str) -> list[Path]:
    """Every non-hidden file with an image extension under `folder`, recursively, in a fixed order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    return [path for path in _walk_files(folder)
            if path.suffix.lower() in IMAGE_EXTENSIONS and not _is_hidden(path, folder)]


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
    class_root = _class_root(root, "train")
    items = [
        LabeledImage(path, name)
        for name in class_names(class_root)
        for path in _walk_files(class_root / name)
        if path.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    np.random.RandomState(seed).shuffle(items)
    num_validation = int(validation_split * len(items))
    chosen = items[len(items) - num_validation :] if subset == "validation" else items[: len(items) - num_validation]
    return [item for item in chosen if not _is_hidden(item.path, class_root)]


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


def _identify(source: BinaryIO) -> Image.Image:
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


def _load_pixels(image: Image.Image, draft_size: tuple[int, int] | None = None) -> Image.Image:
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


def _read(path: Path) -> bytes:
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
    with handle, _identify(handle) as image:
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
    return rgb_pixels(_load_pixels(image, draft_size=(max(image_size),) * 2), image_size)


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


# ---------------------------------------------------------------- validation


def _taxonomy_name(classes: list[str]) -> str | None:
    try:
        return taxonomy_for_classes(classes).name
    except ValueError:
        return None


@dataclass(repr=False)  # shown as its table: the field repr would print the machine's absolute root
class DatasetReport:
    """What `validate_dataset` found; prints as a table, renders in Jupyter, saves as JSON."""

    root: Path
    splits: dict[str, dict[str, int]]  # split ("train"/"test", or "all" without split folders) -> class -> images
    classes: list[str]
    imbalance_ratio: float  # largest / smallest class of the training part (inf if a class is empty)
    duplicates: list[list[Path]] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    taxonomy: str | None = None  # "binary", "five_class" or None for other class sets

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "splits": self.splits,
            "classes": self.classes,
            "imbalance_ratio": None if math.isinf(self.imbalance_ratio) else self.imbalance_ratio,
            "duplicates": [[str(p) for p in group] for group in self.duplicates],
            "bad_files": [{"path": str(b.path), "reason": b.reason} for b in self.bad_files],
            "taxonomy": self.taxonomy,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save_json(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> DatasetReport:
        ratio = data["imbalance_ratio"]
        return cls(
            root=Path(data["root"]),
            splits=data["splits"],
            classes=data["classes"],
            imbalance_ratio=math.inf if ratio is None else ratio,
            duplicates=[[Path(p) for p in group] for group in data["duplicates"]],
            bad_files=[BadFile(Path(b["path"]), b["reason"]) for b in data["bad_files"]],
            taxonomy=data["taxonomy"],
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetReport:
        return cls.from_dict(json.loads(text))

    def _rows(self) -> list[list[str]]:
        names = list(self.splits)
        rows = [["class", *names]]
        rows += [[c, *(str(self.splits[s].get(c, 0)) for s in names)] for c in self.classes]
        rows.append(["total", *(str(sum(self.splits[s].values())) for s in names)])
        return rows

    def _summary(self) -> list[str]:
        return [
            f"imbalance ratio (max/min, training part): {self.imbalance_ratio:.2f}",
            f"exact duplicates: {len(self.duplicates)} groups",
            *("  " + " == ".join(str(p) for p in group) for group in self.duplicates),
            f"bad files: {len(self.bad_files)}",
            *(f"  {bad}" for bad in self.bad_files),
        ]

    def __str__(self) -> str:
        rows = self._rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        table = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in rows]
        header = f"Dataset {repo_relative(self.root)} (taxonomy: {self.taxonomy or 'none'})"
        return "\n".join([header, *table, *self._summary()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        header, *rows = self._rows()
        table = _html_row(header, "th") + "".join(_html_row(row, "td") for row in rows)
        summary = "<br>".join(html.escape(line) for line in self._summary())
        return (f"<b>Dataset {html.escape(repo_relative(self.root))}</b> (taxonomy: {html.escape(self.taxonomy or 'none')})"
                f"<table>{table}</table><p>{summary}</p>")


def _html_row(cells: list[str], tag: str) -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in cells) + "</tr>"


def _check_file(path: Path) -> tuple[str | None, str | None]:
    """(content hash, None) for a usable image, (None, reason) otherwise."""
    name_problem = undecodable_name(path)
    if name_problem:
        return None, name_problem
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return None, f"extension {path.suffix or '(none)'!r} is not an image format training reads {IMAGE_EXTENSIONS}"
    try:
        data = _read(path)
        _load_pixels(_identify(io.BytesIO(data)))  # `_read` refused empty and oversized files
    except CorruptImage as error:
        return None, str(error)
    return hashlib.blake2b(data, digest_size=16).hexdigest(), None


def _stray_files(root: Path) -> list[BadFile]:
    """Files beside the class folders (in the dataset root, train/ or test/): they have no class."""
    splits = [root / split for split in SPLIT_FOLDERS if (root / split).is_dir()] if has_split_folders(root) else []
    folders = [root, *splits]
    return [BadFile(path, f"not in a class folder; move it into {folder}/<class>/ or delete it")
            for folder in folders for path in sorted(folder.iterdir())
            if not path.is_dir() and not path.name.startswith(".")]


def _parallel_map(function: Callable, items: list, bar: tqdm) -> list:
    """`function` over `items` on a thread pool (Pillow releases the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = []
        for result in pool.map(function, items):
            results.append(result)
            bar.update()
    return results


def validate_dataset(root: Path | str, *, progress: bool = True) -> DatasetReport:
    """Check every file under an ImageFolder root with Pillow and count what is usable.

    Counts are of usable images; each unusable file is listed with its reason
    (zero bytes, not an image, truncated, decompression bomb, unreadable,
    not an image extension, outside any class folder). Duplicates are files with identical bytes,
    also across train/test (test leakage).
    """
    root = Path(root)
    splits = list(SPLIT_FOLDERS) if has_split_folders(root) else [None]
    splits = [s for s in splits if s != "test" or (root / "test").is_dir()]
    items = {split: list_images(root, split) for split in splits}
    everything = [item for split in splits for item in items[split]]
    with tqdm(total=len(everything), desc="validate", unit="img", disable=not progress) as bar:
        checks = dict(zip(everything, _parallel_map(lambda i: _check_file(i.path), everything, bar)))
    classes = sorted({c for split in splits for c in class_names(_class_root(root, split))})
    counts = {split or "all": {c: sum(1 for i in items[split] if i.label == c and checks[i][0]) for c in classes}
              for split in splits}
    by_hash = defaultdict(list)
    for item, (digest, _) in checks.items():
        if digest:
            by_hash[digest].append(item.path)
    train_counts = list(counts[splits[0] or "all"].values())
    return DatasetReport(
        root=root,
        splits=counts,
        classes=classes,
        imbalance_ratio=max(train_counts) / min(train_counts) if min(train_counts) else math.inf,
        duplicates=sorted(group for group in by_hash.values() if len(group) > 1),
        bad_files=_stray_files(root) + [BadFile(item.path, reason) for item, (_, reason) in checks.items() if reason],
        taxonomy=_taxonomy_name(classes),
    )


# ---------------------------------------------------------------- loading and caching


class CorruptCacheFile(ValueError):
    """A cache chunk that does not hold what its header and reasons file say (e.g. cut by a full disk)."""


@dataclass(frozen=True)
class _NpyRows:
    """Where the rows of one .npy file lie, read with plain file reads (never mapped into memory)."""

    path: Path
    offset: int  # byte where row 0 starts
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def of(cls, path: Path) -> _NpyRows:
        """The layout from the file's header alone; raises CorruptCacheFile if the data is cut short."""
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                shape, fortran_order, dtype = read_header[version](handle)
                offset = handle.tell()
        except (KeyError, ValueError, EOFError) as error:
            raise CorruptCacheFile(f"{path}: not a readable .npy file ({error}); delete it to decode again") from None
        expected = offset + math.prod(shape) * dtype.itemsize
        if fortran_order or dtype.hasobject or path.stat().st_size != expected:
            raise CorruptCacheFile(f"{path}: {path.stat().st_size} bytes, its header says {expected}; "
                                   "delete it to decode again")
        return cls(path, offset, tuple(shape), dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def read_into(self, out: np.ndarray, positions: np.ndarray, rows: np.ndarray) -> None:
        """out[positions[k]] = row rows[k] of the file."""
        row_bytes = out[0].nbytes
        with open(self.path, "rb", buffering=0) as handle:
            for position, row in zip(positions, rows):
                handle.seek(self.offset + int(row) * row_bytes)
                if handle.readinto(memoryview(out[position]).cast("B")) != row_bytes:
                    raise CorruptCacheFile(f"{self.path}: shorter than its header says; delete it to decode again")


class StoredArray:
    """A read-only array whose rows live in .npy files (the decode cache) and are read on demand.

    It indexes like an ndarray: an int, a slice or an index array gives an ndarray of those rows only,
    read with plain file reads. A memory map would do the same, but every page it touches counts in
    the process's resident memory; reads go through the page cache, which the kernel can drop. So
    training holds the batches in use, never the dataset. `np.asarray` reads every row (small sets);
    `select` and `concatenate` make views without reading. Sources may also be in-memory arrays.
    """

    def __init__(self, sources: Sequence[Path | np.ndarray | _NpyRows], source_of_row: np.ndarray | None = None,
                 row_in_source: np.ndarray | None = None):
        self._sources = [source if isinstance(source, (np.ndarray, _NpyRows)) else _NpyRows.of(Path(source))
                         for source in sources]
        layouts = {(tuple(source.shape[1:]), np.dtype(source.dtype)) for source in self._sources}
        if len(layouts) != 1:
            raise ValueError(f"sources must share one row shape and dtype, got {sorted(map(str, layouts))}")
        (self._row_shape, self._dtype), = layouts
        if source_of_row is None:
            lengths = [len(source) for source in self._sources]
            source_of_row = np.repeat(np.arange(len(lengths)), lengths)
            row_in_source = np.concatenate([np.arange(n) for n in lengths])
        self._source_of_row = np.asarray(source_of_row, np.int64)
        self._row_in_source = np.asarray(row_in_source, np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._source_of_row), *self._row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return len(self._source_of_row)

    def __repr__(self) -> str:
        files = sum(isinstance(source, _NpyRows) for source in self._sources)
        return f"StoredArray(shape={self.shape}, dtype={self._dtype}, {files} files)"

    def _positions(self, key: int | slice | Sequence | np.ndarray) -> np.ndarray:
        """The row numbers `key` picks, as ndarray indexing would (a 0-d array for one int)."""
        size = len(self)
        if isinstance(key, slice):
            return np.arange(*key.indices(size))
        positions = np.asarray(key)
        if positions.dtype == bool:
            if positions.shape != (size,):
                raise IndexError(f"boolean index of shape {positions.shape} for {size} rows")
            return np.flatnonzero(positions)
        if positions.size and not np.issubdtype(positions.dtype, np.integer):
            raise IndexError(f"only integers, slices and integer or boolean arrays index rows, got {key!r}")
        positions = positions.astype(np.int64)
        if positions.size and (positions.min() < -size or positions.max() >= size):
            raise IndexError(f"index out of range for {size} rows")
        return np.where(positions < 0, positions + size, positions)

    def _read(self, positions: np.ndarray) -> np.ndarray:
        out = np.empty((len(positions), *self._row_shape), self._dtype)
        sources, rows = self._source_of_row[positions], self._row_in_source[positions]
        for index in np.unique(sources):
            picked = np.flatnonzero(sources == index)
            source = self._sources[index]
            if isinstance(source, np.ndarray):
                out[picked] = source[rows[picked]]
            else:
                source.read_into(out, picked, rows[picked])
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # rows first, then the rest on what was read
            first, rest = key[0], key[1:]
            one_row = isinstance(first, (int, np.integer))
            return self[first][rest] if one_row else self[first][(slice(None), *rest)]
        positions = self._positions(key)
        rows = self._read(positions.reshape(-1))
        return rows[0] if positions.ndim == 0 else rows.reshape(*positions.shape, *self._row_shape)

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self), BATCH_SIZE):
            yield from self[start:start + BATCH_SIZE]

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        everything = self._read(np.arange(len(self)))
        return everything if dtype is None else everything.astype(dtype, copy=False)

    def select(self, key: Any) -> StoredArray:
        """The rows `key` picks, as a view: nothing is read."""
        positions = self._positions(key).reshape(-1)
        return StoredArray(self._sources, self._source_of_row[positions], self._row_in_source[positions])

    @classmethod
    def concatenate(cls, parts: Sequence[StoredArray | np.ndarray]) -> StoredArray:
        """The rows of every part, in order, as a view: nothing is read."""
        sources: list[np.ndarray | _NpyRows] = []
        source_of_row, row_in_source = [], []
        for part in parts:
            part = part if isinstance(part, StoredArray) else StoredArray([np.asarray(part)])
            source_of_row.append(part._source_of_row + len(sources))
            row_in_source.append(part._row_in_source)
            sources += part._sources
        return cls(sources, np.concatenate(source_of_row), np.concatenate(row_in_source))


Images = np.ndarray | StoredArray  # uint8 [N, H, W, 3], in memory or in the decode cache


def select_images(images: Images, key: Any) -> Images:
    """`images[key]`, kept in the cache (not read) when `images` is a StoredArray."""
    return images.select(key) if isinstance(images, StoredArray) else images[key]


def concatenate_images(parts: Sequence[Images]) -> Images:
    """`np.concatenate(parts)`, kept in the cache (not read) when any part is a StoredArray."""
    if any(isinstance(part, StoredArray) for part in parts):
        return StoredArray.concatenate(parts)
    return np.concatenate(parts)


@dataclass
class LoadedImages:
    """Decoded images ready for `make_dataset`; bad files were skipped and are listed."""

    images: Images  # uint8 [N, H, W, 3]: a StoredArray when loaded through a cache folder
    labels: np.ndarray  # int32 [N], index into `classes`
    paths: list[Path]
    classes: list[str]
    bad_files: list[BadFile]


def _cache_key(items: list[LabeledImage], image_size: tuple[int, int]) -> str:
    """Changes when any file is added, removed, relabelled, rewritten or the size changes."""
    digest = hashlib.sha256(repr(tuple(image_size)).encode())
    for item in items:
        status = item.path.stat()
        digest.update(os.fsencode(item.path) + f"\0{item.label}\0{status.st_mtime_ns}\0{status.st_size}\n".encode())
    return digest.hexdigest()[:32]


def undecodable_name(path: Path) -> str | None:
    """Why a file whose name is not valid UTF-8 is left out of training: results, caches and reports carry the
    names as text. None for a name that is."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return f"file name is not valid UTF-8 ({os.fsencode(path)!r}); rename it to train on it"
    return None


def _decode_or_reason(path: Path, image_size: tuple[int, int]) -> np.ndarray | str:
    name_problem = undecodable_name(path)
    if name_problem:
        return name_problem
    try:
        return decode_image(path, image_size)
    except CorruptImage as error:
        return str(error)


def _decode_chunk(paths: list[Path], image_size: tuple[int, int], bar: tqdm) -> tuple[np.ndarray, list[str]]:
    """Images of the usable files and one reason per path ("" when usable)."""
    results = _parallel_map(lambda p: _decode_or_reason(p, image_size), paths, bar)
    images = [r for r in results if isinstance(r, np.ndarray)]
    stacked = np.stack(images) if images else np.zeros((0, *image_size, 3), np.uint8)
    return stacked, [r if isinstance(r, str) else "" for r in results]


def _finished_chunk(images_file: Path, reasons_file: Path) -> tuple[_NpyRows, list[str]] | None:
    """A chunk stored by an earlier run, or None when absent or damaged (then decoded again)."""
    if not reasons_file.exists():  # written last, so its presence means the chunk is complete
        return None
    try:
        rows, reasons = _NpyRows.of(images_file), json.loads(reasons_file.read_text())
        if len(rows) != reasons.count(""):
            raise CorruptCacheFile(f"{images_file}: {len(rows)} images for {reasons.count('')} usable files")
    except (OSError, ValueError) as error:  # CorruptCacheFile and JSONDecodeError are ValueErrors
        log.warning("%s; decoding this chunk again", error)
        return None
    return rows, reasons


def _cached_chunk(paths: list[Path], labels: list[str], image_size: tuple[int, int], cache_dir: Path,
                  bar: tqdm) -> tuple[_NpyRows, list[str]]:
    """One chunk's images in `cache_dir`, decoded and stored (atomically) when absent; one reason per path."""
    stem = cache_dir / _cache_key([LabeledImage(p, lab) for p, lab in zip(paths, labels)], image_size)
    images_file, reasons_file = stem.with_suffix(".npy"), stem.with_suffix(".json")
    finished = _finished_chunk(images_file, reasons_file)
    if finished is not None:
        bar.update(len(paths))
        return finished
    images, reasons = _decode_chunk(paths, image_size, bar)
    for target, write in ((images_file, lambda f: np.save(f, images)),
                          (reasons_file, lambda f: f.write(json.dumps(reasons).encode()))):
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as handle:
            write(handle)
        os.replace(partial, target)
    return _NpyRows.of(images_file), reasons


def load_images(
    items: list[LabeledImage],
    classes: list[str],
    *,
    image_size: tuple[int, int] = IMAGE_SIZE,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> LoadedImages:
    """Decode and resize `items` once (the cache of the input pipeline).

    With `cache_dir`, decoded chunks of CACHE_CHUNK images are stored there as uint8 .npy files
    keyed by (paths, labels, mtimes, sizes, image_size) and `images` is a `StoredArray` over them:
    RAM holds one chunk while decoding and the batches in use afterwards, whatever the dataset's
    size; a re-run decodes nothing and a killed run keeps every finished chunk. Without it (a few
    images: tests, a folder of samples) `images` is one in-memory array.
    """
    unknown = {item.label for item in items} - set(classes)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in classes {classes}")
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [item.path for item in items], [item.label for item in items]
    parts, reasons = [], []
    with tqdm(total=len(items), desc="decode", unit="img", disable=not progress) as bar:
        for start in range(0, len(items), CACHE_CHUNK):
            chunk_paths, chunk_labels = paths[start:start + CACHE_CHUNK], labels[start:start + CACHE_CHUNK]
            part, chunk_reasons = (_decode_chunk(chunk_paths, image_size, bar) if cache_dir is None else
                                   _cached_chunk(chunk_paths, chunk_labels, image_size, Path(cache_dir), bar))
            parts.append(part)
            reasons += chunk_reasons
    bad_files = [BadFile(path, reason) for path, reason in zip(paths, reasons) if reason]
    for bad in bad_files:
        log.warning("%s", bad)
    kept = [i for i, reason in enumerate(reasons) if not reason]
    if not parts:
        images: Images = np.zeros((0, *image_size, 3), np.uint8)
    else:
        images = np.concatenate(parts) if cache_dir is None else StoredArray(parts)
    return LoadedImages(
        images=images,
        labels=np.array([index[labels[i]] for i in kept], dtype=np.int32),
        paths=[paths[i] for i in kept],
        classes=list(classes),
        bad_files=bad_files,
    )


def spread_evenly(items: Sequence, count: int | None) -> list:
    """`count` of `items`, evenly spaced from the first to the last (all when `count` is None or not smaller)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).astype(int)]


def load_folder(folder: Path | str, *, limit: int | None = None, image_size: tuple[int, int] = IMAGE_SIZE,
                progress: bool = False) -> LoadedImages:
    """The images under one unlabelled folder (e.g. harmless photos), labelled with the folder's name;
    `limit`: that many, spread evenly over the sorted files."""
    paths = spread_evenly(image_files(folder), limit)
    name = Path(folder).name
    return load_images([LabeledImage(path, name) for path in paths], [name], image_size=image_size,
                       progress=progress)


# ---------------------------------------------------------------- tf.data pipeline


def _unchanged(pixels: np.ndarray) -> np.ndarray:
    return pixels


def preprocess_for(backbone: str | None) -> Callable:
    """The keras.applications `preprocess_input` the thesis used for `backbone` (§4.1).

    V1 and V2 map [0, 255] to [-1, 1]; V3 rescales inside the model, so its
    preprocess_input is the identity. None: no preprocessing (a model that takes pixels).
    """
    return _unchanged if backbone is None else get_backbone(backbone).preprocess_input


def make_dataset(
    images: Images,
    labels: np.ndarray,
    num_classes: int,
    backbone: str | None,
    *,
    batch_size: int = BATCH_SIZE,
    shuffle: bool = False,
    seed: int = SPLIT_SEED,
    augmentation: Callable | None = None,
    order: str = "corrected",
) -> tf.data.Dataset:
    """Batches of (float32 images, one-hot labels) for categorical cross-entropy (listing 4.3).

    The uint8 array (or `StoredArray` on disk) is the cache: batches are gathered
    from it by index, so shuffling never copies images, no decoded float copy is
    kept and a stored dataset is read a batch at a time (float pixel arrays, or
    features of a frozen front, are gathered the same way).
    `order="thesis"` applies preprocess_input before the augmentation, as
    listing 4.5 did (V1/V2 then augment values in [-1, 1], e.g. brightness
    meant for [0, 255]); `order="corrected"` augments pixels in [0, 255] first.
    Pass `augmentation=None` for validation and test data. An augmentation with
    `with_batch_seed` (`augment.FusedAugmentation`) gets each batch's own seed: a
    stateless draw from `seed`, new each epoch, the same in every run.
    """
    import tensorflow as tf

    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    preprocess = preprocess_for(backbone)

    def augment(batch: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
        if augmentation is None:
            return batch
        if hasattr(augmentation, "with_batch_seed"):
            return augmentation.with_batch_seed(batch, batch_seed)
        return augmentation(batch, training=True)  # listing 4.5's Keras layers: stateful draws

    def preprocess_batch(batch: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
        return preprocess(batch)

    steps = (preprocess_batch, augment) if order == "thesis" else (augment, preprocess_batch)
    one_hot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    row_shape = tuple(images.shape[1:])

    def gather(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch, batch_labels = tf.numpy_function(lambda i: (images[i], one_hot[i]), [indices],
                                                (tf.as_dtype(images.dtype), tf.float32))
        batch = tf.ensure_shape(batch, (None, *row_shape))
        return batch, tf.ensure_shape(batch_labels, (None, num_classes))

    def transform(batch_seed: tf.Tensor, batch_and_labels: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        batch, batch_labels = batch_and_labels
        batch = tf.cast(batch, tf.float32)
        for step in steps:
            batch = step(batch, tf.stack([tf.constant(seed, tf.int64), batch_seed]))
        return batch, batch_labels

    dataset = tf.data.Dataset.range(len(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    # Both maps sequential: after a numpy_function (stateful) op determinism (`train.enable_determinism`) makes
    # TensorFlow run a parallel map sequentially anyway, and its rewrite writes a spurious "NodeDef mentions
    # attribute use_unbounded_threadpool" line to stderr. The prefetch still overlaps them with training.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)  # one per batch, new each epoch
    dataset = tf.data.Dataset.zip(batch_seeds, dataset.batch(batch_size).map(gather)).map(transform)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_test_split(source: Path | str, out_dir: Path | str, test_fraction: float = 0.2,
                    seed: int = SPLIT_SEED, classes: Sequence[str] | None = None) -> Path:
    """A train/ + test/ view of a dataset that has no test folder, made of symlinks (no copies).

    The thesis kept a separate test set (§4.2); a real dataset given as one ImageFolder gets a
    deterministic per-class hold-out here, so listing 4.4's split then runs on train/ only.
    `classes` keeps only those class folders (e.g. roses and tulips of flower_photos, a two-class proxy).
    """
    source, out_dir = Path(source).resolve(), Path(out_dir)
    rng = np.random.RandomState(seed)
    for name in classes or class_names(source):
        files = sorted(p for p in _walk_files(source / name) if not _is_hidden(p, source))
        test = set(rng.permutation(len(files))[: int(round(test_fraction * len(files)))])
        for i, path in enumerate(files):
            link = out_dir / ("test" if i in test else "train") / name / path.relative_to(source / name)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(path)
    return out_dir


FLOWER_TWO_CLASS_PROXY = ("roses", "tulips")  # harmless two-class proxy: roses play "normal", tulips "sexual"


def two_class_proxy(flower_photos: Path | str, out_dir: Path | str) -> Path:
    """The harmless real-photo two-class proxy: roses vs tulips of flower_photos, with a 20 % test hold-out
    (symlinks). Harder than Caltech airplanes/motorbikes, which every configuration separates."""
    return make_test_split(flower_photos, out_dir, classes=FLOWER_TWO_CLASS_PROXY)


def two_class_data(flower_photos: Path | str, proxy_dir: Path | str) -> Path:
    """The two-class data of notebooks 06–08: the roses-vs-tulips proxy, made in `proxy_dir` when the
    `flower_photos` folder exists, else the generated stand-in's binary dataset (e.g. on CI)."""
    if Path(flower_photos).is_dir():
        return two_class_proxy(flower_photos, proxy_dir)
    return ensure_standin(progress=False) / "binary"

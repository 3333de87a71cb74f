"""Scan images, folders and videos with a trained model: safe, unsafe, or human review.

The thesis's future work (§6.2) is an app that deletes what the model is sure about and asks a
person when it is not ("less than 70%"). `Detector` is that decision for app code; the
`nsfw-mobilenet scan` command runs it over files and writes one CSV or JSON-lines row per image,
per sampled video frame and per video.

Decision for an unsafe probability p (the sum over the taxonomy's unsafe classes, §5.1):
    review  if low <= p < high   (the review band; low == high disables it)
    unsafe  if p >= threshold    (outside the band)
    safe    otherwise
The threshold and band come from the model card next to the model (`operating_point`: chosen on
validation data at export) unless given; each row records the ones used.

Speed: files are decoded and resized on a pool of threads (one per CPU; Pillow releases the GIL)
while the model runs on the main thread, and rows still come out in input order. `--shard i/n`
scans one of n parts of the inputs, for a batch system to fan a corpus out (`Shard`).

Exit codes of `scan` (`exit_codes`, shared by every command):
    0  every input was read and is safe
    1  at least one input is unsafe or needs review (takes precedence over 3)
    2  usage error, or the model, its card or --output cannot be used
    3  nothing flagged, but some inputs could not be read (each one is a row, `error` or `skipped`)
    4  the rows could not be written (disk full, ...): those written before are whole
    70  internal error (a bug): one line on stderr, please report it
    130  interrupted (Ctrl-C): the rows of every finished input are written, whole
    141  stdout's reader went away (`| head`): ends quietly

Rows are whole: each is one write, a failed write is cut back, `--output` is locked while a scan
writes it and left out of the scan, and paths are written losslessly (`path_text`).

Against known truth: `scan_confusion` scores scan rows of a labelled test folder,
`false_positive_table` counts the decisions on folders of harmless photos, and `app_summary`
puts both next to an export's parity numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import itertools
import json
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
from PIL import Image

import nsfw_mobilenet
from nsfw_mobilenet import data, models
from nsfw_mobilenet.exit_codes import (EXIT_FLAGGED, EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTPUT_FAILED, EXIT_UNREADABLE,
                                       EXIT_USAGE)
from nsfw_mobilenet.inference import predict
from nsfw_mobilenet.litert import DEFAULT_THREADS, LiteRTModel, UnsupportedModel
from nsfw_mobilenet.models import check_keras_model_file
from nsfw_mobilenet.model_card import (CARD_FILE, LABELS_FILE, default_classes, operating_point_of, read_card,
                                       read_labels)
from nsfw_mobilenet.operating_point import (DECISIONS, DEFAULT_OPERATING_POINT, REVIEW, SAFE, UNSAFE, check_policy,
                                            decide, unsafe_probabilities)
from nsfw_mobilenet.taxonomy import Taxonomy, taxonomy_for_classes
from nsfw_mobilenet.video import (DEFAULT_MAX_FRAMES, VIDEO_EXTENSIONS, CorruptVideo, FrameStream, animation_frames,
                                  is_animation, video_frames, video_score)

if TYPE_CHECKING:  # export imports TensorFlow-side modules; the scanner does not need them
    from nsfw_mobilenet.export import VariantParity

ERROR, SKIPPED = "error", "skipped"
MIN_SIDE = 32  # px: below this an image carries too little to classify (a 1x1 image got "unsafe 0.71")
TFLITE_SUFFIX = ".tflite"
ROW_FIELDS = ("path", "kind", "time_s", "label", "unsafe_probability", "decision", "error", "note", "threshold",
              "review_low", "review_high")
DECODE_AHEAD = 4  # files decoded ahead per decoding thread: the model never waits for one, memory stays bounded
FRAMES_AT_ONCE = 32  # video or animation frames held at once: a 5,000-frame GIF costs what a short one does
PATH_ESCAPING = ("UTF-8; a byte of the name that is not UTF-8 is written \\xNN (two hex digits) and a backslash "
                 "\\\\, in CSV and JSON lines alike (`path_bytes` reverses it)")
# LiteRT threads of the `scan` command: the decoding threads keep every core busy, and a second LiteRT thread
# costs almost twice the CPU per image at batch 1 (XNNPACK's workers wait spinning), time the decoders need.
SCAN_MODEL_THREADS = 1
SHARD_FORM = "takes i/n with 0 <= i < n, e.g. 0/4 for the first of four parts"
Entry = tuple[Path, str | None, str]  # what `find_inputs` yields: (path, problem, decision if a problem)


class ModelError(Exception):
    """The model file cannot be used; the message says what to pass instead."""


class OutputError(Exception):
    """The rows could not be written (disk full...): the message names the output; the rows before are whole."""


@dataclass(frozen=True)
class Verdict:
    """The detector's answer for one image."""

    label: str
    unsafe_probability: float
    decision: str  # "safe" | "review" | "unsafe"
    probabilities: dict[str, float] = field(default_factory=dict)


class Detector:
    """A trained classifier (.keras or .tflite) plus the safe/review/unsafe policy.

    `.tflite` files from `export` take raw pixels and carry their labels, and their model card the
    threshold and review band chosen on validation data: those are used unless `threshold` or
    `review_band` are given (§6.2's defaults without a card). A Keras model takes preprocessed
    pixels, so give its `backbone` (the name) unless a model card next to the file names it.
    """

    def __init__(self, model: Any, *, classes: Sequence[str] | None = None, backbone: str | None = None,
                 threshold: float | None = None, review_band: tuple[float, float] | None = None,
                 num_threads: int = DEFAULT_THREADS):
        path = None if hasattr(model, "predict") else Path(model)
        if path is not None and not path.is_file():
            raise ModelError(f"{path}: no such model file")
        self._set_policy(read_card(path) if path is not None else None, threshold, review_band)
        if path is not None and path.suffix == TFLITE_SUFFIX:
            self._runner = self._load_tflite(path, num_threads)
        else:
            self._runner = self._load_keras(model if path is None else path, path, backbone)
        self.classes = self._classes(classes, path)
        if len(self.classes) != self.num_outputs:
            raise ModelError(f"{path or 'model'}: {self.num_outputs} outputs but classes {self.classes}")
        try:
            self.taxonomy: Taxonomy = taxonomy_for_classes(self.classes)
        except ValueError as error:
            raise ModelError(f"{path or 'model'}: {error}") from None
        self._unsafe = self.taxonomy.unsafe_indices()

    def _classes(self, classes: Sequence[str] | None, path: Path | None) -> list[str]:
        """Given classes, else the exported file's labels (required for .tflite: never a silent guess), else
        a Keras model's thesis taxonomy by its number of outputs."""
        labels = classes or (path and read_labels(path))
        if labels:
            return list(labels)
        if path is not None and path.suffix == TFLITE_SUFFIX:
            raise ModelError(f"{path}: no class names: {LABELS_FILE} next to it is missing or empty and no "
                             f"{CARD_FILE} names them; pass --classes in output order")
        try:
            return default_classes(self.num_outputs)
        except ValueError as error:
            raise ModelError(f"{path or 'model'}: {error} (--classes)") from None

    def _set_policy(self, card: dict[str, Any] | None, threshold: float | None,
                    review_band: tuple[float, float] | None) -> None:
        point = operating_point_of(card)
        self.threshold = point.threshold if threshold is None else threshold
        self.review_band = point.review_band if review_band is None else tuple(review_band)
        try:
            check_policy(self.threshold, self.review_band)
        except ValueError as error:
            source = "the model card's operating point" if card else "the default policy"
            raise ValueError(f"{error}; {source} is threshold {point.threshold:.6g}, review band "
                             f"{list(point.review_band)}: give both --threshold and --review-band") from None

    def policy_columns(self) -> dict[str, float]:
        """The threshold and band every row records."""
        return {"threshold": self.threshold, "review_low": self.review_band[0], "review_high": self.review_band[1]}

    def _load_tflite(self, path: Path, num_threads: int) -> Callable[[np.ndarray], np.ndarray]:
        try:
            lite = LiteRTModel(path, num_threads=num_threads)
        except UnsupportedModel as error:
            raise ModelError(str(error)) from None
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{path}: not a TFLite model LiteRT can load ({error})") from None
        self.image_size, self.num_outputs = lite.image_size, lite.num_classes
        return lite.predict

    def _load_keras(self, model: Any, path: Path | None, backbone: str | None) -> Callable[[np.ndarray], np.ndarray]:
        if path is not None:
            try:
                check_keras_model_file(path)
            except ValueError as error:
                raise ModelError(f"{error} (or a {TFLITE_SUFFIX} from `export`)") from None
        nsfw_mobilenet.import_tensorflow_quietly()  # its native start-up lines are not our messages
        import keras

        if path is not None:
            try:
                with nsfw_mobilenet.native_stderr_discarded():  # device set-up lines ("failed call to cuInit")
                    model = keras.models.load_model(path, compile=False)
                    model.predict(np.zeros((1, *model.input_shape[1:])), verbose=0)
            except Exception as error:  # Keras raises many types for a bad file
                raise ModelError(f"{path}: Keras cannot load it ({error})") from None
            if backbone is None:
                backbone = (read_card(path) or {}).get("backbone")
        if backbone is None:
            raise ModelError(f"{path or 'Keras model'}: its preprocessing is unknown; pass the backbone "
                             "(--backbone mobilenet_v3_small, or backbone=...)")
        models.get_backbone(backbone)  # an unknown name fails here, not at the first image
        self.image_size = tuple(int(s) for s in model.input_shape[1:3])
        self.num_outputs = int(model.output_shape[-1])
        return lambda images: predict(model, images, backbone)

    # ------------------------------------------------------------ classification

    def read(self, path: Path | str) -> data.DecodedImage:
        """A file decoded at the model's size like the training data, with Pillow's notes; CorruptImage when
        it cannot be read or is too small to classify."""
        decoded = data.read_image(path, self.image_size)
        _refuse_too_small(*decoded.original_size)
        return decoded

    def pixels(self, image: np.ndarray | Path | str) -> np.ndarray:
        """uint8 [H, W, 3] at the model's size, from a file (`read`) or an RGB array of any size."""
        if isinstance(image, (str, Path)):
            return self.read(image).pixels
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
        return data.rgb_pixels(Image.fromarray(image.astype(np.uint8)), self.image_size)

    def verdicts(self, images: np.ndarray) -> list[Verdict]:
        """One verdict per uint8 image of the model's size (e.g. video frames)."""
        probabilities = self._runner(np.asarray(images, dtype=np.uint8)) if len(images) else []
        return [self._verdict(row) for row in probabilities]

    def classify(self, image: np.ndarray | Path | str) -> Verdict:
        """The verdict for one image (array of any size, or a file path)."""
        return self.verdicts(self.pixels(image)[None])[0]

    def _verdict(self, probabilities: np.ndarray) -> Verdict:
        unsafe = float(np.clip(unsafe_probabilities(probabilities[None], self._unsafe)[0], 0.0, 1.0))
        return Verdict(label=self.classes[int(np.argmax(probabilities))], unsafe_probability=unsafe,
                       decision=decide(unsafe, self.threshold, self.review_band),
                       probabilities={c: float(p) for c, p in zip(self.classes, probabilities)})


# ---------------------------------------------------------------- scanning files


def _refuse_too_small(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise data.CorruptImage(f"too small to classify: {width}x{height} pixels (the minimum side is {MIN_SIDE})")


def _os_problem(path: Path, error: OSError) -> str:
    """Why `path` cannot be listed or read, from the error the system gave."""
    if error.errno == errno.ENAMETOOLONG:
        return f"path too long for the system ({len(os.fsencode(path))} bytes; {error.strerror})"
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno == errno.ENOENT:
        return "broken symbolic link" if os.path.islink(path) else "no such file or folder"
    return f"cannot be read ({error.strerror})"


def _file_entry(path: Path) -> Entry:
    """A file to classify, or why not, from `stat` alone: a FIFO, socket or device is never opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return path, _os_problem(path, error), ERROR
    special = data.not_regular_file(mode)
    return (path, special, SKIPPED) if special else (path, None, "")


def _folder_entries(folder: Path) -> Iterator[Entry]:
    """Every non-hidden entry under `folder`, recursively and sorted (linked folders, files, then sub-folders):
    (path, problem, decision if a problem). A folder that cannot be listed is an entry with the reason."""
    pending = [folder]  # a stack, not recursion: a chain of a thousand folders is a valid tree
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                children = sorted((c for c in listing if not c.name.startswith(".")), key=lambda c: c.name)
        except OSError as error:
            yield current, f"folder {_os_problem(current, error)}", ERROR
            continue
        files, folders = [], []
        for child in children:
            path = Path(child.path)
            try:
                if child.is_dir(follow_symlinks=False):
                    folders.append(path)
                elif child.is_symlink() and child.is_dir():
                    yield path, "symbolic link to a folder (not followed)", SKIPPED
                else:
                    files.append(path)
            except OSError:
                files.append(path)  # `_file_entry` says why
        yield from map(_file_entry, files)
        pending += reversed(folders)


def _entries(given: Path) -> list[Entry]:
    if os.path.isdir(given):
        return list(_folder_entries(given)) or [(given, "empty folder (no files)", ERROR)]
    return [_file_entry(given)]


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count` of a scan (0 <= index < count), so that a job array, Kubernetes jobs, Beam or Ray
    can fan one corpus out. Every input falls in exactly one part, chosen by a stable hash of its path relative
    to the folder given (a file given by itself: its path as given): adding or removing files never moves the
    others to another part, and the parts do not depend on where the corpus is mounted."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"--shard {self.index}/{self.count}: {SHARD_FORM}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """"i/n", e.g. "0/4"; ValueError naming the expected form otherwise."""
        match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if match is None:
            raise ValueError(f"--shard {text!r}: {SHARD_FORM}")
        return cls(int(match[1]), int(match[2]))

    def holds(self, key: str) -> bool:
        """Whether the input with this key (see the class docstring) is in this part."""
        digest = hashlib.sha256(os.fsencode(key)).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


def _shard_key(path: Path, given: Path) -> str:
    return path.relative_to(given).as_posix() if path != given else given.as_posix()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def find_inputs(paths: Iterable[Path | str], shard: Shard | None = None,
                exclude: Path | None = None) -> Iterator[Entry]:
    """(path, None, "") for every file to classify under `paths`, or (path, reason, decision) when it cannot be:
    every non-hidden file gets an answer, whatever its type. Folders are walked recursively (hidden
    entries skipped, linked folders reported, not followed). With `shard`, only the inputs of that part;
    `exclude`: a file left out wherever it is met (the scan's own `--output`)."""
    excluded = _identity(exclude) if exclude is not None else None
    for given in map(Path, paths):
        for entry in _entries(given):
            if excluded and entry[0].name == exclude.name and _identity(entry[0]) == excluded:
                continue
            if shard is None or shard.holds(_shard_key(entry[0], given)):
                yield entry


def path_text(path: Path | str) -> str:
    """A path as rows write it (PATH_ESCAPING): lossless for any name the file system holds, where a file name
    that is not UTF-8 would otherwise stop the CSV at that file."""
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def path_bytes(text: str) -> bytes:
    """The file name `path_text` wrote, as the bytes the file system holds (`os.fsdecode` makes it a Path)."""
    parts = re.split(r"\\(\\|x[0-9a-f]{2})", text)  # plain text and escapes alternate
    return b"".join(part.encode() if i % 2 == 0 else b"\\" if part == "\\" else bytes([int(part[1:], 16)])
                    for i, part in enumerate(parts))


def _row(path: Path, kind: str, verdict: Verdict | None = None, time_s: float | None = None,
         unsafe_probability: float | None = None, decision: str | None = None, error: str = "",
         note: str = "") -> dict[str, Any]:
    return {
        "path": path_text(path), "kind": kind, "time_s": time_s,
        "label": verdict.label if verdict else None,
        "unsafe_probability": verdict.unsafe_probability if verdict else unsafe_probability,
        "decision": decision if decision == SKIPPED else ERROR if error else (verdict.decision if verdict else decision),
        "error": error, "note": note,
        "probabilities": verdict.probabilities if verdict else {},
    }


@dataclass(frozen=True)
class DecodedInput:
    """One input ready for the model: its frames at the model's size (one for a still image), or why it has none."""

    path: Path
    kind: str  # "image" | "animation" | "video" | "input" (a problem found before reading: missing, link...)
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.uint8))  # uint8 [1, H, W, 3]
    stream: FrameStream | None = None  # a video's or animation's frames, decoded as the model takes them
    note: str = ""
    error: str = ""
    decision: str = ""  # with `error`: ERROR, or SKIPPED for what is deliberately not read


def _joined_notes(*notes: str) -> str:
    return "; ".join(dict.fromkeys(filter(None, notes)))


def _decoded_image_file(detector: Detector, path: Path, fps: float, max_frames: int | None) -> DecodedInput:
    if is_animation(path):
        stream = animation_frames(path, fps=fps, max_frames=max_frames, image_size=detector.image_size)
        return DecodedInput(path, "animation", stream=stream)
    decoded = detector.read(path)
    return DecodedInput(path, "image", decoded.pixels[None], note=_joined_notes(*decoded.notes))


def decode_input(detector: Detector, path: Path, *, fps: float = 1.0,
                 max_frames: int | None = DEFAULT_MAX_FRAMES) -> DecodedInput:
    """An image at `detector`'s input size, or a video's or animation's frame stream (decoded when the model
    takes its frames); an unreadable file gives its error, never an exception.

    Images may be decoded on any thread (Pillow's warnings become this file's `note`); videos on one thread
    at a time, because FFmpeg is silenced by redirecting the whole process's stderr (`video`).
    """
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        try:
            stream = video_frames(path, fps=fps, max_frames=max_frames, image_size=detector.image_size)
        except CorruptVideo as error:
            return DecodedInput(path, "video", error=error.reason)
        return DecodedInput(path, "video", stream=stream)
    try:
        with data.pillow_warnings_as_notes() as notes:  # e.g. corrupt EXIF, met while checking for frames
            decoded = _decoded_image_file(detector, path, fps, max_frames)
    except data.CorruptImage as error:
        unknown = path.suffix.lower() not in data.IMAGE_EXTENSIONS and str(error).startswith("not an image")
        return DecodedInput(path, "image", error="not an image or video" if unknown else str(error))
    return replace(decoded, note=_joined_notes(decoded.note, *notes))


def _decoded(detector: Detector, entry: Entry, fps: float, max_frames: int | None) -> DecodedInput:
    path, problem, decision = entry
    if problem:
        return DecodedInput(path, "input", error=problem, decision=decision)
    return decode_input(detector, path, fps=fps, max_frames=max_frames)


def _decodes_on_the_pool(entry: Entry) -> bool:
    path, problem, _ = entry
    return not problem and path.suffix.lower() not in VIDEO_EXTENSIONS


def default_decode_threads() -> int:
    """One decoding thread per CPU this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _decoded_in_order(detector: Detector, inputs: Sequence[Entry], decode_threads: int, fps: float,
                      max_frames: int | None) -> Iterator[DecodedInput]:
    """Every input decoded, in input order whatever the threads' timing. Images and animations are decoded
    ahead on `decode_threads` threads (Pillow releases the GIL), at most DECODE_AHEAD per thread; videos
    here, when their turn comes (see `decode_input`)."""
    pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="scan-decode")
    waiting: deque[Future[DecodedInput] | Entry] = deque()
    remaining = iter(inputs)

    def queue_next() -> None:
        entry = next(remaining, None)
        if entry is not None:
            waiting.append(pool.submit(_decoded, detector, entry, fps, max_frames) if _decodes_on_the_pool(entry)
                           else entry)

    try:
        for _ in range(decode_threads * DECODE_AHEAD):
            queue_next()
        while waiting:
            head = waiting.popleft()
            queue_next()
            yield head.result() if isinstance(head, Future) else _decoded(detector, head, fps, max_frames)
    finally:  # Ctrl-C or an abandoned scan: drop what is queued; running decodes end on their own
        pool.shutdown(wait=False, cancel_futures=True)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _frame_rows(detector: Detector, decoded: DecodedInput, unsafe_frames: int) -> list[dict[str, Any]]:
    """One row per sampled frame, then the file's verdict: its k-th most unsafe frame (k = 1: any unsafe frame).
    The frames are decoded FRAMES_AT_ONCE at a time, classified and dropped."""
    frame_rows: list[dict[str, Any]] = []
    with data.pillow_warnings_as_notes() as notes:
        try:
            for batch in _batches(decoded.stream, FRAMES_AT_ONCE):
                verdicts = detector.verdicts(np.stack([frame for _, frame in batch]))
                frame_rows += [_row(decoded.path, "frame", v, time_s=round(float(time), 3))
                               for v, (time, _) in zip(verdicts, batch)]
        except (CorruptVideo, data.CorruptImage) as error:
            return [_row(decoded.path, decoded.kind, error=getattr(error, "reason", str(error)))]
    score = video_score([row["unsafe_probability"] for row in frame_rows], unsafe_frames)
    note = _joined_notes(decoded.note, decoded.stream.note, *notes)
    return frame_rows + [_row(decoded.path, decoded.kind, unsafe_probability=score, note=note,
                              decision=decide(score, detector.threshold, detector.review_band))]


def _rows(detector: Detector, decoded: DecodedInput, unsafe_frames: int) -> list[dict[str, Any]]:
    """An image row; or frame rows and one video or animation row; or one error (or skipped) row."""
    if decoded.error:
        return [_row(decoded.path, decoded.kind, error=decoded.error, decision=decoded.decision)]
    if decoded.kind == "image":
        return [_row(decoded.path, "image", detector.verdicts(decoded.frames)[0], note=decoded.note)]
    return _frame_rows(detector, decoded, unsafe_frames)


def scan_inputs(detector: Detector, inputs: Sequence[Entry], *, fps: float = 1.0,
                max_frames: int | None = DEFAULT_MAX_FRAMES,
                unsafe_frames: int = 1, progress: bool = True,
                decode_threads: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The rows of each of `inputs` (from `find_inputs`), one list per input, in order; problems are
    error or skipped rows (and a line on stderr), never exceptions. Files are decoded ahead on
    `decode_threads` threads (default: one per CPU) while the model classifies."""
    from tqdm import tqdm

    threads = decode_threads or default_decode_threads()
    with tqdm(total=len(inputs), desc="scan", unit="file", disable=not progress, file=sys.stderr) as bar:
        for decoded in _decoded_in_order(detector, inputs, threads, fps, max_frames):
            rows = _rows(detector, decoded, unsafe_frames)
            for row in rows:
                row.update(detector.policy_columns())
                if row["error"]:
                    bar.write(f"{row['path']}: {row['error']} ({row['decision']})", file=sys.stderr)
            bar.update()
            yield rows


def scan(detector: Detector, paths: Iterable[Path | str], *, shard: Shard | None = None,
         **options: Any) -> Iterator[dict[str, Any]]:
    """Rows for every input under `paths` (`shard`: only that part; `scan_inputs` options); bad inputs become
    error rows."""
    with contextlib.closing(scan_inputs(detector, list(find_inputs(paths, shard)), **options)) as scanned:
        for rows in scanned:
            yield from rows


def exit_code(rows: Iterable[dict[str, Any]]) -> int:
    """Flagged content (unsafe or review) outranks unreadable inputs; see the module docstring."""
    decisions = {row["decision"] for row in rows if row["kind"] != "frame"}
    if decisions & {UNSAFE, REVIEW}:
        return EXIT_FLAGGED
    return EXIT_UNREADABLE if decisions & {ERROR, SKIPPED} else EXIT_OK


class RowWriter:
    """CSV (fixed columns: ROW_FIELDS, then one `p_<class>` per class) or JSON lines, each row one `write` of
    `output` (a `RowOutput`, or any text stream)."""

    def __init__(self, output: RowOutput | TextIO, output_format: str, classes: Sequence[str]):
        self.output, self.format, self.classes = output, output_format, list(classes)
        self.columns = [*ROW_FIELDS, *(f"p_{c}" for c in classes)]
        if output_format == "csv":
            self.output.write(self._csv_line(dict(zip(self.columns, self.columns))))

    def _csv_line(self, values: Mapping[str, Any]) -> str:
        line = io.StringIO()
        csv.DictWriter(line, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n").writerow(values)
        return line.getvalue()

    def write(self, row: dict[str, Any]) -> None:
        if self.format == "jsonl":
            self.output.write(json.dumps(row) + "\n")
            return
        flat = {k: ("" if v is None else v) for k, v in row.items()}
        flat.update({f"p_{c}": row["probabilities"].get(c, "") for c in self.classes})
        self.output.write(self._csv_line(flat))


def _locked_output(path: Path) -> int:
    """`path` opened for writing (its missing folders created) once no other scan writes it, then emptied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ValueError(f"--output {path}: another scan is writing it; wait for it to end or choose another file")
    if data.not_regular_file(os.fstat(descriptor).st_mode) is None:
        os.ftruncate(descriptor, 0)
    return descriptor


class RowOutput:
    """Where `scan` writes: `path` (locked while this scan writes it, so two scans never interleave in one file)
    or stdout. Each `write` puts a whole row or nothing: a failed write (disk full) is cut back to the rows
    before it and raises OutputError; a closed pipe raises BrokenPipeError, for the command line to end quietly."""

    def __init__(self, path: Path | None = None):
        self.name, self._stream = str(path or "stdout"), None
        if path is not None:
            self._descriptor: int | None = _locked_output(path)
            return
        sys.stdout.flush()
        try:
            self._descriptor = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # stdout replaced by a text buffer (tests, notebooks)
            self._descriptor, self._stream = None, sys.stdout

    def write(self, text: str) -> None:
        encoded = text.encode("utf-8", "backslashreplace")
        if self._descriptor is None:
            self._stream.write(encoded.decode())
            self._stream.flush()
            return
        start = self._position()
        try:
            remaining = memoryview(encoded)
            while remaining:
                remaining = remaining[os.write(self._descriptor, remaining):]
        except BrokenPipeError:
            raise
        except OSError as error:
            if start is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._descriptor, start)
                    os.lseek(self._descriptor, start, os.SEEK_SET)
            raise OutputError(f"{self.name}: cannot write ({error.strerror}); the rows before it are whole") from None

    def _position(self) -> int | None:
        """Where the next row starts, None for a pipe or terminal (nothing to cut back)."""
        try:
            return os.lseek(self._descriptor, 0, os.SEEK_CUR)
        except OSError:
            return None

    def close(self) -> None:
        if self._stream is None and self.name != "stdout":
            os.close(self._descriptor)


# ---------------------------------------------------------------- scan results against known truth


@dataclass(frozen=True)
class ScanConfusion:
    """Scan rows of a labelled test folder against its class folders."""

    labels: list[str]  # one per class: "normal", or "roses (normal)" for a proxy's folder
    matrix: list[list[int]]  # true class folder in rows, predicted label in columns
    decisions: list[list[int]]  # true class folder in rows, DECISIONS (safe, review, unsafe) in columns
    unreadable: int

    @property
    def images(self) -> int:
        """Readable images scored."""
        return int(np.sum(self.matrix))

    @property
    def accuracy(self) -> float:
        return float(np.trace(np.asarray(self.matrix)) / self.images) if self.images else float("nan")


def scan_confusion(rows: Iterable[Mapping[str, Any]], root: Path | str, classes: Sequence[str]) -> ScanConfusion:
    """The confusion matrix of `nsfw-mobilenet scan` rows (CSV or JSON lines) over an ImageFolder `root`.

    A row's true class is its class folder under `root` (give `root` as it was given to `scan`).
    Folders are matched to the model's `classes` by position, as in training (both in Keras folder
    order), so a proxy's folders (roses, tulips) count as the classes they play (normal, sexual).
    Unreadable files are counted, not scored; video and animation rows are ignored.
    """
    root, classes = Path(root), list(classes)
    folders = data.class_names(root)
    if len(folders) != len(classes):
        raise ValueError(f"{root}: {len(folders)} class folders {folders} but the model has classes {classes}")
    matrix = np.zeros((len(classes), len(classes)), int)
    decisions = np.zeros((len(classes), len(DECISIONS)), int)
    unreadable = 0
    for row in rows:
        if row["kind"] not in ("image", "input"):
            continue
        if row["decision"] in (ERROR, SKIPPED):
            unreadable += 1
            continue
        true = folders.index(Path(os.fsdecode(path_bytes(row["path"]))).relative_to(root).parts[0])
        matrix[true, classes.index(row["label"])] += 1
        decisions[true, DECISIONS.index(row["decision"])] += 1
    labels = [c if f == c else f"{f} ({c})" for f, c in zip(folders, classes)]
    return ScanConfusion(labels, matrix.tolist(), decisions.tolist(), unreadable)


def decisions_by_side(confusion: ScanConfusion, classes: Sequence[str]) -> dict[str, dict[str, int]]:
    """The scan's decisions summed over the safe and over the unsafe true classes: the form of a model card's
    `operating_point.test.decisions`, so a scan of the test folder can be checked against its card."""
    unsafe = set(taxonomy_for_classes(list(classes)).unsafe_indices())
    return {side: {decision: sum(row[column] for i, row in enumerate(confusion.decisions) if (i in unsafe) == is_unsafe)
                   for column, decision in enumerate(DECISIONS)}
            for side, is_unsafe in ((SAFE, False), (UNSAFE, True))}


@dataclass(frozen=True)
class DecisionCounts:
    """How a detector decided on one folder of images; on harmless photos every flag is a false positive."""

    folder: str
    images: int  # readable images
    safe: int
    review: int
    unsafe: int
    unreadable: int

    def share(self, *decisions: str) -> float:
        """Share of the readable images that got any of `decisions`."""
        return sum(getattr(self, d) for d in decisions) / self.images if self.images else float("nan")


def decision_counts(detector: Detector, folder: Path | str, limit: int | None = None) -> DecisionCounts:
    """Run `detector` over the images under `folder` (recursively; `limit`: that many, spread evenly)."""
    folder = Path(folder)
    images = data.spread_evenly(data.image_files(folder), limit)
    decided = [row["decision"] for row in scan(detector, images, progress=False)]
    counts = {decision: decided.count(decision) for decision in DECISIONS}
    return DecisionCounts(folder.name, sum(counts.values()), unreadable=decided.count(ERROR), **counts)


def false_positive_table(detector: Detector, folders: Iterable[Path | str], limit: int | None = None) -> Any:
    """One row per folder of harmless photos: images, decisions and the shares flagged unsafe (the app
    acts alone) or sent to review (a person looks) — the false-positive rate users complain about."""
    import pandas as pd

    columns = ["folder", "images", UNSAFE, REVIEW, SAFE, "unreadable", "unsafe share", "review share", "flagged share"]
    counted = [decision_counts(detector, folder, limit) for folder in folders]
    rows = [[c.folder, c.images, c.unsafe, c.review, c.safe, c.unreadable,
             c.share(UNSAFE), c.share(REVIEW), c.share(UNSAFE, REVIEW)] for c in counted]
    return pd.DataFrame(rows, columns=columns).set_index("folder")


def app_summary(detector: Detector, parity: Sequence[VariantParity], test_dir: Path | str,
                benign_dirs: Iterable[Path | str] = (), limit: int | None = None) -> Any:
    """One exported model as the §6.2 app would see it, a column of notebook 07's head comparison:
    Keras and int8 test accuracy and int8-vs-float32 agreement (from `parity`), the share of `test_dir`
    decided without a person, and the decision shares on each folder of harmless photos.

    `detector` runs the int8 model with the policy to judge; `limit` caps the images per folder.
    """
    import pandas as pd

    int8 = next(row for row in parity if row.variant == "int8")
    test = decision_counts(detector, test_dir, limit)
    summary = {"Keras test accuracy": int8.keras_accuracy, "int8 test accuracy": int8.accuracy,
               "int8 vs float32 top-1 agreement": int8.float32_agreement,
               "test images decided automatically": test.share(SAFE, UNSAFE),
               "test images sent to review": test.share(REVIEW)}
    for folder in benign_dirs:
        counts = decision_counts(detector, folder, limit)
        summary.update({f"{counts.folder}: {decision}": counts.share(decision) for decision in (UNSAFE, REVIEW, SAFE)})
    return pd.Series(summary)


# ---------------------------------------------------------------- command line


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan", help="classify images, folders and videos as safe / review / unsafe",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="images, folders (recursive) or videos")
    parser.add_argument("--model", required=True, type=Path, help=".tflite (from `export`) or .keras model")
    parser.add_argument("--backbone", help="preprocessing of a .keras model, e.g. mobilenet_v3_small")
    parser.add_argument("--classes", nargs="+", help="class names in output order (default: labels.txt next to the model)")
    parser.add_argument("--threshold", type=float,
                        help="unsafe when the unsafe probability is at least this (default: the model card's, "
                             f"else {DEFAULT_OPERATING_POINT.threshold})")
    parser.add_argument("--review-band", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="unsafe probabilities in [LOW, HIGH) go to human review, §6.2 (default: the model "
                             f"card's, else {list(DEFAULT_OPERATING_POINT.review_band)}; equal values disable it)")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--output", type=Path,
                        help="write rows to this file (folders created, locked while written, left out of the scan) "
                             f"instead of stdout; paths are {PATH_ESCAPING}")
    parser.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second (default 1)")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                        help="at most this many sampled frames per video or animation, which bounds its time; the "
                             "row's note says when it was reached (default %(default)s)")
    parser.add_argument("--unsafe-frames", type=int, default=1,
                        help="a video is judged by its k-th most unsafe frame (default 1)")
    parser.add_argument("--threads", type=int, default=SCAN_MODEL_THREADS,
                        help="LiteRT threads (default %(default)s: the decoding threads use the other cores)")
    parser.add_argument("--decode-threads", type=int, default=default_decode_threads(),
                        help="threads decoding files ahead of the model (default: one per CPU, here %(default)s)")
    parser.add_argument("--shard", metavar="I/N",
                        help="scan only part I of N (0 <= I < N) of the inputs, chosen by a stable hash of each "
                             "file's path relative to the folder given: the N parts together are the whole scan")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Usage errors, found before the model is loaded, so that the message names the real culprit."""
    if args.fps <= 0 or args.unsafe_frames < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise ValueError("--fps must be positive, --unsafe-frames and --max-frames at least 1")
    for option, threads in (("--threads", args.threads), ("--decode-threads", args.decode_threads)):
        if threads < 1:
            raise ValueError(f"{option} must be at least 1, got {threads}")
    if args.output is not None:
        _check_output(args.output, args.paths)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return os.path.abspath(first) == os.path.abspath(second)


def _check_output(output: Path, paths: Sequence[Path]) -> None:
    """Refuse an --output that would destroy an input before it is read; found before anything is opened."""
    if os.path.isdir(output):
        raise ValueError(f"--output {output} is a folder; give the name of the file to write")
    media = output.suffix.lower() in (*data.IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS) and output.exists()
    for given in paths:
        inside = os.path.isdir(given) and os.path.realpath(output).startswith(os.path.realpath(given) + os.sep)
        if _same_file(output, given) or (media and inside):
            raise ValueError(f"--output {output} is one of the inputs ({given}): writing the rows there would "
                             "destroy it before it is read; write them to another file")


def _error(message: Any, code: int) -> int:
    print(f"nsfw-mobilenet scan: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        _check_options(args)
        shard = Shard.parse(args.shard) if args.shard is not None else None
        detector = Detector(args.model, classes=args.classes, backbone=args.backbone,
                            threshold=args.threshold, review_band=args.review_band and tuple(args.review_band),
                            num_threads=args.threads)
        output = RowOutput(args.output)
    except (ModelError, ValueError, OSError) as error:
        return _error(error, EXIT_USAGE)
    inputs, judged, finished = list(find_inputs(args.paths, shard, exclude=args.output)), [], 0
    scanned = scan_inputs(detector, inputs, fps=args.fps, max_frames=args.max_frames, unsafe_frames=args.unsafe_frames,
                          progress=not args.quiet, decode_threads=args.decode_threads)
    try:
        writer = RowWriter(output, args.format, detector.classes)
        with contextlib.closing(scanned):  # the decoding threads stop at once, also on Ctrl-C
            for rows in scanned:
                for row in rows:
                    writer.write(row)
                judged += [row for row in rows if row["kind"] != "frame"]
                finished += 1
    except KeyboardInterrupt:  # every finished input's rows are written whole; say where it stopped
        print(f"nsfw-mobilenet scan: interrupted after {finished} of {len(inputs)} inputs", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputError as error:
        return _error(error, EXIT_OUTPUT_FAILED)
    finally:
        output.close()
    return exit_code(judged)

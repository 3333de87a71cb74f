"""Scan images, folders and videos with a trained model: safe, unsafe, or human review.

The thesis's future work (§6.2) is an app that deletes what the model is sure about and asks a
person when it is not ("less than 70%"). `Detector` is that decision for app code; the
`nsfw-mobilenet scan` command runs it over files and writes one CSV or JSON-lines row per image,
per sampled video frame, per video and per file that is neither (kind `other`, an error row), its
probabilities and thresholds rounded to `model_card.DECIMALS`.

Decision for an unsafe probability p (the sum over the unsafe classes, §5.1, which the model card names):
    review  if low <= p < high   (the review band; low == high disables it)
    unsafe  if p >= threshold    (outside the band)
    safe    otherwise
The threshold and band come from the model card next to the model (`operating_point`: chosen on
validation data at export) unless given; each row records the ones used.

Speed: files are decoded and resized on a pool of threads (one per CPU; Pillow releases the GIL)
while the model runs on the main thread, and rows still come out in input order. `--shard i/n`
scans one of n parts of the inputs, for a batch system to fan a corpus out (`scan_listing.Shard`).

Exit codes of `scan` (`exit_codes`, shared by every command):
    0  every input was read and is safe
    1  at least one input is unsafe or needs review (takes precedence over 3)
    2  usage error, or the model, its card or --output cannot be used
    3  nothing flagged, but some inputs could not be read (each one is a row, `error` or `skipped`)
    4  the rows could not be written (disk full, ...): those written before are whole
    70  internal error (a bug): one line on stderr, please report it
    130  interrupted (Ctrl-C): the rows of every finished input are written, whole
    141  stdout's reader went away (`| head`): ends quietly

Around it: `scan_listing` finds the inputs, `scan_output` writes whole rows with lossless paths,
`scan_command` is the command line, and `scan_evaluation` scores rows against known truth.
"""


from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nsfw_mobilenet.app.litert import DEFAULT_THREADS, LiteRTModel, UnsupportedModel
from nsfw_mobilenet.app.model_card import (
    CARD_FILE,
    LABELS_FILE,
    default_classes,
    operating_point_of,
    read_card,
    read_labels,
    training_result,
)
from nsfw_mobilenet.app.scan_listing import ERROR, SKIPPED, Entry, Shard, find_inputs
from nsfw_mobilenet.app.scan_output import path_text
from nsfw_mobilenet.core import backbones, native_output
from nsfw_mobilenet.core.exit_codes import EXIT_FLAGGED, EXIT_OK, EXIT_UNREADABLE
from nsfw_mobilenet.core.taxonomy import checked_unsafe_classes, default_unsafe_classes
from nsfw_mobilenet.evaluation.operating_point import REVIEW, UNSAFE, check_policy, decide, unsafe_probabilities
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.io import image_files
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.model_files import check_keras_model_file
from nsfw_mobilenet.io.video import (
    DEFAULT_MAX_FRAMES,
    VIDEO_EXTENSIONS,
    CorruptVideo,
    FrameStream,
    animation_frames,
    is_animation,
    video_frames,
    video_score,
)

MIN_SIDE = 32  # px: below this an image carries too little to classify (a 1x1 image got "unsafe 0.71")
TFLITE_SUFFIX = ".tflite"
DECODE_AHEAD = 4  # files decoded ahead per decoding thread: the model never waits for one, memory stays bounded
FRAMES_AT_ONCE = 32  # video or animation frames held at once: a 5,000-frame GIF costs what a short one does
# LiteRT threads of the `scan` command: the decoding threads keep every core busy, and a second LiteRT thread
# costs almost twice the CPU per image at batch 1 (XNNPACK's workers wait spinning), time the decoders need.
SCAN_MODEL_THREADS = 1
OTHER = "other"  # a row's kind for a file that is neither an image nor a video (notes.txt, a .heic Pillow cannot read)


class ModelError(Exception):
    """The model file cannot be used; the message says what to pass instead."""


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
    unsafe classes and the threshold and review band chosen on validation data: those are used unless
    `unsafe_classes`, `threshold` or `review_band` are given (§6.2's defaults without a card; unsafe classes
    by `taxonomy.default_unsafe_classes`). A Keras model takes preprocessed pixels, so give its `backbone`
    (the name) unless a model card or the results JSON of `train` next to the file names it.
    """

    def __init__(self, model: Any, *, classes: Sequence[str] | None = None, backbone: str | None = None,
                 threshold: float | None = None, review_band: tuple[float, float] | None = None,
                 num_threads: int = DEFAULT_THREADS, unsafe_classes: Sequence[str] | None = None):
        path = None if hasattr(model, "predict") else Path(model)
        if path is not None and not path.is_file():
            raise ModelError(f"{path}: no such model file")
        card = read_card(path) if path is not None else None
        self._set_policy(card, threshold, review_band)
        if path is not None and path.suffix == TFLITE_SUFFIX:
            self._runner = self._load_tflite(path, num_threads)
        else:
            self._runner = self._load_keras(model if path is None else path, path, backbone)
        self.classes = self._classes(classes, path)
        if len(self.classes) != self.num_outputs:
            raise ModelError(f"{path or 'model'}: {self.num_outputs} outputs but classes {self.classes}")
        self.unsafe_classes = self._unsafe_classes(unsafe_classes, card, path)
        self._unsafe = [self.classes.index(name) for name in self.unsafe_classes]

    def _unsafe_classes(self, given: Sequence[str] | None, card: dict[str, Any] | None, path: Path | None) -> list[str]:
        """Given, else the model card's, else `default_unsafe_classes` (the rule export and training follow)."""
        unsafe = given or (card or {}).get("unsafe_classes") or default_unsafe_classes(self.classes)
        try:
            return checked_unsafe_classes(self.classes, unsafe)
        except ValueError as error:
            source = "--unsafe-class" if given else f"{CARD_FILE} next to it"
            raise ModelError(f"{path or 'model'}: {error} ({source}); name it with --unsafe-class") from None

    def _classes(self, classes: Sequence[str] | None, path: Path | None) -> list[str]:
        """Given classes, else the exported file's labels (required for .tflite: never a silent guess), else
        a Keras model's training folders (the results JSON of `train` beside it), else the thesis taxonomy of
        its number of outputs."""
        trained = _training_result(path) if path is not None and not classes else None
        labels = classes or (path and read_labels(path)) or (trained and trained.data.get("classes"))
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
        native_output.import_tensorflow_quietly()  # its native start-up lines are not our messages
        import keras

        if path is not None:
            try:
                with native_output.native_stderr_discarded():  # device set-up lines ("failed call to cuInit")
                    model = keras.models.load_model(path, compile=False)
                    model.predict(np.zeros((1, *model.input_shape[1:])), verbose=0)
            except Exception as error:  # Keras raises many types for a bad file
                raise ModelError(f"{path}: Keras cannot load it ({error})") from None
            if backbone is None:
                trained = _training_result(path)
                backbone = (read_card(path) or {}).get("backbone") or (trained and trained.config.backbone)
        if backbone is None:
            raise ModelError(f"{path or 'Keras model'}: its preprocessing is unknown; pass the backbone "
                             "(--backbone mobilenet_v3_small, or backbone=...)")
        backbones.get_backbone(backbone)  # an unknown name fails here, not at the first image
        self.image_size = tuple(int(s) for s in model.input_shape[1:3])
        self.num_outputs = int(model.output_shape[-1])
        return lambda images: predict(model, images, backbone)

    # ------------------------------------------------------------ classification

    def read(self, path: Path | str) -> image_files.DecodedImage:
        """A file decoded at the model's size like the training data, with Pillow's notes; CorruptImage when
        it cannot be read or is too small to classify."""
        decoded = image_files.read_image(path, self.image_size)
        _refuse_too_small(*decoded.original_size)
        return decoded

    def pixels(self, image: np.ndarray | Path | str) -> np.ndarray:
        """uint8 [H, W, 3] at the model's size, from a file (`read`) or an RGB array of any size."""
        if isinstance(image, (str, Path)):
            return self.read(image).pixels
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
        return image_files.rgb_pixels(Image.fromarray(image.astype(np.uint8)), self.image_size)

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


def _training_result(path: Path) -> RunResult | None:
    """The results JSON of `train` beside a Keras model (None for a .tflite or without one), for its classes and
    backbone."""
    if path.suffix == TFLITE_SUFFIX:
        return None
    try:
        return training_result(path)
    except ValueError as error:
        raise ModelError(str(error)) from None


# ---------------------------------------------------------------- scanning files


def _refuse_too_small(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise image_files.CorruptImage(f"too small to classify: {width}x{height} pixels (the minimum side is {MIN_SIDE})")


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
    kind: str  # "image" | "animation" | "video" | OTHER | "input" (a problem found before reading: missing, link...)
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
        with image_files.pillow_warnings_as_notes() as notes:  # e.g. corrupt EXIF, met while checking for frames
            decoded = _decoded_image_file(detector, path, fps, max_frames)
    except image_files.CorruptImage as error:
        if path.suffix.lower() not in image_files.IMAGE_EXTENSIONS and str(error).startswith("not an image"):
            return DecodedInput(path, OTHER, error="not an image or video")
        return DecodedInput(path, "image", error=str(error))
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
    with image_files.pillow_warnings_as_notes() as notes:
        try:
            for batch in _batches(decoded.stream, FRAMES_AT_ONCE):
                verdicts = detector.verdicts(np.stack([frame for _, frame in batch]))
                frame_rows += [_row(decoded.path, "frame", v, time_s=round(float(time), 3))
                               for v, (time, _) in zip(verdicts, batch)]
        except (CorruptVideo, image_files.CorruptImage) as error:
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


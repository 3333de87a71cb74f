"""Video frames for the image classifiers: sample at a fixed rate, decide per video from frame scores.

The thesis classifies still images only; a video is judged here as the frames a viewer would see,
sampled at `fps` (1 frame/s by default) and squashed to the model's input size exactly like
`image_files.decode_image`. A broken file raises `CorruptVideo` naming the file and the reason, so
callers report it and go on (never fatal). Frames are streamed (`FrameStream`): a long video or a
GIF of thousands of frames never sits in memory whole.
"""


from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.native_output import native_stderr_discarded
from nsfw_mobilenet.io import image_files
from nsfw_mobilenet.io.image_files import IMAGE_SIZE

VIDEO_EXTENSIONS = (".avi", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".webm")
DEFAULT_FRAME_MS = 100  # an animation frame without a duration is shown this long (browsers' usual minimum)
DEFAULT_MAX_FRAMES = 600  # sampled frames per video or animation in `scan`: 10 minutes at 1 frame/s, bounds its time
ANIMATION_FORMATS = ("GIF", "PNG", "WEBP")  # Pillow formats whose extra frames are an animation's


class CorruptVideo(Exception):
    """A video file that cannot be decoded, with the reason."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class VideoFrames:
    """Sampled RGB frames (uint8 [N, H, W, 3]) and their times in seconds."""

    frames: np.ndarray
    timestamps: np.ndarray
    source: Path
    note: str = ""  # e.g. the file ended before its header said it would (truncated)


def _open(path: Path):
    import cv2

    try:
        status = path.stat()
    except OSError:
        raise CorruptVideo(path, "no such file") from None
    special = image_files.not_regular_file(status.st_mode)  # a FIFO or /dev/urandom named .mp4 would never end
    if special:
        raise CorruptVideo(path, special)
    if status.st_size == 0:
        raise CorruptVideo(path, "zero bytes")
    # FFmpeg prints "moov atom not found" and the like; CorruptVideo says what is wrong. (OPENCV_FFMPEG_LOGLEVEL
    # cannot quiet it from here: OpenCV reads it once, when it opens its first video.)
    with native_stderr_discarded():
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CorruptVideo(path, "OpenCV cannot open it: not a video, or a container/codec it cannot read")
    return capture


def _capped_note(max_frames: int, seconds: float) -> str:
    return f"judged on its first {max_frames} sampled frames (--max-frames): nothing after {seconds:.1f} s was read"


class FrameStream:
    """The sampled frames of a video or animation, decoded one at a time as they are iterated (time in seconds,
    uint8 [H, W, 3]): memory holds what the caller keeps, whatever the file's length. `note` is complete once
    iterated (truncated, or capped by `max_frames`); a file without any decodable frame raises at the end."""

    def __init__(self, source: Path, frames: Callable[[list[str]], Iterator[tuple[float, np.ndarray]]]):
        self.source, self._frames, self.notes = source, frames, []

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        return self._frames(self.notes)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    def collected(self) -> VideoFrames:
        """Every frame at once (for a short clip; `scan` iterates)."""
        times, frames = zip(*self)  # the stream raises when there is no frame
        return VideoFrames(np.stack(frames), np.array(times, dtype=np.float64), self.source, self.note)


def _check_sampling(fps: float, max_frames: int | None) -> None:
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")


def video_frames(path: Path | str, fps: float = 1.0, max_frames: int | None = DEFAULT_MAX_FRAMES,
                 image_size: tuple[int, int] = IMAGE_SIZE) -> FrameStream:
    """Frames sampled every 1/`fps` seconds of video time (the first frame always), at most `max_frames`.

    Raises CorruptVideo now when the file cannot be opened, and while iterating when it yields no frame. A file
    that stops early (truncated) yields the frames it had and says so in `note`; FFmpeg's own lines about it are
    discarded.
    """
    _check_sampling(fps, max_frames)
    path = Path(path)
    capture = _open(path)
    return FrameStream(path, lambda notes: _video_frames(capture, path, fps, max_frames, image_size, notes))


def _video_frames(capture: Any, path: Path, fps: float, max_frames: int | None, image_size: tuple[int, int],
                  notes: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    import cv2

    native_fps = capture.get(cv2.CAP_PROP_FPS)
    native_fps = native_fps if native_fps and math.isfinite(native_fps) and native_fps > 0 else None
    expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index, next_time, taken, time = 0, 0.0, 0, 0.0
    try:
        while True:
            with native_stderr_discarded():  # FFmpeg on a cut file: "[mjpeg] sof: invalid len"; `note` says it
                grabbed = capture.grab()
            if not grabbed:
                break
            time = index / native_fps if native_fps else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            index += 1
            if time + 1e-9 < next_time:
                continue
            if max_frames is not None and taken >= max_frames:
                notes.append(_capped_note(max_frames, time))
                return
            with native_stderr_discarded():
                ok, frame = capture.retrieve()
            if not ok or frame is None:
                break
            resized = cv2.resize(frame, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
            yield time, cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
            taken += 1
            next_time += 1 / fps
    finally:
        capture.release()
    if not taken:
        raise CorruptVideo(path, "no decodable frame (corrupt or truncated video)")
    if expected and index < expected:
        notes.append(f"truncated? decoding stopped at frame {index} of {expected}")


def extract_frames(path: Path | str, fps: float = 1.0, max_frames: int | None = None,
                   image_size: tuple[int, int] = IMAGE_SIZE) -> VideoFrames:
    """`video_frames`, all at once (a short clip; `max_frames` None: every sampled frame)."""
    return video_frames(path, fps, max_frames, image_size).collected()


def video_score(frame_scores: Sequence[float] | np.ndarray, k: int = 1) -> float:
    """The k-th highest frame score (k capped at the number of frames): how unsafe the video is."""
    scores = np.sort(np.asarray(frame_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("a video verdict needs at least one frame score")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return float(scores[min(k, scores.size) - 1])


def video_verdict(frame_scores: Sequence[float] | np.ndarray, threshold: float, k: int = 1) -> bool:
    """Unsafe when at least `k` frames score ≥ `threshold` (k > 1 tolerates single-frame false alarms)."""
    return video_score(frame_scores, k) >= threshold


def animation_frames(path: Path | str, fps: float = 1.0, max_frames: int | None = DEFAULT_MAX_FRAMES,
                     image_size: tuple[int, int] = IMAGE_SIZE) -> FrameStream:
    """An animated GIF, WebP or PNG sampled like a video: each frame lasts its own `duration`, and one is
    taken every 1/`fps` seconds (the first always), at most `max_frames`. The file is opened when iterated;
    image_files.CorruptImage when it has no decodable frame."""
    _check_sampling(fps, max_frames)
    path = Path(path)
    return FrameStream(path, lambda notes: _animation_frames(path, fps, max_frames, image_size, notes))


def _animation_frames(path: Path, fps: float, max_frames: int | None, image_size: tuple[int, int],
                      notes: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    from PIL import ImageSequence

    index, taken, time, next_time = 0, 0, 0.0, 0.0
    with image_files.open_image(path) as animation:
        total = getattr(animation, "n_frames", 1)
        try:
            for index, frame in enumerate(ImageSequence.Iterator(animation)):
                if time + 1e-9 >= next_time:
                    if max_frames is not None and taken >= max_frames:
                        notes.append(_capped_note(max_frames, time))
                        break
                    yield time, image_files.rgb_pixels(frame, image_size)
                    taken += 1
                    next_time += 1 / fps
                time += frame.info.get("duration", DEFAULT_FRAME_MS) / 1000
        except (OSError, SyntaxError, ValueError) as error:
            notes.append(f"truncated? decoding stopped at frame {index} of {total} ({error})")
    if not taken:
        raise image_files.CorruptImage(f"no decodable frame in the animation ({'; '.join(notes) or 'empty'})")


def is_animation(path: Path | str) -> bool:
    """Whether an image file is an animation (GIF, WebP or PNG with more than one frame). MPO photos and
    multi-page TIFFs are still images (`image_files.frames_note`). Raises image_files.CorruptImage."""
    with image_files.open_image(path) as image:
        if image.format not in ANIMATION_FORMATS:
            return False
        try:
            return getattr(image, "n_frames", 1) > 1
        except (OSError, SyntaxError, ValueError) as error:
            raise image_files.CorruptImage(f"corrupt {image.format} ({error})") from None


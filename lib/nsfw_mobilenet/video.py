"""Video frames for the image classifiers: sample at a fixed rate, decide per video from frame scores.

The thesis classifies still images only; a video is judged here as the frames a viewer would see,
sampled at `fps` (1 frame/s by default) and squashed to the model's input size exactly like
`data.decode_image`. A broken file raises `CorruptVideo` naming the file and the reason, so
callers report it and go on (never fatal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nsfw_mobilenet import data, native_stderr_discarded
from nsfw_mobilenet.data import IMAGE_SIZE

VIDEO_EXTENSIONS = (".avi", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".webm")
DEFAULT_FRAME_MS = 100  # an animation frame without a duration is shown this long (browsers' usual minimum)


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

    if not path.is_file():
        raise CorruptVideo(path, "no such file")
    if path.stat().st_size == 0:
        raise CorruptVideo(path, "zero bytes")
    # FFmpeg prints "moov atom not found" and the like; CorruptVideo says what is wrong. (OPENCV_FFMPEG_LOGLEVEL
    # cannot quiet it from here: OpenCV reads it once, when it opens its first video.)
    with native_stderr_discarded():
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CorruptVideo(path, "OpenCV cannot open it: not a video, or a container/codec it cannot read")
    return capture


def extract_frames(path: Path | str, fps: float = 1.0, max_frames: int | None = None,
                   image_size: tuple[int, int] = IMAGE_SIZE) -> VideoFrames:
    """Frames sampled every 1/`fps` seconds of video time (the first frame always), at most `max_frames`.

    Raises CorruptVideo when the file cannot be opened or yields no frame. A file that stops early
    (truncated) returns the frames it had and says so in `note`; FFmpeg's own lines about it are discarded.
    """
    import cv2

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    capture = _open(path)
    native_fps = capture.get(cv2.CAP_PROP_FPS)
    native_fps = native_fps if native_fps and math.isfinite(native_fps) and native_fps > 0 else None
    expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    frames, timestamps = [], []
    index, next_time = 0, 0.0
    with native_stderr_discarded():  # FFmpeg on a cut file: "[mjpeg] sof: invalid len"; `note` says it
        try:
            while max_frames is None or len(frames) < max_frames:
                if not capture.grab():
                    break
                time = index / native_fps if native_fps else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                index += 1
                if time + 1e-9 < next_time:
                    continue
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break
                resized = cv2.resize(frame, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
                frames.append(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))
                timestamps.append(time)
                next_time += 1 / fps
        finally:
            capture.release()
    if not frames:
        raise CorruptVideo(path, "no decodable frame (corrupt or truncated video)")
    stopped_early = max_frames is None or len(frames) < max_frames
    note = (f"truncated? decoding stopped at frame {index} of {expected}"
            if stopped_early and expected and index < expected else "")
    return VideoFrames(np.stack(frames), np.array(timestamps, dtype=np.float64), path, note)


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


def extract_animation_frames(path: Path | str, fps: float = 1.0, max_frames: int | None = None,
                             image_size: tuple[int, int] = IMAGE_SIZE) -> VideoFrames:
    """An animated GIF, WebP or PNG sampled like a video: each frame lasts its own `duration`, and one is
    taken every 1/`fps` seconds (the first always), at most `max_frames`. Raises data.CorruptImage."""
    from PIL import ImageSequence

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames, timestamps, time, next_time, note = [], [], 0.0, 0.0, ""
    with data.open_image(path) as animation:
        total = getattr(animation, "n_frames", 1)
        try:
            for index, frame in enumerate(ImageSequence.Iterator(animation)):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                if time + 1e-9 >= next_time:
                    frames.append(data.rgb_pixels(frame, image_size))
                    timestamps.append(time)
                    next_time += 1 / fps
                time += frame.info.get("duration", DEFAULT_FRAME_MS) / 1000
        except (OSError, SyntaxError, ValueError) as error:
            note = f"truncated? decoding stopped at frame {index} of {total} ({error})"
    if not frames:
        raise data.CorruptImage(f"no decodable frame in the animation ({note or 'empty'})")
    return VideoFrames(np.stack(frames), np.array(timestamps, dtype=np.float64), Path(path), note)


def is_animation(path: Path | str) -> bool:
    """Whether an image file holds more than one frame (animated GIF, WebP or PNG). Raises data.CorruptImage."""
    with data.open_image(path) as image:
        return getattr(image, "n_frames", 1) > 1

"""The review loop's feedback set (thesis §6.2): the images a person judged, with their verdict and the score the
model gave them, kept as JSON lines, one image per line, keyed by the image's content (sha256)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsfw_mobilenet.io.atomic_files import write_atomically

SAFE, UNSAFE = "safe", "unsafe"
VERDICTS = (SAFE, UNSAFE)
VERDICT_COLUMN = "verdict"  # added by the reviewer to a scan's CSV or JSON lines
UNREVIEWABLE_KINDS = ("video", "animation", "other")  # rows that are not one image file a person looked at
JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")


class BadReview(ValueError):
    """A reviewed scan file that cannot be read as feedback; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Feedback:
    """One judged image: where it is, its content hash, the person's verdict and the model's original score."""

    path: str
    sha256: str
    verdict: str
    unsafe_probability: float | None = None
    decision: str | None = None


def content_hash(path: Path | str) -> str:
    """sha256 of the file's bytes: the same photo under another name is the same feedback."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_scan_rows(path: Path | str) -> list[dict[str, Any]]:
    """The rows of a scan's output: JSON lines (.jsonl, .json, .ndjson) or CSV (anything else)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            if path.suffix.lower() in JSON_LINES_SUFFIXES:
                return [json.loads(line) for line in handle if line.strip()]
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadReview(f"{path}: cannot be read as a scan's CSV or JSON lines ({error})") from None


def _verdict(row: Mapping[str, Any], source: Path, line: int) -> str | None:
    value = str(row.get(VERDICT_COLUMN) or "").strip().lower()
    if value and value not in VERDICTS:
        raise BadReview(f"{source}: row {line}: verdict {value!r}; write one of {', '.join(VERDICTS)} "
                        "(or leave it empty for an image not reviewed)")
    return value or None


def _is_one_image(row: Mapping[str, Any]) -> bool:
    """A row of one image file that was read: not a video or its frames, not a file that failed."""
    return row.get("kind") not in UNREVIEWABLE_KINDS and not row.get("time_s") and not row.get("error")


def _score(row: Mapping[str, Any]) -> float | None:
    value = row.get("unsafe_probability")
    return None if value in (None, "") else float(value)


def reviewed(rows: Sequence[Mapping[str, Any]], source: Path | str, root: Path | str = ".") -> list[Feedback]:
    """The feedback of the rows a person gave a verdict (safe/unsafe); paths relative to `root` (where the scan
    ran). A verdict on a video, a frame or a failed row, or on a file that is no longer there, is an error naming
    the row: the feedback must be an image the model can train on."""
    found = []
    for line, row in enumerate(rows, start=2 if Path(source).suffix.lower() not in JSON_LINES_SUFFIXES else 1):
        verdict = _verdict(row, Path(source), line)
        if verdict is None:
            continue
        if not _is_one_image(row):
            raise BadReview(f"{source}: row {line}: a verdict on a {row.get('kind') or 'failed'} row; only single "
                            "images that were read can be feedback")
        path = Path(root) / str(row.get("path", ""))
        if not path.is_file():
            raise BadReview(f"{source}: row {line}: {path}: no such image (run review from where the scan ran, or "
                            "pass --root)")
        found.append(Feedback(str(path.resolve()), content_hash(path), verdict, _score(row), row.get("decision")))
    return found


def merged(existing: Iterable[Feedback], new: Iterable[Feedback]) -> list[Feedback]:
    """One verdict per image content: a newer verdict replaces an older one; first-seen order is kept."""
    by_content: dict[str, Feedback] = {}
    for item in [*existing, *new]:
        by_content[item.sha256] = item
    return list(by_content.values())


def load_feedback(path: Path | str) -> list[Feedback]:
    """A feedback set written by `save_feedback` (an absent file is an empty set)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        return [Feedback(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (json.JSONDecodeError, TypeError) as error:
        raise BadReview(f"{path}: not a feedback set written by `nsfw-mobilenet review` ({error})") from None


def save_feedback(items: Iterable[Feedback], path: Path | str) -> Path:
    """Write the feedback set as JSON lines, through a temporary file (a kill never leaves half a set)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, "".join(json.dumps(dataclasses.asdict(item)) + "\n" for item in items))
    return path

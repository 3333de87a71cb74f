"""How scan rows are written: CSV or JSON lines, one write per row, paths escaped losslessly, the output file
locked while written."""


from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from nsfw_mobilenet.app.model_card import rounded
from nsfw_mobilenet.io import image_files

ROW_FIELDS = ("path", "kind", "time_s", "label", "unsafe_probability", "decision", "error", "note", "threshold",
              "review_low", "review_high")


PATH_ESCAPING = ("UTF-8; a byte of the name that is not UTF-8 is written \\xNN (two hex digits) and a backslash "
                 "\\\\, in CSV and JSON lines alike (`path_bytes` reverses it)")


class OutputError(Exception):
    """The rows could not be written (disk full...): the message names the output; the rows before are whole."""


def path_text(path: Path | str) -> str:
    """A path as rows write it (PATH_ESCAPING): lossless for any name the file system holds, where a file name
    that is not UTF-8 would otherwise stop the CSV at that file."""
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def path_bytes(text: str) -> bytes:
    """The file name `path_text` wrote, as the bytes the file system holds (`os.fsdecode` makes it a Path)."""
    parts = re.split(r"\\(\\|x[0-9a-f]{2})", text)  # plain text and escapes alternate
    return b"".join(part.encode() if i % 2 == 0 else b"\\" if part == "\\" else bytes([int(part[1:], 16)])
                    for i, part in enumerate(parts))


class RowWriter:
    """CSV (fixed columns: ROW_FIELDS, then one `p_<class>` per class) or JSON lines, each row one `write` of
    `output` (a `RowOutput`, or any text stream); probabilities and thresholds rounded to `model_card.DECIMALS`."""

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
        row = rounded(row)
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
    if image_files.not_regular_file(os.fstat(descriptor).st_mode) is None:
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


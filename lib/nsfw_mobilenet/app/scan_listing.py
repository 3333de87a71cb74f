"""What a scan reads: the files under the paths given, each with the problem that keeps it from being read, and
the shard of them this process takes (`--shard i/n`)."""


from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nsfw_mobilenet.io import image_files

ERROR, SKIPPED = "error", "skipped"  # a row's decision when its file cannot be read, or is not read


SHARD_FORM = "takes i/n with 0 <= i < n, e.g. 0/4 for the first of four parts"


Entry = tuple[Path, str | None, str]  # what `find_inputs` yields: (path, problem, decision if a problem)


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
    special = image_files.not_regular_file(mode)
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


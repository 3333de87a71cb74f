"""Decoded images kept on disk: a dataset is decoded once into chunk files (`cache_dir`) and read a batch at a
time (`StoredArray`), so a dataset larger than RAM trains and a second run decodes nothing."""


from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from nsfw_mobilenet.core.configs import BATCH_SIZE
from nsfw_mobilenet.io.image_files import (
    IMAGE_SIZE,
    BadFile,
    CorruptImage,
    LabeledImage,
    decode_image,
    image_files,
    parallel_map,
)

log = logging.getLogger(__name__)


CACHE_CHUNK = 512  # images per cache file: a killed run loses at most one chunk


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
    results = parallel_map(lambda p: _decode_or_reason(p, image_size), paths, bar)
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
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # two runs may decode one chunk at once
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


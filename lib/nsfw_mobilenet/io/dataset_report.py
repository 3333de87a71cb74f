"""The validation report of a dataset (notebook 00): classes, counts per split, and every file that cannot be
read or does not belong, each with the reason."""


from __future__ import annotations

import hashlib
import html
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsfw_mobilenet.core.paths import repo_relative
from nsfw_mobilenet.core.taxonomy import taxonomy_for_classes
from nsfw_mobilenet.io.image_cache import undecodable_name
from nsfw_mobilenet.io.image_files import (
    IMAGE_EXTENSIONS,
    SPLIT_FOLDERS,
    BadFile,
    CorruptImage,
    LabeledImage,
    class_names,
    has_split_folders,
    identify,
    list_images,
    load_pixels,
    parallel_map,
    read_file,
    split_folder,
)


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
        data = read_file(path)
        load_pixels(identify(io.BytesIO(data)))  # `read_file` refused empty and oversized files
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
        checks = dict(zip(everything, parallel_map(lambda i: _check_file(i.path), everything, bar)))
    classes = sorted({c for split in splits for c in class_names(split_folder(root, split))})
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



def sample_training_images(root: Path | str, count: int = 10, seed: int = 0) -> list[LabeledImage]:
    """Up to `count` files of the training images (root/train/ or root's class folders), drawn without repeats
    with `seed`: the thumbnails of a dataset report."""
    items = list_images(root, "train" if has_split_folders(root) else None)
    drawn = np.random.default_rng(seed).choice(len(items), min(count, len(items)), replace=False)
    return [items[k] for k in drawn]


def make_broken_dataset(out_dir: Path | str, good_images: Path | str) -> Path:
    """A two-class ImageFolder of deliberately bad files for the report demo (notebook 00).

    `normal/` holds copies of the first three images of the folder `good_images`; `sexual/` holds an exact
    duplicate of the first, a zero-byte file, a truncated JPEG and a text file named `.jpg`.
    """
    root, sources = Path(out_dir), sorted(Path(good_images).glob("*.jpg"))[:3]
    if len(sources) < 3:
        raise ValueError(f"{good_images}: {len(sources)} .jpg files, the broken demo dataset needs three")
    (root / "normal").mkdir(parents=True, exist_ok=True)
    (root / "sexual").mkdir(exist_ok=True)
    for path in sources:
        (root / "normal" / path.name).write_bytes(path.read_bytes())
    (root / "sexual" / "duplicate.jpg").write_bytes(sources[0].read_bytes())
    (root / "sexual" / "empty.jpg").write_bytes(b"")
    (root / "sexual" / "truncated.jpg").write_bytes(sources[1].read_bytes()[:500])
    (root / "sexual" / "notes.jpg").write_text("not an image")
    return root

"""What scan rows say about a model: its decisions on labelled folders (the card's test figures reproduced) and
on harmless photos never used in training."""


from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nsfw_mobilenet.app.scan import DEFAULT_THREADS, OTHER, Detector, scan
from nsfw_mobilenet.app.scan_listing import ERROR, SKIPPED
from nsfw_mobilenet.app.scan_output import path_bytes
from nsfw_mobilenet.core.taxonomy import default_unsafe_classes
from nsfw_mobilenet.evaluation.operating_point import DECISIONS, REVIEW, SAFE, UNSAFE, OperatingPoint, fixed_policies
from nsfw_mobilenet.io import image_cache, image_files

if TYPE_CHECKING:  # parity imports export, which imports TensorFlow-side modules; the scanner does not need them
    from nsfw_mobilenet.app.parity import VariantParity


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
    folders = image_files.class_names(root)
    if len(folders) != len(classes):
        raise ValueError(f"{root}: {len(folders)} class folders {folders} but the model has classes {classes}")
    matrix = np.zeros((len(classes), len(classes)), int)
    decisions = np.zeros((len(classes), len(DECISIONS)), int)
    unreadable = 0
    for row in rows:
        if row["kind"] not in ("image", OTHER, "input"):
            continue
        if row["decision"] in (ERROR, SKIPPED):
            unreadable += 1
            continue
        true = folders.index(Path(os.fsdecode(path_bytes(row["path"]))).relative_to(root).parts[0])
        matrix[true, classes.index(row["label"])] += 1
        decisions[true, DECISIONS.index(row["decision"])] += 1
    labels = [c if f == c else f"{f} ({c})" for f, c in zip(folders, classes)]
    return ScanConfusion(labels, matrix.tolist(), decisions.tolist(), unreadable)


def decisions_by_side(confusion: ScanConfusion, classes: Sequence[str],
                      unsafe_classes: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """The scan's decisions summed over the safe and over the unsafe true classes: the form of a model card's
    `operating_point.test.decisions`, so a scan of the test folder can be checked against its card.
    `unsafe_classes`: the card's (default: `taxonomy.default_unsafe_classes`)."""
    unsafe = {list(classes).index(name) for name in unsafe_classes or default_unsafe_classes(classes)}
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
    images = image_cache.spread_evenly(image_files.image_files(folder), limit)
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


CARD_POLICY = "model card's operating point"  # the threshold and band `scan` takes from the card, no flags given


def false_positives_by_policy(model_path: Path | str, folders: Sequence[Path | str], limit: int | None = None,
                              num_threads: int = DEFAULT_THREADS) -> Any:
    """`false_positive_table` of one exported model under its card's operating point and under each of
    `operating_point.fixed_policies()` (§6.2's band, no band), indexed by (policy, folder)."""
    import pandas as pd

    policies: dict[str, OperatingPoint | None] = {CARD_POLICY: None, **fixed_policies()}
    tables = {name: false_positive_table(
                  Detector(model_path, threshold=point and point.threshold, review_band=point and point.review_band,
                           num_threads=num_threads), folders, limit=limit)
              for name, point in policies.items()}
    return pd.concat(tables, names=["policy", "folder"])


def app_summary(detector: Detector, parity: Sequence[VariantParity], test_dir: Path | str,
                benign_dirs: Iterable[Path | str] = (), limit: int | None = None) -> Any:
    """One exported model as the §6.2 app would see it, a column of notebook 07's head comparison:
    Keras and int8 test accuracy and int8-vs-float32 agreement (from `parity`), the share of `test_dir`
    decided without a person, and the decision shares on each folder of harmless photos.

    `detector` runs the exported file with the policy to judge (notebook 07: each head's float32 file at its card's
    point, so that quantization does not hide the head's effect); `limit` caps the images per folder.
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


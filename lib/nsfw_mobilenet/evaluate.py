"""Test-set evaluation: confusion matrices, the TN/FN/TP/FP summary of tables 4.2–4.14, metrics.

Positive means unsafe ("sexual"; hentai/porn/sexy in five classes, §5.1). For datasets whose
classes match no thesis taxonomy (the real stand-in photos), the last class plays "positive".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from .operating_point import unsafe_probabilities
from .taxonomy import taxonomy_or_proxy


def positive_indices(classes: Sequence[str]) -> list[int]:
    """Indices of the classes counted as positive (unsafe)."""
    return taxonomy_or_proxy(list(classes)).unsafe_indices()


def is_unsafe(labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Whether each integer label is an unsafe (positive) class."""
    return np.isin(labels, positive_indices(classes))


def positive_scores(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Probability of the positive (unsafe) side: the sum over unsafe classes."""
    return unsafe_probabilities(probabilities, positive_indices(classes))


@dataclass
class Evaluation:
    """Everything tables 4.2/4.6/4.10/4.14 and the figures need about one test run."""

    classes: list[str]
    confusion_matrix: list[list[int]]  # rows = true class, columns = predicted class
    TN: int
    FN: int
    TP: int
    FP: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_predictions(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Evaluation:
    """Score class probabilities against integer labels."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    true_positive = is_unsafe(labels, classes)
    predicted_positive = is_unsafe(predicted, classes)
    tn, fp, fn, tp = skm.confusion_matrix(true_positive, predicted_positive, labels=[False, True]).ravel()
    scores = positive_scores(probabilities, classes)
    both_sides_present = true_positive.any() and (~true_positive).any()
    return Evaluation(
        classes=list(classes),
        confusion_matrix=skm.confusion_matrix(labels, predicted, labels=range(len(classes))).tolist(),
        TN=int(tn), FN=int(fn), TP=int(tp), FP=int(fp),
        accuracy=float(skm.accuracy_score(labels, predicted)),
        precision=float(skm.precision_score(true_positive, predicted_positive, zero_division=0)),
        recall=float(skm.recall_score(true_positive, predicted_positive, zero_division=0)),
        f1=float(skm.f1_score(true_positive, predicted_positive, zero_division=0)),
        roc_auc=float(skm.roc_auc_score(true_positive, scores)) if both_sides_present else None,
    )


def per_class_metrics(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall and image count of each class (top-1), as model cards report them."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    precision, recall, _, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(len(classes)), zero_division=0)
    return {name: {"precision": float(p), "recall": float(r), "images": int(n)}
            for name, p, r, n in zip(classes, precision, recall, support)}

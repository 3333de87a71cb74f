"""Test-set evaluation: confusion matrices, the TN/FN/TP/FP summary of tables 4.2–4.14, metrics,
and the safety-aware error counts of listing 4.8 (§4.4) and table 5.1.

The summary counts unsafe as positive ("sexual"; hentai/porn/sexy in five classes, §5.1). For
datasets whose classes match no thesis taxonomy (the real stand-in photos), the last class plays
"unsafe". A prediction is a safety error when `taxonomy` says so (`Taxonomy.safety_error`, `is_wrong`),
not when it merely differs from the label: drawings ↔ neutral and hentai ↔ porn confusions are harmless.
"""


from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from nsfw_mobilenet.core.taxonomy import Taxonomy, is_wrong, taxonomy_or_proxy
from nsfw_mobilenet.evaluation.operating_point import unsafe_probabilities


def unsafe_indices(classes: Sequence[str]) -> list[int]:
    """Indices of the unsafe classes (the summary's positives)."""
    return taxonomy_or_proxy(list(classes)).unsafe_indices()


def is_unsafe(labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Whether each integer label is an unsafe class."""
    return np.isin(labels, unsafe_indices(classes))


def unsafe_scores(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Probability of the unsafe side: the sum over unsafe classes."""
    return unsafe_probabilities(probabilities, unsafe_indices(classes))


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
    true_unsafe = is_unsafe(labels, classes)
    predicted_unsafe = is_unsafe(predicted, classes)
    tn, fp, fn, tp = skm.confusion_matrix(true_unsafe, predicted_unsafe, labels=[False, True]).ravel()
    scores = unsafe_scores(probabilities, classes)
    both_sides_present = true_unsafe.any() and (~true_unsafe).any()
    return Evaluation(
        classes=list(classes),
        confusion_matrix=skm.confusion_matrix(labels, predicted, labels=range(len(classes))).tolist(),
        TN=int(tn), FN=int(fn), TP=int(tp), FP=int(fp),
        accuracy=float(skm.accuracy_score(labels, predicted)),
        precision=float(skm.precision_score(true_unsafe, predicted_unsafe, zero_division=0)),
        recall=float(skm.recall_score(true_unsafe, predicted_unsafe, zero_division=0)),
        f1=float(skm.f1_score(true_unsafe, predicted_unsafe, zero_division=0)),
        roc_auc=float(skm.roc_auc_score(true_unsafe, scores)) if both_sides_present else None,
    )


def per_class_metrics(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall and image count of each class (top-1), as model cards report them."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    precision, recall, _, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(len(classes)), zero_division=0)
    return {name: {"precision": float(p), "recall": float(r), "images": int(n)}
            for name, p, r, n in zip(classes, precision, recall, support)}


# --- Listing 4.8 and table 5.1: safety-aware errors ----------------------------------------------
def safety_error_matrix(classes: Sequence[str]) -> np.ndarray:
    """[true, predicted] → whether listing 4.8 counts that cell of the confusion matrix as an error."""
    taxonomy = taxonomy_or_proxy(list(classes))
    return np.array([[taxonomy.safety_error(t, p) for p in classes] for t in classes])


def wrong_predictions(confusion_matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> int:
    """Listing 4.8's `len(wrong_predictions)`: the images in the error cells of the confusion matrix."""
    return int((np.asarray(confusion_matrix) * safety_error_matrix(classes)).sum())


def count_wrong(true_labels: Sequence[str], true_taxonomy: Taxonomy, predicted_labels: Sequence[str],
                predicted_taxonomy: Taxonomy) -> int:
    """One cell of table 5.1: how many images of a test set a model got wrong (`taxonomy.is_wrong`)."""
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    return sum(is_wrong(t, true_taxonomy, p, predicted_taxonomy) for t, p in zip(true_labels, predicted_labels))


@dataclass
class SafetyEvaluation:
    """§4.4's numbers for one test run: the confusion matrix and how many images were well predicted."""

    classes: list[str]
    confusion_matrix: list[list[int]]
    well_predicted: int
    wrong: int
    total: int
    accuracy: float  # plain top-1, which counts harmless confusions as wrong
    recall: dict[str, float]  # per true class: share predicted exactly

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_safety(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> SafetyEvaluation:
    """Confusion matrix (figures 4.18–4.20) and the well-predicted count of §4.4."""
    evaluation = evaluate_predictions(probabilities, labels, classes)
    matrix = np.asarray(evaluation.confusion_matrix)
    wrong = wrong_predictions(matrix, classes)
    per_class = matrix.sum(axis=1)
    recall = {c: float(matrix[i, i] / per_class[i]) if per_class[i] else float("nan") for i, c in enumerate(classes)}
    return SafetyEvaluation(list(classes), matrix.tolist(), int(matrix.sum()) - wrong, wrong, int(matrix.sum()),
                            evaluation.accuracy, recall)


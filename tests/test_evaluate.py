import numpy as np
import pytest

from nsfw_mobilenet.core.taxonomy import BINARY, FIVE_CLASS
from nsfw_mobilenet.evaluation.evaluate import evaluate_predictions, unsafe_scores


def test_binary_summary_counts_sexual_as_unsafe_positive():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    labels = np.array([0, 1, 0, 1])  # normal, sexual, normal, sexual
    result = evaluate_predictions(probabilities, labels, BINARY.classes)
    assert (result.TN, result.TP, result.FP, result.FN) == (1, 1, 1, 1)
    assert result.accuracy == 0.5 and result.precision == 0.5 and result.recall == 0.5
    assert result.confusion_matrix == [[1, 1], [1, 1]]
    assert result.roc_auc == pytest.approx(0.75)


def test_five_class_summary_uses_section_5_1_safety():
    labels = np.array([FIVE_CLASS.index(c) for c in ("drawings", "neutral", "sexy", "porn")])
    predicted = ["neutral", "sexy", "hentai", "drawings"]
    probabilities = np.eye(5)[[FIVE_CLASS.index(c) for c in predicted]]
    result = evaluate_predictions(probabilities, labels, FIVE_CLASS.classes)
    assert (result.TN, result.FP, result.TP, result.FN) == (1, 1, 1, 1)
    assert result.accuracy == 0.0


def test_unsafe_score_sums_the_unsafe_classes():
    probabilities = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]])
    assert unsafe_scores(probabilities, FIVE_CLASS.classes)[0] == pytest.approx(0.6)


def test_other_class_sets_take_the_last_class_as_unsafe():
    result = evaluate_predictions(np.array([[0.2, 0.8]]), np.array([1]), ["airplanes", "motorbikes"])
    assert result.TP == 1 and result.roc_auc is None

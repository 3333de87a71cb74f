"""What an exported model's card measures (`export`): the evidence (validation, test and harmless photos, the
temperature fitted on validation data) and the figures of one exported file run with LiteRT on it: calibration,
the operating point chosen on validation data and checked on test data, test metrics and harmless-photo rates."""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from nsfw_mobilenet.app.litert import LiteRTModel
from nsfw_mobilenet.app.model_card import (
    DECIMALS,
    DECISION_AGREEMENT,
    DECISION_AGREEMENT_AT_FLOAT32_POINT,
    TEMPERATURE_APPLIED,
)
from nsfw_mobilenet.core.taxonomy import default_unsafe_classes
from nsfw_mobilenet.evaluation import calibrate
from nsfw_mobilenet.evaluation.evaluate import evaluate_predictions, per_class_metrics
from nsfw_mobilenet.evaluation.operating_point import (
    OperatingPoint,
    Targets,
    at_prevalence,
    automatic_decision_agreement,
    choose_operating_point,
    decision_shares,
    policy_figures,
    unsafe_probabilities,
)
from nsfw_mobilenet.io import image_cache
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.run_data import RunData


@dataclass(frozen=True)
class Evidence:
    """Labelled images a card's figures come from: calibration and operating point are chosen on
    `validation` (listing 4.4's hold-out), checked on `test` and on folders of harmless photos."""

    calibration: calibrate.Calibration
    validation: image_cache.LoadedImages
    test: image_cache.LoadedImages | None = None
    benign: tuple[image_cache.LoadedImages, ...] = ()
    targets: Targets = Targets()


def gather_evidence(validation_probabilities: np.ndarray, validation: image_cache.LoadedImages,
                    test: image_cache.LoadedImages | None = None, benign: Sequence[image_cache.LoadedImages] = (),
                    targets: Targets = Targets()) -> Evidence:
    """Fit the temperature on the trained model's `validation_probabilities` and keep the images to measure on."""
    fitted_on = f"validation split (listing 4.4), {len(validation.labels)} images"
    calibration = calibrate.calibrate(validation_probabilities, validation.labels, fitted_on)
    return Evidence(calibration, validation, test, tuple(benign), targets)


def evidence_for(model: Any, backbone: str, run_data: RunData, benign_dirs: Sequence[Path | str] = (),
                 targets: Targets = Targets(), benign_limit: int | None = None) -> Evidence:
    """`gather_evidence` for a trained Keras model and its run's data; `benign_dirs` are folders of
    harmless photos (`benign_limit` images each, spread evenly; None: all)."""
    validation_probabilities = predict(model, run_data.validation.images, backbone)
    size = tuple(run_data.validation.images.shape[1:3])
    benign = [image_cache.load_folder(folder, limit=benign_limit, image_size=size) for folder in benign_dirs]
    return gather_evidence(validation_probabilities, run_data.validation, run_data.test, benign, targets)


def _roc_auc(is_unsafe: np.ndarray, unsafe_scores: np.ndarray) -> float | None:
    """ROC AUC of the unsafe side; None unless both sides are present."""
    return float(roc_auc_score(is_unsafe, unsafe_scores)) if is_unsafe.any() and not is_unsafe.all() else None


def _test_metrics(probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                  reference: np.ndarray | None, unsafe: Sequence[int]) -> dict[str, Any]:
    evaluation = evaluate_predictions(probabilities, labels, classes)
    roc_auc = _roc_auc(np.isin(labels, unsafe), unsafe_probabilities(probabilities, unsafe))  # the card's unsafe side
    metrics = {"images": int(len(labels)), "accuracy": evaluation.accuracy, "roc_auc": roc_auc,
               "per_class": per_class_metrics(probabilities, labels, classes),
               "confusion_matrix": evaluation.confusion_matrix,
               "ece": calibrate.expected_calibration_error(probabilities, labels)}
    if reference is not None:
        metrics["float32_top1_agreement"] = float(np.mean(probabilities.argmax(1) == reference.argmax(1)))
    return metrics


def on_card_grid(point: OperatingPoint) -> OperatingPoint:
    """`point` at the card's DECIMALS, rounded so that the targets it was chosen for still hold: the threshold and
    the review band's high end up (fewer images decided unsafe), its low end down (fewer decided safe); the images
    between go to review. An empty band (the threshold alone meets the recall target) stays empty. The card's
    figures are measured at this point, so a scan reproduces them."""
    low, high = point.review_band
    threshold, rounded_high = _on_grid(point.threshold, up=True), _on_grid(high, up=True)
    rounded_low = rounded_high if low == high else _on_grid(low, up=False)
    return replace(point, threshold=threshold, review_band=(rounded_low, rounded_high))


def _on_grid(value: float, *, up: bool) -> float:
    """The number of DECIMALS nearest `value` at or above it (`up`), else at or below it."""
    nearest = round(value, DECIMALS)
    if (nearest < value) if up else (nearest > value):
        return round(nearest + (10 ** -DECIMALS if up else -(10 ** -DECIMALS)), DECIMALS)
    return nearest


def _card_point(validation: np.ndarray, validation_unsafe: np.ndarray, targets: Targets) -> OperatingPoint:
    """The operating point a card states: chosen on the validation unsafe probabilities, on the card's grid."""
    return on_card_grid(choose_operating_point(validation, validation_unsafe, targets))


def _decision_agreements(reference_path: Path | str, reference_test: np.ndarray, test_scores: np.ndarray,
                         point: OperatingPoint, evidence: Evidence, unsafe: Sequence[int]) -> dict[str, Any]:
    """Of the test images the reference (float32) file decides automatically at the point its own card states,
    those this file decides the same way: at this card's point (what an app shipping it does) and at the
    reference's point (the file's own difference, without choosing the point again)."""
    validation = unsafe_probabilities(LiteRTModel(reference_path).predict(evidence.validation.images), unsafe)
    reference_point = _card_point(validation, np.isin(evidence.validation.labels, unsafe), evidence.targets)
    reference_decisions = reference_point.decisions(unsafe_probabilities(reference_test, unsafe))
    return {DECISION_AGREEMENT: automatic_decision_agreement(reference_decisions, point.decisions(test_scores)),
            DECISION_AGREEMENT_AT_FLOAT32_POINT: automatic_decision_agreement(
                reference_decisions, reference_point.decisions(test_scores))}


def _benign_figures(lite: LiteRTModel, folders: Sequence[image_cache.LoadedImages], unsafe: Sequence[int],
                    point: OperatingPoint) -> dict[str, Any]:
    """Decision shares on each folder of harmless photos (`benign`) and on all of them pooled (`benign_all`)."""
    scores = {folder.classes[0]: unsafe_probabilities(lite.predict(folder.images), unsafe) for folder in folders}
    pooled = np.concatenate(list(scores.values()))
    return {"benign": {name: {"images": int(len(folder)), **decision_shares(folder, point)}
                       for name, folder in scores.items()},
            "benign_all": {"images": int(len(pooled)), **decision_shares(pooled, point)}}


def measured_fields(model_path: Path | str, classes: Sequence[str], evidence: Evidence,
                    reference_path: Path | str | None = None,
                    unsafe_classes: Sequence[str] | None = None) -> dict[str, Any]:
    """`calibration`, `operating_point` and `metrics` of one exported file, run with LiteRT on `evidence`.

    `reference_path`: the float32 export, for the top-1 agreement of this file with it; `unsafe_classes`: the
    card's (default: `taxonomy.default_unsafe_classes`).
    Raises `operating_point.OperatingPointError` when the targets cannot be met on validation data.
    """
    unsafe = [list(classes).index(name) for name in unsafe_classes or default_unsafe_classes(classes)]
    lite = LiteRTModel(model_path)
    validation_probabilities = lite.predict(evidence.validation.images)
    validation = unsafe_probabilities(validation_probabilities, unsafe)
    validation_unsafe = np.isin(evidence.validation.labels, unsafe)
    point = _card_point(validation, validation_unsafe, evidence.targets)
    operating_point = {
        "threshold": point.threshold, "review_band": list(point.review_band),
        "target_false_positive_rate": evidence.targets.false_positive_rate,
        "target_recall": evidence.targets.recall, "chosen_on": evidence.calibration.fitted_on,
        "validation": policy_figures(validation, validation_unsafe, point).to_dict()}
    metrics: dict[str, Any] = {}
    measured_on = policy_figures(validation, validation_unsafe, point)
    if evidence.test is not None and len(evidence.test.labels):
        test = lite.predict(evidence.test.images)
        reference = LiteRTModel(reference_path).predict(evidence.test.images) if reference_path else None
        measured_on = policy_figures(unsafe_probabilities(test, unsafe), np.isin(evidence.test.labels, unsafe), point)
        operating_point["test"] = measured_on.to_dict()
        metrics["test"] = _test_metrics(test, evidence.test.labels, classes, reference, unsafe)
        if reference_path:
            metrics["test"].update(_decision_agreements(reference_path, reference, unsafe_probabilities(test, unsafe),
                                                        point, evidence, unsafe))
    operating_point["at_prevalence"] = [at_prevalence(measured_on, p) for p in evidence.targets.prevalences]
    operating_point["at_prevalence_from"] = "test" if "test" in operating_point else "validation"
    if evidence.benign:
        metrics.setdefault("test", {}).update(_benign_figures(lite, evidence.benign, unsafe, point))
    calibration = {**evidence.calibration.to_dict(), "applied": TEMPERATURE_APPLIED,
                   "ece_this_file_validation": calibrate.expected_calibration_error(validation_probabilities,
                                                                                   evidence.validation.labels)}
    return {"calibration": calibration, "operating_point": operating_point, "metrics": metrics}

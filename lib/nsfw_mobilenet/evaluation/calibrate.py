"""Calibration: temperature scaling fitted on validation data, and the expected calibration error.

A fine-tuned MobileNet is over-confident: its softmax says 99 % where it is right 90 % of the time,
so no threshold on it means what it says. Temperature scaling (Guo et al., 2017) divides the logits
by one number T, fitted by maximum likelihood on the validation split (listing 4.4's hold-out, not
the test set); it changes no top-1 decision. The classifier ends in a softmax Dense, whose
log-probabilities are its logits up to a constant, so T is fitted on the saved probabilities and
applied inside the network (`with_temperature`) so that every runtime, `.tflite` included, gets
calibrated probabilities.
"""


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

CALIBRATION_BINS = 15  # the usual ECE binning (Guo et al.)
TEMPERATURE_RANGE = (0.05, 20.0)
SMALLEST_PROBABILITY = 1e-12  # log(0) guard for saturated softmax outputs


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: per confidence bin, the mean confidence, the accuracy and the image count."""

    bin_edges: np.ndarray
    confidence: np.ndarray  # nan for an empty bin
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """Σ (bin share) · |accuracy − confidence| over the non-empty bins."""
        filled = self.counts > 0
        weights = self.counts[filled] / self.counts.sum()
        return float(np.sum(weights * np.abs(self.accuracy[filled] - self.confidence[filled])))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> Reliability:
    """Top-1 confidence against top-1 accuracy in `bins` equal-width bins of (0, 1]."""
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("no images to measure calibration on")
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, confidence, minlength=bins) / counts
        accuracy = np.bincount(which, correct.astype(float), minlength=bins) / counts
    return Reliability(edges, mean_confidence, accuracy, counts)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE of top-1 predictions (15 bins by default)."""
    return reliability(probabilities, labels, bins).expected_calibration_error


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities the network gives once its logits are divided by T."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), SMALLEST_PROBABILITY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def reliability_of_both_forms(splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                               temperature: float) -> dict[str, Reliability]:
    """Reliability diagrams of each split's (probabilities, labels) as trained and divided by `temperature`,
    keyed "<split>, as trained" and "<split>, T = <temperature>" (notebook 07's calibration figure)."""
    diagrams = {}
    for split, (probabilities, labels) in splits.items():
        diagrams[f"{split}, as trained"] = reliability(probabilities, labels)
        diagrams[f"{split}, T = {temperature:.2f}"] = reliability(apply_temperature(probabilities, temperature), labels)
    return diagrams


def _negative_log_likelihood(log_temperature: float, probabilities: np.ndarray, labels: np.ndarray) -> float:
    scaled = apply_temperature(probabilities, float(np.exp(log_temperature)))
    return float(-np.mean(np.log(np.clip(scaled[np.arange(len(labels)), labels], SMALLEST_PROBABILITY, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in `TEMPERATURE_RANGE` that minimises the negative log-likelihood of `labels`."""
    low, high = np.log(TEMPERATURE_RANGE)
    fitted = minimize_scalar(_negative_log_likelihood, bounds=(low, high), method="bounded",
                             args=(np.asarray(probabilities, np.float64), np.asarray(labels)))
    return float(np.exp(fitted.x))


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and the validation ECE before and after it."""

    temperature: float
    ece_before: float
    ece_after: float
    fitted_on: str  # which images, e.g. "validation split (listing 4.4), 126 images"

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "ece_before": self.ece_before, "ece_after": self.ece_after,
                "bins": CALIBRATION_BINS, "fitted_on": self.fitted_on}


def calibrate(validation_probabilities: np.ndarray, labels: np.ndarray, fitted_on: str) -> Calibration:
    """Fit a temperature on validation probabilities and measure the ECE before and after."""
    temperature = fit_temperature(validation_probabilities, labels)
    return Calibration(temperature, expected_calibration_error(validation_probabilities, labels),
                       expected_calibration_error(apply_temperature(validation_probabilities, temperature), labels),
                       fitted_on)


def with_temperature(model: Any, temperature: float) -> Any:
    """A copy of `model` (ending in a softmax Dense) whose logits are divided by `temperature` before the softmax.

    Shares the original's weights; top-1 decisions are unchanged.
    """
    import keras

    classifier = model.layers[-1]
    if not isinstance(classifier, keras.layers.Dense) or classifier.activation is not keras.activations.softmax:
        raise ValueError(f"{model.name}: temperature scaling needs a model ending in a softmax Dense, "
                         f"not {type(classifier).__name__}")
    logits_layer = keras.layers.Dense(classifier.units, name=f"{classifier.name}_logits")  # MobileNetV3 has "logits"
    scaled = keras.layers.Rescaling(1.0 / temperature, name=f"{classifier.name}_temperature")(logits_layer(classifier.input))
    probabilities = keras.layers.Softmax(name=f"{classifier.name}_calibrated")(scaled)
    logits_layer.set_weights(classifier.get_weights())
    return keras.Model(model.inputs, probabilities, name=f"{model.name}_calibrated")


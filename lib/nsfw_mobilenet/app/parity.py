"""How far each exported `.tflite` is from the Keras model it came from, and from the float32 file, on the same
held-out images (the parity report of notebook 07 and the benchmarks)."""


from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.app.export import REFERENCE_VARIANT
from nsfw_mobilenet.app.litert import DEFAULT_THREADS, LiteRTModel
from nsfw_mobilenet.app.model_card import AGREEMENT_TARGET, DECISION_AGREEMENT, read_card
from nsfw_mobilenet.io.inference import predict


@dataclass(frozen=True)
class VariantParity:
    """How far one `.tflite` is from the Keras model it was exported from, on the same images.

    `float32_agreement` compares it with the float32 `.tflite` instead (None when that was not
    exported): what an app switching from listing 2.4's file to a quantized one would notice.
    """

    variant: str
    size_bytes: int
    top1_agreement: float
    float32_agreement: float | None
    max_abs_probability_diff: float
    accuracy: float
    keras_accuracy: float

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def parity_report(keras_model: Any, tflite_paths: Mapping[str, Path | str], images: np.ndarray,
                  labels: np.ndarray, backbone: str, num_threads: int = DEFAULT_THREADS) -> list[VariantParity]:
    """Compare every exported variant with `keras_model`, and with the float32 variant, on held-out uint8 `images`.

    The Keras model gets `backbone`'s preprocessing (as trained); the `.tflite` files get raw pixels,
    since their preprocessing is baked in.
    """
    keras_probabilities = np.asarray(predict(keras_model, images, backbone))
    keras_top1 = keras_probabilities.argmax(axis=1)
    probabilities = {variant: LiteRTModel(path, num_threads).predict(images) for variant, path in tflite_paths.items()}
    reference_top1 = probabilities[REFERENCE_VARIANT].argmax(axis=1) if REFERENCE_VARIANT in probabilities else None
    rows = []
    for variant, path in tflite_paths.items():
        top1 = probabilities[variant].argmax(axis=1)
        rows.append(VariantParity(
            variant=variant,
            size_bytes=os.path.getsize(path),
            top1_agreement=float(np.mean(top1 == keras_top1)),
            float32_agreement=None if reference_top1 is None else float(np.mean(top1 == reference_top1)),
            max_abs_probability_diff=float(np.max(np.abs(probabilities[variant] - keras_probabilities))),
            accuracy=float(np.mean(top1 == labels)),
            keras_accuracy=float(np.mean(keras_top1 == labels)),
        ))
    return rows


def decision_agreements(tflite_paths: Mapping[str, Path | str], figure: str = DECISION_AGREEMENT
                        ) -> dict[str, Mapping[str, Any]]:
    """From each file's model card: of the test images the float32 export decides automatically (at its own card's
    operating point), how many this file decides the same way (`card_evidence`), at its own card's point or
    (`DECISION_AGREEMENT_AT_FLOAT32_POINT`) at float32's. Files whose card has no such figure (float32 itself, or an export given no
    test data) are left out."""
    agreements = {}
    for variant, path in tflite_paths.items():
        measured = (read_card(path) or {}).get("metrics", {}).get("test", {}).get(figure)
        if measured:
            agreements[variant] = measured
    return agreements


def parity_markdown(rows: Sequence[VariantParity], target: float = AGREEMENT_TARGET,
                    decisions: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> str:
    """The parity report as a markdown table (for model cards, notebooks and reports); ✗ marks an
    agreement below `target`, or float32's automatic decisions a file does not all repeat (`decisions`: a column
    name → `decision_agreements`, e.g. at its own card's point and at float32's)."""
    def agreement(value: float | None, goal: float = target) -> str:
        return "–" if value is None else f"{value:.1%}" + (" ✗" if value < goal else "")

    def decided(figure: Mapping[str, Any] | None) -> str:
        return "–" if not figure else (f"{agreement(figure['agreement'], 1.0)} of {figure['images']} "
                                       f"({figure['to_opposite_side']} opposite)")

    columns = dict(decisions or {})
    header = ("| variant | size (MB) | top-1 agreement with Keras | top-1 agreement with float32 | "
              + "".join(f"{name} | " for name in columns) + "max abs prob diff | accuracy | Keras accuracy |")
    lines = [header, "|---|---:|---:|---:|" + "---:|" * len(columns) + "---:|---:|---:|"]
    lines += [f"| {r.variant} | {r.size_mb:.2f} | {agreement(r.top1_agreement)} | {agreement(r.float32_agreement)} | "
              + "".join(f"{decided(figures.get(r.variant))} | " for figures in columns.values())
              + f"{r.max_abs_probability_diff:.4f} | {r.accuracy:.1%} | {r.keras_accuracy:.1%} |" for r in rows]
    return "\n".join(lines) + "\n"

"""TensorFlow Lite export (thesis §2.5, listing 2.4), quantization, model cards and the parity report.

The thesis converted a SavedModel to one float32 `.tflite` (listing 2.4) and left running it on a
phone as future work (§6.2). Here each export is a folder an app developer can drop into an app:

    <out_dir>/<variant>/model.tflite      the network, preprocessing baked in
    <out_dir>/<variant>/labels.txt        one class per line, in output order
    <out_dir>/<variant>/model_card.json   classes, input, preprocessing, calibration, operating point, metrics
    <out_dir>/<variant>/model_card.md     the same as a model card in the usual sections (`model_card`)

Preprocessing is part of the exported graph: every `.tflite` takes RGB pixels 0..255 (float32, or
uint8 for the full-integer variant), so an app resizes to 224×224 and feeds the bitmap. Getting
`preprocess_input` wrong on the device is the most common silent failure of exported MobileNets.

Variants: float32 (listing 2.4), float16 weights, dynamic-range (int8 weights, float activations)
and full integer int8 (activations calibrated on representative training images).

Given labelled data (`--data`), the exported graph divides its logits by a temperature fitted on the
validation split (`calibrate`), and each card carries the operating point chosen there for a target
false-positive rate and recall (`operating_point`), with the figures measured by running that file.

Class names are the user's: the class folders the model was trained on (the results JSON `train` wrote
beside the `.keras`, which also gives the card its backbone, config and weights), else those of `--data`,
or `--classes`. The card names its unsafe classes (`--unsafe-class`; by default the thesis's where the
folders are named like its taxonomies, else the last class, as training counts it), and `scan` reads them.
"""


from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from nsfw_mobilenet.app.litert import DEFAULT_THREADS, LiteRTModel
from nsfw_mobilenet.app.model_card import (
    AGREEMENT_TARGET,
    CARD_FILE,
    CARD_MARKDOWN_FILE,
    DECIMALS,
    LABELS_FILE,
    TEMPERATURE_APPLIED,
    build_model_card,
    model_card_markdown,
    training_result,
)
from nsfw_mobilenet.core import backbones, native_output
from nsfw_mobilenet.core.configs import FINAL_CONFIG_NAME, FINAL_TABLE
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.core.taxonomy import checked_unsafe_classes, default_unsafe_classes
from nsfw_mobilenet.evaluation import calibrate
from nsfw_mobilenet.evaluation.evaluate import evaluate_predictions, per_class_metrics
from nsfw_mobilenet.evaluation.operating_point import (
    DEFAULT_PREVALENCES,
    DEFAULT_TARGET_FALSE_POSITIVE_RATE,
    DEFAULT_TARGET_RECALL,
    OperatingPoint,
    Targets,
    at_prevalence,
    choose_operating_point,
    decision_shares,
    policy_figures,
    unsafe_probabilities,
)
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.io import image_cache, image_files
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.model_files import check_keras_model_file
from nsfw_mobilenet.io.run_data import RunData, load_run_data

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
MODEL_FILE = "model.tflite"
REPRESENTATIVE_LIMIT = 512  # int8 calibration images: fewer (200) cost V3-Small int8 a few points of agreement
REFERENCE_VARIANT = "float32"  # listing 2.4's file: what the quantized variants are compared with
# int8 with the multiplications left in float (`float_ops=INT8_FLOAT_MULTIPLICATIONS`): the squeeze-excite
# products are where V3-Small's int8 loses agreement with float32, and keeping them float costs no size
# and is faster on x86 (XNNPACK's float multiply beats its int8 one, which requantizes; every op stays in
# XNNPACK); notebook 07 and benchmarks/op_profile.py measure the forms.
INT8_FLOAT_MULTIPLICATIONS = ("MUL",)
# Every int8 file keeps a MobileNetV3's hard-swish as one HARD_SWISH op computed in float (dequantize,
# hard-swish, quantize: all three run in XNNPACK). LiteRT's XNNPACK runs HARD_SWISH only on float tensors:
# in int8 each of V3-Small's 19 fell back to the builtin kernel and cut the graph into 22 partitions (4×
# slower than float32); written as int8 arithmetic, (x/6)·relu6(x+3), it stayed in XNNPACK but took three
# requantizing ops per activation, left int8 barely faster than float32 and cost the most agreement.
INT8_FLOAT_HARD_SWISH = ("HARD_SWISH",)

# keras.applications preprocess_input as an affine map of 0..255 pixels: (scale, offset), or None
# when the network rescales itself (V3 models contain a Rescaling layer).
PIXEL_SCALING: dict[str, tuple[float, float] | None] = {
    "mobilenet": (1 / 127.5, -1.0),
    "mobilenet_v2": (1 / 127.5, -1.0),
    "mobilenet_v3": None,
}
HARD_SWISH_NAMES = ("hard_swish", "hard_silu")  # Keras 3 stores MobileNetV3's hard_swish as hard_silu
PREPROCESSING_TEXT = {
    None: "none outside the graph: the network rescales 0..255 itself (MobileNetV3 Rescaling layer)",
}


@dataclass(frozen=True)
class ExportedModel:
    """The files of one exported variant."""

    variant: str
    path: Path
    labels_path: Path
    card_path: Path
    card_markdown_path: Path


def pixel_scaling_for(backbone: str) -> tuple[float, float] | None:
    """(scale, offset) that turns 0..255 pixels into what `backbone` was trained on (§4.1)."""
    return PIXEL_SCALING[backbones.get_backbone(backbone).preprocess_module]


def describe_scaling(scaling: tuple[float, float] | None) -> str:
    if scaling is None:
        return PREPROCESSING_TEXT[None]
    scale, offset = scaling
    return f"baked into the graph: x * {scale:.8g} {'-' if offset < 0 else '+'} {abs(offset):g} (input pixels 0..255)"


def raw_pixel_model(model: Any, scaling: tuple[float, float] | None) -> Any:
    """`model` behind a Rescaling layer, so that it takes 0..255 pixels (None: unchanged)."""
    if scaling is None:
        return model
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    scaled = keras.layers.Rescaling(scale=scaling[0], offset=scaling[1], name="preprocess_input")(inputs)
    return keras.Model(inputs, model(scaled), name=f"{model.name}_raw_pixels")


def hard_swish_layers(model: Any) -> list[Any]:
    """The hard-swish Activation layers of `model`, nested models included."""
    import keras

    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found += hard_swish_layers(layer)
        elif isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in HARD_SWISH_NAMES:
            found.append(layer)
    return found


def at_batch_one(model: Any) -> Any:
    """`model` behind an input of batch size 1 (a phone classifies one bitmap per call).

    Why: with Keras's open batch dimension the converter computes the head's reshape target at run
    time (SHAPE, STRIDED_SLICE, PACK, RESHAPE), ops XNNPACK leaves to LiteRT's builtin kernels, so
    the graph is cut into two or three XNNPACK partitions; a fixed batch makes the reshape static.
    """
    import keras

    inputs = keras.Input(batch_shape=(1, *model.input_shape[1:]))
    return keras.Model(inputs, model(inputs), name=model.name)


def _converter(model: Any, variant: str, representative_images: np.ndarray | None) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(at_batch_one(model))
    if variant == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise ValueError("int8 export needs representative_images (uint8 [N,H,W,3] from the training set)")
        calibration = np.asarray(representative_images[:REPRESENTATIVE_LIMIT], dtype=np.float32)
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8  # the bitmap's bytes, no conversion on the device
    elif variant != "dynamic_range":
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    return converter


def convert(model: Any, variant: str, representative_images: np.ndarray | None = None,
            float_ops: Sequence[str] = ()) -> bytes:
    """The `.tflite` flatbuffer of a raw-pixel Keras model (listing 2.4, via from_keras_model).

    `float_ops` (int8 only): TFLite op types, e.g. `INT8_FLOAT_MULTIPLICATIONS`, kept in float between
    dequantize/quantize ops; the input stays uint8.
    """
    if float_ops and variant != "int8":
        raise ValueError(f"float_ops applies to the int8 variant only, not {variant!r}")
    converter = _converter(model, variant, representative_images)
    if float_ops:
        converter._experimental_calibrate_only = True  # quantized below, with the float ops left out
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)  # "Assets written to <tmp>" for each conversion
    try:
        # Keras prints the traced signature (stdout), the converter "fully_quantize: ..." (native stderr)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
                native_output.native_stderr_discarded():
            warnings.filterwarnings("ignore", "Statistics for quantized inputs")  # uint8 input: scale 1, no stats needed
            flatbuffer = converter.convert()
            if float_ops:
                flatbuffer = _quantize_except(flatbuffer, float_ops, converter._experimental_disable_per_channel)
            return flatbuffer
    finally:
        tf_logger.setLevel(level)


def _quantize_except(calibrated: bytes, float_ops: Sequence[str], disable_per_channel: bool) -> bytes:
    """What `TFLiteConverter.convert()` does after calibration, with `float_ops` denylisted (the
    public `QuantizationDebugger` route cannot keep the uint8 input)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert

    return tflite_convert.mlir_quantize(calibrated, disable_per_channel=disable_per_channel,
                                        input_data_type=tf.uint8, output_data_type=tf.float32,
                                        denylisted_ops=list(float_ops))


def _silent(step: str) -> None:
    """The library's progress: none (the command prints each step)."""


def export_tflite(model: Any, out_dir: Path | str, variant: str, *, classes: Sequence[str],
                  pixel_scaling: tuple[float, float] | None,
                  representative_images: np.ndarray | None = None,
                  model_card: Mapping[str, Any] | None = None, float_ops: Sequence[str] = (),
                  evidence: Evidence | None = None, reference_path: Path | None = None,
                  unsafe_classes: Sequence[str] | None = None, say: Callable[[str], None] = _silent) -> ExportedModel:
    """Write `<out_dir>/<variant>/` with the `.tflite`, labels and model card.

    `model` takes preprocessed input (as trained); `pixel_scaling` (see `pixel_scaling_for`) is baked
    in so the file takes 0..255 pixels. `unsafe_classes`: what the card and its figures count as unsafe
    (default: `taxonomy.default_unsafe_classes`); `say` is told each step (the command prints it).
    `representative_images` (uint8 training images) calibrate int8;
    `float_ops` keeps those op types float in it (`INT8_FLOAT_MULTIPLICATIONS`: closer to float32, faster);
    hard-swish is always kept float (`INT8_FLOAT_HARD_SWISH`).
    With `evidence`, the temperature fitted on validation data is applied inside the graph and the card
    carries the operating point and metrics measured by running the written file
    (`model_card.measured_fields`; `reference_path`: the float32 export, for top-1 agreement).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if model.output_shape[-1] != len(classes):
        raise ValueError(f"model has {model.output_shape[-1]} outputs but {len(classes)} classes were given")
    unsafe = checked_unsafe_classes(classes, unsafe_classes or default_unsafe_classes(classes))
    folder = Path(out_dir) / variant
    folder.mkdir(parents=True, exist_ok=True)
    network = calibrate.with_temperature(model, evidence.calibration.temperature) if evidence else model
    int8_notes = _int8_notes(model, float_ops) if variant == "int8" else {}
    say(f"{variant}: converting to TensorFlow Lite")
    flatbuffer = convert(raw_pixel_model(network, pixel_scaling), variant, representative_images,
                         _int8_float_ops(model, float_ops) if variant == "int8" else ())
    exported = ExportedModel(variant, folder / MODEL_FILE, folder / LABELS_FILE, folder / CARD_FILE,
                             folder / CARD_MARKDOWN_FILE)
    exported.path.write_bytes(flatbuffer)
    exported.labels_path.write_text("\n".join(classes) + "\n")
    if evidence:
        say(f"{variant}: choosing the operating point and measuring the file on the data"
            + (" (and its agreement with float32)" if reference_path else ""))
    measured = measured_fields(exported.path, classes, evidence, reference_path, unsafe) if evidence else {}
    say(f"{variant}: writing the model card")
    card = build_model_card(variant, classes, model.input_shape[1:], describe_scaling(pixel_scaling),
                            len(flatbuffer), {**int8_notes, **measured, **(model_card or {})}, unsafe)
    exported.card_path.write_text(json.dumps(card, indent=2) + "\n")
    exported.card_markdown_path.write_text(model_card_markdown(card))
    return exported


def _int8_float_ops(model: Any, float_ops: Sequence[str] = ()) -> tuple[str, ...]:
    """The op types an int8 file of `model` keeps in float: `float_ops`, and HARD_SWISH if it has hard-swish."""
    return tuple(dict.fromkeys([*float_ops, *(INT8_FLOAT_HARD_SWISH if hard_swish_layers(model) else ())]))


def _int8_notes(model: Any, float_ops: Sequence[str]) -> dict[str, Any]:
    """What the int8 file changes in the graph, for its card."""
    notes: dict[str, Any] = {}
    if hard_swish_layers(model):
        notes["hard_swish"] = ("kept as one HARD_SWISH op computed in float (LiteRT's XNNPACK runs it only in float); "
                               "faster and closer to float32 than int8 arithmetic")
    if float_ops:
        notes["float_ops"] = list(float_ops)
    return notes


def export_variants(model: Any, out_dir: Path | str, variants: Sequence[str], **options: Any) -> dict[str, ExportedModel]:
    """`export_tflite` for each of `variants` (same `options`), by variant name; the cards of the
    others compare them with the float32 file when it is among them (exported first)."""
    exported: dict[str, ExportedModel] = {}
    for variant in sorted(variants, key=lambda name: name != REFERENCE_VARIANT):
        reference = exported[REFERENCE_VARIANT].path if REFERENCE_VARIANT in exported else None
        exported[variant] = export_tflite(model, out_dir, variant, reference_path=reference, **options)
    return {variant: exported[variant] for variant in variants}


# ---------------------------------------------------------------- what the card measures


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
    point = on_card_grid(choose_operating_point(validation, validation_unsafe, evidence.targets))
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
    operating_point["at_prevalence"] = [at_prevalence(measured_on, p) for p in evidence.targets.prevalences]
    operating_point["at_prevalence_from"] = "test" if "test" in operating_point else "validation"
    if evidence.benign:
        metrics.setdefault("test", {})["benign"] = {
            folder.classes[0]: {"images": int(len(folder.labels)),
                                **decision_shares(unsafe_probabilities(lite.predict(folder.images), unsafe), point)}
            for folder in evidence.benign}
    calibration = {**evidence.calibration.to_dict(), "applied": TEMPERATURE_APPLIED,
                   "ece_this_file_validation": calibrate.expected_calibration_error(validation_probabilities,
                                                                                   evidence.validation.labels)}
    return {"calibration": calibration, "operating_point": operating_point, "metrics": metrics}


# ---------------------------------------------------------------- parity report


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


def parity_markdown(rows: Sequence[VariantParity], target: float = AGREEMENT_TARGET) -> str:
    """The parity report as a markdown table (for model cards, notebooks and reports); ✗ marks an
    agreement below `target`."""
    def agreement(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}" + (" ✗" if value < target else "")

    header = ("| variant | size (MB) | top-1 agreement with Keras | top-1 agreement with float32 | "
              "max abs prob diff | accuracy | Keras accuracy |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.variant} | {r.size_mb:.2f} | {agreement(r.top1_agreement)} | {agreement(r.float32_agreement)} | "
              f"{r.max_abs_probability_diff:.4f} | {r.accuracy:.1%} | {r.keras_accuracy:.1%} |" for r in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def representative_images(data_dir: Path | str, count: int = REPRESENTATIVE_LIMIT,
                          image_size: tuple[int, int] = image_files.IMAGE_SIZE) -> np.ndarray:
    """Up to `count` training images spread over the classes of `data_dir` (its train/ split if any)."""
    items = image_files.list_images(data_dir, "train" if image_files.has_split_folders(data_dir) else None)
    return image_cache.load_images(image_cache.spread_evenly(items, count), sorted({item.label for item in items}), image_size=image_size,
                            progress=False).images


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write TFLite variants with labels and model cards (listing 2.4)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path,
                        help="trained .keras model; the results JSON `train` wrote beside it (same name) gives its "
                             "backbone, class folders, config and weights")
    parser.add_argument("--backbone", choices=sorted(backbones.BACKBONES),
                        help="its backbone, for the preprocessing baked into the graph (default: the one in the "
                             "results JSON beside the model)")
    parser.add_argument("--out", required=True, type=Path, help="one sub-folder per variant is written here")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="which TFLite files to write (default: all; int8 needs --data)")
    parser.add_argument("--data", type=Path,
                        help="the training data root (train/ and test/): int8 calibration images, and the validation "
                             "split (listing 4.4) the temperature and operating point are chosen on")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="class names in output order (default: the class folders the model was trained on, from "
                             "the results JSON beside it, else those of --data)")
    parser.add_argument("--unsafe-class", action="append", metavar="NAME",
                        help="a class the card, its figures and `scan` count as unsafe; repeat it for more (default: "
                             "the thesis's where the classes are normal/sexual or its five classes, else the last "
                             "class, as training counts it)")
    parser.add_argument("--target-false-positive-rate", type=float, default=DEFAULT_TARGET_FALSE_POSITIVE_RATE,
                        help="threshold: the lowest with at most this share of safe validation images decided "
                             "unsafe (default %(default)s)")
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL,
                        help="review band: from the highest threshold keeping at least this share of unsafe "
                             "validation images out of 'safe' (default %(default)s)")
    parser.add_argument("--prevalence", type=float, action="append", metavar="P",
                        help="a share of unsafe images the app will see, at which the card gives the precision of "
                             "its unsafe decisions and the share sent to review (repeatable; default "
                             f"{' '.join(map(str, DEFAULT_PREVALENCES))})")
    parser.add_argument("--benign", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of harmless photos: the card reports the share flagged or sent to review "
                             "(repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=run)


def _results_name(model_path: Path | str) -> str:
    return Path(model_path).with_suffix(".json").name


def origin_fields(result: RunResult | None, model_path: Path | str, data: Path | None) -> dict[str, Any]:
    """What a card says about where the model comes from: the results JSON `train` wrote beside it (weights,
    config, training data, the Keras model's test accuracy), else only what the command was given."""
    if result is None:
        unknown = f"unknown (no {_results_name(model_path)} beside the model)"
        return {"weights": unknown, "config": unknown, "training_data": str(data) if data else "not given"}
    config = result.config
    name = FINAL_CONFIG_NAME if config.table == FINAL_TABLE else f"table_{config.table}/row_{config.row:02d}"
    settings = ", ".join(f"{key} {value}" for key, value in config.to_dict().items()
                         if key not in ("table", "row", "seed"))
    smoke = " (SMOKE run)" if result.smoke else ""
    return {"weights": result.weights_name, "config": f"{name}, seed {config.seed}: {settings}",
            "training_data": f"{result.data.get('dir', 'folder not recorded')}: class folders "
                             f"{result.data.get('classes')}, images {result.data.get('counts')}{smoke}",
            "keras_test_accuracy": result.test.accuracy if result.test else None}


def _backbone(given: str | None, result: RunResult | None, model_path: Path) -> str:
    """--backbone, else the one the results JSON beside the model names; they must agree."""
    trained = result.config.backbone if result else None
    if given and trained and given != trained:
        raise ValueError(f"--backbone {given}, but {result.path} says {model_path.name} was trained from {trained}: "
                         "drop --backbone")
    if not (given or trained):
        raise ValueError(f"{model_path}: its backbone is unknown (no {_results_name(model_path)} beside it): "
                         "pass --backbone")
    return given or trained


def _classes(given: Sequence[str] | None, result: RunResult | None, run_data: RunData | None,
             model_path: Path) -> list[str]:
    """--classes, else the class folders the model was trained on (results JSON), else those of --data: the
    user's names, never the thesis's unless the folders are named so."""
    classes = given or (result and result.data.get("classes")) or (run_data and run_data.classes)
    if not classes:
        raise ValueError(f"{model_path}: its class names are unknown (no {_results_name(model_path)} beside it and "
                         "no --data): pass --classes in output order")
    return list(classes)


def _step(message: str) -> None:
    print(f"nsfw-mobilenet export: {message}", file=sys.stderr, flush=True)


def _checked_targets(args: argparse.Namespace) -> Targets:
    """Usage errors found before anything is loaded."""
    if "int8" in args.variants and args.data is None:
        raise ValueError("int8 needs calibration images: pass --data with the training folder")
    if args.benign and args.data is None:
        raise ValueError("--benign is measured at the operating point chosen on --data: pass --data too")
    return Targets(args.target_false_positive_rate, args.target_recall, tuple(args.prevalence or DEFAULT_PREVALENCES))


def run(args: argparse.Namespace) -> int:
    say = _silent if args.quiet else _step
    native_output.import_tensorflow_quietly()  # its native start-up lines are not this command's messages
    import keras

    try:
        targets = _checked_targets(args)
        check_keras_model_file(args.model)
        result = training_result(args.model)
        backbone = _backbone(args.backbone, result, args.model)
        say(f"loading {args.model}")
        model = keras.models.load_model(args.model, compile=False)
        size = tuple(model.input_shape[1:3])
        if args.data:
            say(f"reading {args.data} (validation and test splits, int8 calibration images)")
        run_data = load_run_data(args.data, progress=False, image_size=size) if args.data else None
        classes = _classes(args.classes, result, run_data, args.model)
        unsafe = checked_unsafe_classes(classes, args.unsafe_class or default_unsafe_classes(classes))
        representative = representative_images(args.data, image_size=size) if args.data else None
        if run_data:
            say("fitting the temperature on the validation split")
        evidence = evidence_for(model, backbone, run_data, args.benign, targets) if run_data else None
        card = {"backbone": backbone, "source_model": str(args.model), **origin_fields(result, args.model, args.data)}
        exported = export_variants(model, args.out, args.variants, classes=classes, unsafe_classes=unsafe,
                                   pixel_scaling=pixel_scaling_for(backbone), representative_images=representative,
                                   model_card=card, evidence=evidence, say=say)
    except (ValueError, OSError) as error:  # OperatingPointError is a ValueError
        print(f"nsfw-mobilenet export: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for variant in exported.values():
        print(f"{variant.path} ({variant.path.stat().st_size / 1e6:.2f} MB)")
    return EXIT_OK

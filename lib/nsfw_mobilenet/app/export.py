"""TensorFlow Lite export (thesis §2.5, listing 2.4), quantization and model cards; what a card measures is
`card_evidence`, the parity report `parity`, the command `export_command`.

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

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.app.card_evidence import Evidence, measured_fields
from nsfw_mobilenet.app.model_card import (
    CARD_FILE,
    CARD_MARKDOWN_FILE,
    LABELS_FILE,
    build_model_card,
    model_card_markdown,
)
from nsfw_mobilenet.core import backbones, native_output
from nsfw_mobilenet.core.taxonomy import checked_unsafe_classes, default_unsafe_classes
from nsfw_mobilenet.evaluation import calibrate
from nsfw_mobilenet.io import image_cache, image_files

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
MODEL_FILE = "model.tflite"
REPRESENTATIVE_LIMIT = 512  # int8 calibration images: fewer (200) cost V3-Small int8 a few points of agreement
REFERENCE_VARIANT = "float32"  # listing 2.4's file: what the quantized variants are compared with
# int8 with the multiplications left in float (`float_ops=INT8_FLOAT_MULTIPLICATIONS`): the squeeze-excite
# products are where V3-Small's int8 loses agreement with float32, and keeping them float costs no size
# and is faster on x86 (XNNPACK's float multiply beats its int8 one, which requantizes; every op stays in
# XNNPACK); notebook 07 and benchmarks/op_profile.py measure the forms.
INT8_FLOAT_MULTIPLICATIONS = ("MUL",)
# ... and the softmax in float too: an int8 softmax outputs probabilities in steps of 1/256, coarser than the low
# end of a review band chosen for 99 % recall (0.004-0.009 on the open-world proxy), so the int8 file's band starts
# a step lower and sends more images to review than float32's (notebook 07's parity section).
INT8_FLOAT_MULTIPLICATIONS_AND_SOFTMAX = ("MUL", "SOFTMAX")
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


def no_progress(step: str) -> None:
    """The library's progress: none (the command prints each step)."""


def export_tflite(model: Any, out_dir: Path | str, variant: str, *, classes: Sequence[str],
                  pixel_scaling: tuple[float, float] | None,
                  representative_images: np.ndarray | None = None,
                  model_card: Mapping[str, Any] | None = None, float_ops: Sequence[str] = (),
                  evidence: Evidence | None = None, reference_path: Path | None = None,
                  unsafe_classes: Sequence[str] | None = None, say: Callable[[str], None] = no_progress) -> ExportedModel:
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


def representative_images(data_dir: Path | str, count: int = REPRESENTATIVE_LIMIT,
                          image_size: tuple[int, int] = image_files.IMAGE_SIZE) -> np.ndarray:
    """Up to `count` training images spread over the classes of `data_dir` (its train/ split if any)."""
    items = image_files.list_images(data_dir, "train" if image_files.has_split_folders(data_dir) else None)
    return image_cache.load_images(image_cache.spread_evenly(items, count), sorted({item.label for item in items}), image_size=image_size,
                            progress=False).images

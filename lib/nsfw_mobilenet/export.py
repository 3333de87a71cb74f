"""TensorFlow Lite export (thesis §2.5, listing 2.4), quantization, model cards and the parity report.

The thesis converted a SavedModel to one float32 `.tflite` (listing 2.4) and left running it on a
phone as future work (§6.2). Here each export is a folder an app developer can drop into an app:

    <out_dir>/<variant>/model.tflite      the network, preprocessing baked in
    <out_dir>/<variant>/labels.txt        one class per line, in output order
    <out_dir>/<variant>/model_card.json   classes, input, preprocessing, thresholds, data, metrics, versions
    <out_dir>/<variant>/model_card.md     the same, for people

Preprocessing is part of the exported graph: every `.tflite` takes RGB pixels 0..255 (float32, or
uint8 for the full-integer variant), so an app resizes to 224×224 and feeds the bitmap. Getting
`preprocess_input` wrong on the device is the most common silent failure of exported MobileNets.

Variants: float32 (listing 2.4), float16 weights, dynamic-range (int8 weights, float activations)
and full integer int8 (activations calibrated on representative training images).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import os
import platform
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import nsfw_mobilenet
from nsfw_mobilenet.data import PREPROCESS_MODULES
from nsfw_mobilenet.experiments import load_result, weights_name
from nsfw_mobilenet.taxonomy import TAXONOMIES, taxonomy_for_classes

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
CARD_FILE = "model_card.json"
CARD_MARKDOWN_FILE = "model_card.md"
REPRESENTATIVE_LIMIT = 512  # int8 calibration images: fewer (200) cost V3-Small int8 a few points of agreement
DEFAULT_THRESHOLD = 0.5
DEFAULT_REVIEW_BAND = (0.3, 0.7)  # §6.2: "less than 70% of possibilities" → human review
AGREEMENT_TARGET = 0.99  # top-1 agreement of every variant with float32 (and Keras) the export must reach
REFERENCE_VARIANT = "float32"  # listing 2.4's file: what the quantized variants are compared with
# int8 with the multiplications left in float (`float_ops=INT8_FLOAT_MULTIPLICATIONS`): the hard-swish and
# squeeze-excite products are where V3-Small's int8 loses most of its agreement with float32, and keeping
# them float costs no size and no speed (every op stays in XNNPACK); notebook 07 measures both forms.
INT8_FLOAT_MULTIPLICATIONS = ("MUL",)

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
    if backbone not in PREPROCESS_MODULES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {sorted(PREPROCESS_MODULES)}")
    return PIXEL_SCALING[PREPROCESS_MODULES[backbone]]


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


def decompose_hard_swish(model: Any) -> Any:
    """A copy of `model` whose hard-swish activations are written as (x / 6) · relu6(x + 3).

    Why (int8 on x86/ARM CPUs): the converter fuses Keras's hard-swish into one HARD_SWISH op, and
    LiteRT's XNNPACK delegate accepts HARD_SWISH only with float tensors. In a full-integer
    MobileNetV3 each of its 19 (V3-Small) int8 HARD_SWISH ops falls back to the builtin kernel and
    cuts the XNNPACK graph into ~22 partitions, which is why int8 V3 ran slower than float32. This
    form is not pattern-matched into HARD_SWISH; its MUL/ADD ops run in XNNPACK's int8 kernels.
    The function is the same (the float model's outputs are unchanged); int8 adds one requantization.
    """
    import keras

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, keras.layers.Activation) and config["activation"] in HARD_SWISH_NAMES:
            return keras.layers.Lambda(lambda x: (x * (1 / 6)) * keras.ops.relu6(x + 3.0), name=layer.name)
        return layer.__class__.from_config(config)

    if not hard_swish_layers(model):
        return model
    decomposed = keras.models.clone_model(model, clone_function=clone, recursive=True)
    decomposed.set_weights(model.get_weights())
    return decomposed


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


def _converter(model: Any, variant: str, representative_images: np.ndarray | None) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
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
                nsfw_mobilenet.native_stderr_discarded():
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


def library_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf
    from importlib.metadata import version

    return {
        "nsfw_mobilenet": nsfw_mobilenet.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": version("ai-edge-litert"),
        "python": platform.python_version(),
    }


def build_model_card(variant: str, classes: Sequence[str], input_shape: Sequence[int],
                     scaling: tuple[float, float] | None, size_bytes: int,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything an app developer needs to use the file correctly; `extra` adds or overrides fields
    such as `backbone`, `training_data`, `metrics`, `thresholds`."""
    try:
        unsafe = sorted(taxonomy_for_classes(list(classes)).unsafe_classes)
    except ValueError:
        unsafe = []
    height, width = input_shape[0], input_shape[1]
    card: dict[str, Any] = {
        "format": "tflite",
        "variant": variant,
        "classes": list(classes),
        "unsafe_classes": unsafe,
        "input": {
            "shape": [1, height, width, 3],
            "dtype": "uint8" if variant == "int8" else "float32",
            "pixels": "RGB, 0..255, resized (squashed, bilinear) to the input size",
        },
        "output": {"dtype": "float32", "meaning": "softmax probabilities in the order of `classes`"},
        "preprocessing": describe_scaling(scaling),
        "thresholds": {"unsafe": DEFAULT_THRESHOLD, "review_band": list(DEFAULT_REVIEW_BAND),
                       "rule": "unsafe probability = sum over unsafe classes; review when it falls in the band"},
        "training_data": "not given",
        "metrics": {},
        "size_bytes": size_bytes,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    card.update(extra or {})
    return card


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """A short human-readable card; the JSON is the source of truth."""
    lines = [f"# Model card: {card.get('backbone', 'model')} ({card['variant']})", ""]
    for key, value in card.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"- **{key}**: {shown}")
    return "\n".join(lines) + "\n"


def export_tflite(model: Any, out_dir: Path | str, variant: str, *, classes: Sequence[str],
                  pixel_scaling: tuple[float, float] | None,
                  representative_images: np.ndarray | None = None,
                  model_card: Mapping[str, Any] | None = None, float_ops: Sequence[str] = ()) -> ExportedModel:
    """Write `<out_dir>/<variant>/` with the `.tflite`, labels and model card.

    `model` takes preprocessed input (as trained); `pixel_scaling` (see `pixel_scaling_for`) is baked
    in so the file takes 0..255 pixels. `representative_images` (uint8 training images) calibrate int8;
    `float_ops` keeps those op types float in it (`INT8_FLOAT_MULTIPLICATIONS`: closer to float32, as fast).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if model.output_shape[-1] != len(classes):
        raise ValueError(f"model has {model.output_shape[-1]} outputs but {len(classes)} classes were given")
    folder = Path(out_dir) / variant
    folder.mkdir(parents=True, exist_ok=True)
    network = decompose_hard_swish(model) if variant == "int8" else model
    flatbuffer = convert(raw_pixel_model(network, pixel_scaling), variant, representative_images,
                         float_ops if variant == "int8" else ())
    exported = ExportedModel(variant, folder / MODEL_FILE, folder / LABELS_FILE, folder / CARD_FILE,
                             folder / CARD_MARKDOWN_FILE)
    exported.path.write_bytes(flatbuffer)
    exported.labels_path.write_text("\n".join(classes) + "\n")
    notes = {"hard_swish": "written as (x/6)*relu6(x+3) so LiteRT's XNNPACK runs it in int8"} if network is not model else {}
    if variant == "int8" and float_ops:
        notes["float_ops"] = list(float_ops)
    card = build_model_card(variant, classes, model.input_shape[1:], pixel_scaling, len(flatbuffer),
                            {**notes, **(model_card or {})})
    exported.card_path.write_text(json.dumps(card, indent=2) + "\n")
    exported.card_markdown_path.write_text(model_card_markdown(card))
    return exported


def export_variants(model: Any, out_dir: Path | str, variants: Sequence[str], **options: Any) -> dict[str, ExportedModel]:
    """`export_tflite` for each of `variants` (same `options`), by variant name."""
    return {variant: export_tflite(model, out_dir, variant, **options) for variant in variants}


def default_classes(num_outputs: int) -> list[str]:
    """Without labels.txt, a model with 2 or 5 outputs is read in the thesis's class order."""
    matches = [t.classes for t in TAXONOMIES.values() if t.num_classes == num_outputs]
    if not matches:
        raise ValueError(f"the model has {num_outputs} outputs, which matches no taxonomy; pass the class names")
    return list(matches[0])


def read_labels(model_path: Path | str) -> list[str] | None:
    """Classes of an exported model, from labels.txt (or model_card.json) next to it; None if neither."""
    folder = Path(model_path).parent
    if (folder / LABELS_FILE).exists():
        return [line.strip() for line in (folder / LABELS_FILE).read_text().splitlines() if line.strip()]
    if (folder / CARD_FILE).exists():
        return list(json.loads((folder / CARD_FILE).read_text())["classes"])
    return None


# ---------------------------------------------------------------- running .tflite with LiteRT


class LiteRTModel:
    """A `.tflite` classifier run with LiteRT at batch 1: uint8 pixels in, float probabilities out.

    Handles quantized inputs and outputs from the tensors' own (scale, zero point), so float and
    int8 exports are called the same way.
    """

    def __init__(self, path: Path | str, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        with nsfw_mobilenet.native_stderr_discarded():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    @property
    def num_classes(self) -> int:
        return int(self._output["shape"][-1])

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        scale, zero_point = self._input["quantization"]
        if np.issubdtype(dtype, np.floating):
            return image.astype(dtype)[None]
        values = image.astype(np.float32) / scale + zero_point if scale else image
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)[None]

    def invoke(self, image: np.ndarray) -> np.ndarray:
        """Probabilities for one uint8 [H, W, 3] image."""
        self.interpreter.set_tensor(self._input["index"], self._quantize(image))
        self.interpreter.invoke()
        output = self.interpreter.get_tensor(self._output["index"])[0]
        scale, zero_point = self._output["quantization"]
        if not np.issubdtype(output.dtype, np.floating):
            output = (output.astype(np.float32) - zero_point) * scale
        return output.astype(np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, H, W, 3], one invocation each (batch 1, as on a phone)."""
        return np.stack([self.invoke(image) for image in images]) if len(images) else np.zeros((0, self.num_classes))


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
                  labels: np.ndarray, preprocess: Callable[[np.ndarray], np.ndarray],
                  num_threads: int = 1) -> list[VariantParity]:
    """Compare every exported variant with `keras_model`, and with the float32 variant, on held-out uint8 `images`.

    `preprocess` is what the Keras model expects (e.g. `data.preprocess_for(backbone)`); the
    `.tflite` files get raw pixels, since their preprocessing is baked in.
    """
    keras_probabilities = np.asarray(
        keras_model.predict(preprocess(images.astype(np.float32)), verbose=0, batch_size=32))
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
                          image_size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Up to `count` training images spread over the classes of `data_dir` (its train/ split if any)."""
    from nsfw_mobilenet import data

    items = data.list_images(data_dir, "train" if data.has_split_folders(data_dir) else None)
    chosen = [items[i] for i in np.linspace(0, len(items) - 1, min(count, len(items))).astype(int)]
    return data.load_images(chosen, sorted({item.label for item in items}), image_size=image_size,
                            progress=False).images


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write TFLite variants with labels and model cards (listing 2.4)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="trained .keras model")
    parser.add_argument("--backbone", required=True, help="its backbone, for the preprocessing baked into the graph")
    parser.add_argument("--out", required=True, type=Path, help="one sub-folder per variant is written here")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--data", type=Path, help="training data root: int8 calibration images (needed for int8)")
    parser.add_argument("--classes", nargs="+", help="class names in output order (default: the thesis taxonomy)")
    parser.set_defaults(func=run)


def trained_from(model_path: Path | str) -> str:
    """The weights a `.keras` model was fine-tuned from, read from the results JSON `train` writes beside it."""
    results = Path(model_path).with_suffix(".json")
    if not results.exists():
        return f"unknown (no {results.name} beside the model)"
    return weights_name(load_result(results))


def run(args: argparse.Namespace) -> int:
    import keras

    try:
        scaling = pixel_scaling_for(args.backbone)
        if "int8" in args.variants and args.data is None:
            raise ValueError("int8 needs calibration images: pass --data with the training folder")
        model = keras.models.load_model(args.model, compile=False)
        classes = args.classes or default_classes(int(model.output_shape[-1]))
        calibration = representative_images(args.data, image_size=model.input_shape[1:3]) if args.data else None
    except (ValueError, OSError, FileNotFoundError) as error:
        print(f"nsfw-mobilenet export: error: {error}", file=sys.stderr)
        return 2
    card = {"backbone": args.backbone, "source_model": str(args.model), "weights": trained_from(args.model),
            "training_data": str(args.data) if args.data else "not given"}
    for variant in args.variants:
        exported = export_tflite(model, args.out, variant, classes=classes, pixel_scaling=scaling,
                                 representative_images=calibration, model_card=card)
        print(f"{exported.path} ({exported.path.stat().st_size / 1e6:.2f} MB)")
    return 0

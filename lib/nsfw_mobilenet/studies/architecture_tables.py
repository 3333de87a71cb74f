"""Chapter 3 read off the real Keras models: tables 3.1–3.5, equation 3.6, ImageNet top-k.

Nothing here is typed in from the thesis: every shape, stride, expansion size and parameter count
is walked out of the `keras.applications` networks of `backbones.BACKBONES`, so the notebook can set
them side by side with the thesis (§3.2) and any disagreement is a finding, not a transcription.
"""


from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nsfw_mobilenet.core import backbones
from nsfw_mobilenet.core.configs import thesis_reference
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.training import models

CLASS_INDEX_FILE = "imagenet_class_index.json"  # the Keras ImageNet class index, next to the offline weights
IMAGENET_CLASSES = 1000  # outputs of the ImageNet top every backbone keeps here

# A block's layers share its name prefix: V1 `conv_dw_N`/`conv_pw_N`, V2 `block_N_`, V2/V3 `expanded_conv[_N]_`.
_BLOCK_PREFIX = re.compile(r"^(block_\d+|expanded_conv(?:_\d+)?|conv_dw_\d+|conv_pw_\d+)(?:_|$)")
_V1_PADDING = re.compile(r"^conv_pad_(\d+)$")  # the ZeroPadding2D before a stride-2 depthwise conv (table 3.1)
_FOLLOWERS = ("BatchNormalization", "ReLU")  # unnamed or suffixed layers that finish the layer before them


@lru_cache(maxsize=None)
def architecture_model(backbone: str) -> Any:
    """The ImageNet network of `backbone` with random weights: the architecture does not depend on them."""
    return models.build_backbone(backbone, weights=None)


def parameter_table(names: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 3.5: layers and parameters of the networks `names` (default: all four), in that order.

    `keras3_layers` is `len(model.layers)` here; `thesis_layers` recounts them the way Keras 2
    (the thesis's TensorFlow) built them, see `models.keras2_layer_span`.
    """
    rows = []
    for backbone in names or backbones.BACKBONES:
        model = architecture_model(backbone)
        rows.append({"backbone": backbone, "model": backbones.get_backbone(backbone).title,
                     "keras3_layers": len(model.layers),
                     "thesis_layers": len(models.thesis_layer_sequence(model, backbone)),
                     "parameters": model.count_params()})
    return pd.DataFrame(rows)


def table_3_5_beside_thesis(table: pd.DataFrame) -> pd.DataFrame:
    """Table 3.5 of the thesis (reference file) beside `parameter_table`'s counts, one row per backbone."""
    thesis = pd.DataFrame(thesis_reference()["table_3_5"]).T
    here = table.set_index("backbone")
    return pd.DataFrame({
        "model": here["model"],
        "thesis parameters": thesis["parameters"],
        "parameters (this run)": here["parameters"],
        "parameters match": here["parameters"] == thesis["parameters"],
        "thesis layers": thesis["layers"],
        "Keras 2 recount": here["thesis_layers"],
        "Keras 3 layers": here["keras3_layers"],
    }).loc[here.index]


def keras2_recount(names: Sequence[str]) -> str:
    """One line per backbone: its layers as Keras 2 counted them (hard-swish = 4, hard-sigmoid = 3, §3.2.3)."""
    lines = []
    for name in names:
        model = architecture_model(name)
        spans = pd.Series([models.keras2_layer_span(layer, name) for layer in model.layers])
        lines.append(f"{backbones.get_backbone(name).title}: {(spans == 4).sum()} hard-swish layers × 4 + "
                     f"{(spans == 3).sum()} hard-sigmoid layers × 3 + {(spans == 1).sum()} others = "
                     f"{spans.sum()} Keras 2 layers (Keras 3: {len(model.layers)})")
    return "\n".join(lines)


def _shape(tensor: Any) -> str:
    return "x".join(str(d) for d in tensor.shape[1:])


def _group_name(layer: Any, previous: str | None) -> str:
    padding = _V1_PADDING.match(layer.name)
    if padding:
        return f"conv_dw_{padding.group(1)}"
    prefix = _BLOCK_PREFIX.match(layer.name)
    if prefix:
        return prefix.group(1)
    kind = type(layer).__name__
    is_follower = kind in _FOLLOWERS or (kind == "Activation" and layer.get_config()["activation"] != "softmax")
    return previous if is_follower and previous else layer.name


def _groups(model: Any) -> list[tuple[str, list[Any]]]:
    """Consecutive layers grouped into the rows of tables 3.1–3.4 (layers are in graph order)."""
    groups: list[tuple[str, list[Any]]] = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        name = _group_name(layer, groups[-1][0] if groups else None)
        if groups and groups[-1][0] == name:
            groups[-1][1].append(layer)
        else:
            groups.append((name, [layer]))
    return groups


def _non_linearity(layers: list[Any]) -> str | None:
    """The first activation of a row, in the thesis's words (ReLU6 is printed as such, see §3.2.1)."""
    for layer in layers:
        kind = type(layer).__name__
        if kind == "ReLU":
            return "ReLU6" if layer.max_value is not None and float(layer.max_value) == 6.0 else "ReLU"
        activation = layer.get_config().get("activation")
        if activation and activation != "linear":
            return {"hard_silu": "Hard Swish", "softmax": "Softmax"}.get(activation, activation)
    return None


def _of_kind(layers: list[Any], kind: str) -> list[Any]:
    return [layer for layer in layers if type(layer).__name__ == kind]


def _thesis_label(backbone: str, name: str, layers: list[Any], expansion: int | None, stride: int | None,
                  residual: bool) -> str:
    """Row label as in tables 3.1–3.4 (Block 1/2/3 are the thesis's names for the block variants)."""
    if name.startswith("conv_dw_"):
        return "Conv Block dw"
    if name.startswith("conv_pw_"):
        return "Conv Block pw"
    if expansion is None:
        first = layers[0]
        if type(first).__name__ == "Conv2D":
            kernel = first.get_config()["kernel_size"]
            is_v1_conv_block = backbone == "mobilenet_v1" and bool(_of_kind(layers, "BatchNormalization"))
            return "Conv Block" if is_v1_conv_block else f"Conv2D {kernel[0]}x{kernel[1]}"
        return type(first).__name__
    if backbone == "mobilenet_v2":  # §3.2.2: Block 1 no expansion, Block 2 stride 2, Block 3 residual
        if not any(layer.name.endswith("_expand") for layer in layers):
            return "Block 1"
        if stride == 2:
            return "Block 2"
        return "Block 3" if residual else "Conv2D + Block 1"
    return "Block 2" if residual else "Block 1"  # §3.2.3: V3 Block 2 has the residual Add


def block_table(backbone: str) -> pd.DataFrame:
    """Tables 3.1–3.4: one row per block of the real network, from its layers' shapes and configs.

    V2/V3 inverted residual blocks are the layers sharing a `block_N_` / `expanded_conv_N_`
    prefix, V1 rows are `conv_dw_N` (with its ZeroPadding2D) and `conv_pw_N`; BatchNormalization
    and activation layers join the row before them. Expansion size is the depthwise conv's
    channel count; squeeze-excite and residual mean the row has a Multiply / an Add layer.
    """
    rows = []
    for name, layers in _groups(architecture_model(backbone)):
        convs = _of_kind(layers, "Conv2D") + _of_kind(layers, "DepthwiseConv2D")
        depthwise = _of_kind(layers, "DepthwiseConv2D")
        inverted_residual = bool(depthwise) and backbone != "mobilenet_v1"
        stride = int(np.prod([c.get_config()["strides"][0] for c in convs])) if convs else None
        kernel = (depthwise or convs)[0].get_config()["kernel_size"] if convs else None
        expansion = int(depthwise[0].input.shape[-1]) if inverted_residual else None
        residual = bool(_of_kind(layers, "Add"))
        rows.append({
            "name": name,
            "layer": _thesis_label(backbone, name, layers, expansion, stride, residual),
            "input_shape": _shape(layers[0].input),
            "output_shape": _shape(layers[-1].output),
            "stride": stride,
            "kernel": f"{kernel[0]}x{kernel[1]}" if kernel else None,
            "expansion": expansion,
            "squeeze_excite": bool(_of_kind(layers, "Multiply")),
            "non_linearity": _non_linearity(layers),
            "residual": residual,
        })
    return pd.DataFrame(rows).astype({"stride": "Int64", "expansion": "Int64"})


def separable_cost_table(backbone: str) -> pd.DataFrame:
    """Equations 3.1, 3.5 and 3.6 for every depthwise-separable pair of the real network.

    A pair is a DepthwiseConv2D and the next 1×1 Conv2D that reads a feature map of the same
    shape (V3's squeeze-excite convs read 1×1 maps and are skipped). D_K is the depthwise kernel,
    M its channels, N the pointwise filters, D_F the side of the feature map both produce (for a
    stride-2 pair that is the output side, where the equivalent standard conv would also write).
    """
    model = architecture_model(backbone)
    rows = []
    for index, layer in enumerate(model.layers):
        if type(layer).__name__ != "DepthwiseConv2D":
            continue
        pointwise = next(p for p in model.layers[index + 1:]
                         if type(p).__name__ == "Conv2D" and tuple(p.get_config()["kernel_size"]) == (1, 1)
                         and tuple(p.input.shape) == tuple(layer.output.shape))
        d_k = layer.get_config()["kernel_size"][0]
        m = int(layer.input.shape[-1])
        n = int(pointwise.get_config()["filters"])
        d_f = int(layer.output.shape[1])
        standard = d_k * d_k * m * n * d_f * d_f  # equation 3.1
        separable = d_k * d_k * m * d_f * d_f + m * n * d_f * d_f  # equation 3.5
        rows.append({"depthwise": layer.name, "pointwise": pointwise.name, "D_K": d_k, "M": m, "N": n,
                     "D_F": d_f, "standard_cost": standard, "separable_cost": separable,
                     "ratio": separable / standard, "one_over_N_plus_one_over_D_K2": 1 / n + 1 / d_k**2,
                     "reduction": standard / separable})
    return pd.DataFrame(rows)


def block_tables_text(names: Sequence[str]) -> str:
    """Tables 3.1–3.4 as text: each backbone's title, then its `block_table`."""
    return "\n".join(f"\n{backbones.get_backbone(name).title}\n"
                     + block_table(name).to_string(index=False, na_rep="-") for name in names)


def separable_cost_summary(names: Sequence[str]) -> pd.DataFrame:
    """Equation 3.6 per backbone: separable pairs, kernel sizes, the range of savings, the whole body's saving,
    and the largest gap between the measured ratio and 1/N + 1/D_K² (zero up to rounding)."""
    rows = []
    for name in names:
        costs = separable_cost_table(name)
        rows.append({"model": backbones.get_backbone(name).title, "pairs": len(costs),
                     "D_K": sorted(costs["D_K"].unique().tolist()),
                     "least reduction": costs["reduction"].min(), "most reduction": costs["reduction"].max(),
                     "whole body reduction": costs["standard_cost"].sum() / costs["separable_cost"].sum(),
                     "max |ratio - (1/N + 1/D_K²)|": (costs["ratio"] - costs["one_over_N_plus_one_over_D_K2"]).abs().max()})
    return pd.DataFrame(rows)


def ensure_class_index(weights_dir: Path | None = None) -> None:
    """Make `decode_predictions` work offline: hand Keras the class index kept beside the offline weights.

    Keras looks for it in `$KERAS_HOME/models/`; `get_file` with a file:// origin puts it there
    (once) exactly where Keras will look. Without the offline folder `weights_dir` Keras downloads it as usual.
    """
    import keras

    local = Path(weights_dir) / CLASS_INDEX_FILE if weights_dir else None
    if local is not None and local.exists():
        keras.utils.get_file(CLASS_INDEX_FILE, local.resolve().as_uri(), cache_subdir="models")


def decode_imagenet(predictions: np.ndarray, top: int = 3,
                    weights_dir: Path | None = None) -> list[list[tuple[str, str, float]]]:
    """`keras.applications.imagenet_utils.decode_predictions`, working offline with the class index of `weights_dir`."""
    import keras

    ensure_class_index(weights_dir)
    return keras.applications.imagenet_utils.decode_predictions(np.asarray(predictions), top=top)


def imagenet_class_name(index: int, weights_dir: Path | None = None) -> str:
    """The ImageNet class name of output `index` (e.g. 285: "Egyptian_cat"), offline with the class index."""
    return decode_imagenet(np.eye(IMAGENET_CLASSES)[[index]], top=1, weights_dir=weights_dir)[0][0][1]


def imagenet_top_k(model: Any, backbone: str, images: Mapping[str, np.ndarray], k: int = 3,
                   weights_dir: Path | None = None) -> pd.DataFrame:
    """Top-k ImageNet classes of each named RGB image: the proof that ImageNet weights really loaded.

    Images are squashed to 224×224 (as the thesis's `target_size`, §4.1) and passed through the
    backbone's own `preprocess_input`.
    """
    import keras

    size = backbones.INPUT_SHAPE[:2]
    batch = np.stack([keras.ops.convert_to_numpy(keras.ops.image.resize(np.asarray(image, "float32"), size))
                      for image in images.values()])
    predictions = predict(model, batch, backbone)
    return pd.DataFrame([{"image": image, "rank": rank, "imagenet_class": label, "probability": float(p)}
                         for image, top in zip(images, decode_imagenet(predictions, top=k, weights_dir=weights_dir))
                         for rank, (_, label, p) in enumerate(top, start=1)])


def imagenet_check(names: Sequence[str], images: Mapping[str, np.ndarray], k: int = 3,
                   weights_dir: Path | None = None) -> str:
    """Per backbone, which weights it gets (`models.weights_for_run`) and, with ImageNet weights, its top-k
    classes of each named photo: the proof that the ImageNet weights of chapter 4's transfer learning load."""
    parts = []
    for name in names:
        weights, message = models.weights_for_run(name, weights_dir)
        parts.append(message)
        if weights == "imagenet":
            model = models.build_backbone(name, weights, weights_dir=weights_dir)
            top = imagenet_top_k(model, name, images, k=k, weights_dir=weights_dir)
            parts.append(top.to_string(index=False, float_format="{:.3f}".format))
    return "\n".join(parts)

"""MobileNet classifiers as the thesis built them: a `keras.applications` backbone with its ImageNet weights,
the thesis heads (listings 4.1, 4.6, 4.7) and freezing all but the last N layers.

Backbones come at alpha 1.0 and 224×224 input (table 3.5). ImageNet weights are downloaded by Keras when online;
offline they are read from `weights_dir` (`io.weights`), md5-checked. Nothing ever falls back silently to random
weights: `weights_for_run` says in words when a run starts from random ones.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from nsfw_mobilenet.core.backbones import BACKBONES, get_backbone
from nsfw_mobilenet.core.configs import table_configs
from nsfw_mobilenet.core.settings import WEIGHTS_ENV
from nsfw_mobilenet.io.weights import (
    WeightsUnavailable,
    local_weights_path,
    resolve_weights,
    weights_folder,
    weights_source,
)


def imagenet_weights_available(name: str, weights_dir: Path | str | None = None) -> bool:
    """Whether ImageNet weights for `name` can be loaded here without raising (asked once per process and folder)."""
    return _imagenet_weights_available(name, weights_folder(weights_dir))


@lru_cache(maxsize=None)
def _imagenet_weights_available(name: str, weights_dir: Path | None) -> bool:
    if local_weights_path(name, include_top=True, weights_dir=weights_dir):
        return True
    try:
        build_backbone(name, "imagenet", weights_dir=weights_dir)
    except WeightsUnavailable:
        return False
    return True


def build_backbone(name: str, weights: str | Path | None = "imagenet", include_top: bool = True,
                   weights_dir: Path | str | None = None) -> Any:
    """The Keras application with the weights asked for: the full ImageNet network, or without its
    top and globally average-pooled (`include_top=False`). Offline ImageNet files come from `weights_dir`."""
    backbone = get_backbone(name)
    resolved = resolve_weights(name, weights, include_top, weights_dir)
    try:
        return backbone.build(resolved, include_top)
    except Exception as error:  # Keras raises a plain Exception when the download fails
        if resolved != "imagenet":
            raise
        expected = backbone.offline_file(include_top)
        hint = (f"put {expected.name} in a folder and set {WEIGHTS_ENV} to it (or pass it as weights_dir)"
                if expected else "no offline file is known for it: build it with weights=None and say so, or go online")
        raise WeightsUnavailable(
            f"{backbone.title}: ImageNet weights could not be downloaded ({error}); {hint}."
        ) from error


def weights_for_run(name: str, weights_dir: Path | str | None = None) -> tuple[str | None, str]:
    """("imagenet" or None, a sentence for the output) for a run that asks for ImageNet weights.

    Raises `WeightsUnavailable` (one line naming WEIGHTS_ENV and the folder) when the backbone has ImageNet
    weights but they can be neither read from `weights_dir` nor downloaded: random weights only when asked
    for (`train --weights random`). V3-Large, for which no offline file exists, starts from random weights
    offline, and the sentence says so loudly, so no result is mistaken for transfer learning.
    """
    backbone = get_backbone(name)
    if imagenet_weights_available(name, weights_dir):
        return "imagenet", f"{backbone.title}: {weights_source(name, 'imagenet', weights_dir=weights_dir)} weights loaded."
    expected = backbone.offline_file(backbone.classifier_needs_top)
    if expected is not None:
        missing = f"{expected.name} is not in {weights_dir}" if weights_dir else f"{WEIGHTS_ENV} is not set"
        raise WeightsUnavailable(
            f"{backbone.title}: no ImageNet weights: {missing} and the download failed; set {WEIGHTS_ENV} to a "
            f"folder holding {expected.name} (e.g. ../shared/weights), go online, or pass --weights random to "
            "train from random initialisation")
    return None, (f"WARNING {backbone.title}: ImageNet weights are not available offline (none exist for it; "
                  "go online to download them); this run uses random initialisation (weights=None), so it is NOT "
                  "transfer learning.")


# --- Thesis heads (§4.2) -------------------------------------------------------------------
HEADS = ("thesis", "thesis_logits", "standard")  # thesis_logits: listing 4.7 read as its comment says (V3)
CLASSIFIER_NAME = "classifier"
FEATURES_FLATTEN_NAME = "pooled_features_flatten"  # shape-only; the thesis's layer count ignores it


def _flat(tensor: Any) -> Any:
    import keras

    if len(tensor.shape) == 2:
        return tensor
    return keras.layers.Reshape((tensor.shape[-1],), name=FEATURES_FLATTEN_NAME)(tensor)


# Index (from the end) of the penultimate feature vector of each full ImageNet network.
PENULTIMATE_LAYER = {"mobilenet_v1": -5, "mobilenet_v2": -2, "mobilenet_v3_small": -4, "mobilenet_v3_large": -4}


def has_imagenet_top(base: Any) -> bool:
    """Whether `base` is the full ImageNet network (every Keras MobileNet ends in "predictions")."""
    return base.layers[-1].name == "predictions"


def penultimate_features(base: Any, backbone: str) -> Any:
    """The feature vector under the ImageNet classifier: the pooled output of a no-top network, or
    `PENULTIMATE_LAYER` of the full one (V1's 1×1×1024 pool, flattened; V3's 1024-wide `Conv_2`)."""
    if not has_imagenet_top(base):
        return base.output
    return _flat(base.layers[PENULTIMATE_LAYER[backbone]].output)


def _softmax_classifier(num_classes: int) -> Any:
    """The heads' softmax Dense, in float32 even under mixed precision (`distribute`): float16 keeps about
    three digits, too few for probabilities near 0 or 1 and their loss (Keras's mixed-precision guide)."""
    import keras

    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=CLASSIFIER_NAME)


def _dropout_dense(features: Any, num_classes: int, dropout: float) -> Any:
    import keras

    x = keras.layers.Dropout(dropout)(features)
    return _softmax_classifier(num_classes)(x)


def thesis_head_v1(base: Any, num_classes: int) -> Any:
    """Listing 4.6: drop the last 5 layers, then Dropout(0.5) and a softmax Dense.

    `layers[-5]` is the 1×1×1024 global average pool; it is flattened so that Dense sees the
    1024 features of table 3.1 (the flatten is a reshape and counts as no layer below).
    """
    return _dropout_dense(penultimate_features(base, "mobilenet_v1"), num_classes, 0.5)


def thesis_head_v2(base: Any, num_classes: int) -> Any:
    """§4.2.2 and table 3.2: pooled 1280 features, Dropout, softmax Dense instead of the ImageNet top.

    The thesis does not give V2's dropout rate; 0.5 as for V1 is our assumption.
    """
    return _dropout_dense(penultimate_features(base, "mobilenet_v2"), num_classes, 0.5)


def thesis_head_v3(base: Any, num_classes: int) -> Any:
    """Listing 4.7: a softmax Dense on top of `layers[-1]`, the 1000-way ImageNet softmax."""
    return _softmax_classifier(num_classes)(base.output)


def thesis_logits_head_v3(base: Any, num_classes: int) -> Any:
    """Listing 4.7 read as its comment and §4.2.4 say, "all the layers except the last one": a softmax Dense
    on the 1000 ImageNet logits, the ImageNet softmax (the network's last layer) left out."""
    if not has_imagenet_top(base):
        raise ValueError("the logits head reads the ImageNet top; build the backbone with include_top=True")
    return _softmax_classifier(num_classes)(base.layers[-1].input)


THESIS_HEADS: dict[str, Callable[[Any, int], Any]] = {
    "mobilenet_v1": thesis_head_v1,
    "mobilenet_v2": thesis_head_v2,
    "mobilenet_v3_small": thesis_head_v3,
    "mobilenet_v3_large": thesis_head_v3,
}


def standard_head(base: Any, num_classes: int, backbone: str, dropout: float = 0.2) -> Any:
    """The usual transfer-learning head: penultimate ImageNet features → Dropout → softmax Dense."""
    return _dropout_dense(penultimate_features(base, backbone), num_classes, dropout)


def heads_for(backbone: str) -> tuple[str, ...]:
    """The heads `build_classifier` makes for `backbone` (the logits reading exists for V3's listing 4.7 only)."""
    return tuple(head for head in HEADS if head != "thesis_logits" or THESIS_HEADS[backbone] is thesis_head_v3)


def build_classifier(backbone: str, num_classes: int, head: str = "thesis",
                     weights: str | Path | None = "imagenet", weights_dir: Path | str | None = None) -> Any:
    """A backbone with the thesis head (default) or the standard head, on preprocessed 224×224 input.

    Heads that drop the ImageNet top are built on the no-top network (and its no-top weights file in
    `weights_dir`) where one is known offline.
    """
    import keras

    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    base = build_backbone(backbone, weights, get_backbone(backbone).classifier_needs_top, weights_dir)
    if head == "thesis":
        outputs = THESIS_HEADS[backbone](base, num_classes)
    elif head == "thesis_logits":
        if head not in heads_for(backbone):
            raise ValueError(f"head 'thesis_logits' is a reading of listing 4.7 (MobileNetV3); {backbone}'s thesis "
                             "head already reads pooled features")
        outputs = thesis_logits_head_v3(base, num_classes)
    else:
        outputs = standard_head(base, num_classes, backbone)
    return keras.Model(base.input, outputs, name=f"{backbone}_{head}_head_{num_classes}_classes")


# --- Freezing "the last N layers" in the thesis's (Keras 2) numbering ---------------------------
def keras2_layer_span(layer: Any, backbone: str) -> int:
    """How many Keras 2 layers (the thesis's TensorFlow) one Keras 3 layer stood for.

    Keras 2 built MobileNetV3's hard-swish as four layers (TFOpLambda `x + 3`, ReLU(6),
    TFOpLambda `* 1/6`, Multiply) and the squeeze-excite hard-sigmoid as three; Keras 3 uses one
    `Activation("hard_silu")` and one ReLU(6) with the arithmetic as graph ops. That is why V3
    has 239/273 layers in table 3.5 and 164/194 here. V1/V2 layers match one to one.
    """
    if layer.name == FEATURES_FLATTEN_NAME:
        return 0
    if not backbone.startswith("mobilenet_v3"):
        return 1
    kind = type(layer).__name__
    if kind == "Activation" and getattr(layer.activation, "__name__", "") == "hard_silu":
        return 4
    if kind == "ReLU" and layer.max_value is not None and float(layer.max_value) == 6.0:
        return 3
    return 1


def thesis_layer_sequence(model: Any, backbone: str) -> list[Any]:
    """The model's layers repeated as many times as Keras 2 counted them (the thesis's numbering)."""
    return [layer for layer in model.layers for _ in range(keras2_layer_span(layer, backbone))]


def is_batch_norm(layer: Any) -> bool:
    """By type, for Keras 3 and Keras 2 (tf_keras) layers alike."""
    return type(layer).__name__ == "BatchNormalization"


def freeze_all_but_last(model: Any, backbone: str, trainable_layers: int) -> list[str]:
    """Listings 4.1–4.2 with the thesis's meaning: train only the last N layers (Keras 2 count).

    BatchNormalization layers are frozen by type, always (listing 4.2's `'bn' in layer.name`
    missed V2's `*_BN` and V3's `*/BatchNorm` layers). Returns the names of layers with
    trainable weights.
    """
    if trainable_layers < 0:
        raise ValueError(f"trainable_layers must be ≥ 0, got {trainable_layers}")
    sequence = thesis_layer_sequence(model, backbone)
    unfrozen = {id(layer) for layer in sequence[len(sequence) - trainable_layers:]} if trainable_layers else set()
    for layer in model.layers:
        layer.trainable = id(layer) in unfrozen and not is_batch_norm(layer)
    return [layer.name for layer in model.layers if layer.trainable and layer.trainable_weights]


def listing_4_2_misses(model: Any) -> list[str]:
    """BatchNormalization layers that the thesis's `'bn' in layer.name` filter does not catch."""
    return [layer.name for layer in model.layers if is_batch_norm(layer) and "bn" not in layer.name]


def freezing_table(tables: Sequence[str]) -> Any:
    """Per backbone and each N its configs in `tables` use: the layers with weights that train (random weights:
    the layers do not depend on them), so a reader sees what "the last N layers" means for each network."""
    import pandas as pd

    rows = []
    used = [c for table in tables for c in table_configs(table)]
    for name in [name for name in BACKBONES if any(c.backbone == name for c in used)]:
        model = build_classifier(name, 2, weights=None)
        for n in sorted({c.trainable_layers for c in used if c.backbone == name}):
            rows.append({"backbone": name, "N (thesis)": n,
                         "trainable layers": ", ".join(freeze_all_but_last(model, name, n))})
    return pd.DataFrame(rows)


def listing_4_2_table() -> Any:
    """Per backbone: its BatchNormalization layers and how many listing 4.2's `'bn' in layer.name` misses, with
    Keras 3's layer names and, when `tf_keras` is installed, with Keras 2's (the thesis's)."""
    import importlib.util

    import pandas as pd

    keras2 = importlib.import_module("tf_keras") if importlib.util.find_spec("tf_keras") else None
    rows = []
    for name, backbone in BACKBONES.items():
        model = build_backbone(name, weights=None)
        row = {"backbone": name, "BN layers": sum(map(is_batch_norm, model.layers)),
               "missed by 'bn' in name (Keras 3 names)": len(listing_4_2_misses(model))}
        if keras2:
            keras2_model = getattr(keras2.applications, backbone.builder)(weights=None)
            row["missed (Keras 2 names, the thesis's)"] = len(listing_4_2_misses(keras2_model))
        rows.append(row)
    return pd.DataFrame(rows)


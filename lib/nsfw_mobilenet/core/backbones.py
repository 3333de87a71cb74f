"""The MobileNet backbones (V1, V2, V3-Small, V3-Large) as data: their `keras.applications` builder, their
`preprocess_input`, their offline ImageNet weight files and md5s, how results name the weights.

Plain data, so the product side (scan, export) knows a backbone's preprocessing without the training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

INPUT_SHAPE = (224, 224, 3)
IMAGENET = "ImageNet"
RANDOM_INIT = "random init"
DEQUANTIZED = "ImageNet (dequantized from TFLite)"


@dataclass(frozen=True)
class WeightsFile:
    """An offline ImageNet weights file (as in ../shared/weights/README.md) and its md5."""

    name: str
    md5: str


@dataclass(frozen=True)
class Backbone:
    """One `keras.applications` MobileNet and what it needs around it.

    `heads_need_top`: the heads read layers of the ImageNet top (V3's softmax and its 1024-wide
    `Conv_2`); V1/V2 heads read only the pooled features, so a no-top file is enough for them.
    `offline_source` is how results name the offline files ("ImageNet (dequantized from TFLite)"
    for V2/V3-Small, which were converted from quantized TFLite exports).
    """

    name: str
    title: str
    builder: str  # attribute of keras.applications
    preprocess_module: str  # module of keras.applications holding preprocess_input
    heads_need_top: bool
    offline_top: WeightsFile | None = None
    offline_notop: WeightsFile | None = None
    offline_source: str = IMAGENET

    def build(self, weights: str | None, include_top: bool = True) -> Any:
        import keras

        builder = getattr(keras.applications, self.builder)
        pooling = None if include_top else "avg"
        return builder(input_shape=INPUT_SHAPE, alpha=1.0, include_top=include_top, weights=weights,
                       pooling=pooling)

    def offline_file(self, include_top: bool) -> WeightsFile | None:
        return self.offline_top if include_top else self.offline_notop

    @property
    def classifier_needs_top(self) -> bool:
        """Whether a classifier is built on the full network (else on the no-top one, pooled)."""
        return self.heads_need_top or self.offline_notop is None

    @property
    def preprocess_input(self) -> Callable:
        import keras

        return getattr(keras.applications, self.preprocess_module).preprocess_input


def _dequantized_files(stem: str, top_md5: str, notop_md5: str) -> dict[str, Any]:
    """The include-top and no-top files converted from a quantized TFLite export (../shared/weights)."""
    return {"offline_top": WeightsFile(f"{stem}.weights.h5", top_md5),
            "offline_notop": WeightsFile(f"{stem}_notop.weights.h5", notop_md5), "offline_source": DEQUANTIZED}


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        # md5s as documented in ../shared/weights/README.md
        Backbone("mobilenet_v1", "MobileNetV1", "MobileNet", "mobilenet", heads_need_top=False,
                 offline_top=WeightsFile("mobilenet_v1_1.0_224_imagenet.weights.h5",
                                         "76bb2bd371223718ea552172860a1528")),
        Backbone("mobilenet_v2", "MobileNetV2", "MobileNetV2", "mobilenet_v2", heads_need_top=False,
                 **_dequantized_files("mobilenet_v2_1.0_224_imagenet_from_int8",
                                      "7ee9d81d9a2751c00efb3c06b2e6858c", "185b02e93d56e54ae7e6441bfbcd6e1b")),
        Backbone("mobilenet_v3_small", "MobileNetV3-Small", "MobileNetV3Small", "mobilenet_v3", heads_need_top=True,
                 **_dequantized_files("mobilenet_v3_small_1.0_224_imagenet_from_uint8",
                                      "0b135f34cdde4e1b8b40bb7329305f0b", "3f925c949eb3f95348aeb3668a4d7d15")),
        Backbone("mobilenet_v3_large", "MobileNetV3-Large", "MobileNetV3Large", "mobilenet_v3", heads_need_top=True),
    )
}


def get_backbone(name: str) -> Backbone:
    """The registry entry of a backbone name; an unknown name is a ValueError listing the known ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


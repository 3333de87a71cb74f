"""Data augmentation of §4.1 (listing 4.5) and §4.3, by the thesis's letters A–F.

The six techniques keep listing 4.5's parameters exactly. They are applied on the fly to training
batches only (`data.make_dataset(..., augmentation=...)`), never to validation or test data.

Where they sit matters. Listing 4.5 ran `preprocess_input` first (`order="thesis"`): V1/V2 inputs
are then in [-1, 1], but `RandomContrast` and `RandomBrightness` assume pixels in [0, 255] and clip
to it, so contrast zeroes every below-average pixel and a negative brightness shift (up to 51)
clips the whole image to one constant value; `GaussianNoise(0.2)` is then 10% of the range instead
of a rounding error. V3's `preprocess_input` is the identity (the model rescales inside), so V3 is
spared. `order="corrected"` augments pixels in [0, 255] and preprocesses afterwards.
`destroyed_fraction` measures how many training images come out constant; `train.order_comparison`
trains a config in both orders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import data
from .experiments import ExperimentConfig, table_configs
from .models import BACKBONES

TECHNIQUES: dict[str, tuple[str, Callable[[int | None], Any]]] = {}
DESTROYED_STD_FRACTION = 1e-3  # an image whose pixel std is below this share of the value range is constant
DA_TABLES = ("4.3", "4.7", "4.11", "4.15")  # §4.2.1–4.2.4: all six techniques on each backbone
PIPELINE_BATCH_SIZE = 32  # batches of the destroyed-image measurements (their random draws depend on it)


def _technique(letter: str, name: str) -> Callable:
    def register(build: Callable[[int | None], Any]) -> Callable[[int | None], Any]:
        TECHNIQUES[letter] = (name, build)
        return build
    return register


@_technique("A", "flip")
def flip(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomFlip("horizontal", seed=seed)


@_technique("B", "rotation")
def rotation(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomRotation(0.05, fill_mode="constant", seed=seed)  # gaps filled with black


@_technique("C", "contrast")
def contrast(seed: int | None = None) -> Any:
    import keras

    # Keras 3 reads a scalar 0.1 as [1.0, 1.1] (more contrast only); (0.1, 0.1) is TF 2.x's [0.9, 1.1].
    # value_range defaults to (0, 255) and the output is clipped to it, as in TF 2.x.
    return keras.layers.RandomContrast((0.1, 0.1), seed=seed)


@_technique("D", "gaussian noise")
def gaussian_noise(seed: int | None = None) -> Any:
    import keras

    return keras.layers.GaussianNoise(0.2, seed=seed)  # stddev in input units, whatever they are


@_technique("E", "brightness")
def brightness(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomBrightness(factor=0.2, seed=seed)  # shift of ±0.2·255, clipped to [0, 255]


@_technique("F", "zoom")
def zoom(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomZoom(height_factor=0.2, width_factor=0.2, fill_mode="constant", seed=seed)


def parse_letters(letters: str) -> str:
    """The distinct letters of `letters` in A–F order ("ecd", "C+D+E" → "CDE"); unknown ones are an error."""
    cleaned = letters.upper().replace("+", "").replace(" ", "")
    unknown = sorted(set(cleaned) - set(TECHNIQUES))
    if unknown:
        raise ValueError(f"unknown augmentation letter(s) {unknown} in {letters!r}; the thesis's techniques (§4.3) "
                         f"are " + ", ".join(f"{k} {name}" for k, (name, _) in TECHNIQUES.items()))
    return "".join(letter for letter in TECHNIQUES if letter in cleaned)


def technique_names(letters: str) -> list[str]:
    """Table 4.17's wording of a combination, e.g. "CDE" → ["contrast", "gaussian noise", "brightness"]."""
    return [TECHNIQUES[letter][0] for letter in parse_letters(letters)]


def augmentation(letters: str, seed: int | None = None) -> Any:
    """Listing 4.5's `data_augmentation` restricted to `letters`, layers always in A–F order.

    Each layer gets its own seed (seed, seed+1, …) so that e.g. flip and rotation draw independently.
    """
    import keras

    chosen = parse_letters(letters)
    layers = [TECHNIQUES[letter][1](None if seed is None else seed + i) for i, letter in enumerate(chosen)]
    return keras.Sequential(layers, name=f"augmentation_{chosen or 'none'}")


def value_range(backbone: str) -> float:
    """Width of the range `preprocess_input` maps [0, 255] to: 2 for V1/V2, 255 for V3 (identity)."""
    preprocess = data.preprocess_for(backbone)
    low, high = np.asarray(preprocess(np.array([0.0, 255.0], np.float32)), dtype=np.float64)
    return float(high - low)


def training_pipeline(images: np.ndarray, backbone: str, letters: str, order: str,
                      seed: int = ExperimentConfig.seed, batch_size: int = PIPELINE_BATCH_SIZE) -> np.ndarray:
    """What the network receives in training: `images` (uint8) through the same `tf.data` pipeline
    `train.train` uses, with augmentation `letters` in `order`."""
    labels = np.zeros(len(images), np.int64)
    layer = augmentation(letters, seed=seed) if letters else None
    dataset = data.make_dataset(images, labels, 1, backbone, batch_size=batch_size, augmentation=layer, order=order)
    return np.concatenate([batch.numpy() for batch, _ in dataset])


def constant_images(batch: np.ndarray, backbone: str) -> np.ndarray:
    """Per image: True when its pixel std is below DESTROYED_STD_FRACTION of the backbone's value range."""
    spread = batch.reshape(len(batch), -1).std(axis=1)
    return spread < DESTROYED_STD_FRACTION * value_range(backbone)


def destroyed_fraction(images_uint8: np.ndarray, backbone: str, letters: str, order: str,
                       seed: int = ExperimentConfig.seed) -> float:
    """Share of training images that the pipeline turns into a constant image (no information left)."""
    augmented = training_pipeline(images_uint8, backbone, letters, order, seed)
    return float(constant_images(augmented, backbone).mean())


def destroyed_table(images_uint8: np.ndarray, letters: str = "ABCDEF", seed: int = ExperimentConfig.seed,
                    backbones: tuple[str, ...] | None = None) -> Any:
    """destroyed_fraction for every backbone × order, as a DataFrame (backbones in rows)."""
    import pandas as pd

    backbones = backbones or tuple(BACKBONES)
    rows = {backbone: {order: destroyed_fraction(images_uint8, backbone, letters, order, seed)
                       for order in data.ORDERS}
            for backbone in backbones}
    frame = pd.DataFrame(rows).T
    frame.columns = [f"destroyed ({order} order)" for order in data.ORDERS]
    return frame


def da_table(backbone: str) -> str:
    """The thesis table that trained `backbone` with all six techniques (e.g. V1 → "4.3")."""
    for table in DA_TABLES:
        if table_configs(table)[0].backbone == backbone:
            return table
    raise ValueError(f"no data-augmentation table for backbone {backbone!r}; tables {DA_TABLES} cover "
                     + ", ".join(table_configs(t)[0].backbone for t in DA_TABLES))


def technique_examples(image_uint8: np.ndarray, seed: int = 0, draws: int = 8) -> dict[str, np.ndarray]:
    """Figures 4.1/4.2: the photo, then each technique alone in pixel space (corrected order).

    Each technique is drawn `draws` times and the draw that changes the photo most is kept, so
    that a small random factor (or an unflipped flip) does not hide what the technique does.
    """
    batch = np.repeat(np.asarray(image_uint8, np.float32)[None], draws, axis=0)
    examples = {"original": np.asarray(image_uint8, np.uint8)}
    for letter, (name, _) in TECHNIQUES.items():
        out = np.asarray(augmentation(letter, seed=seed)(batch, training=True))
        strongest = np.abs(out - batch).mean(axis=(1, 2, 3)).argmax()
        examples[f"{letter} {name}"] = np.clip(out[strongest], 0, 255).astype(np.uint8)
    return examples


def as_pixels(batch: np.ndarray, backbone: str) -> np.ndarray:
    """What the network receives, shown as the uint8 photo it would correspond to (inverse of
    `preprocess_input`; values outside the backbone's range saturate)."""
    low = float(np.asarray(data.preprocess_for(backbone)(np.zeros(1, np.float32)))[0])
    pixels = (np.asarray(batch, np.float64) - low) * 255.0 / value_range(backbone)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def network_views(image_uint8: np.ndarray, backbone: str, letters: str = "ABCDEF", order: str = "thesis",
                  count: int = 5, seed: int = ExperimentConfig.seed) -> dict[str, np.ndarray]:
    """`count` training-time draws of one photo as the network sees them, labelled with their
    input range and whether they are constant (destroyed)."""
    batch = np.repeat(np.asarray(image_uint8, np.uint8)[None], count, axis=0)
    seen = training_pipeline(batch, backbone, letters, order, seed)
    constant = constant_images(seen, backbone)
    return {f"{order} {i + 1}\n[{x.min():.1f}, {x.max():.1f}]" + (" constant" if gone else ""): pixels
            for i, (x, gone, pixels) in enumerate(zip(seen, constant, as_pixels(seen, backbone)))}

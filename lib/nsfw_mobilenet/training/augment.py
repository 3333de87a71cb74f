"""Data augmentation of §4.1 (listing 4.5) and §4.3, by the thesis's letters A–F.

The six techniques keep listing 4.5's parameters exactly. They are applied on the fly to training
batches only (`input_pipeline.make_dataset(..., augmentation=...)`), never to validation or test data.

Training uses `augmentation`, a fused form of listing 4.5's Keras layers (`keras_augmentation`,
kept as the reference): per batch, one vectorised photometric step (C contrast, D noise, E
brightness), then one projective transform per image (A flip, B rotation, F zoom composed into one
matrix, one bilinear resampling), both compiled by XLA into one call. For a given seed it draws the
very numbers the layers draw, with their distributions: flip with p = 0.5, angle uniform in ±18°
(0.05 of a turn), zoom factors uniform in [0.8, 1.2] per axis independently (> 1 zooms out),
bilinear sampling with fill 0, contrast factor uniform in [0.9, 1.1] about each image's channel
means then clipped to [0, 255], noise N(0, 0.2²) per value, brightness shift uniform in ±0.2·255
per image then clipped to [0, 255]. It costs under half the layers' CPU time
(`benchmarks/training_throughput.py` measures both): the image is resampled once, not twice, and
the arithmetic is one pass; drawing the noise (150,528 normal values per image) is most of what
is left.

One geometric transform forces one reordering. The layers run A, B, C, D, E, F: zoom comes after
the photometric ones and rotation before them. Here all photometric ops come first, so every gap the
transform opens is exactly 0, as the layers' zoom fill is. What changes: (1) the layers' rotation
corners, filled with 0 and then shifted by contrast/noise/brightness, stay 0 here; (2) contrast
averages over the unrotated image, not over the rotated one with its black corners (a mean off by d
moves the output by at most 0.1·d); (3) the image is interpolated once, not twice (rotation
then zoom), so it is slightly sharper; (4) with B and D but no F, the noise is resampled by the
rotation (its std drops by up to half), while the layers add it after rotating. Flip commutes with
every photometric op, so A is exact.

Where they sit matters. Listing 4.5 ran `preprocess_input` first (`order="thesis"`): V1/V2 inputs
are then in [-1, 1], but `RandomContrast` and `RandomBrightness` assume pixels in [0, 255] and clip
to it, so contrast zeroes every below-average pixel and a negative brightness shift (up to 51)
clips the whole image to one constant value; `GaussianNoise(0.2)` is then 10% of the range instead
of a rounding error. The fused step keeps both clips, so it destroys the same images. V3's
`preprocess_input` is the identity (the model rescales inside), so V3 is spared.
`order="corrected"` augments pixels in [0, 255] and preprocesses afterwards.
`destroyed_fraction` measures how many training images come out constant; `augmentation_orders.order_comparison`
trains a config in both orders.
"""


from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nsfw_mobilenet.core.backbones import BACKBONES
from nsfw_mobilenet.core.configs import DA_TABLES, ExperimentConfig, table_configs
from nsfw_mobilenet.io import input_pipeline

TECHNIQUES: dict[str, tuple[str, Callable[[int | None], Any]]] = {}
DESTROYED_STD_FRACTION = 1e-3  # an image whose pixel std is below this share of the value range is constant
# Listing 4.5's parameters, shared by the Keras layers and the fused form.
ROTATION_FACTOR = 0.05  # of a full turn: ±18°
CONTRAST_FACTOR = 0.1  # factor in [0.9, 1.1]
NOISE_STDDEV = 0.2  # in input units, whatever they are
BRIGHTNESS_FACTOR = 0.2  # shift of ±0.2 of the pixel range
ZOOM_FACTOR = 0.2  # per axis: > 1 zooms out, < 1 in
PIXEL_RANGE = (0.0, 255.0)  # the value_range RandomContrast and RandomBrightness assume and clip to
GEOMETRIC = "ABF"  # composed into one projective transform by `FusedAugmentation`


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

    return keras.layers.RandomRotation(ROTATION_FACTOR, fill_mode="constant", seed=seed)  # gaps filled with black


@_technique("C", "contrast")
def contrast(seed: int | None = None) -> Any:
    import keras

    # Keras 3 reads a scalar 0.1 as [1.0, 1.1] (more contrast only); (0.1, 0.1) is TF 2.x's [0.9, 1.1].
    # value_range defaults to (0, 255) and the output is clipped to it, as in TF 2.x.
    return keras.layers.RandomContrast((CONTRAST_FACTOR, CONTRAST_FACTOR), value_range=PIXEL_RANGE, seed=seed)


@_technique("D", "gaussian noise")
def gaussian_noise(seed: int | None = None) -> Any:
    import keras

    return keras.layers.GaussianNoise(NOISE_STDDEV, seed=seed)


@_technique("E", "brightness")
def brightness(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomBrightness(factor=BRIGHTNESS_FACTOR, value_range=PIXEL_RANGE, seed=seed)


@_technique("F", "zoom")
def zoom(seed: int | None = None) -> Any:
    import keras

    return keras.layers.RandomZoom(height_factor=ZOOM_FACTOR, width_factor=ZOOM_FACTOR, fill_mode="constant",
                                   seed=seed)


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


def _letter_seeds(chosen: str, seed: int | None) -> list[int | None]:
    """One seed per chosen letter (seed, seed+1, …) so that e.g. flip and rotation draw independently."""
    return [None if seed is None else seed + i for i in range(len(chosen))]


def keras_augmentation(letters: str, seed: int | None = None) -> Any:
    """Listing 4.5's `data_augmentation` restricted to `letters`, layers always in A–F order: the
    reference `augmentation` is measured against."""
    import keras

    chosen = parse_letters(letters)
    layers = [TECHNIQUES[letter][1](letter_seed) for letter, letter_seed in zip(chosen, _letter_seeds(chosen, seed))]
    return keras.Sequential(layers, name=f"augmentation_{chosen or 'none'}")


class FusedAugmentation:
    """Listing 4.5's techniques `letters` as one photometric step and one projective transform per
    batch (see the module docstring).

    Two sources of random numbers, with the same distributions. Called as a layer (`__call__`), each
    letter draws from the seed generator its Keras layer would have, so a seed gives the layers' own
    draws (the tests compare them). Training calls `with_batch_seed` instead: every draw is stateless,
    from the batch's own seed (`input_pipeline.make_dataset` derives it from the config seed, the epoch and the
    batch's position), so no draw depends on which of the batches mapped in parallel runs first and the
    same seed trains the same images."""

    def __init__(self, letters: str, seed: int | None = None):
        import keras

        self.letters = parse_letters(letters)
        self._generators = {letter: keras.random.SeedGenerator(letter_seed)
                            for letter, letter_seed in zip(self.letters, _letter_seeds(self.letters, seed))}
        self._augment_batch = _compiled_augment_batch(self.letters)  # here, not in `__call__`, which tf.data traces
        self._batch_seed: Any = None  # set only while `with_batch_seed` traces
        self._draws_taken: dict[str, int] = {}

    def __call__(self, batch: Any, training: bool = True) -> Any:
        """The augmented float32 batch (N, H, W, C); unchanged when not training, as Keras layers."""
        import tensorflow as tf

        batch = tf.convert_to_tensor(batch, tf.float32)
        if not training or not self.letters:
            return batch
        draws = self._photometric_draws(batch)
        if set(self.letters) & set(GEOMETRIC):
            draws["matrix"] = self.output_to_input(tf.shape(batch))
        return self._augment_batch(batch, **draws)

    def with_batch_seed(self, batch: Any, batch_seed: Any) -> Any:
        """The augmented batch with every draw taken statelessly from `batch_seed` (shape (2,) int):
        a letter's k-th draw uses the seed folded with the letter's place in A–F and k."""
        self._batch_seed, self._draws_taken = batch_seed, {}
        try:
            return self(batch, training=True)
        finally:
            self._batch_seed = None

    def _draw_seed(self, letter: str) -> Any:
        import tensorflow as tf

        taken = self._draws_taken.get(letter, 0)
        self._draws_taken[letter] = taken + 1
        letter_seed = tf.random.experimental.stateless_fold_in(self._batch_seed, "ABCDEF".index(letter))
        return tf.random.experimental.stateless_fold_in(letter_seed, taken)

    def _uniform(self, letter: str, shape: Any, low: float, high: float) -> Any:
        import keras
        import tensorflow as tf

        if self._batch_seed is not None:
            return tf.random.stateless_uniform(shape, self._draw_seed(letter), minval=low, maxval=high)
        return keras.random.uniform(shape, minval=low, maxval=high, dtype="float32", seed=self._generators[letter])

    def _normal(self, letter: str, shape: Any, stddev: float) -> Any:
        import keras
        import tensorflow as tf

        if self._batch_seed is not None:
            return tf.random.stateless_normal(shape, self._draw_seed(letter), stddev=stddev)
        return keras.random.normal(shape, stddev=stddev, dtype="float32", seed=self._generators[letter])

    def _photometric_draws(self, batch: Any) -> dict[str, Any]:
        """C's contrast factor and E's brightness shift per image, D's noise per value."""
        import tensorflow as tf

        per_image = (tf.shape(batch)[0], 1, 1, 1)
        draws = {}
        if "C" in self.letters:
            draws["factor"] = self._uniform("C", per_image, 1.0 - CONTRAST_FACTOR, 1.0 + CONTRAST_FACTOR)
        if "D" in self.letters:
            draws["noise"] = self._normal("D", tf.shape(batch), NOISE_STDDEV)
        if "E" in self.letters:
            draws["shift"] = (self._uniform("E", per_image, -BRIGHTNESS_FACTOR, BRIGHTNESS_FACTOR)
                              * (PIXEL_RANGE[1] - PIXEL_RANGE[0]))
        return draws

    def output_to_input(self, shape: Any) -> Any:
        """Per image, the 3×3 matrix taking an output pixel (x, y, 1) to where it is sampled in the
        input: flip · rotation · zoom, as the layers chain them (each samples the previous output)."""
        import tensorflow as tf

        count = shape[0]
        center_x = (tf.cast(shape[2], tf.float32) - 1.0) / 2.0
        center_y = (tf.cast(shape[1], tf.float32) - 1.0) / 2.0
        zero, one = tf.zeros((count,)), tf.ones((count,))
        matrix = tf.eye(3, batch_shape=[count])
        if "A" in self.letters:
            mirrored = tf.reshape(self._uniform("A", (count, 1, 1, 1), 0.0, 1.0) <= 0.5, (count,))
            sign = tf.where(mirrored, -one, one)
            matrix = matrix @ _affine(sign, zero, center_x * (1.0 - sign), zero, one, zero)
        if "B" in self.letters:
            turn = ROTATION_FACTOR * 360.0
            angle = self._uniform("B", (count,), -turn, turn) * (math.pi / 180.0)
            cos, sin = tf.cos(angle), tf.sin(angle)
            matrix = matrix @ _affine(cos, -sin, center_x - center_x * cos + center_y * sin,
                                      sin, cos, center_y - center_x * sin - center_y * cos)
        if "F" in self.letters:
            zoom_y = self._uniform("F", (count, 1), 1.0 - ZOOM_FACTOR, 1.0 + ZOOM_FACTOR)[:, 0]
            zoom_x = self._uniform("F", (count, 1), 1.0 - ZOOM_FACTOR, 1.0 + ZOOM_FACTOR)[:, 0]
            matrix = matrix @ _affine(zoom_x, zero, center_x * (1.0 - zoom_x), zero, zoom_y, center_y * (1.0 - zoom_y))
        return matrix


def _affine(a0: Any, a1: Any, a2: Any, b0: Any, b1: Any, b2: Any) -> Any:
    """Per image, [[a0, a1, a2], [b0, b1, b2], [0, 0, 1]] from (N,) vectors."""
    import tensorflow as tf

    zero, one = tf.zeros_like(a0), tf.ones_like(a0)
    return tf.reshape(tf.stack([a0, a1, a2, b0, b1, b2, zero, zero, one], axis=1), (-1, 3, 3))


def augment_batch(batch: Any, factor: Any = None, noise: Any = None, shift: Any = None, matrix: Any = None) -> Any:
    """The photometric techniques, then one resampling through `matrix` (None: no geometric technique)."""
    batch = photometric(batch, factor, noise, shift)
    return batch if matrix is None else resample(batch, matrix)


def photometric(batch: Any, factor: Any = None, noise: Any = None, shift: Any = None) -> Any:
    """Contrast `factor` about each image's channel means, then `noise`, then a brightness `shift`,
    each clipped as its Keras layer clips (contrast and brightness to PIXEL_RANGE, noise not); a
    technique given as None is left out, clip included."""
    import tensorflow as tf

    low, high = PIXEL_RANGE
    if factor is not None:
        mean = tf.reduce_mean(batch, axis=(1, 2), keepdims=True)
        batch = tf.clip_by_value((batch - mean) * factor + mean, low, high)
    if noise is not None:
        batch = batch + noise
    if shift is not None:
        batch = tf.clip_by_value(batch + shift, low, high)
    return batch


def resample(batch: Any, matrix: Any) -> Any:
    """Each output pixel (x, y) sampled bilinearly at `matrix` · (x, y, 1) of its image, 0 outside:
    `ImageProjectiveTransformV3`'s constant-fill bilinear formula (what the Keras layers call), as
    gathers, which XLA compiles faster than that op on CPU."""
    import tensorflow as tf

    shape = tf.shape(batch)
    count, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    y, x = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    row = matrix[:, :, :, None, None]  # (N, 3, 3, 1, 1) against (H, W)
    source_x = row[:, 0, 0] * x + row[:, 0, 1] * y + row[:, 0, 2]
    source_y = row[:, 1, 0] * x + row[:, 1, 1] * y + row[:, 1, 2]
    left, top = tf.floor(source_x), tf.floor(source_y)
    # A one-pixel border of zeros: every tap outside the image reads its first value.
    padded = tf.reshape(tf.pad(batch, [[0, 0], [1, 1], [1, 1], [0, 0]]), (count, -1, channels))

    def tap(tap_y: Any, tap_x: Any) -> Any:
        inside = (tap_y >= 0) & (tap_y <= tf.cast(height - 1, tf.float32)) & (tap_x >= 0) & (
            tap_x <= tf.cast(width - 1, tf.float32))
        index = tf.where(inside, (tap_y + 1) * tf.cast(width + 2, tf.float32) + tap_x + 1, 0.0)
        return tf.gather(padded, tf.reshape(tf.cast(index, tf.int32), (count, -1)), batch_dims=1)

    def weighted(weight: Any, values: Any) -> Any:
        return tf.reshape(weight, (count, -1, 1)) * values

    upper = weighted(left + 1 - source_x, tap(top, left)) + weighted(source_x - left, tap(top, left + 1))
    lower = weighted(left + 1 - source_x, tap(top + 1, left)) + weighted(source_x - left, tap(top + 1, left + 1))
    out = weighted(top + 1 - source_y, upper) + weighted(source_y - top, lower)
    return tf.ensure_shape(tf.reshape(out, shape), batch.shape)


@functools.cache
def _compiled_augment_batch(letters: str) -> Callable:
    """`augment_batch` compiled by XLA, one call per batch: on CPU its arithmetic fuses into one pass
    and its gathers beat `ImageProjectiveTransformV3`. One per combination of `letters` (the cache key:
    each leaves other arguments out), shared by every FusedAugmentation of it; shapes are relaxed, so a last, smaller
    batch does not trace it again."""
    import tensorflow as tf

    return tf.function(augment_batch, jit_compile=True, reduce_retracing=True)


def augmentation(letters: str, seed: int | None = None) -> FusedAugmentation:
    """What training applies for `letters`: listing 4.5's techniques, fused (`FusedAugmentation`)."""
    return FusedAugmentation(letters, seed)


def value_range(backbone: str) -> float:
    """Width of the range `preprocess_input` maps [0, 255] to: 2 for V1/V2, 255 for V3 (identity)."""
    preprocess = input_pipeline.preprocess_for(backbone)
    low, high = np.asarray(preprocess(np.array([0.0, 255.0], np.float32)), dtype=np.float64)
    return float(high - low)


def training_pipeline(images: np.ndarray, backbone: str, letters: str, order: str,
                      seed: int = ExperimentConfig.seed) -> np.ndarray:
    """What the network receives in training: `images` (uint8) through the same `tf.data` pipeline
    `train.train` uses, with augmentation `letters` in `order`, as one batch whose draws come from the
    batch seed `seed` gives it (so a seed gives the same images every time, for every backbone)."""
    labels = np.zeros(len(images), np.int64)
    layer = augmentation(letters, seed=seed) if letters else None
    dataset = input_pipeline.make_dataset(images, labels, 1, backbone, batch_size=max(len(images), 1), augmentation=layer,
                                order=order)
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
                       for order in input_pipeline.ORDERS}
            for backbone in backbones}
    frame = pd.DataFrame(rows).T
    frame.columns = [f"destroyed ({order} order)" for order in input_pipeline.ORDERS]
    return frame


def da_table(backbone: str) -> str:
    """The thesis table that trained `backbone` with all six techniques (e.g. V1 → "4.3")."""
    for table in DA_TABLES:
        if table_configs(table)[0].backbone == backbone:
            return table
    raise ValueError(f"no data-augmentation table for backbone {backbone!r}; tables {DA_TABLES} cover "
                     + ", ".join(table_configs(t)[0].backbone for t in DA_TABLES))


def technique_examples(image_uint8: np.ndarray, seed: int = 0, draws: int = 8) -> dict[str, np.ndarray]:
    """Figures 4.1/4.2: the photo, then each technique alone in pixel space (corrected order), as
    listing 4.5's Keras layer draws it (for one letter the fused op draws and computes the same).

    Each technique is drawn `draws` times and the draw that changes the photo most is kept, so
    that a small random factor (or an unflipped flip) does not hide what the technique does.
    """
    batch = np.repeat(np.asarray(image_uint8, np.float32)[None], draws, axis=0)
    examples = {"original": np.asarray(image_uint8, np.uint8)}
    for letter, (name, _) in TECHNIQUES.items():
        out = np.asarray(keras_augmentation(letter, seed=seed)(batch, training=True))
        strongest = np.abs(out - batch).mean(axis=(1, 2, 3)).argmax()
        examples[f"{letter} {name}"] = np.clip(out[strongest], 0, 255).astype(np.uint8)
    return examples


def as_pixels(batch: np.ndarray, backbone: str) -> np.ndarray:
    """What the network receives, shown as the uint8 photo it would correspond to (inverse of
    `preprocess_input`; values outside the backbone's range saturate)."""
    low = float(np.asarray(input_pipeline.preprocess_for(backbone)(np.zeros(1, np.float32)))[0])
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


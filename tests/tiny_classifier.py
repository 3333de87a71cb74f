"""A seconds-to-train stand-in for a fine-tuned MobileNet, shared by the export and scan tests.

It has MobileNetV3's quantization-sensitive pieces (depthwise conv, hard-swish, a squeeze-and-
excite block, §3.2.3.1) and expects V1/V2 preprocessing ([-1, 1]), so exporting it exercises the
baked-in rescaling. It is trained a few steps on a colour rule, so its outputs are decisive and
parity numbers mean something (a random-init MobileNet outputs exactly 0.5/0.5 for every image).
"""

from __future__ import annotations

import functools

import numpy as np

SIDE = 48
CLASSES = ["normal", "sexual"]
PIXEL_SCALING = (1 / 127.5, -1.0)


def images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 colour gradients and labels: class 1 when red dominates blue."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, SIDE, dtype=np.float32)
    batch, labels = [], []
    for i in range(count):
        label = i % 2
        red, blue = (rng.uniform(150, 255), rng.uniform(0, 110))[:: 1 if label else -1]
        green = rng.uniform(0, 255)
        gradient = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        pixels = np.array([red, green, blue], np.float32) * (0.6 + 0.4 * gradient)
        pixels = pixels + rng.normal(0, 8, (SIDE, SIDE, 3))
        batch.append(np.clip(pixels, 0, 255).astype(np.uint8))
        labels.append(label)
    return np.stack(batch), np.array(labels)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) * PIXEL_SCALING[0] + PIXEL_SCALING[1]


@functools.cache  # trained once per test session, shared by the export and scan tests
def trained_classifier():
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((SIDE, SIDE, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.Activation("hard_swish")(layers.BatchNormalization()(x))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.Activation("hard_swish")(layers.BatchNormalization()(x))
    squeeze = layers.GlobalAveragePooling2D(keepdims=True)(x)
    squeeze = layers.Conv2D(8, 1, activation="relu")(squeeze)
    squeeze = layers.Conv2D(16, 1, activation="hard_sigmoid")(squeeze)
    x = layers.Multiply()([x, squeeze])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    pixels, labels = images(128, seed=1)
    model.fit(preprocess(pixels), labels, epochs=8, batch_size=32, verbose=0)
    return model


def export_variant(model, out_dir, variant: str, **options):
    """`export.export_tflite` with this classifier's classes and pixel scaling."""
    from nsfw_mobilenet.app import export

    return export.export_tflite(model, out_dir, variant, classes=CLASSES, pixel_scaling=PIXEL_SCALING, **options)

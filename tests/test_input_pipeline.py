"""Specifications of io.input_pipeline: the tf.data pipeline's batches, preprocessing, augmentation order and shuffle."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nsfw_mobilenet.io import input_pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("order", ["thesis", "corrected"])
@pytest.mark.parametrize("backbone, low, high", [
    ("mobilenet_v1", -1.0, 1.0), ("mobilenet_v2", -1.0, 1.0),
    ("mobilenet_v3_small", 0.0, 255.0), ("mobilenet_v3_large", 0.0, 255.0)])
def test_make_dataset_batches_float32_images_and_one_hot_labels(backbone, low, high, order) -> None:
    images = RNG.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 255, 0)
    dataset = input_pipeline.make_dataset(images, np.array([0, 1, 2, 1, 0]), 3, backbone, batch_size=2, order=order)
    batches = list(dataset.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(2, 8, 8, 3), (2, 8, 8, 3), (1, 8, 8, 3)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and x.min() == pytest.approx(low) and x.max() == pytest.approx(high)
    np.testing.assert_array_equal(y.argmax(1), [0, 1, 2, 1, 0])
    assert y.dtype == np.float32 and y.sum() == 5


def _shift(x, training=False):
    """A stand-in augmentation that is easy to trace: +1000 on every pixel."""
    return x + 1000.0


def test_thesis_order_augments_after_preprocess_and_corrected_order_before() -> None:
    images = np.full((2, 4, 4, 3), 255, dtype=np.uint8)
    labels = np.array([0, 1])
    thesis = next(input_pipeline.make_dataset(images, labels, 2, "mobilenet_v1", augmentation=_shift, order="thesis")
                  .as_numpy_iterator())[0]
    corrected = next(input_pipeline.make_dataset(images, labels, 2, "mobilenet_v1", augmentation=_shift, order="corrected")
                     .as_numpy_iterator())[0]
    assert np.allclose(thesis, 1001.0)  # listing 4.5: [-1, 1] values, then augmentation
    assert np.allclose(corrected, 1255.0 / 127.5 - 1.0)


def test_shuffle_is_seeded_and_keeps_images_with_their_labels() -> None:
    images = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)
    labels = np.arange(10) % 2
    dataset = input_pipeline.make_dataset(images, labels, 2, "mobilenet_v3_small", batch_size=10, shuffle=True, seed=1)
    x, y = next(dataset.as_numpy_iterator())
    order = x[:, 0, 0, 0].astype(int)
    assert sorted(order) == list(range(10)) and order.tolist() != list(range(10))
    np.testing.assert_array_equal(y.argmax(1), order % 2)

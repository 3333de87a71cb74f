"""The `tf.data` pipeline of training and inference: batches gathered from decoded images (or features), the
augmentation in listing 4.5's or the corrected order, each backbone's `preprocess_input`."""


from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from nsfw_mobilenet.core.backbones import get_backbone
from nsfw_mobilenet.core.configs import BATCH_SIZE
from nsfw_mobilenet.io.image_cache import Images
from nsfw_mobilenet.io.image_files import SPLIT_SEED

if TYPE_CHECKING:
    import tensorflow as tf
ORDERS = ("thesis", "corrected")  # augmentation after preprocess_input (listing 4.5), or before it


def _unchanged(pixels: np.ndarray) -> np.ndarray:
    return pixels


def preprocess_for(backbone: str | None) -> Callable:
    """The keras.applications `preprocess_input` the thesis used for `backbone` (§4.1).

    V1 and V2 map [0, 255] to [-1, 1]; V3 rescales inside the model, so its
    preprocess_input is the identity. None: no preprocessing (a model that takes pixels).
    """
    return _unchanged if backbone is None else get_backbone(backbone).preprocess_input


def make_dataset(
    images: Images,
    labels: np.ndarray,
    num_classes: int,
    backbone: str | None,
    *,
    batch_size: int = BATCH_SIZE,
    shuffle: bool = False,
    seed: int = SPLIT_SEED,
    augmentation: Callable | None = None,
    order: str = "corrected",
) -> tf.data.Dataset:
    """Batches of (float32 images, one-hot labels) for categorical cross-entropy (listing 4.3).

    The uint8 array (or `StoredArray` on disk) is the cache: batches are gathered
    from it by index, so shuffling never copies images, no decoded float copy is
    kept and a stored dataset is read a batch at a time (float pixel arrays, or
    features of a frozen front, are gathered the same way).
    `order="thesis"` applies preprocess_input before the augmentation, as
    listing 4.5 did (V1/V2 then augment values in [-1, 1], e.g. brightness
    meant for [0, 255]); `order="corrected"` augments pixels in [0, 255] first.
    Pass `augmentation=None` for validation and test data. An augmentation with
    `with_batch_seed` (`augment.FusedAugmentation`) gets each batch's own seed: a
    stateless draw from `seed`, new each epoch, the same in every run.
    """
    import tensorflow as tf

    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    preprocess = preprocess_for(backbone)

    def augment(batch: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
        if augmentation is None:
            return batch
        if hasattr(augmentation, "with_batch_seed"):
            return augmentation.with_batch_seed(batch, batch_seed)
        return augmentation(batch, training=True)  # listing 4.5's Keras layers: stateful draws

    def preprocess_batch(batch: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
        return preprocess(batch)

    steps = (preprocess_batch, augment) if order == "thesis" else (augment, preprocess_batch)
    one_hot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    row_shape = tuple(images.shape[1:])

    def gather(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch, batch_labels = tf.numpy_function(lambda i: (images[i], one_hot[i]), [indices],
                                                (tf.as_dtype(images.dtype), tf.float32))
        batch = tf.ensure_shape(batch, (None, *row_shape))
        return batch, tf.ensure_shape(batch_labels, (None, num_classes))

    def transform(batch_seed: tf.Tensor, batch_and_labels: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        batch, batch_labels = batch_and_labels
        batch = tf.cast(batch, tf.float32)
        for step in steps:
            batch = step(batch, tf.stack([tf.constant(seed, tf.int64), batch_seed]))
        return batch, batch_labels

    dataset = tf.data.Dataset.range(len(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    # Both maps sequential: after a numpy_function (stateful) op determinism (`train.enable_determinism`) makes
    # TensorFlow run a parallel map sequentially anyway, and its rewrite writes a spurious "NodeDef mentions
    # attribute use_unbounded_threadpool" line to stderr. The prefetch still overlaps them with training.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)  # one per batch, new each epoch
    dataset = tf.data.Dataset.zip(batch_seeds, dataset.batch(batch_size).map(gather)).map(transform)
    return dataset.prefetch(tf.data.AUTOTUNE)


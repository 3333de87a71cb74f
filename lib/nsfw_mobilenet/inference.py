"""A Keras model's outputs for images, preprocessed as in training: the one predict helper of the package."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import data


def predict(model: Any, images: np.ndarray, backbone: str | None, batch_size: int = data.BATCH_SIZE) -> np.ndarray:
    """Class probabilities (or features) of pixel images 0..255, through `backbone`'s `preprocess_input`
    (None: the model takes the pixels as they are).

    Up to `batch_size` images are one direct model call (no tracing, no tf.data pipeline); more go
    through `data.make_dataset` in batches of `batch_size`, so no float copy of all images is made.
    """
    if len(images) <= batch_size:
        preprocessed = data.preprocess_for(backbone)(np.asarray(images, np.float32))
        return np.asarray(model(preprocessed, training=False))
    dataset = data.make_dataset(images, np.zeros(len(images), np.int32), 1, backbone, batch_size=batch_size)
    return model.predict(dataset.map(lambda x, y: x), verbose=0)

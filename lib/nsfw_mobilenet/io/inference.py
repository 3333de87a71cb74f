"""A Keras model's outputs for images, preprocessed as in training: the one predict helper of the package."""


from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.configs import BATCH_SIZE
from nsfw_mobilenet.io import image_cache, input_pipeline


def predict(model: Any, images: image_cache.Images, backbone: str | None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Class probabilities (or features) of pixel images 0..255, through `backbone`'s `preprocess_input`
    (None: the model takes the pixels as they are).

    Up to `batch_size` images are one direct model call (no tracing, no tf.data pipeline); more go
    through `input_pipeline.make_dataset` in batches of `batch_size`, so no float copy of all images is made
    and images stored on disk (`image_cache.StoredArray`) are read a batch at a time.
    """
    if len(images) <= batch_size:
        preprocessed = input_pipeline.preprocess_for(backbone)(np.asarray(images, np.float32))
        return np.asarray(model(preprocessed, training=False))
    dataset = input_pipeline.make_dataset(images, np.zeros(len(images), np.int32), 1, backbone, batch_size=batch_size)
    return model.predict(dataset.map(lambda x, y: x), verbose=0)


def predict_to_file(model: Any, images: image_cache.Images, backbone: str | None, path: Path,
                    batch_size: int = BATCH_SIZE) -> image_cache.Images:
    """`predict`'s outputs written to the .npy file `path` a batch at a time and read back on demand
    (`image_cache.StoredArray`): the features of a frozen front can be as large as the images (7x7x576 floats
    a V3-Small image when its last 11 layers train), too many to hold for a large dataset.
    Up to `batch_size` images stay in memory, as `predict` gives them.
    """
    if len(images) <= batch_size:
        return predict(model, images, backbone, batch_size)
    dataset = input_pipeline.make_dataset(images, np.zeros(len(images), np.int32), 1, backbone, batch_size=batch_size)
    with open(path, "wb") as handle:
        for number, (batch, _) in enumerate(dataset):
            outputs = np.asarray(model.predict_on_batch(batch), np.float32)
            if number == 0:
                header = {"descr": np.lib.format.dtype_to_descr(outputs.dtype), "fortran_order": False,
                          "shape": (len(images), *outputs.shape[1:])}
                np.lib.format.write_array_header_1_0(handle, header)
            handle.write(outputs.tobytes())
    return image_cache.StoredArray([path])


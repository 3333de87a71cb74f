from nsfw_mobilenet.io import image_cache, input_pipeline

"""Specification of the one predict helper: preprocessing as in training, the same outputs however batched."""

import numpy as np
import pytest

from nsfw_mobilenet.io.inference import predict, predict_to_file

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    return keras.Sequential(layers)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)


def test_one_call_and_the_batched_pipeline_give_the_same_outputs(model, images):
    at_once = predict(model, images, "mobilenet_v2")
    batched = predict(model, images, "mobilenet_v2", batch_size=8)
    np.testing.assert_allclose(batched, at_once, atol=1e-6)
    assert at_once.shape == (20, 3)


def test_images_are_preprocessed_for_the_backbone_or_taken_as_they_are(model, images):
    expected = np.asarray(model(input_pipeline.preprocess_for("mobilenet_v1")(images.astype(np.float32))))
    np.testing.assert_allclose(predict(model, images, "mobilenet_v1"), expected, atol=1e-6)
    np.testing.assert_allclose(predict(model, images, None, batch_size=8),
                               np.asarray(model(images.astype(np.float32))), atol=1e-6)


def test_float_pixels_give_what_their_uint8_image_gives(model, images):
    np.testing.assert_allclose(predict(model, images.astype(np.float64), "mobilenet_v1", batch_size=8),
                               predict(model, images, "mobilenet_v1"), atol=1e-6)


def test_an_unknown_backbone_is_a_value_error_naming_the_known_ones(model, images):
    with pytest.raises(ValueError, match="unknown backbone 'mobilenet_v9'.*mobilenet_v1"):
        predict(model, images, "mobilenet_v9")


def test_stored_images_are_predicted_batch_by_batch_as_in_memory_ones(model, images, tmp_path):
    np.save(tmp_path / "images.npy", images)
    stored = image_cache.StoredArray([tmp_path / "images.npy"])
    np.testing.assert_allclose(predict(model, stored, "mobilenet_v2", batch_size=8),
                               predict(model, images, "mobilenet_v2", batch_size=8), atol=1e-6)
    np.testing.assert_allclose(predict(model, stored[:5], "mobilenet_v2"), predict(model, images[:5], "mobilenet_v2"),
                               atol=1e-6)


def test_outputs_predicted_to_a_file_are_the_outputs_read_on_demand(model, images, tmp_path):
    stored = predict_to_file(model, images, "mobilenet_v2", tmp_path / "outputs.npy", batch_size=8)
    assert isinstance(stored, image_cache.StoredArray) and stored.shape == (20, 3)
    np.testing.assert_allclose(np.asarray(stored), predict(model, images, "mobilenet_v2"), atol=1e-6)
    few = predict_to_file(model, images[:8], "mobilenet_v2", tmp_path / "few.npy", batch_size=8)
    assert isinstance(few, np.ndarray) and not (tmp_path / "few.npy").exists()

"""Specifications for the explainers of §2.4: a tiny conv model learns to spot a bright square,
and every heat map has to point at that square."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nsfw_mobilenet.evaluation import explain  # noqa: E402

SIDE = 32
SQUARE = 8


def planted_square(rng: np.random.Generator, present: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """Dim noise, plus a bright square at a random place when `present` (class 1)."""
    image = rng.uniform(0, 60, size=(SIDE, SIDE, 3)).astype(np.float32)
    top, left = (int(v) for v in rng.integers(0, SIDE - SQUARE, size=2))
    if present:
        image[top:top + SQUARE, left:left + SQUARE] = 255.0
    return image, (top, left)


@pytest.fixture(scope="module")
def square_detector() -> keras.Model:
    """Conv → conv → global pooling → softmax; trained in-test for a few steps to find the square."""
    rng = np.random.default_rng(0)
    samples = [planted_square(rng, present=i % 2 == 1)[0] for i in range(128)]
    images, labels = np.stack(samples), np.arange(128) % 2
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def test_image() -> tuple[np.ndarray, tuple[int, int]]:
    return planted_square(np.random.default_rng(123), present=True)


def inside_square(position: tuple[int, int], corner: tuple[int, int], scale: float = 1.0) -> bool:
    (row, col), (top, left) = position, corner
    return top <= row * scale < top + SQUARE and left <= col * scale < left + SQUARE


def test_detector_learned_the_square(square_detector, test_image):
    image, _ = test_image
    assert square_detector(image[None]).numpy()[0, 1] > 0.9


def test_last_conv_layer_is_the_last_spatial_feature_map(square_detector):
    assert explain.last_conv_layer(square_detector)[-1].name == "last_conv"


def test_last_conv_layer_skips_1x1_maps_like_v3_conv2_logits():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="spatial")(inputs)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)  # 1×1×4, like V3's pooled conv_2
    x = keras.layers.Conv2D(3, 1, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    assert explain.last_conv_layer(model)[-1].name == "spatial"


def test_gradcam_heatmap_is_finite_in_unit_range_at_feature_map_size(square_detector, test_image):
    heatmap = explain.gradcam(square_detector, test_image[0], class_index=1)
    assert heatmap.shape == (SIDE, SIDE)
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() == pytest.approx(1.0)


def test_gradcam_peak_lies_inside_the_planted_square(square_detector, test_image):
    image, corner = test_image
    heatmap = explain.gradcam(square_detector, image, class_index=1)
    assert inside_square(np.unravel_index(heatmap.argmax(), heatmap.shape), corner)


def test_gradcam_reaches_into_a_nested_backbone(square_detector, test_image):
    """A backbone used as one layer (nested model) gives the same map as the flat model."""
    backbone = keras.Model(square_detector.inputs, square_detector.layers[-2].output)
    inputs = keras.Input((SIDE, SIDE, 3))
    nested = keras.Model(inputs, square_detector.layers[-1](backbone(inputs)))
    flat_map = explain.gradcam(square_detector, test_image[0], class_index=1)
    nested_map = explain.gradcam(nested, test_image[0], class_index=1)
    np.testing.assert_allclose(nested_map, flat_map, atol=1e-5)


def test_gradcam_unknown_layer_name_is_reported(square_detector, test_image):
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        explain.gradcam(square_detector, test_image[0], layer_name="nope")


def test_overlay_keeps_the_photo_size_and_dtype(test_image):
    image, _ = test_image
    blended = explain.overlay(image, np.eye(4, dtype=np.float32))
    assert blended.shape == image.shape and blended.dtype == np.uint8


def test_shap_attributions_concentrate_on_the_planted_square(square_detector, test_image):
    image, (top, left) = test_image
    background = np.stack([planted_square(np.random.default_rng(s), present=False)[0] for s in range(4)])
    result = explain.shap_explain(square_detector, image[None], background, ranked_outputs=1, nsamples=32)
    assert result.values.shape == (1, SIDE, SIDE, 3, 1)
    assert result.class_indices.tolist() == [[1]]
    assert np.isfinite(result.values).all()
    attribution = result.values[0, ..., 0].sum(axis=-1)
    square = np.zeros((SIDE, SIDE), dtype=bool)
    square[top:top + SQUARE, left:left + SQUARE] = True
    assert attribution[square].mean() > 5 * np.abs(attribution[~square]).mean()


def test_lime_top_superpixel_covers_the_planted_square(square_detector, test_image):
    image, corner = test_image
    tiny_superpixels = {"kernel_size": 2, "max_dist": 20, "ratio": 0.5}  # the 224-pixel defaults give one
    result = explain.lime_explain(explain.classifier_fn(square_detector), image, num_samples=60, top_labels=2,
                                  quickshift_params=tiny_superpixels)
    assert result.label == 1
    assert result.heatmap.shape == (SIDE, SIDE) and np.isfinite(result.heatmap).all()
    assert result.boundary.shape == (SIDE, SIDE, 3) and 0 <= result.boundary.min() <= result.boundary.max() <= 1
    assert inside_square(np.unravel_index(result.heatmap.argmax(), result.heatmap.shape), corner)


def test_explanation_figures_are_small(square_detector, test_image):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nsfw_mobilenet.evaluation import plots

    image, _ = test_image
    heatmap = explain.gradcam(square_detector, image, class_index=1)
    lime = explain.lime_explain(explain.classifier_fn(square_detector), image, num_samples=10)
    shap_values = np.zeros((1, SIDE, SIDE, 3, 2), dtype=np.float32)
    figures = [plots.plot_gradcam(image, heatmap), plots.plot_lime(lime.heatmap, lime.boundary, "square"),
               plots.plot_class_heatmaps(image, {"none": heatmap, "square": heatmap}, {"none": 0.1, "square": 0.9}),
               plots.plot_shap(shap_values, image[None], [["none", "square"]])]
    assert all(figure.dpi <= 80 for figure in figures)
    plt.close("all")


def test_class_heatmaps_gives_one_map_per_class_in_class_order(square_detector, test_image):
    maps = explain.class_heatmaps(square_detector, test_image[0], ["none", "square"])
    assert list(maps) == ["none", "square"]
    np.testing.assert_allclose(maps["square"], explain.gradcam(square_detector, test_image[0], class_index=1))


def test_first_images_heatmaps_takes_the_first_images_of_each_class_in_class_order(square_detector):
    rng = np.random.default_rng(7)
    images = np.stack([planted_square(rng, present=i % 2 == 1)[0] for i in range(6)]).astype(np.uint8)
    labels = np.arange(6) % 2
    examples = explain.first_images_heatmaps(square_detector, images, labels, ["none", "square"], per_class=2)
    assert [e.true_class for e in examples] == ["none", "none", "square", "square"]
    np.testing.assert_array_equal(examples[2].image, images[1])
    assert all(sum(e.probabilities.values()) == pytest.approx(1.0, abs=1e-5) for e in examples)
    assert all(list(e.heatmaps) == ["none", "square"] for e in examples)



def test_squash_resizes_any_photo_to_the_network_input_without_keeping_its_aspect():
    photo = np.zeros((30, 90, 3), np.uint8)
    assert explain.squash(photo).shape == (224, 224, 3)
    assert explain.squash(photo, (20, 10)).shape == (10, 20, 3)  # PIL sizes are (width, height)


def test_model_inputs_are_a_float32_batch_preprocessed_as_the_backbone_trained():
    photos = [np.full((40, 60, 3), 255, np.uint8), np.zeros((50, 50, 3), np.uint8)]
    batch = explain.model_inputs(photos, "mobilenet_v1")  # V1's preprocess_input maps [0, 255] to [-1, 1]
    assert batch.shape == (2, 224, 224, 3) and batch.dtype == np.float32
    assert batch[0].min() == pytest.approx(1.0) and batch[1].max() == pytest.approx(-1.0)

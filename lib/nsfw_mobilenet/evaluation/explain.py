"""Heat maps that show where a classifier looks: Grad-CAM, SHAP and LIME (thesis §2.4, §5.3).

One call per explainer, each returning arrays; drawing them is `plots`' job. All three take a
Keras 3 model (or, for LIME, any batch predict function) and an image already shaped like the
model's input. §5.3 uses Grad-CAM for the per-class heat maps because it is the most readable.
"""


from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from nsfw_mobilenet.core.backbones import INPUT_SHAPE
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.inference import predict

# keras-io Grad-CAM overlay: heat map drawn with "jet" at 40 % opacity over the photo.
OVERLAY_ALPHA = 0.4
OVERLAY_COLORMAP = "jet"
# lime_image's own quickshift settings, applied to the photo scaled to [0, 1] (see lime_explain).
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}


def _batch(image: np.ndarray) -> np.ndarray:
    """(H, W, C) or (1, H, W, C) → float32 (1, H, W, C)."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[0] != 1:
        raise ValueError(f"expected one image of shape (H, W, C) or (1, H, W, C), got {array.shape}")
    return array


def squash(photo: np.ndarray, size: tuple[int, int] = INPUT_SHAPE[:2]) -> np.ndarray:
    """A uint8 photo resized to `size` without keeping its aspect, as the thesis's `target_size` did (§4.1)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(photo, np.uint8)).resize(size))


def model_inputs(photos: Sequence[np.ndarray], backbone: str) -> np.ndarray:
    """Photos squashed to the network's input and passed through `backbone`'s preprocess_input: a float32 batch."""
    preprocess = input_pipeline.preprocess_for(backbone)
    return np.stack([preprocess(squash(photo).astype("float32")) for photo in photos])


def _is_feature_map(layer: Any) -> bool:
    """A 4-D output with spatial size > 1: what Grad-CAM can localise on."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):  # layers never called, or called more than once
        return False
    return len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1


def last_conv_layer(model: Any) -> tuple[Any, ...]:
    """Path to the last layer whose output is a spatial feature map, searched into nested models.

    For the thesis's V3 head (Dense(2) on the 1000-way softmax) that is the activation after
    `conv_1` (7×7×576), not the 1×1 `conv_2`/`logits` maps. Returns the chain of layers from the
    outermost nested model to the feature-map layer, e.g. `(layer,)` or `(backbone, layer)`.
    """
    import keras

    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            try:
                return (layer, *last_conv_layer(layer))
            except ValueError:
                continue
        if _is_feature_map(layer):
            return (layer,)
    raise ValueError(f"model {model.name!r} has no layer with a spatial (H×W > 1) 4-D output for Grad-CAM")


def _find_layer(model: Any, name: str) -> tuple[Any, ...]:
    import keras

    for layer in model.layers:
        if layer.name == name:
            return (layer,)
        if isinstance(layer, keras.Model):
            try:
                return (layer, *_find_layer(layer, name))
            except ValueError:
                continue
    raise ValueError(f"model {model.name!r} has no layer named {name!r} (nested models searched too)")


def _feature_and_output(model: Any, path: tuple[Any, ...]) -> Callable[[Any], tuple[Any, Any]]:
    """x ↦ (feature map of `path[-1]`, model output), differentiable, for flat or nested models.

    keras-io builds `keras.Model(model.inputs, [layer.output, model.output])`; a layer inside a
    nested backbone is not in the outer graph, so the outer model is split around the backbone:
    the layers before it, the backbone with its feature map as a second output, the layers after it.
    """
    import keras

    if len(path) == 1:
        both = keras.Model(model.inputs, [path[0].output, model.output])
        return lambda x: both(x, training=False)
    nested = path[0]
    inner = _feature_and_output(nested, path[1:])
    node = nested._inbound_nodes[-1]  # the call of the backbone inside the outer model
    before = keras.Model(model.inputs, node.input_tensors[0])
    after = keras.Model(node.output_tensors[0], model.output)

    def call(x: Any) -> tuple[Any, Any]:
        features, nested_output = inner(before(x, training=False))
        return features, after(nested_output, training=False)

    return call


def gradcam(model: Any, image: np.ndarray, class_index: int | None = None,
            layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM heat map (keras-io method, listing 2.3) in [0, 1] at the feature map's H'×W'.

    `image` is one model-ready input (already preprocessed); `class_index` defaults to the
    predicted class. The map is ReLU(Σ_k α_k A_k) with α_k the spatially averaged gradient of
    the class score with respect to feature map k, scaled so its maximum is 1 (all zeros when
    nothing in the image supports the class).
    """
    import tensorflow as tf

    path = _find_layer(model, layer_name) if layer_name else last_conv_layer(model)
    forward = _feature_and_output(model, path)
    x = tf.convert_to_tensor(_batch(image))
    with tf.GradientTape() as tape:
        features, predictions = forward(x)
        if class_index is None:
            class_index = int(tf.argmax(predictions[0]))
        score = predictions[:, class_index]
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(0, 1, 2))
    heatmap = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1)).numpy()
    peak = heatmap.max()
    return (heatmap / peak if peak > 0 else heatmap).astype(np.float32)


def class_heatmaps(model: Any, image: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """One Grad-CAM map per class, as §5.3 shows for each image (figures 5.2–5.17)."""
    path = last_conv_layer(model)
    return {label: gradcam(model, image, class_index=i, layer_name=path[-1].name) for i, label in enumerate(classes)}


@dataclass
class ImageHeatmaps:
    """One test image of §5.3: its true class, the model's probability and a Grad-CAM map per class."""

    image: np.ndarray  # the photo, uint8
    true_class: str
    probabilities: dict[str, float]
    heatmaps: dict[str, np.ndarray]


def first_images_heatmaps(model: Any, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                          per_class: int = 1, backbone: str | None = None) -> list[ImageHeatmaps]:
    """Figures 5.2–5.17: the first `per_class` images of each class (uint8 photos, integer labels),
    each with the model's probabilities and one Grad-CAM map per class. `backbone` names the
    preprocessing the model was trained with (None: it takes pixels)."""
    chosen = [i for label in range(len(classes)) for i in np.flatnonzero(np.asarray(labels) == label)[:per_class]]
    probabilities = predict(model, images[chosen], backbone)
    examples = []
    for i, chances in zip(chosen, probabilities):
        model_input = input_pipeline.preprocess_for(backbone)(images[i].astype(np.float32))
        examples.append(ImageHeatmaps(image=images[i], true_class=classes[int(labels[i])],
                                      probabilities={c: float(p) for c, p in zip(classes, chances)},
                                      heatmaps=class_heatmaps(model, model_input, classes)))
    return examples


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The photo with the heat map in "jet" colours on top (keras-io `save_and_display_gradcam`).

    `image` is the displayable photo (uint8, or floats in [0, 255]); returns uint8 of its size.
    """
    import matplotlib
    from PIL import Image

    photo = np.asarray(image, dtype=np.float32)
    height, width = photo.shape[:2]
    scaled = Image.fromarray(np.uint8(np.clip(heatmap, 0, 1) * 255)).resize((width, height), Image.BILINEAR)
    colours = matplotlib.colormaps[OVERLAY_COLORMAP](np.asarray(scaled) / 255.0)[..., :3] * 255.0
    return np.uint8(np.clip(colours * alpha + photo[..., :3], 0, 255))


@dataclass
class ShapExplanation:
    """SHAP values for the top-ranked classes of each image (listing 2.1)."""

    values: np.ndarray  # (N, H, W, C, ranked): one attribution image per ranked class
    class_indices: np.ndarray  # (N, ranked): which output each slice explains


def shap_explain(model: Any, images: np.ndarray, background: np.ndarray, ranked_outputs: int = 2,
                 nsamples: int = 50, batch_size: int = 25, seed: int = 0) -> ShapExplanation:
    """`shap.GradientExplainer` on a Keras 3 model with a background sample (listing 2.1).

    shap 0.51 handles Keras 3 models in eager mode directly (it wraps the gradient in its own
    `tf.function`); it passes inputs as a one-element list, which Keras 3 accepts with a
    structure warning that is silenced here, as is tqdm's note that notebook progress bars need
    ipywidgets. Only the `ranked_outputs` most probable classes are explained: each class costs
    `nsamples` gradient evaluations per image.
    """
    images = np.asarray(images, dtype=np.float32)
    background = np.asarray(background, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        warnings.filterwarnings("ignore", message="IProgress not found")
        import shap

        explainer = shap.GradientExplainer(model, background, batch_size=batch_size)
        values, indices = explainer.shap_values(images, nsamples=nsamples, ranked_outputs=ranked_outputs,
                                                rseed=seed)
    return ShapExplanation(values=np.asarray(values), class_indices=np.asarray(indices))


@dataclass
class LimeExplanation:
    """LIME's two views of one image (listing 2.2) and the explanation they come from."""

    label: int  # the class explained (LIME's top label)
    top_labels: list[int]
    heatmap: np.ndarray  # (H, W) weight of each superpixel for `label`; >0 supports it
    boundary: np.ndarray  # (H, W, 3) in [0, 1]: the top superpixels, yellow outlines, rest hidden
    explanation: Any  # lime.lime_image.ImageExplanation, for other views


def lime_explain(predict_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, num_samples: int = 100,
                 top_labels: int = 2, num_features: int = 10, seed: int = 0,
                 quickshift_params: dict[str, float] | None = None, batch_size: int = 32) -> LimeExplanation:
    """LIME image explanation with the thesis's heat map and boundary view (listing 2.2).

    `image` is the photo in pixel values (uint8 or [0, 255]); `predict_fn` maps a float batch of
    such photos to class probabilities (see `classifier_fn`). Superpixels are lime's default
    quickshift (`QUICKSHIFT`, tuned for 224-pixel photos; `quickshift_params` overrides it for
    tiny images), computed on the photo scaled to [0, 1] as skimage's Lab conversion expects.
    Hidden superpixels are black (hide_color=0). Perturbed photos go to the model `batch_size` at a
    time: one batch of 1,000 224-pixel photos needs over 20 GB of activations.
    """
    from unittest import mock

    from lime import lime_image
    from skimage.segmentation import mark_boundaries, quickshift

    photo = np.asarray(image, dtype=np.float64)
    segmentation = {**QUICKSHIFT, **(quickshift_params or {})}
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    with mock.patch.object(lime_image, "tqdm", lambda rows: rows):  # lime 0.2 always draws a progress bar
        explanation = explainer.explain_instance(
            photo, predict_fn, top_labels=top_labels, hide_color=0, num_samples=num_samples,
            batch_size=batch_size, random_seed=seed,
            segmentation_fn=lambda x: quickshift(x / 255.0, rng=seed, **segmentation),
        )
    label = int(explanation.top_labels[0])
    weights = dict(explanation.local_exp[label])
    heatmap = np.vectorize(lambda segment: weights.get(segment, 0.0))(explanation.segments)
    temp, mask = explanation.get_image_and_mask(label, positive_only=True, num_features=num_features,
                                                hide_rest=True)
    boundary = mark_boundaries(temp / 255.0, mask)
    return LimeExplanation(label=label, top_labels=[int(t) for t in explanation.top_labels],
                           heatmap=heatmap.astype(np.float32), boundary=boundary, explanation=explanation)


def classifier_fn(model: Any, backbone: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Batch of photos (pixel values) → probabilities, the callable LIME perturbs (listing 2.2), with
    `backbone`'s preprocessing (None: the model takes pixels).

    LIME batches the photos itself, so each batch is one direct model call (`inference.predict`),
    never a tf.data pipeline per call.
    """
    return lambda batch: predict(model, batch, backbone, batch_size=len(batch))


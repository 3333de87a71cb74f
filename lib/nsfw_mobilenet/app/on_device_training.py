"""Updating the classifier's head on the phone from reviewed images (issue 23, point 4), with LiteRT.

One `.tflite` holds the classifier with four signatures, as in TensorFlow's on-device training guide:

    train(pixels, labels, learning_rate) -> loss      one SGD step of the softmax Dense on reviewed images
    infer(pixels) -> probabilities                    the classifier with the head as trained so far
    save() -> kernel, bias                            the head's weights, for the app to keep
    restore(kernel, bias) -> kernel, bias             the head's weights given back, e.g. after a restart

Pixels are RGB 0..255 in float32, [N, H, W, 3], preprocessing baked in as in `export`; labels are class
indices in the classifier's output order (the reviewer's verdicts). Everything under the head (the base up to
the pooled features) is frozen: only the head's kernel and bias are variables.

Two choices the guide does not make, both because of what the `ai-edge-litert` wheel runs:
- `save`/`restore` pass the weights as tensors instead of writing a checkpoint file. The guide's
  `tf.raw_ops.Save`/`Restore` become the TensorFlow ops FlexSave/FlexRestore, which need the Flex delegate;
  ai-edge-litert 2.3.0 does not ship it ("Select TensorFlow op(s), included in the given model, is(are) not
  supported by this interpreter. Make sure you apply/link the Flex delegate before inference."). As tensors,
  every op is a TFLite builtin, and the app keeps the weights in its own file (`HeadTrainer.save` writes `.npz`).
- The base is folded into constants before conversion. Left as Keras 3 variables inside the module, they
  become resource variables that the converted file never initialises (only the head's are), so `infer`
  outputs NaN under XNNPACK and fails with "READ_VARIABLE failed to invoke" without it.
"""


from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.app.export import raw_pixel_model
from nsfw_mobilenet.app.litert import DEFAULT_THREADS
from nsfw_mobilenet.core import native_output

SIGNATURES = ("train", "infer", "save", "restore")
# Plain SGD on the head. On the final V3-Small (1024 features) 0.01 drives the loss on eight reviewed images to
# ~0 in one step, 0.001 lowers it step by step (1.11, 0.72, 0.49, ...); not yet chosen on held-out images.
DEFAULT_LEARNING_RATE = 0.001
LOG_FLOOR = 1e-7  # keeps the loss finite when a verdict's probability underflows to 0


class UnsupportedClassifier(ValueError):
    """A Keras model whose last layer is not a softmax Dense: there is no head to train on the device."""


class HeadWeightsMismatch(ValueError):
    """Saved head weights that do not fit the `.tflite` they are restored into; the message names the file."""


def softmax_head(model: Any) -> Any:
    """The classifier's last layer, the softmax Dense `train` updates (every head of `training.models` ends in one)."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.get_config()["activation"] != "softmax":
        raise UnsupportedClassifier(f"{model.name}: its last layer {head.name!r} is not a softmax Dense, so there is "
                                    "no head to train on the device; build the classifier with a thesis or standard "
                                    "head")
    return head


def frozen_features(model: Any, pixel_scaling: tuple[float, float] | None) -> Any:
    """The base, 0..255 pixels [N, H, W, 3] to the features under the head ([N, F], the function's one output), as a
    TensorFlow function whose weights are constants (Keras 3 variables would reach the `.tflite` uninitialised)."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    base = raw_pixel_model(keras.Model(model.inputs, softmax_head(model).input), pixel_scaling)
    pixels = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="pixels")
    traced = tf.function(lambda images: base(images, training=False)).get_concrete_function(pixels)
    return convert_variables_to_constants_v2(traced)


def trainable_module(model: Any, pixel_scaling: tuple[float, float] | None = None) -> Any:
    """A `tf.Module` with the four signatures, the trained classifier's head weights as its starting point.

    `pixel_scaling`: as in `export` (`export.pixel_scaling_for(backbone)`; None for MobileNetV3, which rescales
    itself).
    """
    import tensorflow as tf

    head = softmax_head(model)
    features = frozen_features(model, pixel_scaling)
    module = tf.Module()
    module.kernel = tf.Variable(head.kernel.numpy(), name="kernel")
    module.bias = tf.Variable(head.bias.numpy(), name="bias")
    pixels = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    num_classes = int(module.bias.shape[0])

    def pooled(images: Any) -> Any:
        return features(images)[0]

    def logits(images: Any) -> Any:
        return tf.matmul(pooled(images), module.kernel) + module.bias

    @tf.function(input_signature=[pixels, tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32)])
    def train(pixels: Any, labels: Any, learning_rate: Any) -> dict[str, Any]:
        base_features = pooled(pixels)  # the base is not trained
        verdicts = tf.one_hot(labels, num_classes)  # the sparse loss is a TensorFlow op (Flex), this is builtin
        probabilities = tf.nn.softmax(tf.matmul(base_features, module.kernel) + module.bias)
        loss = -tf.reduce_mean(tf.reduce_sum(verdicts * tf.math.log(probabilities + LOG_FLOOR), axis=1))
        # Softmax cross-entropy's gradient written out, (p - y) / N through the Dense: a GradientTape leaves a
        # BroadcastGradientArgs op (a Flex op) in the file when TensorFlow's op determinism is on, as training turns it.
        error = (probabilities - verdicts) / tf.cast(tf.shape(pixels)[0], tf.float32)
        module.kernel.assign_sub(learning_rate * tf.matmul(base_features, error, transpose_a=True))
        module.bias.assign_sub(learning_rate * tf.reduce_sum(error, axis=0))
        return {"loss": loss}

    @tf.function(input_signature=[pixels])
    def infer(pixels: Any) -> dict[str, Any]:
        return {"probabilities": tf.nn.softmax(logits(pixels))}

    @tf.function(input_signature=[])
    def save() -> dict[str, Any]:
        return {"kernel": module.kernel.read_value(), "bias": module.bias.read_value()}

    @tf.function(input_signature=[tf.TensorSpec(module.kernel.shape, tf.float32),
                                  tf.TensorSpec(module.bias.shape, tf.float32)])
    def restore(kernel: Any, bias: Any) -> dict[str, Any]:
        module.kernel.assign(kernel)
        module.bias.assign(bias)
        return {"kernel": module.kernel.read_value(), "bias": module.bias.read_value()}

    module.train, module.infer, module.save, module.restore = train, infer, save, restore
    return module


def convert(module: Any) -> bytes:
    """The `.tflite` flatbuffer of a `trainable_module`: TFLite builtin ops only (so plain ai-edge-litert runs it),
    the head kept as resource variables."""
    import tensorflow as tf

    signatures = {name: getattr(module, name).get_concrete_function() for name in SIGNATURES}
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)  # "Assets written to <tmp>"
    try:
        with tempfile.TemporaryDirectory(prefix="on-device-training-") as folder, \
                contextlib.redirect_stdout(io.StringIO()), native_output.native_stderr_discarded():
            tf.saved_model.save(module, folder, signatures=signatures)
            converter = tf.lite.TFLiteConverter.from_saved_model(folder)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.experimental_enable_resource_variables = True
            return converter.convert()
    finally:
        tf_logger.setLevel(level)


def export_trainable(model: Any, path: Path | str, pixel_scaling: tuple[float, float] | None = None) -> Path:
    """Write the on-device-training `.tflite` of a trained Keras classifier to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(convert(trainable_module(model, pixel_scaling)))
    return path


class HeadTrainer:
    """An on-device-training `.tflite` run with LiteRT's signature runners, as the app would: train the head on
    reviewed images, classify, keep the head's weights in a file and restore them into a fresh interpreter."""

    def __init__(self, path: Path | str, num_threads: int = DEFAULT_THREADS):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        with native_output.native_stderr_discarded():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            missing = set(SIGNATURES) - set(self.interpreter.get_signature_list())
            if missing:
                raise ValueError(f"{self.path}: no {', '.join(sorted(missing))} signature; write it with "
                                 "`on_device_training.export_trainable`")
            self._runners = {name: self.interpreter.get_signature_runner(name) for name in SIGNATURES}

    @staticmethod
    def _pixels(images: np.ndarray) -> np.ndarray:
        return np.asarray(images, dtype=np.float32)

    def train(self, images: np.ndarray, labels: np.ndarray, learning_rate: float = DEFAULT_LEARNING_RATE) -> float:
        """One SGD step of the head on uint8 images [N, H, W, 3] and the reviewers' class indices [N]; the loss
        before the step."""
        with native_output.native_stderr_discarded():
            result = self._runners["train"](pixels=self._pixels(images), labels=np.asarray(labels, dtype=np.int32),
                                            learning_rate=np.float32(learning_rate))
        return float(result["loss"])

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, H, W, 3], with the head as trained so far."""
        with native_output.native_stderr_discarded():
            return self._runners["infer"](pixels=self._pixels(images))["probabilities"]

    def head_weights(self) -> dict[str, np.ndarray]:
        """The head's current kernel and bias (the `save` signature)."""
        return {name: np.array(value) for name, value in self._runners["save"]().items()}

    def save(self, path: Path | str) -> Path:
        """Write the head's weights to an `.npz` file at `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:  # np.savez would add ".npz" to any other suffix
            np.savez(handle, **self.head_weights())
        return path

    def restore(self, path: Path | str) -> None:
        """Give the head the weights `save` wrote to `path` (the `restore` signature)."""
        with np.load(path) as stored:
            weights = {name: stored[name] for name in stored.files}
        expected = {name: tuple(value.shape) for name, value in self.head_weights().items()}
        given = {name: tuple(value.shape) for name, value in weights.items()}
        if given != expected:
            raise HeadWeightsMismatch(f"{path}: head weights {given} do not fit {self.path}, whose head is {expected}; "
                                      "restore weights saved from the same classifier's .tflite")
        self._runners["restore"](**{name: value.astype(np.float32) for name, value in weights.items()})

"""Running an exported `.tflite` classifier with LiteRT (`ai-edge-litert`), without TensorFlow.

The phone's side of §2.5: uint8 pixels in, float probabilities out, whatever the variant.
"""


from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nsfw_mobilenet.core import native_output

DEFAULT_THREADS = 2  # the CPU threads LiteRT uses unless told otherwise (phones: 1–4)


class UnsupportedModel(ValueError):
    """A `.tflite` LiteRT loads that is not an image classifier of a fixed input size; the message says what it is."""


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("None" if size < 0 else str(size) for size in shape) + "]"


class LiteRTModel:
    """A `.tflite` classifier run with LiteRT at batch 1: uint8 pixels in, float probabilities out.

    Handles quantized inputs and outputs from the tensors' own (scale, zero point), so float and
    int8 exports are called the same way.
    """

    def __init__(self, path: Path | str, num_threads: int = DEFAULT_THREADS):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        with native_output.native_stderr_discarded():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._check_shapes()

    def _check_shapes(self) -> None:
        """One RGB image of a fixed size in ([1, H, W, 3]), one probability per class out ([1, C]): anything else
        would fail at the first image, or silently classify 1x1 squashes of every image (a dynamic size)."""
        given = list(self._input.get("shape_signature", self._input["shape"]))
        if len(given) != 4 or given[0] not in (-1, 1) or given[3] != 3 or min(given[1:3]) < 1:
            raise UnsupportedModel(
                f"{self.path}: its input is {_shape_text(given)} {np.dtype(self._input['dtype']).name}, not one RGB "
                "image of a fixed size [1, H, W, 3]; export the classifier with `nsfw-mobilenet export`")
        output = list(self._output.get("shape_signature", self._output["shape"]))
        if len(output) != 2 or output[-1] < 1:
            raise UnsupportedModel(f"{self.path}: its output is {_shape_text(output)}, not one probability per class "
                                   "[1, C]; export the classifier with `nsfw-mobilenet export`")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    @property
    def num_classes(self) -> int:
        return int(self._output["shape"][-1])

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        scale, zero_point = self._input["quantization"]
        if np.issubdtype(dtype, np.floating):
            return image.astype(dtype)[None]
        if image.dtype == dtype and scale in (0.0, 1.0) and zero_point == 0:
            return image[None]  # `export`'s uint8 input takes the pixels as they are (a third of the call's time)
        values = image.astype(np.float32) / scale + zero_point if scale else image
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)[None]

    def invoke(self, image: np.ndarray) -> np.ndarray:
        """Probabilities for one uint8 [H, W, 3] image."""
        self.interpreter.set_tensor(self._input["index"], self._quantize(image))
        self.interpreter.invoke()
        output = self.interpreter.get_tensor(self._output["index"])[0]
        scale, zero_point = self._output["quantization"]
        if not np.issubdtype(output.dtype, np.floating):
            output = (output.astype(np.float32) - zero_point) * scale
        return output.astype(np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, H, W, 3], one invocation each (batch 1, as on a phone)."""
        return np.stack([self.invoke(image) for image in images]) if len(images) else np.zeros((0, self.num_classes))


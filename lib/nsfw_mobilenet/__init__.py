"""nsfw-mobilenet: sexual-content detection with MobileNet V1/V2/V3 on resource-limited devices.

Reproduces, corrects and extends *Sexual Content Detection on Resource-Limited Devices Using
Deep Learning* (UCM, 2023). Modules are named after pipeline stages; importing this package
does not import TensorFlow.
"""

import contextlib
import os

__version__ = "0.1.0"


@contextlib.contextmanager
def native_stderr_discarded():
    """Discard what native code writes to file descriptor 2 inside the block.

    TensorFlow and LiteRT print start-up and converter lines there ("before absl::InitializeLog",
    oneDNN, CUDA, "Created TensorFlow Lite XNNPACK delegate", "fully_quantize: ...") before any log
    level applies, so notebooks would store them as outputs. Their errors still raise as exceptions
    carrying the message.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Import TensorFlow without its native start-up lines (TF_CPP_MIN_LOG_LEVEL does not stop them) and with its
    Python logger at ERROR (no "triggered tf.function retracing" advice when many models predict); return it."""
    with native_stderr_discarded():
        import tensorflow
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow

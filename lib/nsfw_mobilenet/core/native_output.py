"""Quiet native start-up: TensorFlow and LiteRT write lines to file descriptor 2 before any log level applies."""

import contextlib
import os


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
    Python logger at ERROR (no "triggered tf.function retracing" advice when many models predict); return it.
    Listing the devices here too keeps CUDA's "failed call to cuInit" line of a machine without a GPU out of the
    output (it comes with the first device query, not the import); it does not start TensorFlow's runtime."""
    with native_stderr_discarded():
        import tensorflow

        tensorflow.config.list_physical_devices()
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


"""nsfw-mobilenet: sexual-content detection with MobileNet V1/V2/V3 on resource-limited devices.

Reproduces, corrects and extends *Sexual Content Detection on Resource-Limited Devices Using
Deep Learning* (UCM, 2023). Modules are named after pipeline stages; importing this package
does not import TensorFlow.

The environment is read only at the edges — the command line, the notebooks' parameter cells and
the test set-up — through `settings_from_environment`, and passed down as arguments.
"""

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__version__ = "0.1.0"

WEIGHTS_ENV = "NSFW_MOBILENET_WEIGHTS_DIR"
SMOKE_ENV = "NSFW_MOBILENET_SMOKE"


@dataclass(frozen=True)
class Settings:
    """What the environment says about a run.

    `weights_dir`: the folder of offline ImageNet weights (../shared/weights/README.md); None lets
    Keras download them. `smoke`: seconds-long runs on a few images, whose figures never replace
    real ones.
    """

    weights_dir: Path | None = None
    smoke: bool = False


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> Settings:
    """`Settings` from NSFW_MOBILENET_WEIGHTS_DIR (a folder; unset or empty: none) and NSFW_MOBILENET_SMOKE
    ("1": on). Called only by the edges (cli, benchmark scripts, test set-up), which pass the values down."""
    folder = environ.get(WEIGHTS_ENV)
    return Settings(weights_dir=Path(folder) if folder else None, smoke=environ.get(SMOKE_ENV) == "1")


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

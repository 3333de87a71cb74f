"""GantMan's nsfwjs MobileNetV2 (npm `nsfwjs@4.4.0`) as Keras and TFLite: the de-facto open peer.

nsfwjs ships a TensorFlow.js layers model inside its npm package: a Keras 2.2.4 topology and
uint8-quantized weights, both wrapped in JavaScript (`dist/models/mobilenet_v2/*.min.js`). This
script fetches the package with `npm pack` (into a cache, never into the repository), evaluates the
two wrappers with node, rebuilds the graph layer by layer with Keras 3, loads the dequantized
weights and checks the result on harmless photos (scikit-image's cat and coffee cup should come
out Neutral or Drawing). Its five classes are the thesis's five-class taxonomy, in the same order.

    python benchmarks/nsfwjs.py [--out DIR]     # converts, checks, exports float32 .tflite
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

NSFWJS_PACKAGE = "nsfwjs@4.4.0"
MODEL_DIR = "package/dist/models/mobilenet_v2"
CACHE_DIR = Path(os.environ.get("NSFW_MOBILENET_CACHE", "~/.cache/nsfw-mobilenet")).expanduser() / "nsfwjs-4.4.0"
NSFWJS_CLASSES = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")  # dist/esm/nsfw_classes.js
PIXEL_SCALING = (1 / 255, 0.0)  # dist/esm/core.js: img.toFloat().div(255), then resize to 224
SAFE_PHOTO_CLASSES = {"Neutral", "Drawing"}

# Keras 2.2.4 config keys that Keras 3 layers accept, per layer class in the topology.
LAYER_ARGUMENTS = {
    "ZeroPadding2D": ("padding",),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "depth_multiplier", "dilation_rate", "activation",
                        "use_bias"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Add": (),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "Flatten": (),
    "Dense": ("units", "activation", "use_bias"),
    "Dropout": ("rate",),
}
WEIGHT_ORDER = {
    "Conv2D": ("kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "Dense": ("kernel", "bias"),
}
NODE_DUMP = """
const topology = require(process.argv[1]);
const shard = require(process.argv[2]);
process.stdout.write(JSON.stringify({model: topology, shard: String(shard)}));
"""


class NsfwjsUnavailable(RuntimeError):
    """npm/node are missing or the package cannot be fetched; the benchmark skips nsfwjs."""


def fetch(cache_dir: Path = CACHE_DIR) -> Path:
    """The extracted `mobilenet_v2` model folder, fetched once with `npm pack`."""
    folder = cache_dir / MODEL_DIR
    if (folder / "model.min.js").exists():
        return folder
    if not shutil.which("npm") or not shutil.which("node"):
        raise NsfwjsUnavailable("npm/node not found; install Node.js to benchmark against nsfwjs")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(["npm", "pack", NSFWJS_PACKAGE, "--silent"], cwd=scratch, capture_output=True,
                              text=True, timeout=300)
        tarballs = list(Path(scratch).glob("nsfwjs-*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise NsfwjsUnavailable(f"`npm pack {NSFWJS_PACKAGE}` failed: {done.stderr.strip()[-300:]}")
        with tarfile.open(tarballs[0]) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(MODEL_DIR + "/") and m.isfile()]
            archive.extractall(cache_dir, members=members, filter="data")
    return folder


def read_bundle(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(Keras model config, weights by name), dequantized from the uint8 shard (value = min + scale·q)."""
    shards = sorted(folder.glob("group1-shard*.min.js"))
    if len(shards) != 1:
        raise NsfwjsUnavailable(f"{folder}: expected one weight shard, found {[s.name for s in shards]}")
    dumped = subprocess.run(["node", "-e", NODE_DUMP, str(folder / "model.min.js"), str(shards[0])],
                            capture_output=True, text=True, check=True, timeout=120)
    bundle = json.loads(dumped.stdout)
    raw = np.frombuffer(base64.b64decode(bundle["shard"]), dtype=np.uint8)
    weights, offset = {}, 0
    for spec in bundle["model"]["weightsManifest"][0]["weights"]:
        count = int(np.prod(spec["shape"], dtype=np.int64))
        quantization = spec.get("quantization")
        if quantization:
            values = raw[offset:offset + count].astype(np.float32) * quantization["scale"] + quantization["min"]
            offset += count
        else:
            values = raw[offset:offset + 4 * count].view(np.float32)
            offset += 4 * count
        weights[spec["name"]] = values.reshape(spec["shape"])
    if offset != raw.size:
        raise NsfwjsUnavailable(f"weight shard has {raw.size} bytes, the manifest describes {offset}")
    return bundle["model"]["modelTopology"]["model_config"]["config"], weights


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def build_keras(config: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
    """The Keras 3 functional model described by a Keras 2.2.4 `Model` config, with `weights` loaded."""
    import keras

    tensors: dict[str, Any] = {}
    for spec in config["layers"]:
        kind, layer_config, name = spec["class_name"], spec["config"], spec["name"]
        if kind == "InputLayer":
            tensors[name] = keras.Input(shape=tuple(layer_config["batch_input_shape"][1:]), name=name)
            continue
        if kind not in LAYER_ARGUMENTS:
            raise NsfwjsUnavailable(f"layer {name}: {kind} is not handled by this converter")
        arguments = {k: _as_tuples(layer_config[k]) for k in LAYER_ARGUMENTS[kind] if k in layer_config}
        layer = getattr(keras.layers, kind)(name=name, **arguments)
        inputs = [tensors[inbound[0]] for inbound in spec["inbound_nodes"][0]]
        tensors[name] = layer(inputs if len(inputs) > 1 else inputs[0])
        names = [f"{name}/{part}" for part in WEIGHT_ORDER.get(kind, ())]
        if any(n in weights for n in names):
            layer.set_weights([weights[n] for n in names if n in weights])
    outputs = [tensors[output[0]] for output in config["output_layers"]]
    return keras.Model([tensors[i[0]] for i in config["input_layers"]], outputs, name="nsfwjs_mobilenet_v2")


def load_model(cache_dir: Path = CACHE_DIR) -> Any:
    """nsfwjs's MobileNetV2 as a Keras model taking pixels/255 (224×224 RGB)."""
    return build_keras(*read_bundle(fetch(cache_dir)))


def harmless_photos() -> dict[str, np.ndarray]:
    """scikit-image's cat and coffee photos squashed to 224×224 like nsfwjs does (bilinear)."""
    from PIL import Image
    from skimage import data as skimage_data

    return {name: np.asarray(Image.fromarray(getattr(skimage_data, name)()).resize((224, 224), Image.BILINEAR))
            for name in ("chelsea", "coffee")}


def sanity_check(model: Any) -> dict[str, dict[str, float]]:
    """Class probabilities for each harmless photo; raises if one is not mostly Neutral/Drawing."""
    photos = harmless_photos()
    batch = np.stack(list(photos.values())).astype(np.float32) * PIXEL_SCALING[0] + PIXEL_SCALING[1]
    probabilities = model.predict(batch, verbose=0)
    result = {name: {c: round(float(p), 4) for c, p in zip(NSFWJS_CLASSES, row)}
              for name, row in zip(photos, probabilities)}
    for name, row in result.items():
        if sum(row[c] for c in SAFE_PHOTO_CLASSES) < 0.5:
            raise AssertionError(f"converted nsfwjs calls the harmless photo {name!r} unsafe: {row}; conversion is wrong")
    return result


def model_card() -> dict[str, Any]:
    return {"backbone": f"nsfwjs MobileNetV2 (GantMan, npm {NSFWJS_PACKAGE})", "source_classes": list(NSFWJS_CLASSES),
            "training_data": "GantMan's nsfw_data_scraper images (not this project's)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CACHE_DIR / "export", help="where the .tflite goes")
    args = parser.parse_args(argv)
    from nsfw_mobilenet.app import export
    from nsfw_mobilenet.core.taxonomy import FIVE_CLASS

    try:
        model = load_model()
    except NsfwjsUnavailable as error:
        print(f"nsfwjs skipped: {error}", file=sys.stderr)
        return 0
    print(json.dumps(sanity_check(model), indent=2))
    exported = export.export_tflite(model, args.out, "float32", classes=FIVE_CLASS.classes,
                                    pixel_scaling=PIXEL_SCALING,
                                    model_card=model_card())
    print(f"wrote {exported.path} ({exported.path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

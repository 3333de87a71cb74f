"""On-device cost of every backbone × TFLite variant, side by side with the nsfwjs MobileNetV2, in one run.

For each model (2-class thesis head, §4.2) and variant (float32, float16, dynamic_range, int8)
this measures, with LiteRT at batch 1: latency in ms/image at 1 and 2 threads (median of RUNS
invocations after WARMUP), throughput (images/s at 2 threads, sequential batch-1 calls) and file
size, plus how much of the graph LiteRT's XNNPACK delegate runs (partitions, ops left outside).

What is timed is the model: set the input tensor, invoke, read the output, with the image already
in the file's input type (uint8 for int8, float32 otherwise), as an app hands LiteRT its bitmap.
Converting the image in Python is left out: it is the caller's work, not the model's (an earlier
version timed `LiteRTModel.invoke`, whose generic uint8 conversion charged int8 ~0.3 ms that float32
did not pay).
Every file is exported before the clock starts; then all (model, variant, threads) interpreters
are timed together in rounds, in a shuffled order each round, with Python's garbage collector off.

Extra rows explain int8 on MobileNetV3:
- `int8_float_mul`: int8 with the multiplications kept in float too (`export.INT8_FLOAT_MULTIPLICATIONS`),
  the int8 form closest to float32 (notebook 07) and, on x86, the fastest (`benchmarks/op_profile.py`);
- `int8_float_mul_softmax`: the softmax in float as well (`export.INT8_FLOAT_MULTIPLICATIONS_AND_SOFTMAX`),
  whose output keeps the resolution a review band's low end needs (notebook 07);
- `int8_hard_swish_op`: int8 with hard-swish computed in int8 (one int8 HARD_SWISH op, which XNNPACK
  runs only in float, so it falls back to LiteRT's builtin kernel), what `export` avoids by keeping
  HARD_SWISH in float (`export.INT8_FLOAT_HARD_SWISH`);
- V3-Small with the standard head (the final model's, notebook 07) and with a Dense on the pooled
  features only (include_top=False), the size an app would ship.

V1, V2 and V3-Small load their offline ImageNet weights (V2/V3-Small dequantized from TFLite).
V3-Large has none offline: it is random-init and its BatchNorm statistics are re-estimated on stand-in
images, so int8 calibration sees realistic activation ranges (random-init activations shrink to ~1e-6
and would distort what XNNPACK accepts). Latency does not depend on the weights' values; accuracy is
not measured here.

    python benchmarks/latency.py            # writes benchmarks/results/latency.{json,md} (~10 min)
    python benchmarks/latency.py --quick    # V3-Small float32/int8/int8_float_mul + nsfwjs float32, ~2 min:
                                            # writes benchmarks/results/latency_quick.{json,md}
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsfw_mobilenet.io import image_cache, input_pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import machine  # noqa: E402  (benchmarks/machine.py, next to this script)
import nsfwjs  # noqa: E402  (benchmarks/nsfwjs.py, next to this script)
import numpy as np  # noqa: E402

from nsfw_mobilenet.app import (
    export,  # noqa: E402
    model_card,
)
from nsfw_mobilenet.app.litert import LiteRTModel  # noqa: E402
from nsfw_mobilenet.core import backbones
from nsfw_mobilenet.core.settings import settings_from_environment
from nsfw_mobilenet.core.taxonomy import BINARY, FIVE_CLASS  # noqa: E402
from nsfw_mobilenet.io import image_files, standin
from nsfw_mobilenet.io.weights import local_weights_path, weights_source
from nsfw_mobilenet.studies import backbone_selection
from nsfw_mobilenet.training import models

SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"  # the project's offline weights
# The script is an edge: NSFW_MOBILENET_WEIGHTS_DIR, else ../shared/weights beside the checkout.
WEIGHTS_DIR = settings_from_environment(os.environ).weights_dir or (SHARED_WEIGHTS if SHARED_WEIGHTS.is_dir() else None)
THREADS = (1, 2)
RUNS = 200  # 40 interleaved rounds of ROUND: a burst of load from other jobs lands in few of them
WARMUP = 10
ROUND = 5  # invocations per model per interleaved round
CALIBRATION_IMAGES = 16
NSFWJS_NAME = "nsfwjs MobileNetV2"
# V3-Small with the final model's standard head (1024-wide Conv_2 features, no 1000-way top) and with a
# Dense on the pooled 576 backbone features only (include_top=False): what an app would ship when size
# matters (the thesis head keeps the 1000-way ImageNet top, listing 4.7).
EXTRA_HEADS = (("mobilenet_v3_small", "standard"), ("mobilenet_v3_small", "features"))
# --quick: the README's headline comparison only (V3-Small thesis head float32 vs int8 and int8_float_mul,
# see `export_all`; nsfwjs float32).
QUICK = {backbone_selection.latency_model_name("mobilenet_v3_small"): ("float32", "int8"), NSFWJS_NAME: ("float32",)}
TARGETS = {"v3_small_float32_ms": 0.6, "speedup_vs_nsfwjs": 3.0, "int8_megabytes": 1.2}


# ---------------------------------------------------------------- models


def calibration_images(count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """uint8 224×224 stand-in training images: int8 calibration and BatchNorm re-estimation."""
    root = standin.ensure_standin(progress=False) / "binary"
    items = image_files.list_images(root, "train")
    chosen = [items[i] for i in np.random.default_rng(0).choice(len(items), count, replace=False)]
    return image_cache.load_images(chosen, sorted({i.label for i in items}), progress=False).images


def reestimate_batch_norm(model: Any, images: np.ndarray) -> None:
    """Set every BatchNorm's moving statistics to those of `images` (one training-mode pass; flat models)."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def feature_head_classifier(backbone: str, weights: str | None) -> Any:
    """Softmax Dense on the globally pooled backbone features: no ImageNet top, no extra 1×1 conv."""
    import keras

    base = models.build_backbone(backbone, weights, include_top=False, weights_dir=WEIGHTS_DIR)
    return keras.Model(base.input, keras.layers.Dense(2, activation="softmax")(base.output))


def contenders(images: np.ndarray, only: list[str] | None = None, exact: bool = False) -> list[dict[str, Any]]:
    """Our four backbones (thesis head), the EXTRA_HEADS, and nsfwjs; `only` filters by name
    (a part of it, or the whole name with `exact`)."""
    wanted = lambda name: not only or any(part == name if exact else part in name for part in only)  # noqa: E731
    found = []
    for backbone, head in [*((name, "thesis") for name in backbones.BACKBONES), *EXTRA_HEADS]:
        name = backbone_selection.latency_model_name(backbone, head)
        if not wanted(name):
            continue
        # Only the offline file: latency does not depend on weight values, so no download is attempted.
        weights = "imagenet" if local_weights_path(backbone, weights_dir=WEIGHTS_DIR) else None
        model = (feature_head_classifier(backbone, weights) if head == "features" else
                 models.build_classifier(backbone, 2, head=head, weights=weights, weights_dir=WEIGHTS_DIR))
        note = f"{weights_source(backbone, weights, weights_dir=WEIGHTS_DIR)} weights (offline file)"
        if weights is None:
            reestimate_batch_norm(model, input_pipeline.preprocess_for(backbone)(images.astype(np.float32)))
            note = ("random init, NOT ImageNet (no offline weights); BatchNorm statistics re-estimated on "
                    "stand-in images")
        found.append({"name": name, "model": model, "scaling": export.pixel_scaling_for(backbone), "weights": note,
                      "variants": export.VARIANTS if head == "thesis" else ("float32", "float16", "int8")})
    if not wanted(NSFWJS_NAME):
        return found
    try:
        peer = nsfwjs.load_model()
        photos = ", ".join(f"{name}: Neutral {row['Neutral']:.3f}, Drawing {row['Drawing']:.3f}"
                           for name, row in nsfwjs.sanity_check(peer).items())
        found.append({"name": NSFWJS_NAME, "model": peer, "scaling": nsfwjs.PIXEL_SCALING,
                      "weights": f"GantMan's trained weights from npm {nsfwjs.NSFWJS_PACKAGE} (converted; harmless "
                                 f"photos {photos})",
                      "variants": ("float32", "int8")})
    except nsfwjs.NsfwjsUnavailable as error:
        print(f"nsfwjs skipped: {error}", file=sys.stderr)
    return found


def quick_contenders(images: np.ndarray) -> list[dict[str, Any]]:
    """The QUICK models with only their QUICK variants."""
    return [{**found, "variants": QUICK[found["name"]], "quick": True}
            for found in contenders(images, list(QUICK), exact=True)]


# ---------------------------------------------------------------- measuring


def xnnpack_coverage(path: Path) -> dict[str, Any]:
    """Partitions XNNPACK made and the ops it left to LiteRT's builtin kernels (op-level view).

    A delegated op's output is either internal to its partition or an output of a DELEGATE node;
    an op whose output is neither, but is consumed across a partition boundary, ran outside XNNPACK.
    """
    interpreter = LiteRTModel(path).interpreter
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    delegated_outputs = {t for op in delegates for t in op["outputs"]}
    visible = {t for op in delegates for t in op["inputs"]} | {o["index"] for o in interpreter.get_output_details()}
    outside: list[dict] = []
    grew = True
    while grew:
        grew = False
        for op in ops:
            if op in delegates or op in outside or set(op["outputs"]) & delegated_outputs:
                continue
            if set(op["outputs"]) & visible:
                outside.append(op)
                visible |= set(op["inputs"])
                grew = True
    return {"partitions": len(delegates), "ops": len(ops) - len(delegates),
            "outside_xnnpack": dict(Counter(op["op_name"] for op in outside))}


def model_call(runner: LiteRTModel, image: np.ndarray) -> Callable[[], np.ndarray]:
    """One batch-1 inference of `runner` on `image` converted once to the file's input type."""
    interpreter = runner.interpreter
    tensor = runner._quantize(image)  # the bitmap in the input's dtype, as an app would pass it
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def call() -> np.ndarray:
        interpreter.set_tensor(input_index, tensor)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return call


def timed_invocations(calls: dict[Any, Callable[[], Any]], runs: int, seed: int = 0) -> dict[Any, list[float]]:
    """ms per call for every entry, measured in interleaved rounds after WARMUP calls each.

    Interleaving spreads the load of other processes on the shared cores over all models alike, so
    ratios between models stay fair even when absolute times drift; the order is shuffled each
    round so that no model always follows the same one, and the garbage collector is held off.
    """
    for call in calls.values():
        for _ in range(WARMUP):
            call()
    times: dict[Any, list[float]] = {key: [] for key in calls}
    order = list(calls)
    shuffle = random.Random(seed).shuffle
    gc.collect()
    gc.disable()
    try:
        for _ in range(0, runs, ROUND):
            shuffle(order)
            for key in order:
                call = calls[key]
                for _ in range(ROUND):
                    start = time.perf_counter()
                    call()
                    times[key].append((time.perf_counter() - start) * 1000)
    finally:
        gc.enable()
    return times


def export_all(contender: dict[str, Any], images: np.ndarray, folder: Path) -> dict[str, Path]:
    """The contender's `.tflite` files by variant; for int8 with hard-swish also `int8_float_mul` and (unless the
    contender says `quick`) `int8_float_mul_softmax` and `int8_hard_swish_op`."""
    paths = {}
    options = {"classes": BINARY.classes if contender["model"].output_shape[-1] == 2 else FIVE_CLASS.classes,
               "pixel_scaling": contender["scaling"], "representative_images": images}
    for variant in contender["variants"]:
        paths[variant] = export.export_tflite(contender["model"], folder, variant, **options).path
    if "int8" not in contender["variants"] or not export.hard_swish_layers(contender["model"]):
        return paths
    paths["int8_float_mul"] = export.export_tflite(contender["model"], folder / "float_mul", "int8",
                                                   float_ops=export.INT8_FLOAT_MULTIPLICATIONS, **options).path
    if not contender.get("quick"):
        paths["int8_float_mul_softmax"] = export.export_tflite(
            contender["model"], folder / "float_mul_softmax", "int8",
            float_ops=export.INT8_FLOAT_MULTIPLICATIONS_AND_SOFTMAX, **options).path
        fused = folder / "int8_hard_swish_op" / export.MODEL_FILE
        fused.parent.mkdir(parents=True, exist_ok=True)
        fused.write_bytes(export.convert(export.raw_pixel_model(contender["model"], contender["scaling"]), "int8", images))
        paths["int8_hard_swish_op"] = fused
    return paths


def measure(contenders_: list[dict[str, Any]], images: np.ndarray, work: Path, runs: int = RUNS) -> list[dict[str, Any]]:
    """Export everything first, then time all files together (see `timed_invocations`)."""
    from tqdm import tqdm

    rows, calls = [], {}
    for index, contender in enumerate(tqdm(contenders_, desc="export", file=sys.stderr)):
        for variant, path in export_all(contender, images, work / str(index)).items():
            rows.append({"model": contender["name"], "variant": variant, "size_bytes": path.stat().st_size,
                         "weights": contender["weights"], **xnnpack_coverage(path)})
            for threads in THREADS:
                calls[(len(rows) - 1, threads)] = model_call(LiteRTModel(path, num_threads=threads), images[0])
    print(f"timing {len(calls)} interpreters, {runs} runs each ...", file=sys.stderr)
    times = timed_invocations(calls, runs)
    for (index, threads), measured in times.items():
        rows[index][f"ms_{threads}_threads"] = round(float(np.median(measured)), 3)
        rows[index][f"p90_ms_{threads}_threads"] = round(float(np.percentile(measured, 90)), 3)
    for row in rows:
        row["images_per_second_2_threads"] = round(1000 / row["ms_2_threads"], 1)
    return rows


# ---------------------------------------------------------------- reporting


def find(rows: list[dict], model: str, variant: str) -> dict | None:
    return next((r for r in rows if r["model"] == model and r["variant"] == variant), None)


def summary(rows: list[dict]) -> dict[str, Any]:
    """The issue's targets, and the ratio to nsfwjs, from the measured rows."""
    v3_float = find(rows, "mobilenet_v3_small", "float32")
    peer = find(rows, NSFWJS_NAME, "float32")
    v3_int8 = [r for r in rows if r["variant"] == "int8" and r["model"].startswith("mobilenet_v3_small")]
    smallest_int8 = min(v3_int8, key=lambda r: r["size_bytes"]) if v3_int8 else None
    result = {
        "v3_small_float32_ms_2_threads": v3_float["ms_2_threads"] if v3_float else None,
        "nsfwjs_float32_ms_2_threads": peer["ms_2_threads"] if peer else None,
        "speedup_vs_nsfwjs_2_threads": round(peer["ms_2_threads"] / v3_float["ms_2_threads"], 2)
        if peer and v3_float else None,
        "smallest_v3_small_int8": {"model": smallest_int8["model"], "megabytes": round(smallest_int8["size_bytes"] / 1e6, 2)}
        if smallest_int8 else None,
        "targets": TARGETS,
        "int8_vs_float32_2_threads": {},
    }
    for model in sorted({r["model"] for r in rows}):
        float32, int8, float_mul, fused = (find(rows, model, v) for v in
                                           ("float32", "int8", "int8_float_mul", "int8_hard_swish_op"))
        if float32 and int8:
            result["int8_vs_float32_2_threads"][model] = {
                "float32_ms": float32["ms_2_threads"], "int8_ms": int8["ms_2_threads"],
                "int8_float_mul_ms": float_mul["ms_2_threads"] if float_mul else None,
                "int8_hard_swish_op_ms": fused["ms_2_threads"] if fused else None}
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# LiteRT latency, batch 1 (generated by `{report['command']}`, do not edit)", "",
        f"{report['date']} · {report['machine']} · LiteRT {report['versions']['ai_edge_litert']} · "
        f"load average before the run {report['load_average_before']}, after {report['load_average_after']} "
        "(2 shared cores: other jobs add noise)", "",
        *machine.quiet_banner(report),
        "Timed: set input, invoke, read output, input already in the file's type; median of "
        f"{report['runs']} calls after {report['warmup']} warm-up, all rows interleaved.", "",
        "| model | variant | size (MB) | ms 1 thread | ms 2 threads | img/s (2 thr) | XNNPACK partitions | ops outside XNNPACK |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        outside = ", ".join(f"{k}×{v}" for k, v in sorted(r["outside_xnnpack"].items()))
        lines.append(f"| {r['model']} | {r['variant']} | {r['size_bytes'] / 1e6:.2f} | {r['ms_1_threads']:.2f} | "
                     f"{r['ms_2_threads']:.2f} | {r['images_per_second_2_threads']:.0f} | {r['partitions']} | {outside} |")
    s = report["summary"]
    lines += ["", "## Summary", ""]
    if s["v3_small_float32_ms_2_threads"] is not None:
        lines.append(f"- MobileNetV3-Small float32, 2 threads: **{s['v3_small_float32_ms_2_threads']:.2f} ms/image** "
                     f"(target ≤ {TARGETS['v3_small_float32_ms']} ms).")
    if s["speedup_vs_nsfwjs_2_threads"]:
        lines.append(f"- nsfwjs MobileNetV2 float32, 2 threads: {s['nsfwjs_float32_ms_2_threads']:.2f} ms/image → "
                     f"V3-Small is **{s['speedup_vs_nsfwjs_2_threads']:.2f}× faster** (target ≥ {TARGETS['speedup_vs_nsfwjs']}×).")
    else:
        lines.append("- No V3-Small/nsfwjs ratio in this run (nsfwjs skipped or not selected).")
    if s["smallest_v3_small_int8"]:
        lines.append(f"- Smallest V3-Small int8: {s['smallest_v3_small_int8']['model']}, "
                     f"**{s['smallest_v3_small_int8']['megabytes']:.2f} MB** (target ≤ {TARGETS['int8_megabytes']} MB).")
    lines += ["", "int8 vs float32 at 2 threads (ms; `int8` keeps hard-swish in float, `int8_float_mul` also the MULs, "
              "`int8_hard_swish_op` computes HARD_SWISH in int8, outside XNNPACK):", ""]
    for model, v in s["int8_vs_float32_2_threads"].items():
        float_mul = f", int8 with MUL in float {v['int8_float_mul_ms']:.2f}" if v["int8_float_mul_ms"] else ""
        fused = f", int8 with HARD_SWISH op {v['int8_hard_swish_op_ms']:.2f}" if v["int8_hard_swish_op_ms"] else ""
        lines.append(f"- {model}: float32 {v['float32_ms']:.2f}, int8 {v['int8_ms']:.2f} "
                     f"(×{v['int8_ms'] / v['float32_ms']:.2f}){float_mul}{fused}")
    lines += ["", "Weights:", ""] + sorted({f"- {r['model']}: {r['weights']}" for r in report["rows"]})
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=machine.RESULTS)
    parser.add_argument("--only", nargs="+", help="measure only models whose name contains one of these")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed invocations per model and thread count")
    parser.add_argument("--quick", action="store_true",
                        help="only V3-Small float32/int8/int8_float_mul and nsfwjs float32 (~2 min), "
                             "written to latency_quick.*")
    args = parser.parse_args(argv)
    if args.quick and args.only:
        parser.error("--quick chooses its own models; drop --only")
    started = time.time()
    record = machine.start_record()
    images = calibration_images()
    with tempfile.TemporaryDirectory() as work:
        chosen = quick_contenders(images) if args.quick else contenders(images, args.only)
        rows = measure(chosen, images, Path(work), args.runs)
    stem = "latency_quick" if args.quick else "latency"
    report = {
        **machine.finish_record(record),
        "command": f"python benchmarks/latency.py{' --quick' if args.quick else ''}",
        "versions": model_card.library_versions(),
        "runs": args.runs, "warmup": WARMUP, "threads": list(THREADS), "batch": 1,
        "seconds": round(time.time() - started, 1),
        "rows": rows,
    }
    report["summary"] = summary(rows)
    machine.write_results(stem, report, markdown(report), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput (images/s, end to end) of each backbone's thesis configuration on 2 CPU cores.

Measures, on the stand-in data decoded once into memory:
- `augmented`: the full network per step with the thesis's six augmentations (decode cache → augment →
  preprocess → forward/backward of the trainable layers), as table 4.11's V3-Small run;
- `no_augmentation_recompute` vs `no_augmentation_cached`: the same config without augmentation, training
  the whole graph per epoch or computing the frozen part once (`train.train(feature_cache=...)`).
Projects the thesis-scale time (24,998 images × 10 epochs) to compare with the thesis's RTX 3070 minutes.

    python benchmarks/training_throughput.py [--images-per-class 400] [--epochs 10] [--backbones ...]
Writes benchmarks/results/training_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nsfw_mobilenet import experiments, settings_from_environment, standin, subsets, train  # noqa: E402

THESIS_CONFIGS = {  # (table, row) of each backbone's chosen configuration in §4.2
    "mobilenet_v1": ("4.1", 6), "mobilenet_v2": ("4.5", 5),
    "mobilenet_v3_small": ("4.9", 4), "mobilenet_v3_large": ("4.13", 3),
}
THESIS_SCALE_IMAGES = experiments.thesis_reference()["dataset_2_classes"]["train_images"]
RESULTS = Path(__file__).parent / "results"
WEIGHTS_DIR = settings_from_environment().weights_dir  # the script is an edge: NSFW_MOBILENET_WEIGHTS_DIR


def _timed_run(config: experiments.ExperimentConfig, run_data: subsets.RunData, feature_cache: bool) -> tuple:
    started = time.perf_counter()
    run = train.train(config, run_data, feature_cache=feature_cache, weights_dir=WEIGHTS_DIR,
                      checkpoint_dir=Path("runs/bench") / f"{time.time_ns()}", verbose=0)
    return time.perf_counter() - started, run


def measure(config: experiments.ExperimentConfig, run_data: subsets.RunData, feature_cache: bool) -> dict:
    """Steady-state images/s from a 1-epoch and an E-epoch run (both pay tracing and caching once)."""
    one_epoch_s, _ = _timed_run(config.with_overrides(epochs=1), run_data, feature_cache)
    total_s, run = _timed_run(config, run_data, feature_cache)
    images = len(run_data.training.labels)
    return {"images_per_second": images * (config.epochs - 1) / (total_s - one_epoch_s),
            "end_to_end_s": total_s, "one_epoch_s": one_epoch_s, "epochs": config.epochs,
            "training_images": images, "val_accuracy": run.result["final"]["val_accuracy"],
            "cached": run.result["feature_cache"]}


def _speedups(row: dict) -> str:
    if "end_to_end_speedup_vs_recompute" not in row:
        return ""
    return f"{row['end_to_end_speedup_vs_recompute']:.1f}× / {row['per_epoch_speedup_vs_recompute']:.0f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backbones", nargs="*", default=list(THESIS_CONFIGS))
    args = parser.parse_args()
    root = standin.ensure_standin(Path("runs/benchmark_standin"), images_per_class=args.images_per_class) / "binary"
    run_data = subsets.load_run_data(root, progress=False)
    rows = []
    for backbone in args.backbones:
        table, row = THESIS_CONFIGS[backbone]
        config = next(c for c in experiments.table_configs(table) if c.row == row).with_overrides(epochs=args.epochs)
        variants = {"augmented": (config.with_overrides(augmentation="ABCDEF", order="corrected"), False),
                    "no_augmentation_recompute": (config, False), "no_augmentation_cached": (config, True)}
        for variant, (variant_config, cached) in variants.items():
            result = measure(variant_config, run_data, cached)
            result.update(backbone=backbone, variant=variant, table=table, row=row,
                          thesis_scale_minutes=THESIS_SCALE_IMAGES * 10 / result["images_per_second"] / 60,
                          thesis_minutes=experiments.thesis_row(table, row).get("time_min"))
            rows.append(result)
            print(json.dumps(result))
        recompute, cached = rows[-2], rows[-1]
        cached["end_to_end_speedup_vs_recompute"] = recompute["end_to_end_s"] / cached["end_to_end_s"]
        cached["per_epoch_speedup_vs_recompute"] = ((recompute["end_to_end_s"] - recompute["one_epoch_s"])
                                                    / max(cached["end_to_end_s"] - cached["one_epoch_s"], 1e-3))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps({"rows": rows, "versions": train.versions()}, indent=1))
    lines = [f"{args.epochs} epochs on {rows[0]['training_images']} stand-in training images; "
             "steady = epochs 2..E; the cached path pays the frozen forward pass once, in its first epoch.", "",
             "| backbone | variant | images/s (steady) | end-to-end s | speed-up vs recompute (end-to-end / per epoch) "
             f"| thesis-scale min ({THESIS_SCALE_IMAGES:,} × 10, steady) | thesis min (RTX 3070) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['backbone']} | {r['variant']} | {r['images_per_second']:.0f} | {r['end_to_end_s']:.1f} "
              f"| {_speedups(r)} | {r['thesis_scale_minutes']:.1f} | {r['thesis_minutes']} |" for r in rows]
    (RESULTS / "training_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Training throughput (images/s) on 2 CPU cores: issue 11's augmentation goal, and each backbone's config.

Measures, on the stand-in data (decoded once into the cache, read a batch at a time):
- the goal (by default): V3-Small's configuration as §4.2.3 chose it (`chosen_rows`) trained with all six
  techniques, `augment.augmentation` (fused) against listing 4.5's Keras layers
  (`augment.keras_augmentation`), in both orders, beside the same config without augmentation.
  The variants run interleaved (each once per round, `--rounds` rounds), so load moves them alike;
- the input pipeline alone (`input_pipeline.make_dataset` with the augmentation, no model), fused against the
  layers and the fused op without noise (D), interleaved too: images/s and CPU ms per image, the
  augmentation's own cost;
- with `--backbones`, each backbone's thesis configuration: augmented (fused, corrected order) and
  without augmentation, training the whole graph per epoch or computing the frozen part once
  (`train.train(feature_cache=...)`), projected to thesis scale (its training images × its epochs).
Training rates are steady state: an E-epoch run minus a 1-epoch run (both pay tracing and caching);
each also records this process's CPU ms per image, which other jobs on the machine barely inflate.

    python benchmarks/training_throughput.py [--rounds 2] [--goal-epochs 4] [--backbones all|<names>]
Writes benchmarks/results/training_throughput.json and .md, with the load average (benchmarks/machine.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from nsfw_mobilenet.io import input_pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import machine  # noqa: E402  (benchmarks/machine.py, next to this script)
import numpy as np  # noqa: E402

from nsfw_mobilenet.core.configs import ExperimentConfig, table_configs, thesis_reference, thesis_row
from nsfw_mobilenet.core.settings import settings_from_environment
from nsfw_mobilenet.io import standin
from nsfw_mobilenet.io.run_data import RunData, load_run_data
from nsfw_mobilenet.training import (
    augment,  # noqa: E402
    train,
)

GOAL_BACKBONE = "mobilenet_v3_small"
GOAL_IMAGES_PER_SECOND = 160  # issue 11: V3-Small with all six techniques on 2 cores, in both orders
ALL_SIX = "ABCDEF"
BUILDERS = {"fused": augment.augmentation, "keras layers": augment.keras_augmentation}
THESIS_SCALE_IMAGES = thesis_reference()["dataset_2_classes"]["train_images"]
CORES = os.cpu_count() or 1
WEIGHTS_DIR = settings_from_environment(os.environ).weights_dir  # the script is an edge: NSFW_MOBILENET_WEIGHTS_DIR


def chosen_configs() -> dict[str, ExperimentConfig]:
    """Each backbone's configuration as §4.2.1–4.2.4 chose it (the reference file's `chosen_rows`)."""
    configs = [next(c for c in table_configs(table) if c.row == pick["row"])
               for table, pick in thesis_reference()["chosen_rows"].items()]
    return {config.backbone: config for config in configs}


def _timed_run(config: ExperimentConfig, run_data: RunData, feature_cache: bool,
               builder: Callable) -> tuple:
    """Wall seconds, CPU seconds of this process (all its threads) and the run."""
    started, cpu_started = time.perf_counter(), time.process_time()
    run = train.train(config, run_data, feature_cache=feature_cache, weights_dir=WEIGHTS_DIR,
                      checkpoint_dir=Path("runs/bench") / f"{time.time_ns()}", verbose=0,
                      augmentation_builder=builder)
    return time.perf_counter() - started, time.process_time() - cpu_started, run


def measure(config: ExperimentConfig, run_data: RunData, feature_cache: bool = False,
            builder: Callable = augment.augmentation) -> dict:
    """Steady-state images/s from a 1-epoch and an E-epoch run (both pay tracing and caching once), and
    the CPU ms per image: other jobs slow the wall clock far more than they inflate CPU time, so
    `cores × 1000 / CPU ms` bounds what a quiet machine can reach."""
    one_epoch_s, one_epoch_cpu_s, _ = _timed_run(config.with_overrides(epochs=1), run_data, feature_cache, builder)
    total_s, total_cpu_s, run = _timed_run(config, run_data, feature_cache, builder)
    images = len(run_data.training.labels)
    cpu_ms_per_image = 1000 * (total_cpu_s - one_epoch_cpu_s) / (images * (config.epochs - 1))
    return {"images_per_second": images * (config.epochs - 1) / (total_s - one_epoch_s),
            "cpu_ms_per_image": cpu_ms_per_image, "cpu_bound_images_per_second": CORES * 1000 / cpu_ms_per_image,
            "end_to_end_s": total_s, "one_epoch_s": one_epoch_s, "epochs": config.epochs,
            "training_images": images, "val_accuracy": run.result["final"]["val_accuracy"],
            "cached": run.result["feature_cache"]}


def goal_variants() -> dict[tuple[str, str], tuple[Callable | None, str]]:
    """(implementation, order) → (augmentation builder, order); no augmentation as ("none", "-")."""
    variants = {(name, order): (builder, order) for order in input_pipeline.ORDERS for name, builder in BUILDERS.items()}
    return {**variants, ("none", "-"): (None, "corrected")}


def goal_rounds(run_data: RunData, epochs: int, rounds: int) -> list[dict]:
    """V3-Small trained with each goal variant once per round, interleaved."""
    config = chosen_configs()[GOAL_BACKBONE].with_overrides(epochs=epochs)
    rows = []
    for round_number in range(1, rounds + 1):
        for (implementation, order_label), (builder, order) in goal_variants().items():
            letters = ALL_SIX if builder else ""
            result = measure(config.with_overrides(augmentation=letters, order=order), run_data,
                             builder=builder or augment.augmentation)
            rows.append({"round": round_number, "implementation": implementation, "order": order_label,
                         **{key: result[key] for key in ("images_per_second", "cpu_ms_per_image",
                                                         "cpu_bound_images_per_second", "training_images")},
                         "epochs": epochs})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def pipeline_rate(images: np.ndarray, builder: Callable | None, letters: str, order: str, passes: int = 2) -> dict:
    """Images/s and process CPU ms per image of the training input pipeline alone (no model)."""
    labels = np.zeros(len(images), np.int64)
    augmentation = builder(letters, seed=1) if builder else None
    dataset = input_pipeline.make_dataset(images, labels, 2, GOAL_BACKBONE, shuffle=True, augmentation=augmentation, order=order)
    for _ in dataset.take(1):  # traces (and compiles) before the clock starts
        pass
    wall, cpu = time.perf_counter(), time.process_time()
    count = sum(len(batch) for _ in range(passes) for batch, _ in dataset)
    return {"images_per_second": count / (time.perf_counter() - wall),
            "cpu_ms_per_image": 1000 * (time.process_time() - cpu) / count}


def pipeline_rounds(images: np.ndarray, rounds: int) -> list[dict]:
    """The augmentation's own cost: fused, fused without noise (D), the Keras layers and none, interleaved."""
    variants = {("fused", ALL_SIX): augment.augmentation, ("fused", "ABCEF"): augment.augmentation,
                ("keras layers", ALL_SIX): augment.keras_augmentation, ("none", ""): None}
    rows = []
    for round_number in range(1, rounds + 1):
        for order in input_pipeline.ORDERS:
            for (implementation, letters), builder in variants.items():
                rate = pipeline_rate(images, builder, letters, order)
                rows.append({"round": round_number, "implementation": implementation, "letters": letters or "-",
                             "order": order, **rate})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def backbone_rows(run_data: RunData, backbones: list[str], epochs: int) -> list[dict]:
    """Each backbone's thesis config: augmented (fused, corrected) and without augmentation, recomputed or cached."""
    rows = []
    for backbone in backbones:
        chosen = chosen_configs()[backbone]
        config = chosen.with_overrides(epochs=epochs)
        variants = {"augmented": (config.with_overrides(augmentation=ALL_SIX, order="corrected"), False),
                    "no_augmentation_recompute": (config, False), "no_augmentation_cached": (config, True)}
        for variant, (variant_config, cached) in variants.items():
            result = measure(variant_config, run_data, cached)
            result.update(backbone=backbone, variant=variant, table=chosen.table, row=chosen.row,
                          thesis_scale_minutes=THESIS_SCALE_IMAGES * chosen.epochs / result["images_per_second"] / 60,
                          thesis_minutes=thesis_row(chosen.table, chosen.row).get("time_min"))
            rows.append(result)
            print(json.dumps(result), flush=True)
        recompute, cached = rows[-2], rows[-1]
        cached["end_to_end_speedup_vs_recompute"] = recompute["end_to_end_s"] / cached["end_to_end_s"]
        cached["per_epoch_speedup_vs_recompute"] = ((recompute["end_to_end_s"] - recompute["one_epoch_s"])
                                                    / max(cached["end_to_end_s"] - cached["one_epoch_s"], 1e-3))
    return rows


def _medians(rows: list[dict], keys: tuple[str, ...], value: str) -> dict[tuple, float]:
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row[value])
    return {key: statistics.median(values) for key, values in groups.items()}


def goal_summary(rows: list[dict]) -> dict:
    """Median images/s per variant, fused/layers and fused/no-augmentation ratios, and whether the goal is met
    (on the wall clock; the CPU bound says what a quiet machine could reach)."""
    medians = _medians(rows, ("implementation", "order"), "images_per_second")
    bounds = _medians(rows, ("implementation", "order"), "cpu_bound_images_per_second")
    baseline = medians[("none", "-")]
    orders = {order: {"fused": medians[("fused", order)], "keras_layers": medians[("keras layers", order)],
                      "fused_vs_layers": medians[("fused", order)] / medians[("keras layers", order)],
                      "fused_vs_no_augmentation": medians[("fused", order)] / baseline,
                      "fused_cpu_bound": bounds[("fused", order)]}
              for order in input_pipeline.ORDERS}
    return {"no_augmentation": baseline, "no_augmentation_cpu_bound": bounds[("none", "-")], "orders": orders,
            "goal_images_per_second": GOAL_IMAGES_PER_SECOND,
            "goal_met": all(o["fused"] >= GOAL_IMAGES_PER_SECOND for o in orders.values())}


def _goal_lines(rows: list[dict], summary: dict, rounds: int) -> list[str]:
    keys = ("implementation", "order")
    per_round: dict[tuple, list[str]] = {}
    for row in rows:
        per_round.setdefault(tuple(row[k] for k in keys), []).append(f"{row['images_per_second']:.0f}")
    rates, cpu = _medians(rows, keys, "images_per_second"), _medians(rows, keys, "cpu_ms_per_image")
    goal = chosen_configs()[GOAL_BACKBONE]
    lines = [f"## Issue 11 goal: V3-Small (table {goal.table} row {goal.row}) with all six techniques, "
             f"≥ {GOAL_IMAGES_PER_SECOND} "
             "images/s in both orders", "",
             f"{rows[0]['epochs']} epochs on {rows[0]['training_images']} stand-in training images, steady state "
             f"(epochs 2..E); {rounds} round(s), every variant once per round, interleaved. CPU ms / image is this "
             f"process's CPU time (all threads); {CORES} cores × 1000 / CPU ms is the rate a quiet machine could "
             "reach if training kept every core busy.", "",
             "| augmentation | order | images/s per round | median | fused / layers | vs no augmentation "
             f"| CPU ms / image | {CORES}-core CPU bound, images/s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for (implementation, order), values in per_round.items():
        median = rates[(implementation, order)]
        ratio = f"{summary['orders'][order]['fused_vs_layers']:.2f}×" if implementation == "fused" else ""
        lines.append(f"| {implementation} | {order} | {', '.join(values)} | {median:.0f} | {ratio} "
                     f"| {median / summary['no_augmentation']:.2f} | {cpu[(implementation, order)]:.2f} "
                     f"| {CORES * 1000 / cpu[(implementation, order)]:.0f} |")
    lines += ["", f"Goal met: **{'yes' if summary['goal_met'] else 'no'}**.", ""]
    return lines


def _pipeline_lines(rows: list[dict]) -> list[str]:
    keys = ("implementation", "letters", "order")
    rates, cpu = _medians(rows, keys, "images_per_second"), _medians(rows, keys, "cpu_ms_per_image")
    lines = ["## Input pipeline alone (augmentation, no model), medians of the rounds", "",
             "| augmentation | letters | order | images/s | CPU ms / image |", "|---|---|---|---:|---:|"]
    lines += [f"| {i} | {letters} | {order} | {rates[(i, letters, order)]:.0f} | {cpu[(i, letters, order)]:.2f} |"
              for i, letters, order in rates]
    return lines + [""]


def _speedups(row: dict) -> str:
    if "end_to_end_speedup_vs_recompute" not in row:
        return ""
    return f"{row['end_to_end_speedup_vs_recompute']:.1f}× / {row['per_epoch_speedup_vs_recompute']:.0f}×"


def _backbone_lines(rows: list[dict]) -> list[str]:
    lines = ["## Each backbone's thesis configuration", "",
             f"{rows[0]['epochs']} epochs on {rows[0]['training_images']} stand-in training images; steady = epochs "
             "2..E; the cached path pays the frozen forward pass once, in its first epoch. Augmented = fused, "
             "corrected order.", "",
             "| backbone | variant | images/s (steady) | end-to-end s | speed-up vs recompute (end-to-end / per epoch) "
             f"| thesis-scale min ({THESIS_SCALE_IMAGES:,} images × the thesis's epochs, steady) | thesis min (RTX 3070) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['backbone']} | {r['variant']} | {r['images_per_second']:.0f} | {r['end_to_end_s']:.1f} "
              f"| {_speedups(r)} | {r['thesis_scale_minutes']:.1f} | {r['thesis_minutes']} |" for r in rows]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the goal and pipeline variants")
    parser.add_argument("--goal-epochs", type=int, default=4)
    parser.add_argument("--backbones", nargs="*", default=[],
                        help="also the per-backbone table: 'all' or names from " + ", ".join(chosen_configs()))
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the per-backbone table")
    args = parser.parse_args()
    backbones = list(chosen_configs()) if args.backbones == ["all"] else args.backbones
    root = standin.ensure_standin(Path("runs/benchmark_standin"), images_per_class=args.images_per_class) / "binary"
    run_data = load_run_data(root, progress=False)
    record = machine.start_record()
    pipeline = pipeline_rounds(run_data.training.images, args.rounds)
    goal = goal_rounds(run_data, args.goal_epochs, args.rounds)
    per_backbone = backbone_rows(run_data, backbones, args.epochs)
    record = machine.finish_record(record)
    summary = goal_summary(goal)
    report = {"machine": record, "goal": {"summary": summary, "rows": goal}, "pipeline": pipeline,
              "backbones": per_backbone, "versions": train.versions()}
    lines = machine.quiet_banner(record) + [
        f"{record['date']}, {record['machine']}, 1-minute load {record['load_average_before'][0]} before the run, "
        f"{record['load_average_after'][0]} after.", ""]
    lines += _goal_lines(goal, summary, args.rounds) + _pipeline_lines(pipeline)
    lines += _backbone_lines(per_backbone) if per_backbone else []
    machine.write_results("training_throughput", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""A DA config trained in both augmentation orders (listing 4.5's and the corrected one), and what the order changes."""


from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.configs import DEFAULT_SEED, ExperimentConfig
from nsfw_mobilenet.core.paths import RESULTS_DIR
from nsfw_mobilenet.evaluation.run_results import RunResult, correct_by_image, find_results
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.run_data import RunData, load_run_data
from nsfw_mobilenet.training.train import run_experiment

DESTROYED_FRACTION_FILE = "destroyed_fraction.json"  # in results/augmentation/: augment.destroyed_fraction on photos


def order_comparison(configs: list[ExperimentConfig], data_dir: Path | str, out_dir: Path | str, *,
                     run_data: RunData | None = None, smoke: bool = False,
                     **train_options: Any) -> list[RunResult]:
    """Each config trained in both augmentation orders (`augment`), results in `<out_dir>/<order>/<config.name>.json`.

    The two orders share a config name, so they get separate folders (and separate checkpoint
    folders when `checkpoint_dir` is given); finished runs are reused, as in `run_experiment`.
    """
    run_data = run_data if run_data is not None else load_run_data(data_dir, smoke=smoke)
    checkpoints = train_options.pop("checkpoint_dir", None)
    results = []
    for config in configs:
        for order in input_pipeline.ORDERS:
            options = dict(train_options, **({"checkpoint_dir": Path(checkpoints) / order} if checkpoints else {}))
            results.append(run_experiment(config.with_overrides(order=order), data_dir, Path(out_dir) / order,
                                          smoke=smoke, run_data=run_data, **options))
    return results


def load_order_comparison(results_dir: Path | str) -> list[RunResult]:
    """The results of both order folders written by `order_comparison`, sorted by table, row, order and seed."""
    results = [result for order in input_pipeline.ORDERS for result in find_results(Path(results_dir) / order)]
    return sorted(results, key=lambda r: (r.config.table, r.config.row, r.config.order, r.seed))


def _order_p_value(thesis: RunResult, corrected: RunResult) -> float | None:
    """McNemar's p of the two orders on the same test images (None for results without per-image predictions)."""
    from nsfw_mobilenet.evaluation.uncertainty import mcnemar

    if not all(run.test and run.test.predicted is not None for run in (thesis, corrected)):
        return None
    correct = correct_by_image([thesis, corrected])
    return mcnemar(correct[0], correct[1])


def order_effect(results: list[RunResult]) -> Any:
    """Per DA config and seed: validation and test accuracy in each order, and the largest per-epoch gap between
    the two orders' validation accuracy (0 where `preprocess_input` is the identity, as for V3)."""
    import pandas as pd

    by_config: dict[tuple[str, int, int], dict[str, RunResult]] = {}
    for result in results:
        config = result.config
        by_config.setdefault((config.table, config.row, config.seed), {})[config.order] = result
    rows = []
    for (table, row, seed), orders in sorted(by_config.items()):
        if set(orders) != set(input_pipeline.ORDERS):
            continue
        thesis, corrected = orders["thesis"], orders["corrected"]
        gap = np.abs(np.subtract(thesis.history["val_accuracy"], corrected.history["val_accuracy"])).max()
        rows.append({"table": table, "row": row, "seed": seed, "backbone": thesis.config.backbone,
                     "val_accuracy [thesis order]": thesis.final.val_accuracy,
                     "val_accuracy [corrected order]": corrected.final.val_accuracy,
                     "test accuracy [thesis order]": thesis.test.accuracy,
                     "test accuracy [corrected order]": corrected.test.accuracy,
                     "largest per-epoch val. gap": float(gap), "McNemar p (test)": _order_p_value(thesis, corrected)})
    return pd.DataFrame(rows)


def order_histories(results: list[RunResult], da_table: str, seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """"<order> order": per-epoch history of `da_table`'s run with `seed` in each order (figures 4.6–4.16's DA
    curves, both orders side by side)."""
    return {f"{r.config.order} order": r.history for r in results if r.config.table == da_table and r.seed == seed}


def committed_order_comparisons(root: Path | str = RESULTS_DIR) -> dict[str, list[RunResult]]:
    """The committed runs of both orders, by dataset folder of results/augmentation/ (`load_order_comparison`)."""
    folder = Path(root) / "augmentation"
    return {dataset.name: load_order_comparison(dataset) for dataset in sorted(folder.iterdir()) if dataset.is_dir()}


def committed_destroyed_fractions(root: Path | str = RESULTS_DIR) -> tuple[str, Any] | None:
    """(what was measured, the table) of the committed `augment.destroyed_fraction` measurement on real photos
    (results/augmentation/destroyed_fraction.json), or None when there is none."""
    import pandas as pd

    path = Path(root) / "augmentation" / DESTROYED_FRACTION_FILE
    if not path.exists():
        return None
    measured = json.loads(path.read_text())
    return (f"{measured['images']} real photos ({measured['criterion']})",
            pd.DataFrame(measured["destroyed_fraction"]).T)

"""§4.2.5 redone: each backbone's best configuration, its test accuracy and its on-device cost.

The thesis picked MobileNetV3-Small by comparing the four backbones' runs with all six augmentations
(tables 4.3, 4.7, 4.11, 4.15), in which listing 4.5's order fed V1 and V2 destroyed images. Here each
backbone is represented by (a) its best row without augmentation, chosen on validation accuracy as
the thesis chose (the mean over the row's seeds), and (b) its all-six-augmentations runs in the corrected
order; beside them stand LiteRT latency (batch 1, 2 threads) and file size from `benchmarks/latency.py`.
Test accuracies are means ± 95 % intervals over seeds, and `selection_comparisons` tests the most accurate
candidate against each other one on the same test images.
"""


from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nsfw_mobilenet.core.backbones import BACKBONES
from nsfw_mobilenet.core.configs import FINAL_TABLE
from nsfw_mobilenet.evaluation.run_results import RunResult, committed_results, correct_by_image, seed_groups
from nsfw_mobilenet.evaluation.uncertainty import SeedSummary, paired_comparison, seed_interval
from nsfw_mobilenet.training.augment import da_table

FINAL_MODEL = "final model"

NO_AUGMENTATION_TABLES = {"mobilenet_v1": "4.1", "mobilenet_v2": "4.5", "mobilenet_v3_small": "4.9",
                          "mobilenet_v3_large": "4.13"}  # §4.2.1–4.2.4


def best_by_validation(results: Sequence[RunResult]) -> list[RunResult]:
    """The row the thesis's rule picks, with all its seeds: highest mean validation accuracy over its seeds
    (ties: the earlier row)."""
    groups = seed_groups(list(results))
    return max(groups, key=lambda runs: (np.mean([r.final.val_accuracy for r in runs]), -runs[0].config.row))


def latency_model_name(backbone: str, head: str = "thesis") -> str:
    """How `benchmarks/latency.py` names a model: the backbone for the thesis head, else "<backbone> (<head> head)"."""
    return backbone if head == "thesis" else f"{backbone} ({head} head)"


def latency_rows(latency: dict[str, Any], backbone: str, head: str = "thesis") -> dict[str, dict[str, Any]]:
    """The benchmark's rows of one model, by variant."""
    name = latency_model_name(backbone, head)
    return {row["variant"]: row for row in latency["rows"] if row["model"] == name}


def _mean_test_accuracy(runs: Sequence[RunResult] | None) -> SeedSummary | None:
    return seed_interval([run.test.accuracy for run in runs]) if runs else None


def _half_width(summary: SeedSummary | None) -> float | None:
    """The 95 % half-width of a mean over seeds; none for a single seed (its Wilson interval is in notebook 02)."""
    return summary.half_width if summary and summary.seeds > 1 else None


def _row(label: str, table: str, best: list[RunResult], augmented: list[RunResult] | None,
         timings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = best[0].config
    plain = None if config.augmentation else _mean_test_accuracy(best)
    with_da = _mean_test_accuracy(augmented)
    row = {"model": label, "weights": best[0].weights_name,
           "configuration": f"{table} row {config.row} (N={config.trainable_layers}, {config.optimizer} "
                            f"{config.effective_learning_rate:g}, {config.head} head, DA {config.augmentation or '-'})",
           "test accuracy (no DA)": plain.mean if plain else None,
           "± (no DA)": _half_width(plain), "seeds (no DA)": len(best) if plain else None,
           "test accuracy (with DA, corrected order)": with_da.mean if with_da else None,
           "± (with DA)": _half_width(with_da), "seeds (with DA)": len(augmented or [])}
    for variant in ("float32", "int8"):
        timing = timings.get(variant, {})
        row[f"{variant} ms"] = timing.get("ms_2_threads")
        row[f"{variant} MB"] = timing["size_bytes"] / 1e6 if timing else None
    return row


def candidates(results_root: Path | str, dataset: str) -> dict[str, tuple[str, list[RunResult], list[RunResult]]]:
    """Per backbone title (and the final model): its table, its best row without augmentation (all seeds) and
    its all-six-techniques runs in the corrected order (all seeds)."""
    chosen = {}
    for backbone, table in NO_AUGMENTATION_TABLES.items():
        plain = committed_results(table, dataset, root=results_root)
        augmented = committed_results(da_table(backbone), dataset, order="corrected", root=results_root)
        if plain:
            chosen[BACKBONES[backbone].title] = (table, best_by_validation(plain), augmented)
    final = committed_results(FINAL_TABLE, dataset, root=results_root)
    if final:
        chosen[f"{BACKBONES[final[0].config.backbone].title}, {FINAL_MODEL}"] = (FINAL_TABLE, final, final)
    return chosen


def selection_table(results_root: Path | str, dataset: str, latency: dict[str, Any]) -> Any:
    """One row per backbone: best no-augmentation row (by mean validation accuracy over its seeds) and its
    all-six-techniques runs in the corrected order, mean test accuracy ± 95 % interval, weights, LiteRT ms
    (2 threads) and MB for float32 and int8; then the final model (`results/final/<dataset>`), when there is one."""
    import pandas as pd

    rows = []
    for label, (table, best, augmented) in candidates(results_root, dataset).items():
        config = best[0].config
        rows.append(_row(label, table, best, augmented, latency_rows(latency, config.backbone, config.head
                                                                      if table == FINAL_TABLE else "thesis")))
    return pd.DataFrame(rows).set_index("model")


def selection_comparisons(results_root: Path | str, dataset: str) -> Any:
    """The most accurate candidate against each other one, in test accuracy on the same test images (each
    candidate's runs without augmentation; the final model's own): difference, interval and paired p-value."""
    import pandas as pd

    runs = {label: best for label, (_, best, _) in candidates(results_root, dataset).items()}
    if len(runs) < 2:
        return pd.DataFrame()
    leader = max(runs, key=lambda label: np.mean([r.test.accuracy for r in runs[label]]))
    rows = []
    for label, other in runs.items():
        if label != leader:
            comparison = paired_comparison(correct_by_image(runs[leader]), correct_by_image(other))
            rows.append({"comparison": f"{leader} − {label}", "test acc difference": comparison.difference,
                         "95 % interval": f"[{comparison.low:+.3f}, {comparison.high:+.3f}]", "p": comparison.p_value,
                         "seeds": comparison.seeds, "verdict": "a difference" if comparison.significant else "within noise"})
    return pd.DataFrame(rows).set_index("comparison")


def load_latency(path: Path | str) -> dict[str, Any]:
    """`benchmarks/results/latency.json`, with the load average it was measured under."""
    return json.loads(Path(path).read_text())


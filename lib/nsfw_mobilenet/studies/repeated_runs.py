"""Figure 4.17 redone: how far repeated runs of one configuration spread.

The thesis ran one configuration several times (figure 4.17); here every configuration of V3-Small with N = 10
that has several seeds is one group of dots, the final model and its two runners-up beside table 4.17's rows,
and the stated comparisons are paired tests on the same test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nsfw_mobilenet.core.configs import FINAL_TABLE, thesis_row
from nsfw_mobilenet.core.paths import RESULTS_DIR
from nsfw_mobilenet.evaluation.run_results import DEFAULT_DATASET, RunResult, committed_results
from nsfw_mobilenet.evaluation.thesis_comparison import paired_comparisons

# label: (table, row, results folder variant, augmentation order) of each configuration in the spread
SPREAD_CONFIGURATIONS = {
    "4.17 row 1: none": ("4.17", 1, "", None),
    "4.17 row 9: CDE": ("4.17", 9, "", None),
    "4.11: ABCDEF": ("4.11", 1, "", "corrected"),
    "final: standard head, Adam": (FINAL_TABLE, 1, "", None),
    "final: standard head, SGD": (FINAL_TABLE, 1, "_sgd", None),
    "final: logits head, SGD": (FINAL_TABLE, 1, "_thesis_logits_sgd", None),
}
SPREAD_PAIRS = [("4.17 row 9: CDE", "4.17 row 1: none"), ("final: standard head, Adam", "final: standard head, SGD"),
                ("final: standard head, Adam", "final: logits head, SGD"),
                ("final: standard head, SGD", "final: logits head, SGD")]


def spread_groups(dataset: str = DEFAULT_DATASET, root: Path | str = RESULTS_DIR) -> dict[str, list[RunResult]]:
    """Every seed of each configuration of `SPREAD_CONFIGURATIONS` that has committed runs on `dataset`."""
    groups = {label: committed_results(table, dataset, row=row, variant=variant, order=order, root=root)
              for label, (table, row, variant, order) in SPREAD_CONFIGURATIONS.items()}
    return {label: runs for label, runs in groups.items() if runs}


def validation_spread(groups: dict[str, list[RunResult]]) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """(each group's validation accuracies, one per seed; the thesis's value for the groups that are its rows)."""
    values = {label: [run.final.val_accuracy for run in runs] for label, runs in groups.items()}
    thesis = {label: thesis_row(SPREAD_CONFIGURATIONS[label][0], SPREAD_CONFIGURATIONS[label][1]).get("val_accuracy")
              for label in groups if SPREAD_CONFIGURATIONS[label][0] != FINAL_TABLE}
    return values, thesis


def spread_comparisons(groups: dict[str, list[RunResult]]) -> Any:
    """`SPREAD_PAIRS` tested on the same test images (`thesis_comparison.paired_comparisons`)."""
    return paired_comparisons(groups, SPREAD_PAIRS)

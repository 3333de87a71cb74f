"""Which learning rate did the thesis's SGD run at? §4.2.1's two readings, side by side with the thesis.

§4.2.1 item 3 says the runs used 0.001, "the value applied to the learning rate by default in both
optimizer's functions". That holds for Keras's Adam, not for its SGD, whose default is 0.01 (Keras 2 and 3).
Listing 4.3 shows only Adam's call. So the SGD rows ran either at the printed 0.001 (the literal reading) or
at SGD's default 0.01 (the default reading). For MobileNetV3 listing 4.7 is ambiguous too: its code puts the
Dense on `layers[-1]` (the ImageNet softmax) while its comment and §4.2.4 say "all the layers except the last
one" (the logits: head `thesis_logits`).

Each reading is a results folder beside the table's (`READINGS`: the folder's suffix); `readings_table` shows
the thesis's training loss and validation accuracy next to each reading's mean ± 95 % interval over seeds, and
`reading_comparisons` tests one reading against another on the same test images (`uncertainty`).
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.configs import thesis_row, thesis_steps
from nsfw_mobilenet.evaluation.run_results import (
    RunResult,
    committed_results,
    correct_by_image,
    seed_count,
    seed_groups,
)
from nsfw_mobilenet.evaluation.uncertainty import paired_comparison, seed_interval

# reading: suffix of its results folder after the dataset's name (results/table_<T>/<dataset><suffix>/)
READINGS = {
    "lr 0.001 (literal)": "_lr0.001",
    "lr 0.01 (SGD's default)": "",
    "logits head, lr 0.001": "_logits_head_lr0.001",
    "logits head, lr 0.01": "_logits_head",
}
LITERAL, DEFAULT = "lr 0.001 (literal)", "lr 0.01 (SGD's default)"


def load_readings(results_root: Path | str, table: str, dataset: str) -> dict[str, list[RunResult]]:
    """Every committed run of `table` on `dataset` under each reading that has results, SGD rows only."""
    readings = {}
    for reading, suffix in READINGS.items():
        runs = [run for run in committed_results(table, dataset, variant=suffix, root=results_root)
                if run.config.optimizer == "sgd"]
        if runs:
            readings[reading] = runs
    return readings


def _by_row(runs: Sequence[RunResult]) -> dict[int, list[RunResult]]:
    return {group[0].config.row: group for group in seed_groups(runs)}


def readings_table(readings: Mapping[str, Sequence[RunResult]]) -> Any:
    """Per SGD row: the thesis's training loss and validation accuracy, then each reading's mean ± interval
    over its seeds (and how many), with the optimizer steps of both."""
    import pandas as pd

    per_reading = {reading: _by_row(runs) for reading, runs in readings.items()}
    rows = sorted({row for groups in per_reading.values() for row in groups})
    table = []
    for row in rows:
        example = next(groups[row][0] for groups in per_reading.values() if row in groups)
        config = example.config
        thesis = thesis_row(config.table, row)
        line = {"row": row, "N": config.trainable_layers, "steps (thesis | here)":
                f"{thesis_steps(config):,} | {example.steps}",
                "thesis train loss": thesis.get("train_loss"), "thesis val acc": thesis.get("val_accuracy")}
        for reading, groups in per_reading.items():
            runs = groups.get(row, [])
            line[f"{reading}: train loss"] = str(seed_interval([r.final.loss for r in runs])) if runs else "–"
            line[f"{reading}: val acc"] = str(seed_interval([r.final.val_accuracy for r in runs])) if runs else "–"
            line[f"{reading}: seeds"] = len(runs)
        table.append(line)
    return pd.DataFrame(table).set_index("row")


def reading_comparisons(readings: Mapping[str, Sequence[RunResult]], first: str = DEFAULT,
                        second: str = LITERAL) -> Any:
    """Per row present in both readings: test accuracy `first` − `second` on the same test images, with its
    interval and paired p-value (runs recorded before per-image predictions were kept are left out)."""
    import pandas as pd

    if first not in readings or second not in readings:
        return pd.DataFrame()
    a, b = (_by_row([run for run in readings[reading] if run.test and run.test.predicted is not None])
            for reading in (first, second))
    rows = []
    for row in sorted(set(a) & set(b)):
        comparison = paired_comparison(correct_by_image(a[row]), correct_by_image(b[row]))
        rows.append({"row": row, "comparison": f"{first} − {second}", "test acc difference": comparison.difference,
                     "95 % interval": f"[{comparison.low:+.3f}, {comparison.high:+.3f}]",
                     "p": comparison.p_value, "test": comparison.test, "seeds": comparison.seeds,
                     "verdict": "a difference" if comparison.significant else "within noise"})
    return pd.DataFrame(rows).set_index("row") if rows else pd.DataFrame()


def mean_history(runs: Sequence[RunResult]) -> dict[str, list[float]]:
    """The per-epoch history averaged over seeds (all runs of one configuration have the same epochs)."""
    return {key: np.mean([run.history[key] for run in runs], axis=0).tolist() for key in runs[0].history}


def curves_of_row(readings: Mapping[str, Sequence[RunResult]], row: int) -> dict[str, dict[str, list[float]]]:
    """Each reading's seed-averaged history of one row (for `plots.plot_history_comparison`)."""
    curves = {}
    for reading, runs in readings.items():
        groups = _by_row(runs)
        if row in groups:
            curves[f"{reading} ({seed_count(groups[row])})"] = mean_history(groups[row])
    return curves


"""Runs side by side with the thesis: one table row per run or per configuration (mean ± 95 % interval over
seeds, Wilson intervals for single runs), rows that train the same weights, and paired comparisons."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nsfw_mobilenet.core.configs import DEFAULT_SEED, thesis_reference, thesis_row, thesis_steps
from nsfw_mobilenet.evaluation.run_results import CONFUSION_COLUMNS, RunResult, correct_by_image, seed_groups

STEPS_TABLE = "4.9-steps"  # table 4.9 at the thesis's optimizer steps: a table of its own (notebook 02)


def _run_columns(result: RunResult) -> dict[str, Any]:
    final, counts = result.final, result.test.counts if result.test else {}
    columns = {"time_min": result.time_min, "train_loss": final.loss, "train_accuracy": final.accuracy,
               "val_loss": final.val_loss, "val_accuracy": final.val_accuracy}
    columns.update({k: counts.get(k) for k in CONFUSION_COLUMNS})
    return columns


def thesis_vs_run(results: Sequence[RunResult]) -> Any:
    """A table with one row per run: its config, then each metric as thesis | this run."""
    import pandas as pd

    rows = []
    for result in results:
        config = result.config
        thesis = thesis_row(config.table, config.row)
        row = {"table": config.table, "row": config.row, "N": config.trainable_layers,
               "optimizer": config.optimizer, "learning_rate": config.effective_learning_rate,
               "momentum": config.momentum, "head": config.head, "augmentation": config.augmentation or "-",
               "order": config.order if config.augmentation else "-", "epochs": config.epochs,
               "optimizer_steps [thesis]": thesis_steps(config), "optimizer_steps [run]": result.steps,
               "seed": config.seed, "weights": result.weights_name}
        for column, value in _run_columns(result).items():
            row[(column, "thesis")] = thesis.get(column)
            row[(column, "run")] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.columns = [c if isinstance(c, str) else f"{c[0]} [{c[1]}]" for c in frame.columns]
    return frame


def _thesis_and_run(thesis: float | None, run: float | None, style: str) -> str:
    shown = ["–" if value is None else style.format(value) for value in (thesis, run)]
    return " | ".join(shown)


def _test_accuracy(counts: dict[str, Any]) -> float | None:
    values = [counts.get(k) for k in CONFUSION_COLUMNS]
    if any(v is None for v in values) or not sum(values):
        return None
    tn, fn, tp, fp = values
    return (tn + tp) / (tn + fn + tp + fp)


def compact_thesis_vs_run(results: Sequence[RunResult]) -> Any:
    """The terminal's view of `thesis_vs_run` (which keeps every column): row, N, seed, optimizer and learning
    rate, optimizer steps, validation and test accuracy and minutes as "thesis | run"; fits 80 columns."""
    import pandas as pd

    rows = []
    for result in results:
        config = result.config
        thesis = thesis_row(config.table, config.row)
        rows.append({"row": config.row, "N": config.trainable_layers, "seed": config.seed,
                     "opt. lr": f"{config.optimizer} {config.effective_learning_rate:g}", "steps": result.steps,
                     "val acc": _thesis_and_run(thesis.get("val_accuracy"), result.final.val_accuracy, "{:.3f}"),
                     "test acc": _thesis_and_run(_test_accuracy(thesis), result.test and result.test.accuracy,
                                                 "{:.3f}"),
                     "minutes": _thesis_and_run(thesis.get("time_min"), result.time_min, "{:.1f}")})
    return pd.DataFrame(rows)


def same_training_groups(results: Sequence[RunResult]) -> Any:
    """Rows that train exactly the same weights with the same optimizer, side by side with the thesis.

    With a fixed seed such rows give identical results; the spread of the thesis's numbers within
    a group is then run-to-run noise, not an effect of N.
    """
    import pandas as pd

    if not results:
        return pd.DataFrame()
    rows = [{"table": r.config.table, "row": r.config.row, "N": r.config.trainable_layers,
             "optimizer": r.config.optimizer, "trained weights": ", ".join(r.trainable_layers_with_weights),
             "val_accuracy [thesis]": thesis_row(r.config.table, r.config.row).get("val_accuracy"),
             "val_accuracy [run]": r.final.val_accuracy} for r in results]
    frame = pd.DataFrame(rows)
    spread = frame.groupby(["optimizer", "trained weights"]).agg(
        rows=("row", list), N=("N", list),
        thesis_spread=("val_accuracy [thesis]", lambda v: max(v) - min(v)),
        run_spread=("val_accuracy [run]", lambda v: max(v) - min(v)))
    return spread[spread["rows"].map(len) > 1].reset_index()


def _accuracy_shown(runs: Sequence[RunResult], accuracy_of: Callable[[RunResult], float], images: int) -> str:
    """Mean ± interval over seeds, or one run's accuracy on `images` images with its Wilson interval."""
    from nsfw_mobilenet.evaluation.uncertainty import seed_interval, wilson_interval

    accuracies = [accuracy_of(run) for run in runs]
    if len(runs) > 1:
        return str(seed_interval(accuracies))
    low, high = wilson_interval(round(accuracies[0] * images), images)
    return f"{accuracies[0]:.3f} [{low:.2f}, {high:.2f}]"


def seeds_vs_thesis(results: Sequence[RunResult]) -> Any:
    """One row per configuration: the thesis's numbers beside this project's mean ± 95 % interval over its
    seeds (one seed: each accuracy's Wilson interval), the optimizer steps of both and the CPU time."""
    import pandas as pd

    from nsfw_mobilenet.evaluation.uncertainty import seed_interval

    rows = []
    for runs in seed_groups(results):
        config = runs[0].config
        thesis = thesis_row(config.table, config.row)
        counts = runs[0].data["counts"]
        rows.append({"table": config.table, "row": config.row, "N": config.trainable_layers,
                     "head": config.head, "optimizer": config.optimizer, "lr": config.effective_learning_rate,
                     "DA": config.augmentation or "-", "order": config.order if config.augmentation else "-",
                     "steps [thesis]": thesis_steps(config),
                     "steps [run]": runs[0].steps, "seeds": len(runs),
                     "train loss [thesis]": thesis.get("train_loss"),
                     "train loss [run]": str(seed_interval([run.final.loss for run in runs])),
                     "val acc [thesis]": thesis.get("val_accuracy"),
                     "val acc [run]": _accuracy_shown(runs, lambda r: r.final.val_accuracy, counts["validation"]),
                     "test acc [thesis]": _test_accuracy(thesis),
                     "test acc [run]": _accuracy_shown(runs, lambda r: r.test.accuracy, counts.get("test", 0)),
                     "CPU min": sum(float("nan") if run.cpu_min is None else run.cpu_min for run in runs)})
    return pd.DataFrame(rows)


COMPACT_COLUMNS = ("steps", "train loss", "val acc", "test acc")  # shown as "thesis | run"


def compact_seeds_vs_thesis(results: Sequence[RunResult]) -> Any:
    """`seeds_vs_thesis` in nine columns for a notebook page: row, N, optimizer and learning rate, seeds, and
    steps, training loss, validation and test accuracy as "thesis | run" (the wide table keeps every column)."""
    wide = seeds_vs_thesis(results)
    if wide.empty:
        return wide
    compact = wide[["row", "N"]].assign(**{"opt. lr": [f"{o} {lr:g}" for o, lr in zip(wide["optimizer"], wide["lr"])]},
                                        DA=wide["DA"], seeds=wide["seeds"])
    for name in COMPACT_COLUMNS:
        thesis = ["–" if value is None or value != value else f"{value:g}" for value in wide[f"{name} [thesis]"]]
        compact[name] = [f"{t} | {r}" for t, r in zip(thesis, wide[f"{name} [run]"])]
    return compact


def save_seeds_vs_thesis(results: Sequence[RunResult], path: Path | str) -> Path:
    """Write the wide `seeds_vs_thesis` table (every column) as CSV to `path`; returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seeds_vs_thesis(results).to_csv(path, index=False)
    return path


def detectable_difference_note(results: Sequence[RunResult]) -> str:
    """What a table of these runs can tell apart: the smallest test-accuracy difference two single runs
    show with power 0.8 at the 5 % level, in points and in images."""
    from nsfw_mobilenet.evaluation.uncertainty import detectable_difference

    images = results[0].test.images
    accuracy = sum(r.test.accuracy for r in results) / len(results)
    smallest = detectable_difference(images, accuracy)
    return (f"{images} test images: near accuracy {accuracy:.2f}, two single runs must differ by "
            f"{smallest:.3f} ({math.ceil(smallest * images)} images) to be told apart (5 % level, power 0.8); "
            f"means over seeds by less, as their intervals show.")


def paired_comparisons(groups: Mapping[str, Sequence[RunResult]], pairs: Sequence[tuple[str, str]]) -> Any:
    """Each pair of labelled configurations (A, B) present in `groups`: A − B in test accuracy on the same test
    images, with its interval, p-value and test (`uncertainty.paired_comparison`)."""
    import pandas as pd

    from nsfw_mobilenet.evaluation.uncertainty import paired_comparison

    return pd.DataFrame([{"comparison": f"{a} − {b}",
                          "result": str(paired_comparison(correct_by_image(groups[a]), correct_by_image(groups[b])))}
                         for a, b in pairs if a in groups and b in groups])


def chosen_rows(tables: Mapping[tuple[str, str], Sequence[RunResult]], dataset: str,
                seed: int = DEFAULT_SEED) -> list[tuple[str, str, RunResult]]:
    """(figure stem, title, run) of the row each thesis section picked (`chosen_rows` of the thesis's numbers), for
    its loss curves and confusion matrix (figures 4.2–4.11): one seed's run on `dataset`."""
    chosen = []
    for table, pick in thesis_reference()["chosen_rows"].items():
        run = next((r for r in tables.get((table, dataset), []) if r.config.row == pick["row"] and r.seed == seed),
                   None)
        if run is not None:
            stem = f"fig_{pick['curves_figure'].replace('.', '_')}_{run.config.backbone}_row{pick['row']}"
            chosen.append((stem, f"table {table} row {pick['row']} ({run.weights_name})", run))
    return chosen


def speed_table(tables: Mapping[tuple[str, str], Sequence[RunResult]], seed: int = DEFAULT_SEED) -> Any:
    """Minutes per run, thesis beside this project, and training images per second, per table and dataset (one
    seed's runs; the steps experiment left out: its runs are 49 times longer by design)."""
    import pandas as pd

    rows = [{"table": table, "dataset": name, "row": r.config.row,
             "time_min [thesis]": thesis_row(table, r.config.row).get("time_min"), "time_min [run]": r.time_min,
             "train images/s [run]": r.training_images_per_second}
            for (table, name), runs in tables.items() if table != STEPS_TABLE for r in runs if r.seed == seed]
    columns = ["time_min [thesis]", "time_min [run]", "train images/s [run]"]
    return pd.DataFrame(rows).groupby(["table", "dataset"])[columns].mean()


def same_training_table(tables: Mapping[tuple[str, str], Sequence[RunResult]], seed: int = DEFAULT_SEED) -> Any:
    """`same_training_groups` of every table and dataset (one seed's runs), one frame."""
    import pandas as pd

    return pd.concat([same_training_groups([r for r in runs if r.seed == seed]).assign(table=table, dataset=name)
                      for (table, name), runs in tables.items() if table != STEPS_TABLE])

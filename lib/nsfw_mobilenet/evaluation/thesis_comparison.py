"""Runs side by side with the thesis: one table row per run or per configuration (mean ± 95 % interval over
seeds, Wilson intervals for single runs), rows that train the same weights, and paired comparisons."""

from __future__ import annotations

import math
from typing import Any

from nsfw_mobilenet.core.configs import thesis_row, thesis_steps
from nsfw_mobilenet.evaluation.run_results import (
    CONFUSION_COLUMNS,
    correct_by_image,
    run_steps,
    seed_groups,
    weights_name,
)


def _run_columns(result: dict[str, Any]) -> dict[str, Any]:
    final, test = result["final"], result.get("test") or {}
    columns = {"time_min": result["time_min"], "train_loss": final["loss"], "train_accuracy": final["accuracy"],
               "val_loss": final["val_loss"], "val_accuracy": final["val_accuracy"]}
    columns.update({k: test.get(k) for k in CONFUSION_COLUMNS})
    return columns


def thesis_vs_run(results: list[dict[str, Any]]) -> Any:
    """A table with one row per run: its config, then each metric as thesis | this run."""
    import pandas as pd

    rows = []
    for result in results:
        config = result["config"]
        thesis = thesis_row(config["table"], config["row"])
        row = {"table": config["table"], "row": config["row"], "N": config["trainable_layers"],
               "optimizer": config["optimizer"], "learning_rate": config["learning_rate"],
               "momentum": config.get("momentum", 0.0), "head": config["head"],
               "augmentation": config["augmentation"] or "-",
               "order": config["order"] if config["augmentation"] else "-", "epochs": config["epochs"],
               "optimizer_steps [thesis]": thesis_steps(config), "optimizer_steps [run]": run_steps(result),
               "seed": config["seed"], "weights": weights_name(result)}
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


def compact_thesis_vs_run(results: list[dict[str, Any]]) -> Any:
    """The terminal's view of `thesis_vs_run` (which keeps every column): row, N, seed, optimizer and learning
    rate, optimizer steps, validation and test accuracy and minutes as "thesis | run"; fits 80 columns."""
    import pandas as pd

    rows = []
    for result in results:
        config, test = result["config"], result.get("test") or {}
        thesis = thesis_row(config["table"], config["row"])
        rows.append({"row": config["row"], "N": config["trainable_layers"], "seed": config["seed"],
                     "opt. lr": f"{config['optimizer']} {config['learning_rate']:g}",
                     "steps": run_steps(result),
                     "val acc": _thesis_and_run(thesis.get("val_accuracy"), result["final"]["val_accuracy"], "{:.3f}"),
                     "test acc": _thesis_and_run(_test_accuracy(thesis), test.get("accuracy"), "{:.3f}"),
                     "minutes": _thesis_and_run(thesis.get("time_min"), result["time_min"], "{:.1f}")})
    return pd.DataFrame(rows)


def same_training_groups(results: list[dict[str, Any]]) -> Any:
    """Rows that train exactly the same weights with the same optimizer, side by side with the thesis.

    With a fixed seed such rows give identical results; the spread of the thesis's numbers within
    a group is then run-to-run noise, not an effect of N.
    """
    import pandas as pd

    if not results:
        return pd.DataFrame()
    rows = [{"table": r["config"]["table"], "row": r["config"]["row"], "N": r["config"]["trainable_layers"],
             "optimizer": r["config"]["optimizer"], "trained weights": ", ".join(r["trainable_layers_with_weights"]),
             "val_accuracy [thesis]": thesis_row(r["config"]["table"], r["config"]["row"]).get("val_accuracy"),
             "val_accuracy [run]": r["final"]["val_accuracy"]} for r in results]
    frame = pd.DataFrame(rows)
    spread = frame.groupby(["optimizer", "trained weights"]).agg(
        rows=("row", list), N=("N", list),
        thesis_spread=("val_accuracy [thesis]", lambda v: max(v) - min(v)),
        run_spread=("val_accuracy [run]", lambda v: max(v) - min(v)))
    return spread[spread["rows"].map(len) > 1].reset_index()


def _accuracy_shown(runs: list[dict[str, Any]], accuracy_of: Any, images: int) -> str:
    """Mean ± interval over seeds, or one run's accuracy on `images` images with its Wilson interval."""
    from nsfw_mobilenet.evaluation.uncertainty import seed_interval, wilson_interval

    accuracies = [accuracy_of(run) for run in runs]
    if len(runs) > 1:
        return str(seed_interval(accuracies))
    low, high = wilson_interval(round(accuracies[0] * images), images)
    return f"{accuracies[0]:.3f} [{low:.2f}, {high:.2f}]"


def seeds_vs_thesis(results: list[dict[str, Any]]) -> Any:
    """One row per configuration: the thesis's numbers beside this project's mean ± 95 % interval over its
    seeds (one seed: each accuracy's Wilson interval), the optimizer steps of both and the CPU time."""
    import pandas as pd

    from nsfw_mobilenet.evaluation.uncertainty import seed_interval

    rows = []
    for runs in seed_groups(results):
        config = runs[0]["config"]
        thesis = thesis_row(config["table"], config["row"])
        counts = runs[0]["data"]["counts"]
        rows.append({"table": config["table"], "row": config["row"], "N": config["trainable_layers"],
                     "head": config["head"], "optimizer": config["optimizer"], "lr": config["learning_rate"],
                     "DA": config["augmentation"] or "-", "steps [thesis]": thesis_steps(config),
                     "steps [run]": run_steps(runs[0]), "seeds": len(runs),
                     "train loss [thesis]": thesis.get("train_loss"),
                     "train loss [run]": str(seed_interval([run["final"]["loss"] for run in runs])),
                     "val acc [thesis]": thesis.get("val_accuracy"),
                     "val acc [run]": _accuracy_shown(runs, lambda r: r["final"]["val_accuracy"], counts["validation"]),
                     "test acc [thesis]": _test_accuracy(thesis),
                     "test acc [run]": _accuracy_shown(runs, lambda r: r["test"]["accuracy"], counts.get("test", 0)),
                     "CPU min": sum(run.get("cpu_min", float("nan")) for run in runs)})
    return pd.DataFrame(rows)


def detectable_difference_note(results: list[dict[str, Any]]) -> str:
    """What a table of these runs can tell apart: the smallest test-accuracy difference two single runs
    show with power 0.8 at the 5 % level, in points and in images."""
    from nsfw_mobilenet.evaluation.uncertainty import detectable_difference

    test = results[0]["test"]
    images = sum(test[k] for k in CONFUSION_COLUMNS)
    accuracy = sum(r["test"]["accuracy"] for r in results) / len(results)
    smallest = detectable_difference(images, accuracy)
    return (f"{images} test images: near accuracy {accuracy:.2f}, two single runs must differ by "
            f"{smallest:.3f} ({math.ceil(smallest * images)} images) to be told apart (5 % level, power 0.8); "
            f"means over seeds by less, as their intervals show.")


def paired_comparisons(groups: dict[str, list[dict[str, Any]]], pairs: list[tuple[str, str]]) -> Any:
    """Each pair of labelled configurations (A, B) present in `groups`: A − B in test accuracy on the same test
    images, with its interval, p-value and test (`uncertainty.paired_comparison`)."""
    import pandas as pd

    from nsfw_mobilenet.evaluation.uncertainty import paired_comparison

    return pd.DataFrame([{"comparison": f"{a} − {b}",
                          "result": str(paired_comparison(correct_by_image(groups[a]), correct_by_image(groups[b])))}
                         for a, b in pairs if a in groups and b in groups])


"""Experiment configs (one YAML file per thesis table row) and the thesis's own numbers.

Configs are plain data in `configs/table_<T>/row_<NN>.yaml`, overriding the defaults of
`ExperimentConfig`; the thesis's numbers live in `reference/thesis_results.yaml`. Both folders are
package data, so an installed wheel has them; in the repository `experiments/` and `reference/`
link to them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .models import IMAGENET, RANDOM_INIT

PACKAGE_DIR = Path(__file__).resolve().parent
EXPERIMENTS_DIR = PACKAGE_DIR / "configs"
REFERENCE_FILE = PACKAGE_DIR / "reference" / "thesis_results.yaml"
FINAL_TABLE = "final"  # `table_configs(FINAL_TABLE)`: the final model's config
FINAL_CONFIG = Path(FINAL_TABLE) / "two_classes.yaml"  # in EXPERIMENTS_DIR
FINAL_CONFIG_FILE = f"experiments/{FINAL_CONFIG.as_posix()}"  # as model cards name it (the repository's link)
CONFUSION_COLUMNS = ("TN", "FN", "TP", "FP")


def _project_root() -> Path:
    """The folder runs/, results/ and figures/ belong to: the checkout when the package runs from one
    (lib/nsfw_mobilenet/ beside pyproject.toml, as after `pip install -e .`), else the current folder."""
    checkout = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "lib" and (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


PROJECT_ROOT = _project_root()  # fixed at import


# §4.2.1 item 3: the thesis ran at "the value applied to the learning rate by default in both optimizer's
# functions". That is each Keras optimizer's default, which differs: SGD 0.01, Adam 0.001 (Keras 2 and 3).
KERAS_DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.001}
LITERAL_LEARNING_RATE = 0.001  # the other reading: the number §4.2.1 prints, for both optimizers
DEFAULT_SEED = 1


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run. Defaults are the thesis's (§4.1–4.2): SGD at its Keras default learning rate, batch 64,
    10 epochs. `learning_rate` None means the optimizer's Keras default (`KERAS_DEFAULT_LEARNING_RATES`)."""

    table: str
    row: int
    backbone: str
    trainable_layers: int
    optimizer: str = "sgd"
    learning_rate: float | None = None
    momentum: float = 0.0  # SGD only; Keras's default, as the thesis (listing 4.3) set none
    epochs: int = 10
    batch_size: int = 64
    head: str = "thesis"
    augmentation: str = ""  # thesis letters A–F, e.g. "CDE"
    order: str = "thesis"  # where augmentation sits relative to preprocess_input
    taxonomy: str = "binary"
    weights: str | None = "imagenet"
    class_weights: bool = False
    seed: int = DEFAULT_SEED

    @property
    def name(self) -> str:
        return f"table_{self.table}_row_{self.row:02d}"

    @property
    def effective_learning_rate(self) -> float:
        """The learning rate the optimizer runs at: the config's, else the optimizer's Keras default."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return KERAS_DEFAULT_LEARNING_RATES[self.optimizer]

    def with_overrides(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """The config as results record it: the learning rate resolved to the number the run used."""
        return dataclasses.asdict(self) | {"learning_rate": self.effective_learning_rate}


def repo_relative(path: Path | str) -> str:
    """How results and notebook outputs name a file or folder: relative to `PROJECT_ROOT` when it
    lies inside it (the same name from the repository root and from notebooks/), `~/…` under the
    home folder (no machine's user name in stored outputs), else as given."""
    absolute = Path(os.path.abspath(path))
    for base, prefix in ((PROJECT_ROOT, ""), (Path.home(), "~/")):
        if absolute.is_relative_to(base):
            return prefix + absolute.relative_to(base).as_posix()
    return str(path)


def load_config(path: Path | str) -> ExperimentConfig:
    """Read one config file; unknown keys are an error naming the file."""
    path = Path(path)
    values = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    try:
        return ExperimentConfig(**values)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from None


def table_configs(table: str, experiments_dir: Path = EXPERIMENTS_DIR) -> list[ExperimentConfig]:
    """All rows of one thesis table, in row order; table "final" is the final model's one config."""
    if table == FINAL_TABLE:
        return [load_config(experiments_dir / FINAL_CONFIG)]
    folder = experiments_dir / f"table_{table}"
    files = sorted(folder.glob("row_*.yaml"))
    if not files:
        tables = sorted(f.name.removeprefix("table_") for f in experiments_dir.glob("table_*"))
        raise FileNotFoundError(f"no configs for table {table} in {folder}; tables with configs: {tables + [FINAL_TABLE]}")
    return [load_config(f) for f in files]


def final_config() -> ExperimentConfig:
    """The final two-class model's config (`experiments/final/two_classes.yaml`), used by notebooks 06–08."""
    return load_config(EXPERIMENTS_DIR / FINAL_CONFIG)


@lru_cache(maxsize=1)
def thesis_reference() -> dict[str, Any]:
    """The parsed `reference/thesis_results.yaml`."""
    return yaml.safe_load(REFERENCE_FILE.read_text())


def thesis_row(table: str, row: int | str) -> dict[str, Any]:
    """The thesis's numbers for one row, merged with its confusion-matrix row when it has one."""
    tables = thesis_reference()["tables"]
    numbers = dict(tables.get(table, {}).get("rows", {}).get(row, {}))  # none for this project's own tables
    for other in tables.values():
        if other.get("confusion_of") == table and row in other["rows"]:
            numbers.update(other["rows"][row])
    return numbers


def weights_name(result: dict[str, Any]) -> str:
    """The weights a result was trained from, as every output names them (older results lack `source`)."""
    weights = result["weights"]
    return weights.get("source") or (IMAGENET if weights["used"] else RANDOM_INIT)


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


def thesis_steps(config: dict[str, Any]) -> int:
    """Optimizer steps the thesis made for a row: its training images in batches of the row's size, times the
    epochs of the row's config file (10; 4 for table 4.9-4epochs), whatever a run here overrode (--epochs)."""
    images = thesis_reference()["dataset_2_classes"]["train_images"]
    try:
        epochs = next(c.epochs for c in table_configs(config["table"]) if c.row == config["row"])
    except (FileNotFoundError, StopIteration):  # a table of configs made at run time
        epochs = ExperimentConfig.epochs
    return math.ceil(images / config["batch_size"]) * epochs


def run_steps(result: dict[str, Any]) -> int:
    """Optimizer steps a run made (recorded since the seeds issue; computed for older results)."""
    config = result["config"]
    return result.get("optimizer_steps") or math.ceil(result["data"]["counts"]["training"] / config["batch_size"]) * (
        len(result["history"]["loss"]))


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


def load_result(path: Path | str) -> dict[str, Any]:
    """One results JSON written by `train.run_experiment`."""
    return json.loads(Path(path).read_text())


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


# --- Several seeds per row: intervals and paired tests (`uncertainty`) ---------------------------------
def correct_by_image(results: list[dict[str, Any]]) -> Any:
    """(runs, test images) booleans: which test images each run classified correctly. Runs pair up only on
    the same test files in the same order (`test.files`)."""
    import numpy as np

    tests = [result["test"] for result in results]
    if any("predicted" not in test for test in tests):
        raise ValueError("a result has no per-image predictions (trained before they were recorded); train it again")
    if len({test["files"] for test in tests}) > 1:
        raise ValueError("these runs were tested on different test images; paired tests need the same ones")
    return np.array([np.equal(test["predicted"], test["labels"]) for test in tests])


def _without_seed(config: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in config.items() if key != "seed"}, sort_keys=True)


def seed_count(runs: list[dict[str, Any]]) -> str:
    """"1 seed", "5 seeds": how legends and labels count a configuration's runs."""
    return f"{len(runs)} seed" + ("s" if len(runs) != 1 else "")


def seed_groups(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Results grouped by everything in their config but the seed, in table and row order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(_without_seed(result["config"]), []).append(result)
    return sorted(groups.values(), key=lambda runs: (runs[0]["config"]["table"], runs[0]["config"]["row"]))


def _accuracy_shown(runs: list[dict[str, Any]], accuracy_of: Any, images: int) -> str:
    """Mean ± interval over seeds, or one run's accuracy on `images` images with its Wilson interval."""
    from .uncertainty import seed_interval, wilson_interval

    accuracies = [accuracy_of(run) for run in runs]
    if len(runs) > 1:
        return str(seed_interval(accuracies))
    low, high = wilson_interval(round(accuracies[0] * images), images)
    return f"{accuracies[0]:.3f} [{low:.2f}, {high:.2f}]"


def seeds_vs_thesis(results: list[dict[str, Any]]) -> Any:
    """One row per configuration: the thesis's numbers beside this project's mean ± 95 % interval over its
    seeds (one seed: each accuracy's Wilson interval), the optimizer steps of both and the CPU time."""
    import pandas as pd

    from .uncertainty import seed_interval

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
    from .uncertainty import detectable_difference

    test = results[0]["test"]
    images = sum(test[k] for k in CONFUSION_COLUMNS)
    accuracy = sum(r["test"]["accuracy"] for r in results) / len(results)
    smallest = detectable_difference(images, accuracy)
    return (f"{images} test images: near accuracy {accuracy:.2f}, two single runs must differ by "
            f"{smallest:.3f} ({math.ceil(smallest * images)} images) to be told apart (5 % level, power 0.8); "
            f"means over seeds by less, as their intervals show.")


def load_results(folder: Path | str, table: str, row: int) -> list[dict[str, Any]]:
    """Every seed's results JSON of one table row in `folder`, in seed order of their names."""
    return [load_result(path) for path in sorted(Path(folder).glob(f"table_{table}_row_{row:02d}_seed_*.json"))]


def paired_comparisons(groups: dict[str, list[dict[str, Any]]], pairs: list[tuple[str, str]]) -> Any:
    """Each pair of labelled configurations (A, B) present in `groups`: A − B in test accuracy on the same test
    images, with its interval, p-value and test (`uncertainty.paired_comparison`)."""
    import pandas as pd

    from .uncertainty import paired_comparison

    return pd.DataFrame([{"comparison": f"{a} − {b}",
                          "result": str(paired_comparison(correct_by_image(groups[a]), correct_by_image(groups[b])))}
                         for a, b in pairs if a in groups and b in groups])

"""A training run's results, typed: `RunResult` loads and checks the results JSON `training.train` writes, and
`committed_results` finds the committed ones under results/ by table, row, dataset, variant and seed. Every reader
of results goes through it: intervals over seeds, paired tests on the same test images, the thesis comparison."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsfw_mobilenet.core.backbones import IMAGENET, RANDOM_INIT
from nsfw_mobilenet.core.configs import DA_TABLES, FINAL_TABLE, ExperimentConfig
from nsfw_mobilenet.core.paths import RESULTS_DIR

CONFUSION_COLUMNS = ("TN", "FN", "TP", "FP")
RESULT_KEYS = ("config", "weights", "data", "history", "final", "time_min", "test")  # what every results JSON has
DEFAULT_DATASET = "flower_photos_roses_vs_tulips"  # the proxy the committed tables were run on


def weights_label(weights: Mapping[str, Any]) -> str:
    """How outputs name the weights a run started from, given its results' `weights` (older ones lack `source`)."""
    return weights.get("source") or (IMAGENET if weights["used"] else RANDOM_INIT)


class BadResultFile(ValueError):
    """A results JSON that cannot be read as a run's result; the message names the file."""


@dataclass(frozen=True)
class FinalEpoch:
    """The last epoch's training and validation loss and accuracy."""

    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class TestResult:
    """The test hold-out: confusion counts (binary runs), metrics and, since the seeds issue, per-image
    predictions (`predicted`, `labels` and `files`, a fingerprint of the test files in order) for paired tests."""

    classes: list[str]
    confusion_matrix: list[list[int]]
    accuracy: float
    counts: dict[str, int] = field(default_factory=dict)  # TN, FN, TP, FP
    metrics: dict[str, Any] = field(default_factory=dict)  # precision, recall, f1, roc_auc, per_class
    predicted: list[int] | None = None
    labels: list[int] | None = None
    files: str | None = None

    @property
    def images(self) -> int:
        return int(sum(map(sum, self.confusion_matrix)))

    @classmethod
    def from_dict(cls, test: Mapping[str, Any]) -> TestResult:
        named = {"classes", "confusion_matrix", "accuracy", "predicted", "labels", "files", *CONFUSION_COLUMNS}
        return cls(classes=list(test["classes"]), confusion_matrix=test["confusion_matrix"], accuracy=test["accuracy"],
                   counts={k: test[k] for k in CONFUSION_COLUMNS if k in test},
                   metrics={k: v for k, v in test.items() if k not in named},
                   predicted=test.get("predicted"), labels=test.get("labels"), files=test.get("files"))


@dataclass(frozen=True)
class RunResult:
    """One training run as its results JSON records it. `config` has the learning rate resolved to the number
    used; `weights` says which weights it started from (`used`, `source`, `note`); `data` its classes, counts,
    folder and fingerprint; `history` the per-epoch curves."""

    config: ExperimentConfig
    weights: dict[str, Any]
    data: dict[str, Any]
    history: dict[str, list[float]]
    final: FinalEpoch
    time_min: float
    test: TestResult | None = None
    cpu_min: float | None = None
    optimizer_steps: int | None = None
    training_images_per_second: float | None = None
    trainable_layers_with_weights: list[str] = field(default_factory=list)
    distribution: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    smoke: bool = False
    model_file: str | None = None  # the .keras beside the results JSON (not committed)
    feedback: dict[str, Any] | None = None  # a model fine-tuned on reviews (`training.feedback`): what it learned from
    path: Path | None = None  # the file it was read from

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def weights_name(self) -> str:
        """The weights it was trained from, as every output names them."""
        return weights_label(self.weights)

    @property
    def steps(self) -> int:
        """Optimizer steps it made (recorded since the seeds issue; computed for older results)."""
        return self.optimizer_steps or math.ceil(self.data["counts"]["training"] / self.config.batch_size) * len(
            self.history["loss"])

    @property
    def configuration(self) -> str:
        """Everything in its config but the seed: runs with the same configuration differ only in their seed."""
        return json.dumps({k: v for k, v in dataclasses.asdict(self.config).items() if k != "seed"}, sort_keys=True)

    @classmethod
    def from_dict(cls, result: Mapping[str, Any], path: Path | None = None) -> RunResult:
        """A result as `training.train.run_experiment` returns and writes it; BadResultFile names what is missing."""
        missing = [key for key in RESULT_KEYS if key not in result]
        if missing:
            raise BadResultFile(f"{path or 'result'}: not a run's result (no {', '.join(missing)})")
        known = {f.name for f in dataclasses.fields(ExperimentConfig)}
        config = ExperimentConfig(**{k: v for k, v in result["config"].items() if k in known})
        final = FinalEpoch(**{f.name: result["final"][f.name] for f in dataclasses.fields(FinalEpoch)})
        test = TestResult.from_dict(result["test"]) if result.get("test") else None
        return cls(config=config, weights=dict(result["weights"]), data=dict(result["data"]),
                   history=dict(result["history"]), final=final, time_min=result["time_min"], test=test,
                   cpu_min=result.get("cpu_min"), optimizer_steps=result.get("optimizer_steps"),
                   training_images_per_second=result.get("training_images_per_second"),
                   trainable_layers_with_weights=list(result.get("trainable_layers_with_weights", [])),
                   distribution=dict(result.get("distribution", {})), versions=dict(result.get("versions", {})),
                   smoke=bool(result.get("smoke", False)), model_file=result.get("model_file"),
                   feedback=result.get("feedback"), path=path)


def load_result(path: Path | str) -> RunResult:
    """One results JSON written by `training.train.run_experiment`; BadResultFile names a file that is not one."""
    path = Path(path)
    try:
        return RunResult.from_dict(json.loads(path.read_text()), path)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise BadResultFile(f"{path}: not a run's result ({error})") from None


def results_folder(table: str, dataset: str = DEFAULT_DATASET, *, variant: str = "", order: str | None = None,
                   root: Path | str = RESULTS_DIR) -> Path:
    """Where the committed runs of `table` on `dataset` live (results/README.md): table_<T>/<dataset><variant>/,
    augmentation/<dataset><variant>/<order>/ for the DA tables, final/<dataset><variant>/ for the final model."""
    if table in DA_TABLES:  # their runs live in results/augmentation/<data>/<order>/
        return Path(root) / "augmentation" / f"{dataset}{variant}" / (order or "corrected")
    if table == FINAL_TABLE:
        return Path(root) / "final" / f"{dataset}{variant}"
    return Path(root) / f"table_{table}" / f"{dataset}{variant}"


def find_results(folder: Path | str, table: str | None = None, row: int | None = None,
                 seeds: Iterable[int] | None = None) -> list[RunResult]:
    """The results JSONs in `folder` (of one table and row when given), in table, row and seed order."""
    pattern = f"table_{table or '*'}_row_{'*' if row is None else f'{row:02d}'}_seed_*.json"
    results = [load_result(path) for path in Path(folder).glob(pattern)]
    wanted = None if seeds is None else set(seeds)
    return sorted((r for r in results if wanted is None or r.seed in wanted),
                  key=lambda r: (r.config.table, r.config.row, r.seed))


def committed_results(table: str, dataset: str = DEFAULT_DATASET, *, row: int | None = None, variant: str = "",
                      order: str | None = None, seeds: Iterable[int] | None = None,
                      root: Path | str = RESULTS_DIR) -> list[RunResult]:
    """The committed runs of a table (one row, some seeds) on a dataset; [] when there are none."""
    return find_results(results_folder(table, dataset, variant=variant, order=order, root=root), table, row, seeds)


def result_folders(root: Path | str = RESULTS_DIR) -> dict[tuple[str, str], Path]:
    """Every folder of committed table runs, by (table, dataset folder name): what notebook 02 tabulates."""
    return {(folder.parent.name.removeprefix("table_"), folder.name): folder
            for folder in sorted(Path(root).glob("table_*/*")) if folder.is_dir() and folder.name != "smoke"}


def committed_tables(root: Path | str = RESULTS_DIR, *, tables: Iterable[str] | None = None,
                     dataset: str = "") -> dict[tuple[str, str], list[RunResult]]:
    """The committed runs of each table folder, by (table, dataset folder name), for the `tables` asked (all by
    default) and the folders whose name starts with `dataset` (its readings and variants too)."""
    wanted = None if tables is None else set(tables)
    return {(table, name): find_results(folder) for (table, name), folder in result_folders(root).items()
            if (wanted is None or table in wanted) and name.startswith(dataset)}


def correct_by_image(results: Sequence[RunResult]) -> Any:
    """(runs, test images) booleans: which test images each run classified correctly. Runs pair up only on
    the same test files in the same order (`test.files`)."""
    import numpy as np

    tests = [result.test for result in results]
    if any(test is None or test.predicted is None for test in tests):
        raise ValueError("a result has no per-image predictions (trained before they were recorded); train it again")
    if len({test.files for test in tests}) > 1:
        raise ValueError("these runs were tested on different test images; paired tests need the same ones")
    return np.array([np.equal(test.predicted, test.labels) for test in tests])


def seed_count(runs: Sequence[RunResult]) -> str:
    """"1 seed", "5 seeds": how legends and labels count a configuration's runs."""
    return f"{len(runs)} seed" + ("s" if len(runs) != 1 else "")


def seed_groups(results: Sequence[RunResult]) -> list[list[RunResult]]:
    """Results grouped by everything in their config but the seed, in table and row order."""
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.configuration, []).append(result)
    return sorted(groups.values(), key=lambda runs: (runs[0].config.table, runs[0].config.row))


"""Experiment configs (one YAML file per thesis table row) and the thesis's own numbers.

Configs are plain data in `configs/table_<T>/row_<NN>.yaml`, overriding the defaults of
`ExperimentConfig`; the thesis's numbers live in `reference/thesis_results.yaml`. Both folders are
package data, so an installed wheel has them; in the repository `experiments/` and `reference/`
link to them.
"""


from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nsfw_mobilenet.core.paths import PACKAGE_DIR

EXPERIMENTS_DIR = PACKAGE_DIR / "configs"
REFERENCE_FILE = PACKAGE_DIR / "reference" / "thesis_results.yaml"
FINAL_TABLE = "final"  # `table_configs(FINAL_TABLE)`: the final model's config
FINAL_CONFIG = Path(FINAL_TABLE) / "two_classes.yaml"  # in EXPERIMENTS_DIR
FINAL_CONFIG_NAME = FINAL_CONFIG.with_suffix("").as_posix()  # how model cards name it (package config)


# §4.2.1 item 3: the thesis ran at "the value applied to the learning rate by default in both optimizer's
# functions". That is each Keras optimizer's default, which differs: SGD 0.01, Adam 0.001 (Keras 2 and 3).
KERAS_DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.001}
LITERAL_LEARNING_RATE = 0.001  # the other reading: the number §4.2.1 prints, for both optimizers
DEFAULT_SEED = 1
BATCH_SIZE = 64  # §4.1: "we usually set to 64"
DA_TABLES = ("4.3", "4.7", "4.11", "4.15")  # §4.2.1–4.2.4: all six techniques on each backbone


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
    batch_size: int = BATCH_SIZE
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
        raise FileNotFoundError(f"no configs for table {table} in {folder}; tables with configs: "
                                f"{', '.join(table_names(experiments_dir))}")
    return [load_config(f) for f in files]


def table_names(experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """The tables `table_configs` knows, in the thesis's order (4.1, 4.3, …, 4.9, 4.9-steps, …, 4.17), then
    "final"."""
    tables = [f.name.removeprefix("table_") for f in experiments_dir.glob("table_*")]
    return sorted(tables, key=lambda t: ([int(n) for n in t.split("-")[0].split(".")], t)) + [FINAL_TABLE]


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


def thesis_steps(config: ExperimentConfig) -> int:
    """Optimizer steps the thesis made for a row: its training images in batches of the row's size, times the
    epochs of the row's config file (10; 4 for table 4.9-4epochs), whatever a run here overrode (--epochs)."""
    images = thesis_reference()["dataset_2_classes"]["train_images"]
    try:
        epochs = next(c.epochs for c in table_configs(config.table) if c.row == config.row)
    except (FileNotFoundError, StopIteration):  # a table of configs made at run time
        epochs = ExperimentConfig.epochs
    return math.ceil(images / config.batch_size) * epochs


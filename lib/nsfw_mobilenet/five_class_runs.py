"""§4.4 and §5.1's five-class training runs: their configs, the §4.4 experiment and its tables.

Each dataset of `five_class` trains with the thesis's best augmentation for it, and is scored on the
shared test set with listing 4.8's errors (`evaluate.evaluate_safety`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from . import data
from .evaluate import evaluate_safety
from .experiments import (EXPERIMENTS_DIR, PROJECT_ROOT, ExperimentConfig, load_config, repo_relative,
                          thesis_reference, weights_name)
from .five_class import DATASETS, FiveClassData, prepare
from .subsets import RunData
from .train import DEFAULT_CHECKPOINT_DIR, SMOKE_EPOCHS, TrainedRun, train

RUNS_DIR = EXPERIMENTS_DIR / "five_classes"  # one config per §4.4/§5.1 training run
RESULTS_DIR = PROJECT_ROOT / "results" / "five_class"  # committed full runs of §4.4 and table 5.1
TWO_CLASS_RUN = "two_classes_CDE"  # §5.1: the table 4.17 winner, the first column of table 5.1


# --- Configs -------------------------------------------------------------------------------------
def load_runs(folder: Path = RUNS_DIR) -> dict[str, ExperimentConfig]:
    """The §4.4/§5.1 training runs, by file stem (`dataset_1_A`, …, `two_classes_CDE`)."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no run configs in {folder}")
    return {f.stem: load_config(f) for f in files}


def dataset_of(run: str) -> str:
    """`dataset_2_CDE` → `dataset_2`: the file stem names the dataset a run trains on."""
    return run.rsplit("_", 1)[0]


def best_runs(runs: Mapping[str, ExperimentConfig] | None = None) -> dict[str, str]:
    """Dataset → its run with the thesis's best augmentation (§4.4), the columns of table 5.1."""
    runs = runs or load_runs()
    best = thesis_reference()["five_class_datasets"]["best_augmentation"]
    return {name: f"{name}_{best[name]}" for name in DATASETS if f"{name}_{best[name]}" in runs}


# --- §4.4 end to end -----------------------------------------------------------------------------
def run_summary(trained: TrainedRun, run_data: RunData) -> dict[str, Any]:
    """The small part of a run's result worth keeping in results/five_class/."""
    keep = ("config", "weights", "final", "history", "time_min", "feature_cache")
    return {**{key: trained.result[key] for key in keep}, "counts": run_data.counts()}


def section_4_4_experiment(five_class_dir: Path | str, *, runs: Sequence[str] | None = None,
                           overrides: Mapping[str, Any] | None = None, class_weights: bool = True,
                           smoke: bool = False, seed: int = data.SPLIT_SEED, checkpoint_dir: Path | None = None,
                           prepared: FiveClassData | None = None, progress: bool = True,
                           weights_dir: Path | None = None) -> dict[str, Any]:
    """Train `runs` (default: each dataset with its best augmentation) and score them as §4.4 does.

    With `class_weights`, Dataset 1's run is repeated with balanced class weights to show what
    they change on imbalanced data. `overrides` (e.g. a substitute backbone) apply to every run.
    Pass `prepared` (from `five_class.prepare`) to reuse decoded images across calls; `weights_dir` is
    the offline ImageNet weights folder.
    """
    overrides = dict(overrides or {})
    if smoke:
        overrides.setdefault("epochs", SMOKE_EPOCHS)
    configs = load_runs()
    chosen = {run: configs[run].with_overrides(**overrides) for run in (runs or best_runs(configs).values())}
    if class_weights:
        first = next(run for run in chosen if dataset_of(run) == DATASETS[0])
        chosen[f"{first}+class_weights"] = chosen[first].with_overrides(class_weights=True)
    prepared = prepared or prepare(five_class_dir, smoke=smoke, seed=seed, progress=progress)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else DEFAULT_CHECKPOINT_DIR
    result: dict[str, Any] = {
        "data": {"dir": repo_relative(five_class_dir), "datasets": {n: d.counts() for n, d in prepared.datasets.items()},
                 "test": dict(zip(prepared.test.classes,
                                  np.bincount(prepared.test.labels, minlength=len(prepared.test.classes)).tolist())),
                 "bad_files": [str(bad) for bad in prepared.decoded.bad_files + prepared.test.bad_files]},
        "overrides": overrides, "smoke": smoke, "seed": seed, "runs": {},
    }
    for run, config in tqdm(chosen.items(), desc="§4.4 runs", unit="run", disable=not progress):
        run_data = prepared.run_data(dataset_of(run.split("+")[0]))
        trained = train(config, run_data, weights_dir=weights_dir, checkpoint_dir=checkpoints / f"{run}_{seed}",
                        verbose=0)
        safety = evaluate_safety(trained.test_probabilities, prepared.test.labels, prepared.test.classes)
        result["runs"][run] = {**run_summary(trained, run_data), "safety": safety.to_dict()}
    return result


def safety_matrices(result: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(thesis figure, run, listing-4.8 safety result) of each dataset's best run in a §4.4 result: figures 4.18–4.20."""
    figures = thesis_reference()["five_class_datasets"]["confusion_figure"]
    return [(figures[dataset], run, result["runs"][run]["safety"]) for dataset, run in best_runs().items()]


def well_predicted_table(result: Mapping[str, Any]) -> Any:
    """§4.4's "well predicted" counts, thesis beside this run, one row per run of `section_4_4_experiment`."""
    import pandas as pd

    thesis = thesis_reference()["five_class_datasets"]
    thesis_total = sum(thesis["test"].values())
    rows = []
    for run, summary in result["runs"].items():
        safety, dataset = summary["safety"], dataset_of(run.split("+")[0])
        rows.append({"run": run, "backbone": summary["config"]["backbone"],
                     "weights": weights_name(summary),
                     "training images": summary["counts"]["training"] + summary["counts"]["validation"],
                     "well predicted [thesis]": f"{thesis['well_predicted'][dataset]} / {thesis_total}",
                     "well predicted [here]": f"{safety['well_predicted']} / {safety['total']}",
                     "share [thesis]": thesis["well_predicted"][dataset] / thesis_total,
                     "share [here]": safety["well_predicted"] / safety["total"],
                     "top-1 accuracy [here]": safety["accuracy"]})
    return pd.DataFrame(rows).set_index("run")


def class_weight_table(result: Mapping[str, Any]) -> Any:
    """Per-class recall of Dataset 1's run without and with balanced class weights (rows = classes)."""
    import pandas as pd

    weighted = next((run for run in result["runs"] if run.endswith("+class_weights")), None)
    if weighted is None:
        raise ValueError("no class-weights run in this result; run section_4_4_experiment(class_weights=True)")
    plain = weighted.removesuffix("+class_weights")
    columns = {}
    for label, run in (("without class weights", plain), ("with class weights", weighted)):
        safety = result["runs"][run]["safety"]
        columns[f"recall {label}"] = safety["recall"]
        columns[f"well predicted {label}"] = {"(all)": safety["well_predicted"]}
    columns["training images"] = result["data"]["datasets"][dataset_of(plain)]
    return pd.DataFrame(columns)

"""A training run's results JSON (written by `training.train`): reading it, finding a row's seeds, the weights
it started from, its optimizer steps, and which test images each run got right (for paired tests)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nsfw_mobilenet.core.backbones import IMAGENET, RANDOM_INIT

CONFUSION_COLUMNS = ("TN", "FN", "TP", "FP")



def weights_name(result: dict[str, Any]) -> str:
    """The weights a result was trained from, as every output names them (older results lack `source`)."""
    weights = result["weights"]
    return weights.get("source") or (IMAGENET if weights["used"] else RANDOM_INIT)



def run_steps(result: dict[str, Any]) -> int:
    """Optimizer steps a run made (recorded since the seeds issue; computed for older results)."""
    config = result["config"]
    return result.get("optimizer_steps") or math.ceil(result["data"]["counts"]["training"] / config["batch_size"]) * (
        len(result["history"]["loss"]))



def load_result(path: Path | str) -> dict[str, Any]:
    """One results JSON written by `train.run_experiment`."""
    return json.loads(Path(path).read_text())



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



def load_results(folder: Path | str, table: str, row: int) -> list[dict[str, Any]]:
    """Every seed's results JSON of one table row in `folder`, in seed order of their names."""
    return [load_result(path) for path in sorted(Path(folder).glob(f"table_{table}_row_{row:02d}_seed_*.json"))]


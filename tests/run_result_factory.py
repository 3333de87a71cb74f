"""Small results JSONs as `training.train.run_experiment` writes them, for the specifications of their readers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from nsfw_mobilenet.core.configs import ExperimentConfig
from nsfw_mobilenet.evaluation.run_results import RunResult


def result_dict(table: str = "4.9", row: int = 4, *, seed: int = 1, correct: list[bool] | None = None,
                val: float = 0.8, loss: float = 0.5, val_curve: list[float] | None = None,
                loss_curve: list[float] | None = None, files: str = "same",
                training_images: int = 507, weights: str = "ImageNet", steps: int | None = 80,
                **config: Any) -> dict[str, Any]:
    """A complete result of one run: `correct` says which of its test images it got right (all labelled 1)."""
    correct = [True] * 8 + [False] * 2 if correct is None else correct
    images, right = len(correct), sum(correct)
    fields = {"backbone": "mobilenet_v3_small", "trainable_layers": 10, "learning_rate": 0.01} | config
    run_config = ExperimentConfig(table=table, row=row, seed=seed, **fields)
    curve = val_curve or [val]
    losses = loss_curve or [loss] * len(curve)
    return {"config": dataclasses.asdict(run_config) | {"learning_rate": run_config.effective_learning_rate},
            "seed": seed, "optimizer_steps": steps, "weights": {"used": weights != "random init", "source": weights,
                                                               "note": f"{weights} weights"},
            "data": {"classes": ["roses", "tulips"], "dir": "data/proxy",
                     "counts": {"training": training_images, "validation": 126, "test": images}},
            "history": {"loss": losses, "accuracy": [0.9] * len(curve), "val_loss": losses, "val_accuracy": curve},
            "final": {"loss": losses[-1], "accuracy": 0.9, "val_loss": losses[-1], "val_accuracy": curve[-1]},
            "time_min": 1.0, "cpu_min": 0.9, "trainable_layers_with_weights": ["classifier"],
            "test": {"classes": ["roses", "tulips"], "confusion_matrix": [[0, 0], [images - right, right]],
                     "accuracy": right / images, "TN": 0, "FN": images - right, "TP": right, "FP": 0,
                     "labels": [1] * images, "predicted": [int(c) for c in correct], "files": files}}


def run_result(*args: Any, **kwargs: Any) -> RunResult:
    """`result_dict` as its readers get it."""
    return RunResult.from_dict(result_dict(*args, **kwargs))


def write_result(folder: Path, result: dict[str, Any]) -> Path:
    """Write `result` as `run_experiment` names it in `folder`; its path."""
    config = result["config"]
    path = Path(folder) / f"table_{config['table']}_row_{config['row']:02d}_seed_{config['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path

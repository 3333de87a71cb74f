"""The final two-class model (§5.1's choice) trained on one dataset, or its finished run reused, and what its model card
says about its origin."""


from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core import backbones
from nsfw_mobilenet.core.configs import FINAL_CONFIG_NAME, ExperimentConfig, final_config
from nsfw_mobilenet.core.paths import RUNS_DIR
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.run_data import RunData, load_run_data
from nsfw_mobilenet.training.train import SMOKE_EPOCHS, result_path, run_experiment


def trained_model(config: ExperimentConfig, data_dir: Path | str, out_dir: Path | str, *, smoke: bool = False,
                  run_data: RunData | None = None, **train_options: Any) -> tuple[Any, RunResult]:
    """The trained model of `config` on `data_dir` and its results: the saved `.keras` of a finished
    run, else trained now (a fresh clone has the committed results JSON but never the model file)."""
    import keras

    result = run_experiment(config, data_dir, out_dir, smoke=smoke, run_data=run_data, **train_options)
    model_file = result_path(config, out_dir, smoke).with_suffix(".keras")
    if not model_file.exists():
        result = run_experiment(config, data_dir, out_dir, smoke=smoke, run_data=run_data, force=True,
                                **train_options)
    return keras.models.load_model(model_file), result


@dataclass
class FinalModel:
    """The final two-class model (§5.1's choice) trained on one dataset, its results and that data."""

    model: Any
    result: RunResult
    data: RunData

    @property
    def backbone(self) -> str:
        return self.result.config.backbone

    @property
    def model_file(self) -> Path:
        """The `.keras` beside the run's results JSON (what `finetune` and `export` take)."""
        return self.result.path.with_suffix(".keras")

    def test_probabilities(self) -> np.ndarray:
        """Class probabilities of the test images, in `data.test` order."""
        return predict(self.model, self.data.test.images, self.backbone)

    def validation_probabilities(self) -> np.ndarray:
        """Class probabilities of listing 4.4's validation images, in `data.validation` order."""
        return predict(self.model, self.data.validation.images, self.backbone)

    def describe(self) -> str:
        """Which model, from which weights, trained on what, and its test accuracy: for notebook outputs."""
        config, data_info, test = self.result.config, self.result.data, self.result.test
        smoke = " SMOKE run (1 epoch, a few images per class): not a result." if self.result.smoke else ""
        return (f"{backbones.get_backbone(config.backbone).title} from {self.result.weights_name} weights, "
                f"{config.head} head, last {config.trainable_layers} layers trained with {config.optimizer}, "
                f"augmentation {config.augmentation or '-'} ({config.order} order), {config.epochs} epochs "
                f"({self.result.time_min:.1f} min) on {data_info['dir']} {data_info['counts']}; "
                f"test accuracy {test.accuracy if test else float('nan'):.3f}."
                f"{smoke}")

    def model_card(self, classes: list[str]) -> dict[str, Any]:
        """What an exported model's card says about its origin: backbone, weights, config (with any change
        the package config final/two_classes), training data and test accuracy."""
        data_info, final = self.result.data, final_config().to_dict()
        changed = {key: value for key, value in self.result.config.to_dict().items() if final[key] != value}
        return {"backbone": self.result.config.backbone, "weights": self.result.weights_name,
                "config": FINAL_CONFIG_NAME + (f" with {changed}" if changed else ""),
                "training_data": f"{data_info['dir']}: class folders {data_info['classes']}"
                                 f"{'' if list(classes) == data_info['classes'] else f' as {list(classes)}'}, "
                                 f"{data_info['counts']}{' (SMOKE run)' if self.result.smoke else ''}",
                "keras_test_accuracy": self.result.test.accuracy if self.result.test else None}


def final_model(data_dir: Path | str, out_dir: Path | str | None = None, *, smoke: bool = False,
                head: str | None = None, weights_dir: Path | None = None, seed: int | None = None) -> FinalModel:
    """`core.configs.final_config()` trained on `data_dir` (notebooks 06–09) with `seed` (default the config's, 1):
    the saved model of a finished run in `out_dir`, else trained now.

    `out_dir` defaults to runs/final/<data folder name>. A smoke run trains one epoch on a few images
    per class (into the `smoke/` subfolder, `result_path`), so it never touches the full model. `head`
    swaps the config's head (notebook 07 compares listing 4.7's "thesis" head); such a model
    defaults to runs/final_<head>_head/<data folder name>.
    """
    config = final_config().with_overrides(epochs=SMOKE_EPOCHS if smoke else None, head=head, seed=seed)
    folder = "final" + (f"_{head}_head" if head and head != final_config().head else "")
    default_dir = RUNS_DIR / folder / Path(data_dir).name
    run_data = load_run_data(data_dir, smoke=smoke, progress=False)
    model, result = trained_model(config, data_dir, out_dir or default_dir, smoke=smoke, run_data=run_data,
                                  weights_dir=weights_dir, verbose=0)
    return FinalModel(model, result, run_data)


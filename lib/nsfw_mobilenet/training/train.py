"""Fine-tuning runs of §4.2–4.4: one `ExperimentConfig` in, one results JSON out.

A run compiles the thesis head with SGD or Adam (listing 4.3), freezes all but the last N layers
in the thesis's numbering, trains with checkpoints that survive a kill (`BackupAndRestore`, with
the epochs' history and wall time logged beside them, so a resumed run reports the whole run),
evaluates on the test folder and writes config, history, confusion matrix, wall time, versions,
seed and a fingerprint of the data to `<out_dir>/<config.name>.json`. Without augmentation, the
frozen part of the network is computed once ("cached features") and only the trainable tail is
trained per epoch. `run_table` trains a thesis table's rows (`augmentation_orders`: a config in both
augmentation orders.
"""


from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.backbones import get_backbone
from nsfw_mobilenet.core.configs import DEFAULT_SEED, KERAS_DEFAULT_LEARNING_RATES, ExperimentConfig, table_configs
from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR, repo_relative
from nsfw_mobilenet.evaluation.evaluate import evaluate_predictions, per_class_metrics
from nsfw_mobilenet.evaluation.run_results import RESULT_KEYS, RunResult
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.atomic_files import write_atomically
from nsfw_mobilenet.io.inference import predict, predict_to_file
from nsfw_mobilenet.io.run_data import RunData, load_run_data, run_files
from nsfw_mobilenet.io.weights import weights_identity, weights_source
from nsfw_mobilenet.training import augment, distribute, models

SMOKE_EPOCHS = 1  # a smoke run: this many epochs on `subsets.SMOKE_IMAGES_PER_CLASS`, a check, never a result
STOCHASTIC_LAYERS = ("Dropout", "GaussianNoise", "GaussianDropout", "SpatialDropout2D")
DEFAULT_CHECKPOINT_DIR = Path("runs") / "checkpoints"
BACKUP_FOLDER = "backup"  # BackupAndRestore's folder inside a run's checkpoint folder
TRAINING_LOG = "history.json"  # the epochs and segment times of a run, beside its backup
FEATURES_FOLDER = "features"  # the frozen front's outputs of a run, beside its backup (rewritten by each run)

log = logging.getLogger(__name__)


def make_optimizer(config: ExperimentConfig) -> Any:
    """Listing 4.3's optimizers ("sgd" or "adam") at the config's learning rate (and SGD's momentum)."""
    import keras

    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.effective_learning_rate, momentum=config.momentum)
    if config.optimizer == "adam":
        if config.momentum:
            raise ValueError(f"momentum {config.momentum} is an SGD setting; Adam has its own moments (beta_1)")
        return keras.optimizers.Adam(learning_rate=config.effective_learning_rate)
    raise ValueError(f"optimizer must be one of {sorted(KERAS_DEFAULT_LEARNING_RATES)}, got {config.optimizer!r}")


def compile_for_training(model: Any, config: ExperimentConfig, run_eagerly: bool = False) -> Any:
    model.compile(optimizer=make_optimizer(config), loss="categorical_crossentropy", metrics=["accuracy"],
                  run_eagerly=run_eagerly)
    return model


def optimizer_steps(config: ExperimentConfig, training_images: int) -> int:
    """Optimizer steps of a run: batches per epoch × epochs (the thesis made 391 × 10 = 3,910)."""
    return math.ceil(training_images / config.batch_size) * config.epochs


def frozen_boundary(model: Any, backbone: str, trainable_layers: int) -> int | None:
    """Index of the first layer that must run per epoch, or None when nothing can be cached.

    Everything before it is frozen and deterministic in training mode (no dropout), so its
    output can be computed once. The tail from there must depend on that one tensor only.
    """
    sequence = models.thesis_layer_sequence(model, backbone)
    if trainable_layers <= 0 or trainable_layers > len(sequence):
        return None
    positions = {id(layer): i for i, layer in enumerate(model.layers)}
    first_unfrozen = positions[id(sequence[-trainable_layers])]
    stochastic = [i for i, layer in enumerate(model.layers) if type(layer).__name__ in STOCHASTIC_LAYERS]
    boundary = min([first_unfrozen, *stochastic])
    return boundary if boundary > 1 else None


def split_model(model: Any, boundary: int) -> tuple[Any, Any] | None:
    """(frozen front, trainable tail) sharing the model's layers, or None if the cut is not clean."""
    import keras

    cut = model.layers[boundary].input
    try:
        return keras.Model(model.input, cut), keras.Model(cut, model.output)
    except ValueError:  # the tail reads a tensor from before the cut (a residual connection)
        return None


def class_weight_for(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency ("balanced") class weights, for imbalanced sets like §4.4's Dataset 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}


def _feature_datasets(front: Any, config: ExperimentConfig, run_data: RunData, folder: Path) -> tuple[Any, Any]:
    """Training and validation batches of the frozen front's outputs, computed once into `folder`: they
    can be as large as the images, so they are stored and read a batch at a time like them."""
    folder.mkdir(parents=True, exist_ok=True)
    datasets = []
    for subset, shuffle in ((run_data.training, True), (run_data.validation, False)):
        name = "training" if shuffle else "validation"
        features = predict_to_file(front, subset.images, config.backbone, folder / f"{name}.npy", config.batch_size)
        datasets.append(input_pipeline.make_dataset(features, subset.labels, len(run_data.classes), None,
                                          batch_size=config.batch_size, shuffle=shuffle, seed=config.seed))
    return datasets[0], datasets[1]


def _image_datasets(config: ExperimentConfig, run_data: RunData,
                    augmentation_builder: Callable[..., Any]) -> tuple[Any, Any]:
    augmentation = augmentation_builder(config.augmentation, seed=config.seed) if config.augmentation else None
    num_classes = len(run_data.classes)
    training = input_pipeline.make_dataset(run_data.training.images, run_data.training.labels, num_classes, config.backbone,
                                 batch_size=config.batch_size, shuffle=True, seed=config.seed,
                                 augmentation=augmentation, order=config.order)
    validation = input_pipeline.make_dataset(run_data.validation.images, run_data.validation.labels, num_classes,
                                   config.backbone, batch_size=config.batch_size)
    return training, validation


class TrainingLog:
    """The per-epoch history and wall time of each segment of a run (a kill ends a segment), saved
    beside its checkpoint after every epoch so that a resumed run reports all its epochs and time.

    The epoch is logged before `BackupAndRestore` saves it: a kill in between re-runs that epoch,
    whose entry is then overwritten. Without a backup the run starts over, and so does the log.
    """

    def __init__(self, checkpoint_dir: Path):
        self.file = checkpoint_dir / TRAINING_LOG
        self.started = time.perf_counter()
        earlier = {"epochs": [], "segment_seconds": []}
        if (checkpoint_dir / BACKUP_FOLDER).is_dir() and self.file.exists():
            earlier = json.loads(self.file.read_text())
        self.epochs: list[dict[str, float]] = earlier["epochs"]
        self.segment_seconds: list[float] = earlier["segment_seconds"] + [0.0]

    def log_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epochs[epoch:] = [{key: float(value) for key, value in logs.items()}]
        self.segment_seconds[-1] = time.perf_counter() - self.started
        self.file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.file, json.dumps({"epochs": self.epochs, "segment_seconds": self.segment_seconds}))

    def finish(self) -> None:
        """End the last segment; the log goes, as Keras deletes the backup at the end of training."""
        self.segment_seconds[-1] = time.perf_counter() - self.started
        self.file.unlink(missing_ok=True)

    @property
    def history(self) -> dict[str, list[float]]:
        return {key: [epoch[key] for epoch in self.epochs] for key in self.epochs[0]}

    @property
    def wall_time(self) -> float:
        return sum(self.segment_seconds)


def _fit(model: Any, training: Any, validation: Any, config: ExperimentConfig, training_log: TrainingLog,
         class_weight: dict | None, verbose: int) -> None:
    import keras

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=training_log.log_epoch),
                 keras.callbacks.BackupAndRestore(str(training_log.file.parent / BACKUP_FOLDER))]
    model.fit(training, validation_data=validation, epochs=config.epochs, callbacks=callbacks,
              class_weight=class_weight, shuffle=False, verbose=verbose)
    training_log.finish()


def files_digest(paths: Any) -> str:
    """Names an ordered list of files by class folder and file name (not where the dataset lies): two runs'
    per-image predictions pair up only when it is equal."""
    names = (f"{Path(path).parent.name}/{Path(path).name}" for path in paths)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    import keras
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__, "machine": platform.machine(),
            "processor_count": str(os.cpu_count()),
            # 0: one per core. Histories are identical for the same thread count; across counts the last bits of
            # a reduction may differ (a validation loss by 6e-8 between 1 and 2 threads; predictions the same)
            "intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads())}


def run_fingerprint(config: ExperimentConfig, weights: str | None, run_data: RunData,
                    distribution_setup: dict[str, Any] = distribute.SINGLE_DEVICE) -> str:
    """Names a run's checkpoint folder: a killed run resumes only into the very same run (config, weights,
    training files, devices and precision), never into another dataset's or another config's."""
    identity = json.dumps([config.to_dict(), str(weights), [str(p) for p in run_data.training.paths],
                           distribution_setup])
    return hashlib.sha1(identity.encode()).hexdigest()[:12]


def enable_determinism() -> None:
    """TensorFlow's op determinism (deterministic kernels and tf.data order), for every run: with the seeds of
    `keras.utils.set_random_seed` and the stateless augmentation draws, the same config, seed, data and machine
    give the same history and test counts. Process-wide and permanent, as TensorFlow makes it."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def _configured_weights_note(config: ExperimentConfig) -> str:
    if config.weights is None:
        return (f"{get_backbone(config.backbone).title}: random initialisation, as asked (weights=None, "
                "--weights random): NOT transfer learning.")
    return f"{get_backbone(config.backbone).title}: weights from {config.weights}, as configured."


@dataclass
class TrainedRun:
    """A finished run: the trained model and its results (also saved as JSON)."""

    model: Any
    result: dict[str, Any]
    test_probabilities: np.ndarray | None


def train(config: ExperimentConfig, run_data: RunData, *, weights_dir: Path | None = None,
          checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR, feature_cache: bool = True, verbose: int = 2,
          distribution: distribute.Distribution | None = None,
          augmentation_builder: Callable[..., Any] = augment.augmentation) -> TrainedRun:
    """Train one config on decoded data and evaluate it on the test images; `weights_dir` is the offline
    ImageNet weights folder (None: Keras downloads them); `distribution` the devices and precision
    (`distribute`; None: the default strategy, float32); `augmentation_builder(letters, seed=)` makes the
    augmentation (`augment.keras_augmentation`: listing 4.5's layers, the reference of the fused op)."""
    import keras

    cpu_started = time.process_time()
    distribution = distribution or distribute.distribution()
    weights, weights_note = (models.weights_for_run(config.backbone, weights_dir) if config.weights == "imagenet"
                             else (config.weights, _configured_weights_note(config)))
    keras.utils.set_random_seed(config.seed)  # after the weights probe, which builds a model of its own
    enable_determinism()
    with distribution.scope():  # its variables on every replica, its layers in the run's precision
        model = models.build_classifier(config.backbone, len(run_data.classes), config.head, weights, weights_dir)
    trainable = models.freeze_all_but_last(model, config.backbone, config.trainable_layers)
    run_setup = distribute.setup(distribution)
    checkpoint_dir = distribution.worker_folder(
        Path(checkpoint_dir) / f"{config.name}-{run_fingerprint(config, weights, run_data, run_setup)}")
    class_weight = class_weight_for(run_data.training.labels, len(run_data.classes)) if config.class_weights else None
    # With one batch per epoch, tracing costs more than it saves (smoke runs): run eagerly. Not with several
    # replicas: Keras 3.15's eager all-reduce fails there ("Shape mismatch in the collective instance").
    one_step_per_epoch = len(run_data.training.labels) <= config.batch_size and distribution.replicas == 1
    training_log = TrainingLog(checkpoint_dir)
    parts = None
    if feature_cache and not config.augmentation:
        boundary = frozen_boundary(model, config.backbone, config.trainable_layers)
        parts = split_model(model, boundary) if boundary is not None else None
    if parts:
        front, tail = parts
        training, validation = _feature_datasets(front, config, run_data, checkpoint_dir / FEATURES_FOLDER)
        # The front, made outside the strategy, predicts on one device (a model made in its scope repeats each
        # batch of `predict_on_batch` on every replica); the tail, remade inside, trains on the replicas.
        with distribution.scope():
            tail = keras.Model(tail.input, tail.output, name=tail.name)
            compile_for_training(tail, config, run_eagerly=one_step_per_epoch)
        _fit(tail, training, validation, config, training_log, class_weight, verbose)
        shutil.rmtree(checkpoint_dir / FEATURES_FOLDER)  # as Keras deletes the backup once trained
    else:
        with distribution.scope():
            compile_for_training(model, config, run_eagerly=one_step_per_epoch)
        training, validation = _image_datasets(config, run_data, augmentation_builder)
        _fit(model, training, validation, config, training_log, class_weight, verbose)
    history, wall_time, segments = training_log.history, training_log.wall_time, len(training_log.segment_seconds)
    probabilities = None
    evaluation = None
    if run_data.test is not None and len(run_data.test.labels):
        probabilities = predict(model, run_data.test.images, config.backbone, config.batch_size)
        evaluation = evaluate_predictions(probabilities, run_data.test.labels, run_data.classes).to_dict()
        evaluation["per_class"] = per_class_metrics(probabilities, run_data.test.labels, run_data.classes)
        # per image, in the test folder's order: what paired tests (McNemar, bootstrap) compare across runs
        evaluation.update(labels=np.asarray(run_data.test.labels).tolist(),
                          predicted=probabilities.argmax(axis=1).tolist(), files=files_digest(run_data.test.paths))
    trained_images = run_data.counts()["training"] * config.epochs
    result = {
        "config": config.to_dict(),
        "seed": config.seed,
        "optimizer_steps": optimizer_steps(config, run_data.counts()["training"]),
        "weights": {"used": weights, "source": weights_source(config.backbone, weights, weights_dir=weights_dir),
                    "note": weights_note},
        "trainable_layers_with_weights": trainable,
        "feature_cache": bool(parts),
        "distribution": run_setup,
        "data": {"classes": run_data.classes, "counts": run_data.counts(), "bad_files": run_data.bad_files()},
        "history": history,
        "final": {key: history[key][-1] for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
        "time_min": wall_time / 60,  # every segment of a resumed run
        "cpu_min": (time.process_time() - cpu_started) / 60,  # all threads, build and test included; last segment
        "training_images_per_second": trained_images / wall_time,
        "segments": segments,
        "test": evaluation,
        "warnings": run_data.warnings(),  # e.g. a class without test images, which test.per_class shows
        "versions": versions(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return TrainedRun(model, result, probabilities)


def result_path(config: ExperimentConfig, out_dir: Path | str, smoke: bool = False) -> Path:
    """Where `run_experiment` writes a run's results JSON (its `.keras` beside it). Smoke runs go to
    `<out_dir>/smoke/`, so a seconds-long check can never overwrite a full (committed) result."""
    return Path(out_dir) / ("smoke" if smoke else "") / f"{config.name}_seed_{config.seed}.json"


@lru_cache(maxsize=None)
def _content_digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes; asked once per process for each (path, size, time) a table's runs share."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def _size_and_content(path: Path) -> list[int | str | None]:
    try:
        stat = path.stat()
        return [stat.st_size, _content_digest(path, stat.st_size, stat.st_mtime_ns)]
    except OSError:  # e.g. a broken symlink: listed, reported as unreadable when decoded
        return [None, None]


def data_fingerprint(config: ExperimentConfig, data_dir: Path | str, *, smoke: bool = False,
                     weights_dir: Path | None = None) -> str | None:
    """Changes when a file the run reads is added, removed, moved or its bytes change, or the config or the
    weights it starts from change (`weights_identity`: the file's md5, or "random"); copying or re-provisioning
    the same files keeps it. None when `data_dir` is not here (nothing to compare)."""
    root = Path(data_dir)
    if not root.is_dir():
        return None
    files = [[subset, item.path.relative_to(root).as_posix(), *_size_and_content(item.path)]
             for subset, items in run_files(root, smoke=smoke).items() for item in items]
    loaded = models.weights_for_run(config.backbone, weights_dir)[0] if config.weights == "imagenet" else config.weights
    needs_top = get_backbone(config.backbone).classifier_needs_top
    weights = weights_identity(config.backbone, loaded, needs_top, weights_dir=weights_dir)
    identity = json.dumps([config.to_dict(), weights, files])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _stored_result(result_file: Path) -> dict[str, Any] | None:
    """The results JSON of a finished run, or None. A truncated or incomplete one is moved aside to
    `<name>.json.bad` (with a warning), so that its row trains again instead of crashing the table."""
    if not result_file.exists():
        return None
    try:
        stored = json.loads(result_file.read_text())
        if isinstance(stored, dict) and all(key in stored for key in RESULT_KEYS) and isinstance(stored["data"], dict):
            return stored
        problem = f"incomplete (needs {', '.join(RESULT_KEYS)})"
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = f"not JSON ({error})"
    moved = result_file.with_name(result_file.name + ".bad")
    os.replace(result_file, moved)
    log.warning("%s: %s; moved to %s, training this row again", result_file, problem, moved)
    return None


def _reusable(stored: dict[str, Any], config: ExperimentConfig, smoke: bool, data_name: str,
              fingerprint: str | None, distribution_setup: dict[str, Any]) -> bool:
    """Same config, mode, data folder, devices and precision (`distribute.setup`), and unchanged data. A result
    without a fingerprint (committed before there was one, reused on machines whose file times differ)
    counts as unchanged; one without a distribution record was trained on one device in float32. One without
    per-image test predictions (older than the paired tests of `uncertainty`) is trained again."""
    same_run = (ExperimentConfig(**stored["config"]).to_dict(), stored.get("smoke"), stored["data"].get("dir"),
                stored.get("distribution", distribute.SINGLE_DEVICE))
    stored_fingerprint = stored["data"].get("fingerprint")
    paired_testable = "predicted" in (stored.get("test") or {"predicted": None})  # older results: train again
    return (paired_testable and same_run == (config.to_dict(), smoke, data_name, distribution_setup)
            and (stored_fingerprint is None or fingerprint is None or stored_fingerprint == fingerprint))


def run_experiment(config: ExperimentConfig, data_dir: Path | str, out_dir: Path | str, *, smoke: bool = False,
                   run_data: RunData | None = None, force: bool = False, weights_dir: Path | None = None,
                   distribution: distribute.Distribution | None = None, **train_options: Any) -> RunResult:
    """Train and evaluate `config` on `data_dir`, writing `result_path(config, out_dir, smoke)`; its `RunResult`.

    A finished result of the same config, data folder, mode, `distribution` setup and `data_fingerprint`
    is reused unless `force`, so re-running a table resumes where it stopped; an interrupted run resumes
    from its last epoch checkpoint. The data folder is recorded relative to the repository, so a notebook
    (run from notebooks/) finds the runs made from the repository root. In a multi-worker run every
    worker trains and only the chief writes.
    """
    result_file = result_path(config, out_dir, smoke)
    data_name = repo_relative(data_dir)
    fingerprint = data_fingerprint(config, data_dir, smoke=smoke, weights_dir=weights_dir)
    stored = None if force else _stored_result(result_file)
    setup = distribute.setup(distribution)
    if stored is not None and _reusable(stored, config, smoke, data_name, fingerprint, setup):
        return RunResult.from_dict(stored, result_file)
    if run_data is None:
        run_data = load_run_data(data_dir, smoke=smoke)
    run = train(config, run_data, weights_dir=weights_dir, distribution=distribution, **train_options)
    run.result["data"].update(dir=data_name, fingerprint=fingerprint)
    run.result["smoke"] = smoke
    if distribution is not None and not distribution.is_chief:
        return RunResult.from_dict(run.result)
    result_file.parent.mkdir(parents=True, exist_ok=True)
    model_file = result_file.with_suffix(".keras")  # for `nsfw-mobilenet export`; git-ignored
    run.model.save(model_file)
    run.result["model_file"] = model_file.name
    write_atomically(result_file, json.dumps(run.result, indent=1))
    return RunResult.from_dict(run.result, result_file)


def seed_list(seeds: int | list[int] | None) -> list[int] | None:
    """`--seeds K` as seeds 1…K, an explicit list as given, None as None (the configs' own seed)."""
    if seeds is None or isinstance(seeds, list):
        return seeds
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    return list(range(DEFAULT_SEED, DEFAULT_SEED + seeds))


def starting_weights_notes(configs: list[ExperimentConfig], weights_dir: Path | None = None) -> list[str]:
    """Check, before any data is decoded, that every config asking for ImageNet weights gets them
    (`models.weights_for_run` raises `WeightsUnavailable` otherwise); the warnings of those that start from
    random weights without having asked (V3-Large offline)."""
    backbones = sorted({c.backbone for c in configs if c.weights == "imagenet"})
    return [note for weights, note in (models.weights_for_run(name, weights_dir) for name in backbones)
            if weights is None]


def run_configs(configs: list[ExperimentConfig], data_dir: Path | str, out_dir: Path | str, *,
                seeds: int | list[int] | None = None, smoke: bool = False, progress: bool = True,
                weights_dir: Path | None = None, cache_dir: Path | None = DEFAULT_CACHE_DIR,
                distribution: distribute.Distribution | None = None, force: bool = False,
                random_weights: bool = False, label: str = "configs", **overrides: Any) -> list[RunResult]:
    """Train `configs` (with `overrides`), once per seed (`seed_list`; each seed its own results JSON),
    decoding the dataset once into `cache_dir`. Weights are checked first, so a run that cannot have its
    ImageNet weights stops before decoding anything; `random_weights` starts every config from random ones
    (`train --weights random`). `force` trains again even where a finished result could be reused;
    `distribution`: the devices and precision of every run (None: one device, float32)."""
    from tqdm import tqdm

    configs = [dataclasses.replace(c.with_overrides(**overrides), weights=None if random_weights else c.weights)
               for c in configs]
    configs = [c.with_overrides(seed=seed) for c in configs for seed in (seed_list(seeds) or [c.seed])]
    for note in starting_weights_notes(configs, weights_dir):
        tqdm.write(note, file=sys.stderr)
    run_data = load_run_data(data_dir, smoke=smoke, progress=progress, cache_dir=cache_dir)
    return [run_experiment(config, data_dir, out_dir, smoke=smoke, run_data=run_data, weights_dir=weights_dir,
                           distribution=distribution, force=force, verbose=0)
            for config in tqdm(configs, desc=label, unit="run", disable=not progress)]


def run_table(table: str, data_dir: Path | str, out_dir: Path | str, *, rows: list[int] | None = None,
              **options: Any) -> list[RunResult]:
    """Every row of a thesis table (or the chosen `rows`), as `run_configs` trains them."""
    every_row = table_configs(table)
    configs = [c for c in every_row if rows is None or c.row in rows]
    if not configs:
        raise ValueError(f"table {table} has no row {rows}; choose --row from {[c.row for c in every_row]}")
    return run_configs(configs, data_dir, out_dir, label=f"table {table}", **options)

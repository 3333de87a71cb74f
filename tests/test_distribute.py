"""Specifications of `distribute`: `train` on several devices or hosts with tf.distribute, and mixed precision.

Two logical devices made from this CPU stand in for two GPUs. TensorFlow accepts that split only before it
starts, and it has started in this pytest process, so those runs are subprocesses running this file
(`python tests/test_distribute.py <check> ...`), which print their findings as one JSON line.

The mirrored run is compared with one device on a small dropout-free stand-in for MobileNet: every thesis
head and the ImageNet top of V3 have a Dropout, whose masks each replica draws for itself, so a real
thesis config cannot take the same steps on two replicas as on one. BatchNormalization is frozen as in
every thesis config (`models.freeze_all_but_last`), so per-replica batch statistics never enter.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from run_result_factory import result_dict

from nsfw_mobilenet import cli
from nsfw_mobilenet.core import backbones, configs
from nsfw_mobilenet.io import standin
from nsfw_mobilenet.io.run_data import load_run_data
from nsfw_mobilenet.training import distribute, models, train

TOLERANCE = 1e-4  # float32 sums in another order (5e-6 seen here); another order of the batches: 3e-2
# Table 4.1 row 1 (Adam) with steps large enough that equal results mean equal training, each step on all
# 16 smoke training images: Keras 3 iterates a distributed dataset once before the first epoch (to build the
# model), so a reshuffled dataset gives a mirrored run the batches of one epoch later than one device. A step
# on the whole set does not depend on the order; 8 images per replica.
STAND_IN_CONFIG = configs.table_configs("4.1")[0].with_overrides(epochs=3, batch_size=16, learning_rate=0.05)


def _stand_in_classifier(backbone, num_classes, head="thesis", weights=None, weights_dir=None):
    """A MobileNet-shaped classifier small enough for seconds-long runs: conv, BatchNorm, pooled features,
    two Dense layers; no dropout. Its arguments are `models.build_classifier`'s."""
    import keras

    inputs = keras.Input(backbones.INPUT_SHAPE)
    x = keras.layers.Conv2D(8, 3, strides=8)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Dense(16, activation="relu")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x))


def _random_init(backbone, weights_dir=None):
    return None, "random init (test stand-in)"


def _run_this_file(*arguments: str, environment: dict[str, str] | None = None) -> dict:
    """Run a check of this file in a fresh Python and return the JSON it printed last."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(environment or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def smoke_data():
    return load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)


@pytest.fixture(scope="module")
def runs_on_two_devices():
    """`_runs_on_two_devices`, in a Python whose CPU is split in two."""
    return _run_this_file("two-devices")


def test_a_mirrored_run_on_two_devices_trains_as_one_device_does(runs_on_two_devices):
    runs = runs_on_two_devices
    assert runs["replicas"] == {"default": 1, "mirrored": 2}
    for path in ("cached features", "whole model"):
        one, two = runs[path]["default"], runs[path]["mirrored"]
        assert one["distribution"] == distribute.SINGLE_DEVICE
        assert two["distribution"] == {"strategy": "mirrored", "replicas": 2, "precision": "float32"}
        assert one["feature_cache"] == two["feature_cache"] == (path == "cached features")
        assert one["loss"][0] - one["loss"][-1] > 100 * TOLERANCE  # it learned: equal results are not trivial
        for key in ("loss", "val_loss", "weights", "test_probabilities"):
            np.testing.assert_allclose(two[key], one[key], atol=TOLERANCE, err_msg=f"{path}: {key}")


def test_cached_features_of_several_batches_train_on_two_mirrored_devices(runs_on_two_devices):
    run = runs_on_two_devices["cached features, 4 batches"]
    assert run["feature_cache"] and run["distribution"]["replicas"] == 2
    assert len(run["test_probabilities"]) == 16 and np.isfinite(run["loss"]).all()


def test_the_final_config_trains_augmented_on_two_mirrored_devices(runs_on_two_devices):
    final = runs_on_two_devices["final config"]
    assert final["distribution"]["replicas"] == 2 and not final["feature_cache"]
    assert len(final["loss"]) == 1 and np.isfinite(final["loss"]).all()


def test_the_train_command_runs_multi_worker_on_a_one_worker_cluster(tmp_path):
    cluster = {"cluster": {"worker": [f"localhost:{_free_port()}"]}, "task": {"type": "worker", "index": 0}}
    result = _run_this_file("train-command", str(standin.ensure_standin() / "binary"), str(tmp_path),
                            "--strategy", "multi-worker", environment={"TF_CONFIG": json.dumps(cluster)})
    assert result["distribution"] == {"strategy": "multi-worker", "replicas": 1, "precision": "float32"}
    assert (tmp_path / "smoke" / "table_4.1_row_01_seed_1.keras").exists()


def test_the_train_command_refuses_an_unknown_strategy_with_exit_2_naming_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "--table", "4.1", "--data", str(tmp_path), "--out", str(tmp_path), "--strategy", "ring"])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2
    assert last_line.startswith("nsfw-mobilenet train: error: argument --strategy: invalid choice: 'ring'")
    assert all(name in last_line for name in distribute.STRATEGIES)


def test_a_bad_tf_config_is_one_error_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")  # read by TensorFlow, which fails before it sets anything up
    code = cli.main(["train", "--table", "4.1", "--data", str(tmp_path), "--out", str(tmp_path),
                     "--strategy", "multi-worker"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("nsfw-mobilenet train: error: multi-worker strategy: ") and "TF_CONFIG" in error
    assert error.count("\n") == 1


def test_a_cluster_of_two_hosts_is_refused_up_front_naming_the_keras_bug(tmp_path, capsys, monkeypatch):
    cluster = {"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    code = cli.main(["train", "--table", "4.1", "--data", str(tmp_path), "--out", str(tmp_path),
                     "--strategy", "multi-worker"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert "2 hosts" in error and "keras-team/keras#20585" in error and "--strategy mirrored" in error


def test_an_unknown_strategy_name_is_a_value_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="choose one of default, mirrored, multi-worker"):
        distribute.distribution("parameter-server")


@pytest.mark.parametrize("task, chief", [((None, None, {}), True),
                                         (("worker", 0, {"worker": ["a:1", "b:1"]}), True),
                                         (("worker", 1, {"worker": ["a:1", "b:1"]}), False),
                                         (("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}), True),
                                         (("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}), False)])
def test_only_the_chief_writes_the_chief_task_else_worker_0(task, chief):
    assert distribute.is_chief_task(*task) is chief


def test_mixed_precision_computes_in_float16_but_the_softmax_output_stays_float32():
    import keras

    with distribute.precision_policy(distribute.MIXED_FLOAT16):
        model = models.build_classifier("mobilenet_v3_small", 2, weights=None)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for the next run
    assert model.get_layer("conv").compute_dtype == "float16" and model.get_layer("conv").kernel.dtype == "float32"
    assert model.output.dtype == "float32"
    assert model(np.zeros((1, *backbones.INPUT_SHAPE), np.float32)).dtype == "float32"


def test_a_mixed_precision_run_trains_and_records_its_policy(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "weights_for_run", _random_init)
    mixed = distribute.distribution(mixed_precision=True)
    result = train.train(STAND_IN_CONFIG.with_overrides(epochs=1), smoke_data, checkpoint_dir=tmp_path,
                         distribution=mixed, verbose=0).result
    assert result["distribution"] == {"strategy": "default", "replicas": 1, "precision": "mixed_float16"}
    assert np.isfinite(result["final"]["loss"])


class _UnsavedModel:
    def save(self, path):
        Path(path).touch()


def test_a_result_is_reused_only_by_a_run_on_the_same_devices_in_the_same_precision(smoke_data, tmp_path,
                                                                                  monkeypatch):
    trained = []

    def record(config, run_data, distribution=None, **options):
        trained.append(distribute.setup(distribution))
        result = result_dict() | {"config": config.to_dict(), "data": {}, "distribution": distribute.setup(distribution)}
        return train.TrainedRun(_UnsavedModel(), result, None)

    def run(distribution):
        return train.run_experiment(STAND_IN_CONFIG, "standin", tmp_path, smoke=True, run_data=smoke_data,
                                    distribution=distribution)

    monkeypatch.setattr(train, "train", record)
    mixed = distribute.distribution(mixed_precision=True)
    for distribution in (None, None, mixed, mixed, None):
        run(distribution)
    assert trained == [distribute.SINGLE_DEVICE, distribute.setup(mixed), distribute.SINGLE_DEVICE]


def test_a_result_from_before_distribution_records_counts_as_one_device_in_float32(smoke_data, tmp_path,
                                                                                  monkeypatch):
    trained = []

    def record_without_distribution(config, run_data, **options):
        trained.append(config.name)
        result = result_dict() | {"config": config.to_dict(), "data": {}}
        return train.TrainedRun(_UnsavedModel(), result, None)

    def run(**options):
        return train.run_experiment(STAND_IN_CONFIG, "standin", tmp_path, smoke=True, run_data=smoke_data, **options)

    monkeypatch.setattr(train, "train", record_without_distribution)
    first = run()
    assert first.distribution == {} and run(distribution=distribute.distribution()) == first
    run(distribution=distribute.distribution(mixed_precision=True))
    assert len(trained) == 2


# ------------------------------------------------------------ the subprocess side: `python test_distribute.py`

def _split_cpu_in_two() -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def _summary(run: "train.TrainedRun") -> dict:
    result = run.result
    return {"distribution": result["distribution"], "feature_cache": result["feature_cache"],
            "loss": result["history"]["loss"], "val_loss": result["history"]["val_loss"],
            "weights": np.concatenate([np.ravel(w) for w in run.model.get_weights()]).tolist(),
            "test_probabilities": np.ravel(run.test_probabilities).tolist()}


def _runs_on_two_devices(checkpoints: Path) -> dict:
    """The stand-in model trained on one device and mirrored on two, with cached features and without; and the
    final config (V3-Small, augmentation CDE: the whole model trains) one epoch mirrored, from random weights."""
    _split_cpu_in_two()
    build_mobilenet, models.build_classifier, models.weights_for_run = (models.build_classifier,
                                                                        _stand_in_classifier, _random_init)
    run_data = load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)
    distributions = {name: distribute.distribution(name) for name in ("default", "mirrored")}
    paths = {"cached features": STAND_IN_CONFIG.with_overrides(trainable_layers=2),  # the two Dense layers
             "whole model": STAND_IN_CONFIG.with_overrides(trainable_layers=6)}  # from the conv on: nothing cached
    runs = {path: {name: _summary(train.train(config, run_data, distribution=d, checkpoint_dir=checkpoints / name,
                                              verbose=0))
                   for name, d in distributions.items()}
            for path, config in paths.items()}
    several_batches = paths["cached features"].with_overrides(batch_size=4)  # features stored a batch at a time
    runs["cached features, 4 batches"] = _summary(train.train(several_batches, run_data, verbose=0,
                                                              distribution=distributions["mirrored"],
                                                              checkpoint_dir=checkpoints / "batches"))
    models.build_classifier = build_mobilenet
    final = train.train(configs.final_config().with_overrides(epochs=1), run_data,
                        distribution=distributions["mirrored"], checkpoint_dir=checkpoints / "final", verbose=0)
    final_summary = {key: final.result[key] for key in ("distribution", "feature_cache")}
    return {"replicas": {name: d.replicas for name, d in distributions.items()}, **runs,
            "final config": {**final_summary, "loss": final.result["history"]["loss"]}}


def _train_command(data_dir: str, out_dir: str, *options: str) -> dict:
    models.build_classifier, models.weights_for_run = _stand_in_classifier, _random_init
    code = cli.main(["train", "--table", "4.1", "--row", "1", "--data", data_dir, "--out", out_dir, "--smoke",
                     *options])
    assert code == 0
    return json.loads(train.result_path(STAND_IN_CONFIG, out_dir, smoke=True).read_text())


if __name__ == "__main__":
    import tempfile

    check, *arguments = sys.argv[1:]
    with tempfile.TemporaryDirectory() as checkpoints:
        checks = {"two-devices": lambda: _runs_on_two_devices(Path(checkpoints)),
                  "train-command": lambda: _train_command(*arguments)}
        print(json.dumps(checks[check]()))

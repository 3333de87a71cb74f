import dataclasses
import itertools
import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from random_weights import random_init
from run_result_factory import result_dict

from nsfw_mobilenet import cli
from nsfw_mobilenet.core.configs import LITERAL_LEARNING_RATE, ExperimentConfig, final_config, table_configs, thesis_row
from nsfw_mobilenet.core.exit_codes import EXIT_USAGE
from nsfw_mobilenet.core.paths import PROJECT_ROOT
from nsfw_mobilenet.core.settings import WEIGHTS_ENV
from nsfw_mobilenet.evaluation import run_results, thesis_comparison
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.io import image_files, standin
from nsfw_mobilenet.io.run_data import load_run_data
from nsfw_mobilenet.training import final_model, models, train

THESIS_TABLES = {"4.1": 11, "4.5": 6, "4.9": 6, "4.13": 5}


@pytest.fixture(scope="module")
def smoke_data():
    return load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)


def test_every_row_of_tables_4_1_4_5_4_9_4_13_has_a_config():
    for table, rows in THESIS_TABLES.items():
        configs = table_configs(table)
        assert [c.row for c in configs] == list(range(1, rows + 1))
        for config in configs:
            thesis = thesis_row(table, config.row)
            assert (config.trainable_layers, config.optimizer) == (thesis["trainable_layers"], thesis["optimizer"])


@pytest.mark.parametrize("table", sorted(THESIS_TABLES) + ["4.9-4epochs"])
def test_every_thesis_config_runs_in_smoke_mode(table, smoke_data, tmp_path):
    results = [train.run_experiment(random_init(c.with_overrides(epochs=1)), "standin", tmp_path, smoke=True,
                                    run_data=smoke_data, checkpoint_dir=tmp_path / "ckpt", verbose=0)
               for c in table_configs(table)]
    for result in results:
        assert len(result.history["val_accuracy"]) == 1
        assert sum(result.test.counts.values()) == result.test.images == 8
        assert "classifier" in result.trainable_layers_with_weights
        assert train.result_path(result.config, tmp_path, smoke=True) == result.path and result.path.exists()
    thesis_column = thesis_comparison.thesis_vs_run(results)["val_accuracy [thesis]"]
    expected = [thesis_row(table, c.row).get("val_accuracy") for c in table_configs(table)]
    assert [None if v != v else v for v in thesis_column] == expected  # NaN where the thesis printed nothing


def test_finished_run_is_reused_not_retrained(smoke_data, tmp_path):
    config = random_init(table_configs("4.1")[0].with_overrides(epochs=1))
    first = train.run_experiment(config, "standin", tmp_path, run_data=smoke_data, checkpoint_dir=tmp_path, verbose=0)
    again = train.run_experiment(config, "standin", tmp_path, run_data=None, verbose=0)
    assert (again.history, again.time_min, again.path) == (first.history, first.time_min, first.path)
    assert (tmp_path / first.model_file).exists()


def test_a_smoke_result_is_never_reused_for_a_different_run(smoke_data, tmp_path):
    config = random_init(table_configs("4.1")[0].with_overrides(epochs=1))
    smoke = train.run_experiment(config, "standin", tmp_path, smoke=True, run_data=smoke_data,
                                 checkpoint_dir=tmp_path / "a", verbose=0)
    longer = train.run_experiment(config.with_overrides(epochs=2), "standin", tmp_path, smoke=True,
                                  run_data=smoke_data, checkpoint_dir=tmp_path / "b", verbose=0)
    assert len(smoke.history["loss"]) == 1 and len(longer.history["loss"]) == 2
    other_data = train.run_experiment(config, "elsewhere", tmp_path, smoke=True, run_data=smoke_data,
                                      checkpoint_dir=tmp_path / "c", verbose=0)
    assert other_data.data["dir"] == "elsewhere"


def test_a_smoke_run_never_overwrites_a_full_result_in_the_same_folder(smoke_data, tmp_path):
    config = random_init(table_configs("4.1")[0].with_overrides(epochs=1))
    full = train.run_experiment(config, "standin", tmp_path, run_data=smoke_data, checkpoint_dir=tmp_path / "a",
                                verbose=0)
    train.run_experiment(config, "standin", tmp_path, smoke=True, run_data=smoke_data,
                         checkpoint_dir=tmp_path / "b", verbose=0)
    assert run_results.load_result(full.path) == full and full.path == train.result_path(config, tmp_path)
    assert train.result_path(config, tmp_path, smoke=True).parent.name == "smoke"


def test_cached_features_give_the_same_training_as_recomputing(smoke_data, tmp_path):
    config = random_init(table_configs("4.1")[5].with_overrides(epochs=2))  # N=4, SGD
    cached = train.train(config, smoke_data, checkpoint_dir=tmp_path / "a", feature_cache=True, verbose=0)
    full = train.train(config, smoke_data, checkpoint_dir=tmp_path / "b", feature_cache=False, verbose=0)
    assert cached.result["feature_cache"] and not full.result["feature_cache"]
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(cached.result["history"][key], full.result["history"][key], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cached.test_probabilities, full.test_probabilities, atol=1e-4)


def test_frozen_part_stops_before_any_dropout():

    model = models.build_classifier("mobilenet_v3_small", 2, weights=None)
    boundary = train.frozen_boundary(model, "mobilenet_v3_small", 5)  # N=5 would start at logits
    assert type(model.layers[boundary]).__name__ == "Dropout"
    assert train.split_model(model, boundary) is not None


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="rmsprop"):
        train.make_optimizer(table_configs("4.1")[0].with_overrides(optimizer="rmsprop"))


def test_balanced_class_weights_favour_the_rare_class():
    weights = train.class_weight_for(np.array([0, 0, 0, 1]), 2)
    assert weights[1] == pytest.approx(3 * weights[0])


def test_a_killed_run_never_resumes_into_a_different_run(smoke_data):
    config = table_configs("4.1")[0]
    same = train.run_fingerprint(config, "imagenet", smoke_data)
    assert same == train.run_fingerprint(config, "imagenet", smoke_data)
    assert same != train.run_fingerprint(config, None, smoke_data)
    assert same != train.run_fingerprint(config.with_overrides(epochs=3), "imagenet", smoke_data)


def test_a_notebook_finds_the_run_made_from_the_repository_root(smoke_data, tmp_path, monkeypatch):
    config = random_init(table_configs("4.1")[0].with_overrides(epochs=1))
    monkeypatch.chdir(PROJECT_ROOT)
    first = train.run_experiment(config, "data/some_dataset", tmp_path, smoke=True, run_data=smoke_data,
                                 checkpoint_dir=tmp_path / "ckpt", verbose=0)
    monkeypatch.chdir(PROJECT_ROOT / "notebooks")
    again = train.run_experiment(config, "../data/some_dataset", tmp_path, smoke=True, run_data=None, verbose=0)
    assert (again.history, again.time_min) == (first.history, first.time_min)
    assert again.data["dir"] == "data/some_dataset"


def test_final_model_in_smoke_mode_is_the_final_config_trained_one_epoch(tmp_path, offline_weights_dir):
    final = final_model.final_model(standin.ensure_standin() / "binary", tmp_path, smoke=True,
                                    weights_dir=offline_weights_dir)
    assert final.result.config.to_dict() == final_config().with_overrides(epochs=1).to_dict()
    assert (tmp_path / "smoke" / "table_final_row_01_seed_1.keras").exists()
    assert final.test_probabilities().shape == (len(final.data.test.labels), 2)
    assert "MobileNetV3-Small" in final.describe() and "SMOKE" in final.describe()
    card = final.model_card(["normal", "sexual"])
    assert card["config"] == "final/two_classes with {'epochs': 1}"
    assert card["training_data"].endswith("(SMOKE run)") and "class folders ['normal', 'sexual'], " in card["training_data"]
    assert "as ['safe', 'unsafe']" in final.model_card(["safe", "unsafe"])["training_data"]  # renamed on export


def test_final_model_with_the_thesis_head_has_its_own_folder_and_says_so_on_its_card(tmp_path, monkeypatch,
                                                                                     offline_weights_dir):
    monkeypatch.setattr(final_model, "RUNS_DIR", tmp_path)
    thesis_head = final_model.final_model(standin.ensure_standin() / "binary", smoke=True, head="thesis",
                                          weights_dir=offline_weights_dir)
    assert (tmp_path / "final_thesis_head" / "binary" / "smoke" / "table_final_row_01_seed_1.keras").exists()
    assert thesis_head.result.config.head == "thesis" and "thesis head" in thesis_head.describe()
    assert "'head': 'thesis'" in thesis_head.model_card(["normal", "sexual"])["config"]



# ---------------------------------------------------------------- bad inputs and faults

RNG = np.random.default_rng(0)
TINY_CONFIG = random_init(table_configs("4.1")[0].with_overrides(epochs=1))


def _image(path: Path) -> Path:
    """An 8x8 noise image in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return path


def _tiny_dataset(root: Path, classes=("normal", "sexual"), per_class: int = 3) -> Path:
    """train/ and test/ class folders of noise images (the class names are folder names only)."""
    for split, count in (("train", per_class), ("test", 1)):
        for name in classes:
            for i in range(count):
                _image(root / split / name / f"{i}.png")
    return root


class _UnsavedModel:
    def save(self, path):
        Path(path).write_bytes(b"")


@pytest.fixture
def trainings(monkeypatch):
    """`train.train` replaced by a stub recording the configs it trains: reuse is decided before any training."""
    calls = []

    def record(config, run_data, **options):
        calls.append(config)
        result = result_dict() | {"config": config.to_dict(), "data": {}}
        return train.TrainedRun(_UnsavedModel(), result, None)

    monkeypatch.setattr(train, "train", record)
    return calls


def test_an_empty_class_folder_is_refused_by_name_not_made_an_extra_class(tmp_path):
    root = _tiny_dataset(tmp_path)
    (root / "train" / "drawings").mkdir()
    (root / "train" / "drawings" / ".DS_Store").write_bytes(b"\0")  # hidden and non-image files do not count
    (root / "train" / "drawings" / "notes.txt").write_text("to do")
    with pytest.raises(image_files.EmptyClassFolder, match="train/drawings: class folder without images"):
        load_run_data(root, progress=False)


def test_train_command_prints_a_bad_dataset_as_one_error_line_and_exits_2(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "data")
    (root / "train" / "drawings").mkdir()
    code = cli.main(["train", "--table", "4.1", "--row", "1", "--data", str(root), "--out", str(tmp_path / "out"),
                     "--smoke"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("nsfw-mobilenet train: error: ") and "drawings" in error and error.count("\n") == 1


def test_training_reads_every_format_scan_reads_including_webp_and_tiff(tmp_path):
    root = _tiny_dataset(tmp_path)
    extra = [_image(root / "train" / "normal" / "photo.webp"), _image(root / "train" / "sexual" / "scan.tif")]
    run_data = load_run_data(root, progress=False)
    assert set(extra) <= set(run_data.training.paths + run_data.validation.paths)
    assert run_data.bad_files() == []


class _Killed(Exception):
    """What SIGKILL does to a run, minus the process: training stops without cleaning up."""


def test_a_killed_run_resumes_and_reports_every_epoch_and_the_time_of_both_segments(smoke_data, tmp_path,
                                                                                      monkeypatch):
    import keras

    class KilledAfterSecondEpoch(keras.callbacks.BackupAndRestore):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)  # the checkpoint of epoch 2 is saved...
            if epoch == 1:
                raise _Killed  # ...then the run dies

    clock = itertools.count(0, 60)  # every reading of the clock is one minute later
    monkeypatch.setattr(train, "time", SimpleNamespace(perf_counter=lambda: next(clock), process_time=lambda: 0.0))
    config = TINY_CONFIG.with_overrides(epochs=3)
    with monkeypatch.context() as killing:
        killing.setattr(keras.callbacks, "BackupAndRestore", KilledAfterSecondEpoch)
        with pytest.raises(_Killed):
            train.train(config, smoke_data, checkpoint_dir=tmp_path, verbose=0)
    resumed = train.train(config, smoke_data, checkpoint_dir=tmp_path, verbose=0).result
    assert all(len(values) == 3 for values in resumed["history"].values())
    assert resumed["segments"] == 2
    assert resumed["time_min"] == 4  # 2 min until the kill (start, 2 epochs) + 2 min after (start, 1 epoch, end)
    assert resumed["training_images_per_second"] == pytest.approx(16 * 3 / 240)


def test_an_uninterrupted_run_says_it_was_not_resumed(smoke_data, tmp_path):
    result = train.train(TINY_CONFIG, smoke_data, checkpoint_dir=tmp_path, verbose=0).result
    assert result["segments"] == 1
    assert not list(tmp_path.rglob(train.TRAINING_LOG))  # gone with Keras's backup at the end


@pytest.mark.parametrize("content", ["", '{"config": {"table": "4.', '{"config": {}}', "[]"],
                         ids=["empty", "truncated", "incomplete", "not-an-object"])
def test_a_bad_results_file_is_moved_aside_with_a_warning_and_the_row_trained_again(content, trainings, tmp_path,
                                                                                     caplog):
    root = _tiny_dataset(tmp_path / "data")
    result_file = train.result_path(TINY_CONFIG, tmp_path / "out")
    result_file.parent.mkdir(parents=True)
    result_file.write_text(content)
    with caplog.at_level(logging.WARNING, logger=train.__name__):
        result = train.run_experiment(TINY_CONFIG, root, tmp_path / "out")
    assert len(trainings) == 1 and run_results.load_result(result_file) == result
    assert Path(f"{result_file}.bad").read_text() == content
    assert str(result_file) in caplog.text and ".json.bad" in caplog.text


def test_a_run_killed_while_writing_its_result_leaves_the_previous_result_whole(trainings, tmp_path, monkeypatch):
    root = _tiny_dataset(tmp_path / "data")
    first = train.run_experiment(TINY_CONFIG, root, tmp_path / "out")

    def killed(*args):
        raise _Killed

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(_Killed):
        train.run_experiment(TINY_CONFIG, root, tmp_path / "out", force=True)
    assert run_results.load_result(train.result_path(TINY_CONFIG, tmp_path / "out")) == first


def test_adding_a_training_image_trains_again_instead_of_reusing_the_old_result(trainings, tmp_path):
    root = _tiny_dataset(tmp_path / "data")
    first = train.run_experiment(TINY_CONFIG, root, tmp_path / "out")
    assert train.run_experiment(TINY_CONFIG, root, tmp_path / "out") == first
    _image(root / "train" / "normal" / "new.png")
    again = train.run_experiment(TINY_CONFIG, root, tmp_path / "out")
    assert len(trainings) == 2 and again.data["fingerprint"] != first.data["fingerprint"]


def test_a_result_without_a_fingerprint_is_reused_as_committed_results_are(trainings, tmp_path):
    root = _tiny_dataset(tmp_path / "data")
    train.run_experiment(TINY_CONFIG, root, tmp_path / "out")
    result_file = train.result_path(TINY_CONFIG, tmp_path / "out")
    legacy = json.loads(result_file.read_text())
    del legacy["data"]["fingerprint"]
    result_file.write_text(json.dumps(legacy))
    _image(root / "train" / "normal" / "new.png")  # file times differ on every machine a result is reused on
    assert train.run_experiment(TINY_CONFIG, root, tmp_path / "out") == RunResult.from_dict(legacy, result_file)
    assert len(trainings) == 1


def test_the_data_fingerprint_follows_file_contents_config_and_weights_not_where_or_when_the_files_were_made(
        tmp_path, offline_weights_dir):
    root = _tiny_dataset(tmp_path / "data")
    fingerprint = train.data_fingerprint(TINY_CONFIG, root)
    assert train.data_fingerprint(TINY_CONFIG, shutil.copytree(root, tmp_path / "moved")) == fingerprint
    assert train.data_fingerprint(TINY_CONFIG.with_overrides(epochs=2), root) != fingerprint
    assert train.data_fingerprint(TINY_CONFIG.with_overrides(weights="other.weights.h5"), root) != fingerprint
    imagenet = TINY_CONFIG.with_overrides(weights="imagenet")
    assert train.data_fingerprint(imagenet, root, weights_dir=offline_weights_dir) != fingerprint
    test_image = root / "test" / "normal" / "0.png"
    os.utime(test_image, ns=(0, test_image.stat().st_mtime_ns + 10**9))  # re-provisioned: same bytes, new time
    assert train.data_fingerprint(TINY_CONFIG, root) == fingerprint
    test_image.write_bytes(test_image.read_bytes() + b"\0")  # rewritten
    assert train.data_fingerprint(TINY_CONFIG, root) != fingerprint
    assert train.data_fingerprint(TINY_CONFIG, tmp_path / "not_here") is None


def test_an_unknown_row_is_a_usage_error_naming_the_rows_there_are(tmp_path):
    with pytest.raises(ValueError, match=r"choose --row from \[1, 2"):
        train.run_table("4.1", tmp_path, tmp_path, rows=[99])


def test_sgd_runs_at_the_keras_default_learning_rate_unless_a_config_says_otherwise():
    sgd = table_configs("4.9")[1]
    assert (sgd.optimizer, sgd.learning_rate, sgd.effective_learning_rate) == ("sgd", None, 0.01)
    assert sgd.to_dict()["learning_rate"] == 0.01
    assert sgd.with_overrides(optimizer="adam").to_dict()["learning_rate"] == 0.001
    literal = sgd.with_overrides(learning_rate=LITERAL_LEARNING_RATE)
    assert literal.to_dict()["learning_rate"] == 0.001


def test_the_optimizer_gets_the_configs_learning_rate_and_momentum():
    config = table_configs("4.9")[1].with_overrides(learning_rate=0.05, momentum=0.9)
    optimizer = train.make_optimizer(config)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.05) and optimizer.momentum == 0.9
    with pytest.raises(ValueError, match="momentum"):
        train.make_optimizer(config.with_overrides(optimizer="adam"))


def test_train_command_runs_each_seed_with_its_own_results_carrying_lr_momentum_and_seed(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["train", "--table", "4.9", "--row", "4", "--learning-rate", "0.01", "--momentum", "0.5",
                     "--seeds", "2", "--epochs", "1", "--smoke", "--data", str(standin.ensure_standin() / "binary"),
                     "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    results = run_results.find_results(out / "smoke")
    assert [r.seed for r in results] == [1, 2]
    assert all((r.config.learning_rate, r.config.momentum) == (0.01, 0.5) for r in results)
    assert all(r.optimizer_steps == 1 and len(r.test.predicted) == 8 for r in results)
    assert "sgd 0.01" in capsys.readouterr().out


def test_the_logits_head_reads_the_imagenet_logits_not_the_softmax():

    model = models.build_classifier("mobilenet_v3_small", 2, "thesis_logits", weights=None)
    classifier = model.get_layer(models.CLASSIFIER_NAME)
    assert classifier.input.shape[-1] == 1000
    assert all(layer.name != "predictions" for layer in model.layers)
    with pytest.raises(ValueError, match="MobileNetV3"):
        models.build_classifier("mobilenet_v1", 2, "thesis_logits", weights=None)


@pytest.mark.slow
def test_the_same_augmented_run_twice_gives_the_identical_history_and_test_predictions(smoke_data, tmp_path):
    config = ExperimentConfig(table="determinism", row=1, backbone="mobilenet_v3_small",
                                          trainable_layers=10, augmentation="ABCDEF", epochs=2, batch_size=4,
                                          weights=None, learning_rate=0.1)
    runs = [train.train(config, smoke_data, checkpoint_dir=tmp_path / str(i), verbose=0).result for i in range(2)]
    assert runs[0]["history"] == runs[1]["history"]
    assert runs[0]["test"]["predicted"] == runs[1]["test"]["predicted"]
    assert len(set(runs[0]["history"]["loss"])) == 2  # it trained: the epochs differ


# ---------------------------------------------------------------- training edge cases


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_fewer_than_one_epoch_is_a_one_line_usage_error_before_any_work(tmp_path, capsys, epochs):
    code = cli.main(["train", "--table", "4.1", "--epochs", epochs, "--data", str(tmp_path / "none"),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"nsfw-mobilenet train: error: --epochs must be at least 1, got {epochs}\n"


def test_one_image_per_class_is_one_line_saying_how_many_the_validation_split_needs(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "data", per_class=1)
    with pytest.raises(ValueError, match="validation split empty; it needs at least 5 images"):
        load_run_data(root, progress=False, cache_dir=None)
    code = cli.main(["train", "--table", "4.1", "--row", "1", "--data", str(root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "needs at least 5 images" in err


def test_a_class_missing_from_test_is_a_warning_in_the_results_and_in_the_per_class_metrics(tmp_path, caplog):
    root = _tiny_dataset(tmp_path / "data", per_class=5)
    shutil.rmtree(root / "test" / "sexual")
    with caplog.at_level(logging.WARNING):
        run_data = load_run_data(root, progress=False, cache_dir=None)
    assert "test/ has no usable image of class sexual" in caplog.text
    config = TINY_CONFIG
    run = train.train(config, run_data, checkpoint_dir=tmp_path / "ckpt", verbose=0)
    assert run.result["warnings"] == ["test/ has no usable image of class sexual: the test figures leave it out (see "
                                      "test.per_class)"]
    assert run.result["test"]["per_class"]["sexual"]["images"] == 0
    assert run.result["test"]["per_class"]["normal"]["images"] == 1


def test_a_training_image_whose_name_is_not_utf8_is_a_bad_file_and_the_run_goes_on(tmp_path):
    root = _tiny_dataset(tmp_path / "data", per_class=5)
    odd = _image(root / "train" / "normal" / os.fsdecode(b"caf\xe9.png"))
    run_data = load_run_data(root, progress=False, cache_dir=tmp_path / "cache", image_size=(32, 32))
    assert any(bad.startswith(image_files.printable(odd)) and "not valid UTF-8" in bad for bad in run_data.bad_files())
    assert run_data.counts()["training"] + run_data.counts()["validation"] == 10


# ---------------------------------------------------------------- weights, reuse and the train command's sources


def test_train_without_imagenet_weights_stops_before_decoding_in_one_line_naming_the_variable(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(models, "imagenet_weights_available", lambda name, weights_dir=None: False)
    monkeypatch.setattr(train, "load_run_data", lambda *args, **kwargs: pytest.fail("data decoded"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    code = cli.main(["train", "--table", "final", "--data", str(_tiny_dataset(tmp_path / "data")),
                     "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == EXIT_USAGE and error.count("\n") == 1
    assert error.startswith("nsfw-mobilenet train: error: MobileNetV3-Small: no ImageNet weights: "
                            f"{WEIGHTS_ENV} is not set")
    assert "--weights random" in error


def test_v3_large_without_offline_weights_starts_from_random_ones_and_says_so_before_decoding(monkeypatch):
    monkeypatch.setattr(models, "imagenet_weights_available", lambda name, weights_dir=None: False)
    large = dataclasses.replace(TINY_CONFIG, backbone="mobilenet_v3_large", weights="imagenet")
    [note] = train.starting_weights_notes([large, TINY_CONFIG])
    assert note.startswith("WARNING MobileNetV3-Large") and "NOT transfer learning" in note


def test_weights_random_is_asked_for_and_recorded_in_the_config(trainings, tmp_path):
    assert cli.main(["train", "--table", "4.1", "--row", "1", "--weights", "random", "--data",
                     str(_tiny_dataset(tmp_path / "data")), "--out", str(tmp_path / "out")]) == 0
    assert [c.weights for c in trainings] == [None]
    assert run_results.find_results(tmp_path / "out")[0].config.weights is None


def test_a_result_is_reused_only_from_the_same_starting_weights(trainings, tmp_path, monkeypatch):
    root, imagenet = _tiny_dataset(tmp_path / "data"), TINY_CONFIG.with_overrides(weights="imagenet")
    monkeypatch.setattr(models, "weights_for_run", lambda name, weights_dir=None: (None, "offline: random"))
    train.run_experiment(imagenet, root, tmp_path / "out")
    train.run_experiment(imagenet, root, tmp_path / "out")
    assert len(trainings) == 1  # the same random start: reused
    monkeypatch.setattr(models, "weights_for_run", lambda name, weights_dir=None: ("imagenet", "downloaded"))
    train.run_experiment(imagenet, root, tmp_path / "out")
    assert len(trainings) == 2  # ImageNet weights now load: the random-start result is not reused


def test_force_trains_again_where_a_result_could_be_reused(trainings, tmp_path):
    command = ["train", "--table", "4.1", "--row", "1", "--weights", "random", "--data",
               str(_tiny_dataset(tmp_path / "data")), "--out", str(tmp_path / "out")]
    assert cli.main(command) == cli.main(command) == 0 and len(trainings) == 1
    assert cli.main([*command, "--force"]) == 0 and len(trainings) == 2


def test_a_config_file_trains_directly_and_prints_its_model_file(trainings, tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("table: mine\nrow: 1\nbackbone: mobilenet_v3_small\ntrainable_layers: 10\noptimizer: adam\n"
                      "head: standard\nweights: null\n")
    assert cli.main(["train", "--config", str(config), "--data", str(_tiny_dataset(tmp_path / "data")),
                     "--out", str(tmp_path / "out")]) == 0
    assert [(c.table, c.optimizer, c.head) for c in trainings] == [("mine", "adam", "standard")]
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("table_mine_row_01 seed 1: validation accuracy ")
    assert line.endswith(str(tmp_path / "out" / "table_mine_row_01_seed_1.keras"))


def test_a_config_file_with_an_unknown_key_is_refused_naming_the_file(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("table: mine\nrow: 1\nbackbone: mobilenet_v3_small\ntrainable_layers: 10\nepoch: 3\n")
    assert cli.main(["train", "--config", str(config), "--data", str(tmp_path), "--out", str(tmp_path)]) == EXIT_USAGE
    assert f"{config}: unknown keys ['epoch']" in capsys.readouterr().err


def test_train_help_lists_the_tables_and_the_final_model():
    help_text = " ".join(cli.build_parser("train")._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "4.1, 4.3, 4.5, 4.7, 4.9" in help_text and "4.17, final" in help_text and "--weights" in help_text

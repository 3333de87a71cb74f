import json

import numpy as np
import pytest

from nsfw_mobilenet import experiments, standin, train

THESIS_TABLES = {"4.1": 11, "4.5": 6, "4.9": 6, "4.13": 5}


@pytest.fixture(scope="module")
def smoke_data():
    return train.load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)


def test_every_row_of_tables_4_1_4_5_4_9_4_13_has_a_config():
    for table, rows in THESIS_TABLES.items():
        configs = experiments.table_configs(table)
        assert [c.row for c in configs] == list(range(1, rows + 1))
        for config in configs:
            thesis = experiments.thesis_row(table, config.row)
            assert (config.trainable_layers, config.optimizer) == (thesis["trainable_layers"], thesis["optimizer"])


@pytest.mark.parametrize("table", sorted(THESIS_TABLES) + ["4.9-4epochs"])
def test_every_thesis_config_runs_in_smoke_mode(table, smoke_data, tmp_path):
    results = [train.run_experiment(c.with_overrides(epochs=1), "standin", tmp_path, smoke=True,
                                    run_data=smoke_data, checkpoint_dir=tmp_path / "ckpt", verbose=0)
               for c in experiments.table_configs(table)]
    for result in results:
        assert len(result["history"]["val_accuracy"]) == 1
        assert result["test"]["TN"] + result["test"]["FP"] + result["test"]["TP"] + result["test"]["FN"] == 8
        assert "classifier" in result["trainable_layers_with_weights"]
        assert train.result_path(experiments.ExperimentConfig(**result["config"]), tmp_path, smoke=True).exists()
    thesis_column = experiments.thesis_vs_run(results)["val_accuracy [thesis]"]
    expected = [experiments.thesis_row(table, c.row).get("val_accuracy") for c in experiments.table_configs(table)]
    assert [None if v != v else v for v in thesis_column] == expected  # NaN where the thesis printed nothing


def test_finished_run_is_reused_not_retrained(smoke_data, tmp_path):
    config = experiments.table_configs("4.1")[0].with_overrides(epochs=1)
    first = train.run_experiment(config, "standin", tmp_path, run_data=smoke_data, checkpoint_dir=tmp_path, verbose=0)
    again = train.run_experiment(config, "standin", tmp_path, run_data=None, verbose=0)
    assert again == json.loads(json.dumps(first))
    assert (tmp_path / first["model_file"]).exists()


def test_a_smoke_result_is_never_reused_for_a_different_run(smoke_data, tmp_path):
    config = experiments.table_configs("4.1")[0].with_overrides(epochs=1)
    smoke = train.run_experiment(config, "standin", tmp_path, smoke=True, run_data=smoke_data,
                                 checkpoint_dir=tmp_path / "a", verbose=0)
    longer = train.run_experiment(config.with_overrides(epochs=2), "standin", tmp_path, smoke=True,
                                  run_data=smoke_data, checkpoint_dir=tmp_path / "b", verbose=0)
    assert len(smoke["history"]["loss"]) == 1 and len(longer["history"]["loss"]) == 2
    other_data = train.run_experiment(config, "elsewhere", tmp_path, smoke=True, run_data=smoke_data,
                                      checkpoint_dir=tmp_path / "c", verbose=0)
    assert other_data["data"]["dir"] == "elsewhere"


def test_a_smoke_run_never_overwrites_a_full_result_in_the_same_folder(smoke_data, tmp_path):
    config = experiments.table_configs("4.1")[0].with_overrides(epochs=1)
    full = train.run_experiment(config, "standin", tmp_path, run_data=smoke_data, checkpoint_dir=tmp_path / "a",
                                verbose=0)
    train.run_experiment(config, "standin", tmp_path, smoke=True, run_data=smoke_data,
                         checkpoint_dir=tmp_path / "b", verbose=0)
    assert json.loads(train.result_path(config, tmp_path).read_text()) == json.loads(json.dumps(full))
    assert train.result_path(config, tmp_path, smoke=True).parent.name == "smoke"


def test_cached_features_give_the_same_training_as_recomputing(smoke_data, tmp_path):
    config = experiments.table_configs("4.1")[5].with_overrides(epochs=2)  # N=4, SGD
    cached = train.train(config, smoke_data, checkpoint_dir=tmp_path / "a", feature_cache=True, verbose=0)
    full = train.train(config, smoke_data, checkpoint_dir=tmp_path / "b", feature_cache=False, verbose=0)
    assert cached.result["feature_cache"] and not full.result["feature_cache"]
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(cached.result["history"][key], full.result["history"][key], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cached.test_probabilities, full.test_probabilities, atol=1e-4)


def test_frozen_part_stops_before_any_dropout():
    from nsfw_mobilenet import models

    model = models.build_classifier("mobilenet_v3_small", 2, weights=None)
    boundary = train.frozen_boundary(model, "mobilenet_v3_small", 5)  # N=5 would start at logits
    assert type(model.layers[boundary]).__name__ == "Dropout"
    assert train.split_model(model, boundary) is not None


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="rmsprop"):
        train.make_optimizer("rmsprop", 1e-3)


def test_balanced_class_weights_favour_the_rare_class():
    weights = train.class_weight_for(np.array([0, 0, 0, 1]), 2)
    assert weights[1] == pytest.approx(3 * weights[0])


def test_a_killed_run_never_resumes_into_a_different_run(smoke_data):
    config = experiments.table_configs("4.1")[0]
    same = train.run_fingerprint(config, "imagenet", smoke_data)
    assert same == train.run_fingerprint(config, "imagenet", smoke_data)
    assert same != train.run_fingerprint(config, None, smoke_data)
    assert same != train.run_fingerprint(config.with_overrides(epochs=3), "imagenet", smoke_data)


def test_a_notebook_finds_the_run_made_from_the_repository_root(smoke_data, tmp_path, monkeypatch):
    config = experiments.table_configs("4.1")[0].with_overrides(epochs=1)
    monkeypatch.chdir(experiments.PROJECT_ROOT)
    first = train.run_experiment(config, "data/some_dataset", tmp_path, smoke=True, run_data=smoke_data,
                                 checkpoint_dir=tmp_path / "ckpt", verbose=0)
    monkeypatch.chdir(experiments.PROJECT_ROOT / "notebooks")
    again = train.run_experiment(config, "../data/some_dataset", tmp_path, smoke=True, run_data=None, verbose=0)
    assert again == json.loads(json.dumps(first)) and again["data"]["dir"] == "data/some_dataset"


def test_final_model_in_smoke_mode_is_the_final_config_trained_one_epoch(tmp_path):
    final = train.final_model(standin.ensure_standin() / "binary", tmp_path, smoke=True)
    assert final.result["config"] == experiments.final_config().with_overrides(epochs=1).to_dict()
    assert (tmp_path / "smoke" / "table_final_row_01.keras").exists()
    assert final.test_probabilities().shape == (len(final.data.test.labels), 2)
    assert "MobileNetV3-Small" in final.describe() and "SMOKE" in final.describe()
    card = final.model_card(["normal", "sexual"])
    assert card["config"] == "experiments/final/two_classes.yaml with {'epochs': 1}"
    assert card["training_data"].endswith("(SMOKE run)") and "as ['normal', 'sexual']" in card["training_data"]


def test_final_model_with_the_thesis_head_has_its_own_folder_and_says_so_on_its_card(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "PROJECT_ROOT", tmp_path)
    thesis_head = train.final_model(standin.ensure_standin() / "binary", smoke=True, head="thesis")
    assert (tmp_path / "runs" / "final_thesis_head" / "binary" / "smoke" / "table_final_row_01.keras").exists()
    assert thesis_head.result["config"]["head"] == "thesis" and "thesis head" in thesis_head.describe()
    assert "'head': 'thesis'" in thesis_head.model_card(["normal", "sexual"])["config"]


"""A run's results JSON read as a typed `RunResult`, and committed results found by table, row, dataset and seed."""

import json

import pytest
from run_result_factory import result_dict, run_result, write_result

from nsfw_mobilenet.core.paths import PROJECT_ROOT
from nsfw_mobilenet.evaluation import run_results


def test_a_result_is_read_with_its_config_final_epoch_test_and_steps(tmp_path):
    path = write_result(tmp_path, result_dict("4.1", 6, seed=2, correct=[True, False], optimizer="sgd",
                                              backbone="mobilenet_v1", trainable_layers=4, val=0.7))
    result = run_results.load_result(path)
    assert (result.config.table, result.config.row, result.seed, result.config.trainable_layers) == ("4.1", 6, 2, 4)
    assert (result.final.val_accuracy, result.test.accuracy, result.test.images, result.steps) == (0.7, 0.5, 2, 80)
    assert result.weights_name == "ImageNet" and result.path == path


def test_older_results_without_steps_or_source_get_them_computed():
    older = result_dict(steps=None)
    older["weights"] = {"used": False, "note": "random"}
    result = run_results.RunResult.from_dict(older)
    assert result.steps == 8 and result.weights_name == "random init"  # ceil(507 / 64) steps, one epoch


def test_a_file_that_is_not_a_result_is_named_in_the_error(tmp_path):
    (tmp_path / "table_4.1_row_01_seed_1.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(run_results.BadResultFile, match="table_4.1_row_01_seed_1.json.*no weights"):
        run_results.find_results(tmp_path)
    (tmp_path / "table_4.1_row_01_seed_1.json").write_text("{")
    with pytest.raises(run_results.BadResultFile, match="table_4.1_row_01_seed_1.json: not a run's result"):
        run_results.find_results(tmp_path)


def test_per_image_correctness_pairs_runs_only_on_the_same_test_files():
    a, b = run_result(seed=1, correct=[True, False]), run_result(seed=2, correct=[True, True])
    assert run_results.correct_by_image([a, b]).tolist() == [[True, False], [True, True]]
    with pytest.raises(ValueError, match="different test images"):
        run_results.correct_by_image([a, run_result(seed=3, correct=[True, True], files="other")])
    older = result_dict(correct=[True, False])
    del older["test"]["predicted"]
    with pytest.raises(ValueError, match="per-image predictions"):
        run_results.correct_by_image([run_results.RunResult.from_dict(older)])


def test_seeds_of_one_configuration_are_grouped_apart_from_other_configurations():
    runs = [run_result(row=4, seed=2), run_result(row=4, seed=1), run_result(row=2, seed=1),
            run_result(row=4, seed=3, learning_rate=0.001)]
    groups = run_results.seed_groups(runs)
    assert [[r.config.row for r in g] for g in groups] == [[2], [4, 4], [4]]
    assert run_results.seed_count(groups[1]) == "2 seeds" and run_results.seed_count(groups[0]) == "1 seed"


def test_committed_results_are_found_by_table_dataset_variant_order_row_and_seed(tmp_path):
    for seed in (1, 2, 3):
        write_result(tmp_path / "table_4.9" / "proxy", result_dict("4.9", 4, seed=seed))
    write_result(tmp_path / "table_4.9" / "proxy_lr0.001", result_dict("4.9", 4, learning_rate=0.001))
    write_result(tmp_path / "augmentation" / "proxy" / "corrected", result_dict("4.11", 1, augmentation="ABCDEF"))
    write_result(tmp_path / "final" / "proxy_sgd", result_dict("final", 1))
    found = run_results.committed_results("4.9", "proxy", row=4, seeds=[1, 3], root=tmp_path)
    assert [r.seed for r in found] == [1, 3]
    assert run_results.committed_results("4.9", "proxy", variant="_lr0.001", root=tmp_path)[0].config.learning_rate == 0.001
    assert run_results.committed_results("4.11", "proxy", order="corrected", root=tmp_path)[0].config.augmentation == "ABCDEF"
    assert len(run_results.committed_results("final", "proxy", variant="_sgd", root=tmp_path)) == 1
    assert run_results.committed_results("4.1", "proxy", root=tmp_path) == []
    assert set(run_results.result_folders(tmp_path)) == {("4.9", "proxy"), ("4.9", "proxy_lr0.001")}


def test_every_committed_result_is_a_run_result():
    folders = run_results.result_folders(PROJECT_ROOT / "results")
    results = [r for folder in folders.values() for r in run_results.find_results(folder)]
    assert len(results) > 100 and all(r.test is not None for r in results)

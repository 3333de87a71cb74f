import json

import pytest

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.core.paths import PROJECT_ROOT, repo_relative
from nsfw_mobilenet.evaluation import run_results, thesis_comparison


def test_unknown_config_key_names_the_file(tmp_path):
    path = tmp_path / "row_01.yaml"
    path.write_text("table: '4.1'\nrow: 1\nbackbone: mobilenet_v1\ntrainable_layers: 3\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="row_01.yaml.*learning_rat"):
        configs.load_config(path)


def test_defaults_are_the_thesis_training_set_up():
    config = configs.table_configs("4.1")[0]
    assert (config.optimizer, config.effective_learning_rate) == ("adam", 1e-3)  # Keras's Adam default
    assert (config.batch_size, config.epochs, config.head, config.momentum) == (64, 10, "thesis", 0.0)


def test_thesis_row_merges_its_confusion_matrix():
    row = configs.thesis_row("4.9-4epochs", 4)
    assert {"val_accuracy", "TN", "FN", "TP", "FP"} <= set(row)


def test_configs_and_thesis_numbers_are_package_data_that_the_repository_links_to():
    package = configs.PACKAGE_DIR
    assert configs.EXPERIMENTS_DIR.parent == package and configs.REFERENCE_FILE.is_relative_to(package)
    assert (PROJECT_ROOT / "experiments").resolve() == configs.EXPERIMENTS_DIR
    assert (PROJECT_ROOT / "reference").resolve() == configs.REFERENCE_FILE.parent
    assert (configs.EXPERIMENTS_DIR / f"{configs.FINAL_CONFIG_NAME}.yaml").is_file()  # the name model cards show


def test_project_root_is_the_checkout_when_the_package_runs_from_one():
    assert PROJECT_ROOT == configs.PACKAGE_DIR.parents[1]
    assert repo_relative(PROJECT_ROOT / "runs" / "x.json") == "runs/x.json"


def test_a_table_without_configs_names_the_tables_that_have_some():
    with pytest.raises(FileNotFoundError, match=r"no configs for table 9\.9 .*'4\.1'"):
        configs.table_configs("9.9")


def test_the_terminal_table_of_a_whole_thesis_table_fits_80_columns():
    committed = PROJECT_ROOT / "results" / "table_4.1" / "flower_photos_roses_vs_tulips_lr0.001"
    results = [run_results.load_result(path) for path in sorted(committed.glob("*.json"))]
    assert len({r["config"]["row"] for r in results}) == 11
    text = thesis_comparison.compact_thesis_vs_run(results).to_string(index=False)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "|" in text.splitlines()[1]  # thesis | run side by side


def _seeded_result(seed, correct, files="same", val=0.8):
    images = len(correct)
    return {"config": {**configs.table_configs("4.9")[3].to_dict(), "seed": seed}, "seed": seed, "optimizer_steps": 80,
            "data": {"counts": {"training": 507, "validation": 126, "test": images}},
            "history": {"loss": [0.5], "val_accuracy": [val]}, "final": {"loss": 0.5, "val_accuracy": val},
            "test": {"accuracy": sum(correct) / images, "labels": [1] * images, "predicted": [int(c) for c in correct],
                     "files": files, "TN": 0, "FN": images - sum(correct), "TP": sum(correct), "FP": 0}}


def test_seeds_of_one_config_make_one_row_with_mean_and_interval():
    results = [_seeded_result(seed, [True] * k + [False] * (20 - k), val=v)
               for seed, k, v in ((1, 16, 0.80), (2, 17, 0.82), (3, 18, 0.84))]
    table = thesis_comparison.seeds_vs_thesis(results)
    assert len(table) == 1 and table.loc[0, "seeds"] == 3
    assert table.loc[0, "test acc [run]"].startswith("0.850 ± ")
    assert table.loc[0, "steps [thesis]"] == 3910 and table.loc[0, "steps [run]"] == 80


def test_a_single_run_shows_its_wilson_interval():
    table = thesis_comparison.seeds_vs_thesis([_seeded_result(1, [True] * 8 + [False] * 2)])
    assert table.loc[0, "test acc [run]"] == "0.800 [0.49, 0.94]"


def test_per_image_correctness_pairs_runs_only_on_the_same_test_files():
    a, b = _seeded_result(1, [True, False]), _seeded_result(2, [True, True])
    assert run_results.correct_by_image([a, b]).tolist() == [[True, False], [True, True]]
    with pytest.raises(ValueError, match="different test images"):
        run_results.correct_by_image([a, _seeded_result(3, [True, True], files="other")])
    older = {**a, "test": {k: v for k, v in a["test"].items() if k != "predicted"}}
    with pytest.raises(ValueError, match="per-image predictions"):
        run_results.correct_by_image([older])


def test_a_rows_seeds_are_loaded_together_and_compared_in_pairs(tmp_path):
    for seed, correct in ((1, [True] * 18 + [False] * 2), (2, [True] * 19 + [False])):
        (tmp_path / f"table_4.9_row_04_seed_{seed}.json").write_text(json.dumps(_seeded_result(seed, correct)))
    runs = run_results.load_results(tmp_path, "4.9", 4)
    assert [r["seed"] for r in runs] == [1, 2] and run_results.load_results(tmp_path, "4.9", 5) == []
    table = thesis_comparison.paired_comparisons({"A": runs, "B": runs[:1]}, [("A", "B"), ("A", "missing")])
    assert list(table["comparison"]) == ["A − B"] and "bootstrap" in table.loc[0, "result"]

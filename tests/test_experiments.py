import pytest

from nsfw_mobilenet import experiments


def test_unknown_config_key_names_the_file(tmp_path):
    path = tmp_path / "row_01.yaml"
    path.write_text("table: '4.1'\nrow: 1\nbackbone: mobilenet_v1\ntrainable_layers: 3\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="row_01.yaml.*learning_rat"):
        experiments.load_config(path)


def test_defaults_are_the_thesis_training_set_up():
    config = experiments.table_configs("4.1")[0]
    assert (config.optimizer, config.effective_learning_rate) == ("adam", 1e-3)  # Keras's Adam default
    assert (config.batch_size, config.epochs, config.head, config.momentum) == (64, 10, "thesis", 0.0)


def test_thesis_row_merges_its_confusion_matrix():
    row = experiments.thesis_row("4.9-4epochs", 4)
    assert {"val_accuracy", "TN", "FN", "TP", "FP"} <= set(row)


def test_configs_and_thesis_numbers_are_package_data_that_the_repository_links_to():
    package = experiments.PACKAGE_DIR
    assert experiments.EXPERIMENTS_DIR.parent == package and experiments.REFERENCE_FILE.is_relative_to(package)
    assert (experiments.PROJECT_ROOT / "experiments").resolve() == experiments.EXPERIMENTS_DIR
    assert (experiments.PROJECT_ROOT / "reference").resolve() == experiments.REFERENCE_FILE.parent
    assert (experiments.PROJECT_ROOT / experiments.FINAL_CONFIG_FILE).is_file()  # the name model cards show


def test_project_root_is_the_checkout_when_the_package_runs_from_one():
    assert experiments.PROJECT_ROOT == experiments.PACKAGE_DIR.parents[1]
    assert experiments.repo_relative(experiments.PROJECT_ROOT / "runs" / "x.json") == "runs/x.json"


def test_a_table_without_configs_names_the_tables_that_have_some():
    with pytest.raises(FileNotFoundError, match=r"no configs for table 9\.9 .*'4\.1'"):
        experiments.table_configs("9.9")


def test_the_terminal_table_of_a_whole_thesis_table_fits_80_columns():
    committed = experiments.PROJECT_ROOT / "results" / "table_4.1" / "flower_photos_roses_vs_tulips_lr0.001"
    results = [experiments.load_result(path) for path in sorted(committed.glob("*.json"))]
    assert len(results) == 11
    text = experiments.compact_thesis_vs_run(results).to_string(index=False)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "|" in text.splitlines()[1]  # thesis | run side by side

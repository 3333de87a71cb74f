"""Experiment configs (one YAML per thesis table row, package data) and the thesis's own numbers."""

import pytest
from run_result_factory import run_result

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.core.paths import PROJECT_ROOT


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


def test_a_table_without_configs_names_the_tables_that_have_some():
    with pytest.raises(FileNotFoundError, match=r"no configs for table 9\.9 .*: 4\.1, 4\.3, "):
        configs.table_configs("9.9")


def test_thesis_steps_count_the_thesis_images_in_the_rows_batches_times_its_config_epochs():
    assert configs.thesis_steps(run_result("4.9", 4).config) == 391 * 10
    assert configs.thesis_steps(run_result("4.9-4epochs", 4).config) == 391 * 4

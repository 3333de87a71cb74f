import pytest

from nsfw_mobilenet import experiments


def test_unknown_config_key_names_the_file(tmp_path):
    path = tmp_path / "row_01.yaml"
    path.write_text("table: '4.1'\nrow: 1\nbackbone: mobilenet_v1\ntrainable_layers: 3\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="row_01.yaml.*learning_rat"):
        experiments.load_config(path)


def test_defaults_are_the_thesis_training_set_up():
    config = experiments.table_configs("4.1")[0]
    assert (config.learning_rate, config.batch_size, config.epochs, config.head) == (1e-3, 64, 10, "thesis")


def test_thesis_row_merges_its_confusion_matrix():
    row = experiments.thesis_row("4.9-4epochs", 4)
    assert {"val_accuracy", "TN", "FN", "TP", "FP"} <= set(row)

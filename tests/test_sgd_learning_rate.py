"""§4.2.1's readings side by side: which folders are which reading, and what the tables say about them."""

import pytest
from run_result_factory import result_dict, write_result

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.studies import sgd_learning_rate


def _run(row, seed, learning_rate, loss, val, correct, optimizer="sgd", head="thesis"):
    return result_dict("4.1", row, seed=seed, learning_rate=learning_rate, loss_curve=[0.7, loss], val_curve=[0.5, val],
                       correct=correct, optimizer=optimizer, head=head, backbone="mobilenet_v1", trainable_layers=4)


def _write(folder, runs):
    for run in runs:
        write_result(folder, run)


@pytest.fixture
def readings(tmp_path):
    good, poor = [True] * 90 + [False] * 10, [True] * 60 + [False] * 40
    _write(tmp_path / "table_4.1" / "proxy", [_run(6, s, 0.01, 0.27, 0.88, good) for s in (1, 2, 3)]
           + [_run(4, 1, 0.001, 0.2, 0.9, good, optimizer="adam")])
    _write(tmp_path / "table_4.1" / "proxy_lr0.001", [_run(6, s, 0.001, 0.68, 0.73, poor) for s in (1, 2)])
    return sgd_learning_rate.load_readings(tmp_path, "4.1", "proxy")


def test_each_reading_is_read_from_its_folder_sgd_rows_only(readings):
    assert set(readings) == {sgd_learning_rate.LITERAL, sgd_learning_rate.DEFAULT}
    assert all(run.config.optimizer == "sgd" for runs in readings.values() for run in runs)


def test_the_readings_table_puts_the_thesis_beside_each_readings_mean(readings):
    table = sgd_learning_rate.readings_table(readings)
    row = table.loc[6]
    assert row["thesis train loss"] == configs.thesis_row("4.1", 6)["train_loss"]
    assert row[f"{sgd_learning_rate.DEFAULT}: seeds"] == 3 and row[f"{sgd_learning_rate.LITERAL}: seeds"] == 2
    assert row[f"{sgd_learning_rate.DEFAULT}: val acc"] == "0.880 ± 0.000"  # three equal seeds
    assert row["steps (thesis | here)"] == "3,910 | 80"


def test_the_default_reading_is_tested_against_the_literal_one_on_the_same_images(readings):
    comparisons = sgd_learning_rate.reading_comparisons(readings)
    assert comparisons.loc[6, "test acc difference"] == pytest.approx(0.3)
    assert comparisons.loc[6, "verdict"] == "a difference"


def test_a_missing_reading_gives_an_empty_comparison(readings):
    assert sgd_learning_rate.reading_comparisons({sgd_learning_rate.DEFAULT: readings[sgd_learning_rate.DEFAULT]}).empty


def test_curves_are_averaged_over_seeds_and_labelled_with_their_count(readings):
    curves = sgd_learning_rate.curves_of_row(readings, 6)
    assert list(curves) == [f"{sgd_learning_rate.LITERAL} (2 seeds)", f"{sgd_learning_rate.DEFAULT} (3 seeds)"]
    assert curves[f"{sgd_learning_rate.DEFAULT} (3 seeds)"]["loss"] == pytest.approx([0.7, 0.27])

"""The plots the issue-19 tables lean on: what each figure draws."""

import matplotlib

matplotlib.use("Agg")

from nsfw_mobilenet.evaluation import plots  # noqa: E402


def test_loss_readings_draw_training_and_validation_per_reading_and_the_thesis_line():
    curves = {"lr 0.001": {"loss": [0.7, 0.6], "val_loss": [0.7, 0.65]}, "lr 0.01": {"loss": [0.6, 0.3], "val_loss": [0.6, 0.35]}}
    axis = plots.plot_loss_readings(curves, 0.19, "row 6").axes[0]
    assert len(axis.lines) == 5  # two per reading, one for the thesis
    assert [line.get_label() for line in axis.lines[:2]] == ["lr 0.001: training", "lr 0.001: validation"]


def test_seed_spread_draws_one_dot_per_seed_and_the_thesis_only_where_it_printed_one():
    figure = plots.plot_seed_spread({"A": [0.8, 0.82, 0.85], "B": [0.6]}, {"A": 0.95}, "validation accuracy")
    axis = figure.axes[0]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["A", "B"]  # wrapped at 16 characters
    assert list(axis.lines[0].get_ydata()) == [0.8, 0.82, 0.85]  # A's seeds
    assert [line.get_label() for line in axis.lines].count("thesis") == 1


def test_parameters_and_layers_draw_three_panels_with_one_bar_per_model():
    import pandas as pd

    table = pd.DataFrame({"model": ["V1", "V3-Small"], "parameters": [4_253_864, 2_554_968],
                          "keras3_layers": [91, 229], "thesis_layers": [91, 279]})
    figure = plots.plot_parameters_and_layers(table)
    assert [axis.get_title() for axis in figure.axes] == ["Parameters", "Layers (Keras 3)", "Layers (Keras 2, thesis)"]
    assert [patch.get_height() for patch in figure.axes[2].patches] == [91, 279]

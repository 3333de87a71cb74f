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


def test_the_readme_selection_figure_is_at_least_1200_px_wide_and_spells_out_data_augmentation(tmp_path, monkeypatch):
    import pandas as pd
    from PIL import Image

    from nsfw_mobilenet.core import paths

    table = pd.DataFrame({"weights": ["ImageNet", "random init"], "float32 MB": [16.0, 21.0], "int8 MB": [4.3, 5.6],
                          "float32 ms": [20.0, 30.0], "int8 ms": [9.0, 14.0], "test accuracy (no DA)": [0.9, 0.6]},
                         index=["MobileNetV1", "MobileNetV3-Large"])
    figure = plots.plot_selection(table, "test accuracy (no DA)", "§4.2.5")
    assert figure.axes[0].get_ylabel() == "test accuracy (no data augmentation)"
    assert all(text.get_fontsize() >= 9 for text in figure.axes[0].get_legend().get_texts())
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path)
    saved = plots.save_figure(figure, "selection", smoke=False, dpi=plots.README_FIGURE_DPI)
    assert Image.open(saved).width >= 1200


def test_shap_maps_are_drawn_smoothed_and_the_title_says_so():
    import numpy as np

    values = np.zeros((1, 32, 32, 3, 2))
    values[0, 16, 16, :, 0] = 1.0  # one pixel's attribution, spread over its neighbourhood as drawn
    figure = plots.plot_shap(values, np.zeros((1, 32, 32, 3)), [["a", "b"]], title="net")
    assert "smoothed" in figure._suptitle.get_text()
    drawn = [image.get_array() for axis in figure.axes for image in axis.get_images()][2]  # class "a"'s map
    assert np.count_nonzero(np.asarray(drawn)) > 9

"""Calibration specification: ECE as defined by Guo et al., temperature scaling fitted and applied in the graph."""

import numpy as np
import pytest
import tiny_classifier

from nsfw_mobilenet.evaluation import calibrate


def test_ece_of_a_perfectly_calibrated_bin_is_zero_and_of_an_overconfident_one_the_gap():
    probabilities = np.array([[0.2, 0.8]] * 10)
    labels = np.array([1] * 8 + [0] * 2)  # 80 % right at 80 % confidence
    assert calibrate.expected_calibration_error(probabilities, labels) == pytest.approx(0.0)
    assert calibrate.expected_calibration_error(probabilities, np.array([1] * 5 + [0] * 5)) == pytest.approx(0.3)


def test_reliability_bins_weigh_the_ece_by_their_image_counts():
    probabilities = np.array([[0.05, 0.95]] * 3 + [[0.58, 0.42]])
    diagram = calibrate.reliability(probabilities, np.array([1, 1, 1, 1]))
    assert diagram.counts.sum() == 4 and diagram.counts[-1] == 3 and diagram.counts[8] == 1  # 0.58 in (0.533, 0.6]
    assert diagram.expected_calibration_error == pytest.approx(0.75 * 0.05 + 0.25 * 0.58)


def test_fitted_temperature_undoes_a_known_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 2))
    true_probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (rng.random(4000) < true_probabilities[:, 1]).astype(int)
    overconfident = calibrate.apply_temperature(true_probabilities, 1 / 3)  # logits × 3
    temperature = calibrate.fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    fitted = calibrate.calibrate(overconfident, labels, "synthetic")
    assert fitted.ece_after < fitted.ece_before


def test_temperature_changes_no_top1_decision():
    probabilities = np.random.default_rng(1).dirichlet([1, 1, 1], 50)
    scaled = calibrate.apply_temperature(probabilities, 2.5)
    assert (scaled.argmax(1) == probabilities.argmax(1)).all()
    np.testing.assert_allclose(scaled.sum(1), 1.0)


def test_temperature_inside_the_graph_gives_the_scaled_probabilities(classifier):
    images = tiny_classifier.preprocess(tiny_classifier.images(16, seed=6)[0])
    original = classifier.predict(images, verbose=0)
    calibrated = calibrate.with_temperature(classifier, 2.0).predict(images, verbose=0)
    np.testing.assert_allclose(calibrated, calibrate.apply_temperature(original, 2.0), atol=1e-5)


def test_temperature_needs_a_model_ending_in_a_softmax_dense():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="softmax Dense"):
        calibrate.with_temperature(model, 2.0)


def test_reliability_plot_titles_each_diagram_with_its_ece():
    from nsfw_mobilenet.evaluation import plots

    probabilities, labels = np.array([[0.2, 0.8]] * 10), np.array([1] * 5 + [0] * 5)
    figure = plots.plot_reliability({"as trained": calibrate.reliability(probabilities, labels)})
    assert "ECE 0.300" in figure.axes[0].get_title()


def test_reliability_of_both_forms_has_one_diagram_per_split_and_form():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    splits = {"validation": (probabilities, labels), "test": (probabilities[:2], labels[:2])}
    diagrams = calibrate.reliability_of_both_forms(splits, temperature=2.0)
    assert list(diagrams) == ["validation, as trained", "validation, T = 2.00", "test, as trained", "test, T = 2.00"]
    assert diagrams["validation, as trained"].expected_calibration_error == pytest.approx(
        calibrate.expected_calibration_error(probabilities, labels))
    softened = calibrate.apply_temperature(probabilities, 2.0)
    assert diagrams["validation, T = 2.00"].expected_calibration_error == pytest.approx(
        calibrate.expected_calibration_error(softened, labels))
    assert diagrams["test, T = 2.00"].counts.sum() == 2

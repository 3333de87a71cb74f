"""Operating-point specification: §6.2's decision rule, and the threshold and review band chosen for targets."""

import numpy as np
import pytest

from nsfw_mobilenet.evaluation.operating_point import (
    DEFAULT_OPERATING_POINT,
    DEFAULT_THRESHOLD,
    OperatingPoint,
    OperatingPointError,
    Targets,
    automatic_decision_agreement,
    check_policy,
    choose_operating_point,
    decide,
    decision_shares,
    fixed_policies,
    mirrored_targets,
    policy_figures,
    threshold_for_false_positive_rate,
    threshold_for_recall,
)


@pytest.mark.parametrize("probability, decision", [
    (0.0, "safe"), (0.29, "safe"), (0.3, "review"), (0.5, "review"), (0.69, "review"), (0.7, "unsafe"), (1.0, "unsafe")])
def test_review_band_sends_unsure_predictions_to_a_person(probability, decision):
    assert decide(probability, threshold=0.5, review_band=(0.3, 0.7)) == decision


def test_an_empty_review_band_leaves_the_threshold_alone():
    assert [decide(p, 0.5, (0.5, 0.5)) for p in (0.49, 0.5)] == ["safe", "unsafe"]


def test_threshold_outside_the_review_band_is_refused():
    with pytest.raises(ValueError, match="inside the review band"):
        check_policy(0.8, (0.3, 0.7))


# 10 safe images (0.00 .. 0.45, and one at 0.95) and 10 unsafe ones (0.20, then 0.55 .. 0.95).
SAFE_SCORES = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.45, 0.95])
UNSAFE_SCORES = np.array([0.2, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
SCORES = np.concatenate([SAFE_SCORES, UNSAFE_SCORES])
IS_UNSAFE = np.array([False] * 10 + [True] * 10)


def test_threshold_is_the_lowest_that_keeps_the_false_positive_rate_within_the_target():
    assert threshold_for_false_positive_rate(SAFE_SCORES, 0.10) == pytest.approx(0.45)  # 0.95 may be flagged
    assert threshold_for_false_positive_rate(SAFE_SCORES, 0.10) > 0.45  # but 0.45 may not
    assert threshold_for_false_positive_rate(SAFE_SCORES, 0.05) > 0.95  # 5 % of 10 images: none


def test_thresholds_keep_tied_probabilities_on_the_same_side():
    tied = np.array([0.1, 0.2, 0.8, 0.8])  # a 25 % target would allow one, but the tie cannot be split
    threshold = threshold_for_false_positive_rate(tied, 0.25)
    assert threshold > 0.8 and np.mean(tied >= threshold) == 0.0
    assert threshold_for_recall(np.array([0.3, 0.3, 0.9, 0.9]), 0.75) == 0.3  # both 0.3s stay caught


def test_recall_threshold_is_the_highest_that_keeps_recall_at_the_target():
    assert threshold_for_recall(UNSAFE_SCORES, 0.9) == 0.55  # misses only 0.20
    assert threshold_for_recall(UNSAFE_SCORES, 0.99) == 0.2  # misses none


def test_operating_point_reviews_between_the_recall_and_the_false_positive_thresholds():
    point = choose_operating_point(SCORES, IS_UNSAFE, Targets(false_positive_rate=0.1, recall=0.99))
    assert point.review_band[0] == 0.2 and point.review_band[1] == point.threshold == pytest.approx(0.45)
    figures = policy_figures(SCORES, IS_UNSAFE, point)
    assert figures.false_positive_rate == 0.1 and figures.recall == 1.0
    assert figures.decisions == {"safe": {"safe": 4, "review": 5, "unsafe": 1},
                                 "unsafe": {"safe": 0, "review": 1, "unsafe": 9}}
    assert figures.decided_automatically == pytest.approx(14 / 20)
    assert figures.error_rate_of_automatic_decisions == pytest.approx(1 / 14)


def test_band_is_empty_when_the_threshold_alone_meets_the_recall_target():
    point = choose_operating_point(SCORES, IS_UNSAFE, Targets(false_positive_rate=0.1, recall=0.8))
    assert point.review_band == (point.threshold, point.threshold)
    check_policy(point.threshold, point.review_band)


def test_an_empty_class_is_a_clear_error():
    with pytest.raises(OperatingPointError, match="no unsafe validation images"):
        choose_operating_point(SAFE_SCORES, np.zeros(10, bool))
    with pytest.raises(OperatingPointError, match="no safe validation images"):
        choose_operating_point(UNSAFE_SCORES, np.ones(10, bool))


def test_a_target_that_cannot_be_met_says_why():
    saturated = np.array([0.1, 0.2, 1.0])  # a safe image with probability 1.0 is above every threshold
    with pytest.raises(OperatingPointError, match="cannot be met.*probability 1.0"):
        choose_operating_point(np.concatenate([saturated, [0.9]]), np.array([False] * 3 + [True]))


@pytest.mark.parametrize("targets", [{"false_positive_rate": 1.0}, {"false_positive_rate": -0.1}, {"recall": 0.0},
                                     {"recall": 1.5}])
def test_targets_outside_their_range_are_refused(targets):
    with pytest.raises(ValueError, match="target"):
        Targets(**targets)


def test_decision_shares_of_a_harmless_folder_sum_to_one():
    shares = decision_shares([0.1, 0.35, 0.8, 0.2], DEFAULT_OPERATING_POINT)
    assert shares == {"safe": 0.5, "review": 0.25, "unsafe": 0.25}


def test_decision_agreement_counts_only_the_reference_automatic_decisions_and_where_the_others_went():
    reference = np.array(["safe", "safe", "unsafe", "unsafe", "review", "review"])
    decisions = np.array(["safe", "review", "unsafe", "safe", "unsafe", "safe"])
    agreement = automatic_decision_agreement(reference, decisions)
    assert agreement == {"images": 4, "agreement": 0.5, "to_review": 1, "to_opposite_side": 1}


def test_operating_point_decisions_match_decide():
    point = OperatingPoint(0.6, (0.4, 0.6))
    probabilities = np.linspace(0, 1, 11)
    assert point.decisions(probabilities).tolist() == [decide(p, 0.6, (0.4, 0.6)) for p in probabilities]


def test_operating_point_plot_marks_the_threshold_and_the_review_start_on_the_roc_curve():
    from nsfw_mobilenet.evaluation import plots

    point = choose_operating_point(SCORES, IS_UNSAFE, Targets(false_positive_rate=0.1, recall=0.99))
    roc = plots.plot_operating_point(SCORES, IS_UNSAFE, point).axes[0]
    threshold_mark, review_mark = (collection.get_offsets()[0].tolist() for collection in roc.collections)
    assert threshold_mark == pytest.approx([0.1, 0.9]) and review_mark == pytest.approx([0.6, 1.0])


def test_tradeoff_rows_choose_on_validation_and_check_on_test():
    from nsfw_mobilenet.evaluation.operating_point import tradeoff

    strict, loose = Targets(0.0, 1.0), Targets(0.1, 0.8)
    rows = tradeoff((SCORES, IS_UNSAFE), (SCORES, IS_UNSAFE), [strict, loose])
    assert [row["target false-positive rate"] for row in rows] == [0.0, 0.1]
    assert rows[0]["test false-positive rate"] == 0.0 and rows[0]["test recall"] == 1.0
    assert rows[0]["test decided automatically"] < rows[1]["test decided automatically"]


def test_fixed_policies_are_the_section_6_2_band_and_the_plain_classifier_at_the_default_threshold():
    policies = fixed_policies()
    assert list(policies) == ["§6.2 review band [0.3, 0.7)", "no review band, threshold 0.5"]
    band, plain = policies.values()
    assert band == DEFAULT_OPERATING_POINT
    assert plain.decisions(np.array([0.49, DEFAULT_THRESHOLD, 0.51])).tolist() == ["safe", "unsafe", "unsafe"]


def test_mirrored_targets_pair_each_false_positive_rate_with_recall_one_minus_it():
    targets = mirrored_targets([0.01, 0.05, 0.10])
    assert targets == [Targets(0.01, 0.99), Targets(0.05, 0.95), Targets(0.10, 0.90)]


def test_at_a_low_prevalence_the_same_rates_give_a_lower_precision_and_the_review_load_follows_the_safe_side():
    from nsfw_mobilenet.evaluation.operating_point import PolicyFigures, at_prevalence

    decisions = {"safe": {"safe": 90, "review": 8, "unsafe": 2}, "unsafe": {"safe": 0, "review": 10, "unsafe": 90}}
    figures = PolicyFigures(200, 1.0, 0.02, 0.91, 0.01, decisions)
    rare, common = at_prevalence(figures, 0.01), at_prevalence(figures, 0.5)
    assert rare["precision_of_unsafe_decisions"] == pytest.approx(0.01 * 0.9 / (0.01 * 0.9 + 0.99 * 0.02))
    assert common["precision_of_unsafe_decisions"] == pytest.approx(0.9 / 0.92)
    assert rare["sent_to_review"] == pytest.approx(0.01 * 0.1 + 0.99 * 0.08)
    with pytest.raises(ValueError, match="prevalences"):
        Targets(prevalences=(0.0,))

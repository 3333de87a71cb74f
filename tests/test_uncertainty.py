"""Intervals and paired tests: known values, and the behaviour a reader relies on."""

import numpy as np
import pytest

from nsfw_mobilenet.evaluation import uncertainty


def test_wilson_interval_matches_the_textbook_value_for_8_of_10():
    low, high = uncertainty.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_stays_inside_0_1_at_the_edges():
    assert uncertainty.wilson_interval(0, 20)[0] == 0.0
    assert uncertainty.wilson_interval(20, 20)[1] == pytest.approx(1.0)


def test_seed_interval_is_the_student_t_interval_of_the_mean():
    summary = uncertainty.seed_interval([0.80, 0.82, 0.84, 0.86, 0.88])
    # mean 0.84, sd 0.0316, sem 0.01414, t(0.975, 4) = 2.776
    assert summary.mean == pytest.approx(0.84)
    assert summary.half_width == pytest.approx(2.776 * 0.014142, rel=1e-3)
    assert str(summary) == "0.840 ± 0.039"


def test_one_seed_has_no_interval():
    summary = uncertainty.seed_interval([0.9])
    assert (summary.low, summary.high, str(summary)) == (0.9, 0.9, "0.900")


def test_mcnemar_counts_only_the_images_exactly_one_classifier_gets_right():
    a = np.array([True] * 10 + [False] * 2 + [True] * 50)
    b = np.array([False] * 10 + [True] * 2 + [True] * 50)
    # 10 vs 2 discordant images: exact binomial two-sided p = 0.0386
    assert uncertainty.mcnemar(a, b) == pytest.approx(0.0386, abs=1e-4)
    assert uncertainty.mcnemar(a, a) == 1.0


def test_single_runs_are_compared_with_mcnemar_and_many_seeds_with_the_paired_bootstrap():
    rng = np.random.default_rng(0)
    a = rng.random((1, 159)) < 0.9
    assert uncertainty.paired_comparison(a, a).test == "McNemar exact"
    several = rng.random((5, 159)) < 0.9
    comparison = uncertainty.paired_comparison(several, several[::-1])
    assert comparison.test.startswith("paired bootstrap") and comparison.seeds == (5, 5)


def test_a_real_difference_is_found_and_identical_runs_are_within_noise():
    rng = np.random.default_rng(1)
    good = rng.random((5, 300)) < 0.95
    poor = rng.random((5, 300)) < 0.70
    assert uncertainty.paired_comparison(good, poor).significant
    same = uncertainty.paired_comparison(good, good)
    assert not same.significant and same.difference == 0.0 and "within noise" in str(same)


def test_the_bootstrap_is_repeatable():
    rng = np.random.default_rng(2)
    a, b = rng.random((3, 100)) < 0.8, rng.random((3, 100)) < 0.8
    assert uncertainty.paired_comparison(a, b) == uncertainty.paired_comparison(a, b)


def test_runs_on_different_test_sets_are_refused():
    with pytest.raises(ValueError, match="same test images"):
        uncertainty.paired_comparison(np.ones((1, 10), bool), np.ones((1, 12), bool))


def test_a_test_set_of_159_images_cannot_tell_apart_runs_a_few_images_apart():
    smallest = uncertainty.detectable_difference(159, 0.9)
    assert 0.08 < smallest < 0.11  # about 15 images
    assert uncertainty.detectable_difference(4000, 0.9) < 0.025  # the thesis's 3,999 test images

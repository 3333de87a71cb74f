"""How sure a result is: intervals for one accuracy and for a mean over seeds, paired tests on the same test
images, and the smallest difference a test set can tell apart.

With 126 validation and 159 test images (the roses-vs-tulips proxy) one image is 0.6 points of accuracy,
so a single run per row cannot rank rows that differ by a few images. Every comparison the notebooks
state as a finding goes through `paired_comparison`: McNemar's exact test for one run each, a paired
bootstrap over seeds and test images for several.
"""


from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
POWER = 0.8  # of `detectable_difference`
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # the resampling's own seed: the same results give the same interval and p-value


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (one run's accuracy on `trials` images)."""
    from scipy import stats

    if trials == 0:
        return float("nan"), float("nan")
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class SeedSummary:
    """Mean of one metric over seeds, with its Student-t interval (none for a single seed)."""

    mean: float
    low: float
    high: float
    seeds: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        if self.seeds < 2:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} ± {self.half_width:.3f}"


def seed_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> SeedSummary:
    """Mean over seeds ± the `confidence` Student-t interval of that mean."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2 or values.std() == 0:
        return SeedSummary(mean, mean, mean, len(values))
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return SeedSummary(mean, float(low), float(high), len(values))


@dataclass(frozen=True)
class PairedComparison:
    """A − B in accuracy on the same test images, with its interval and two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    test: str
    images: int
    seeds: tuple[int, int]

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE

    def __str__(self) -> str:
        verdict = "a difference" if self.significant else "within noise"
        return (f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}], p = {self.p_value:.3g} "
                f"({self.test}, {self.images} images, {self.seeds[0]} vs {self.seeds[1]} seeds): {verdict}")


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """McNemar's exact test: two-sided p-value that two classifiers err equally often on the same images
    (a binomial test on the images exactly one of them gets right)."""
    from scipy import stats

    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _bootstrap_differences(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int) -> np.ndarray:
    """Differences of mean accuracy with seeds of each side and the shared test images resampled."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    images = correct_a.shape[1]
    differences = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(0, images, images)
        seeds_a = rng.integers(0, len(correct_a), len(correct_a))
        seeds_b = rng.integers(0, len(correct_b), len(correct_b))
        differences[i] = correct_a[np.ix_(seeds_a, chosen)].mean() - correct_b[np.ix_(seeds_b, chosen)].mean()
    return differences


def paired_comparison(correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = CONFIDENCE,
                      resamples: int = BOOTSTRAP_RESAMPLES) -> PairedComparison:
    """Compare two configurations on the same test images; `correct_*` is (seeds, images) booleans.

    One seed each: McNemar's exact test, and a bootstrap interval over the images. Several: a
    paired bootstrap that resamples the images (shared by both sides) and each side's seeds; the p-value
    is twice the share of resampled differences on the far side of zero (at least 1 / `resamples`).
    """
    correct_a, correct_b = np.atleast_2d(correct_a).astype(bool), np.atleast_2d(correct_b).astype(bool)
    if correct_a.shape[1] != correct_b.shape[1]:
        raise ValueError(f"paired tests need the same test images; got {correct_a.shape[1]} and {correct_b.shape[1]}")
    differences = _bootstrap_differences(correct_a, correct_b, resamples)
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    observed = float(correct_a.mean() - correct_b.mean())
    if len(correct_a) == 1 and len(correct_b) == 1:
        p_value, test = mcnemar(correct_a[0], correct_b[0]), "McNemar exact"
    else:
        far_side = min(np.mean(differences <= 0), np.mean(differences >= 0))
        # never 0: a bootstrap cannot resolve p below one resample in `resamples`
        p_value, test = float(min(1.0, max(2 * far_side, 1 / resamples))), "paired bootstrap over seeds and images"
    return PairedComparison(observed, float(low), float(high), p_value, test, correct_a.shape[1],
                            (len(correct_a), len(correct_b)))


def detectable_difference(images: int, accuracy: float, confidence: float = CONFIDENCE,
                          power: float = POWER) -> float:
    """The smallest accuracy difference two single runs on `images` test images tell apart with
    `power` at the `confidence` level, near `accuracy` (normal approximation for two proportions)."""
    from scipy import stats

    z = stats.norm.ppf(1 - (1 - confidence) / 2) + stats.norm.ppf(power)
    return float(z * np.sqrt(2 * accuracy * (1 - accuracy) / images))


"""The app's decision rule (§6.2) and the operating point that sets it, chosen on validation data.

For an unsafe probability p (the sum over the taxonomy's unsafe classes, §5.1):
    review  if low <= p < high   (the review band; low == high disables it)
    unsafe  if p >= threshold    (outside the band)
    safe    otherwise

The thesis's future work wants an app that acts on its own only when it is sure and asks a person
otherwise. `choose_operating_point` turns that into two numbers a reader can check:
    threshold    the lowest one whose false-positive rate on safe validation images is at most a
                 target (default 1 %): at most that share of harmless images is blocked automatically;
    review band  [the highest threshold that keeps recall on unsafe validation images at or above a
                 target (default 99 %), threshold): below it, at most that share of unsafe images
                 passes unseen; everything in between goes to a person.
The validation split is listing 4.4's hold-out, never the test set, which only checks the result.
"""


from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nsfw_mobilenet.core.taxonomy import SAFE, UNSAFE

REVIEW = "review"  # the decision between SAFE and UNSAFE (the taxonomy's two sides)
DECISIONS = (SAFE, REVIEW, UNSAFE)
DEFAULT_THRESHOLD = 0.5  # §6.2's fixed policy, used when no validation data chose one
DEFAULT_REVIEW_BAND = (0.3, 0.7)  # §6.2: "less than 70% of possibilities" → human review
DEFAULT_TARGET_FALSE_POSITIVE_RATE = 0.01
DEFAULT_TARGET_RECALL = 0.99


class OperatingPointError(ValueError):
    """The targets cannot be met, or the data cannot say whether they are."""


def unsafe_probabilities(probabilities: np.ndarray, unsafe_indices: Sequence[int]) -> np.ndarray:
    """§5.1: an image's unsafe probability is the sum of its probabilities over the unsafe classes."""
    return np.asarray(probabilities)[:, list(unsafe_indices)].sum(axis=1)


def decide(unsafe_probability: float, threshold: float, review_band: tuple[float, float]) -> str:
    """§6.2: the band around the threshold goes to a person; outside it the threshold decides."""
    low, high = review_band
    if low <= unsafe_probability < high:
        return REVIEW
    return UNSAFE if unsafe_probability >= threshold else SAFE


def check_policy(threshold: float, review_band: tuple[float, float]) -> None:
    """Raise ValueError unless the threshold and band are probabilities and the threshold lies in the band."""
    low, high = review_band
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold} must be within [0, 1]")
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"review band {review_band} must satisfy 0 <= low <= high <= 1")
    if low < high and not low <= threshold <= high:
        raise ValueError(f"threshold {threshold} must lie inside the review band {review_band}")


DEFAULT_PREVALENCES = (0.01, 0.05, 0.20)  # shares of unsafe images an app may see: rare, uncommon, frequent


@dataclass(frozen=True)
class Targets:
    """What the operating point promises on validation data, and the prevalences of the unsafe class at which a
    card reports what the promise means for an app (`at_prevalence`)."""

    false_positive_rate: float = DEFAULT_TARGET_FALSE_POSITIVE_RATE
    recall: float = DEFAULT_TARGET_RECALL
    prevalences: tuple[float, ...] = DEFAULT_PREVALENCES

    def __post_init__(self) -> None:
        if not 0.0 <= self.false_positive_rate < 1.0:
            raise ValueError(f"target false-positive rate {self.false_positive_rate} must be within [0, 1)")
        if not 0.0 < self.recall <= 1.0:
            raise ValueError(f"target recall {self.recall} must be within (0, 1]")
        if not all(0.0 < p < 1.0 for p in self.prevalences):
            raise ValueError(f"prevalences {list(self.prevalences)} must each be within (0, 1)")


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and review band, and the targets they were chosen for (None: §6.2's defaults)."""

    threshold: float
    review_band: tuple[float, float]
    targets: Targets | None = None

    def decisions(self, unsafe_probabilities: np.ndarray) -> np.ndarray:
        """`decide` for every probability."""
        return np.array([decide(float(p), self.threshold, self.review_band) for p in unsafe_probabilities])


DEFAULT_OPERATING_POINT = OperatingPoint(DEFAULT_THRESHOLD, DEFAULT_REVIEW_BAND)
NO_REVIEW_BAND = OperatingPoint(DEFAULT_THRESHOLD, (DEFAULT_THRESHOLD, DEFAULT_THRESHOLD))  # the plain classifier


def fixed_policies() -> dict[str, OperatingPoint]:
    """§6.2's fixed review band around DEFAULT_THRESHOLD and the plain classifier at it, named for a table."""
    low, high = DEFAULT_OPERATING_POINT.review_band
    return {f"§6.2 review band [{low}, {high})": DEFAULT_OPERATING_POINT,
            f"no review band, threshold {DEFAULT_THRESHOLD}": NO_REVIEW_BAND}


def mirrored_targets(false_positive_rates: Sequence[float]) -> list[Targets]:
    """One `Targets` per false-positive rate r, with recall 1 − r (1 %/99 %, 2 %/98 %, …: `tradeoff`'s rows)."""
    return [Targets(rate, round(1.0 - rate, 12)) for rate in false_positive_rates]


def _checked_sides(unsafe_probabilities: np.ndarray, is_unsafe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, truth = np.asarray(unsafe_probabilities, np.float64), np.asarray(is_unsafe, bool)
    if scores.shape != truth.shape:
        raise ValueError(f"{scores.shape[0]} probabilities but {truth.shape[0]} labels")
    for name, side in (("safe", scores[~truth]), ("unsafe", scores[truth])):
        if side.size == 0:
            raise OperatingPointError(f"no {name} validation images: the operating point needs both classes")
    return scores[~truth], scores[truth]


def threshold_for_false_positive_rate(safe_probabilities: np.ndarray, target: float) -> float:
    """The lowest threshold t with share(safe p >= t) <= target (unsafe when p >= t).

    Ties stay together: t lies just above the highest safe probability that must not be flagged.
    """
    ranked = np.sort(np.asarray(safe_probabilities, np.float64))[::-1]
    allowed = math.floor(target * len(ranked) + 1e-9)  # false positives the target tolerates
    if allowed >= len(ranked):
        return 0.0
    highest_kept_safe = ranked[allowed]
    threshold = float(np.nextafter(highest_kept_safe, np.inf))
    if threshold > 1.0:
        raise OperatingPointError(
            f"a false-positive rate of at most {target:.2%} cannot be met: {int(np.sum(ranked >= 1.0))} of "
            f"{len(ranked)} safe validation images get unsafe probability 1.0, which every threshold flags; "
            "calibrate the model or raise the target")
    return threshold


def threshold_for_recall(unsafe_probabilities: np.ndarray, target: float) -> float:
    """The highest threshold t with share(unsafe p >= t) >= target."""
    ranked = np.sort(np.asarray(unsafe_probabilities, np.float64))
    allowed_misses = len(ranked) - math.ceil(target * len(ranked) - 1e-9)
    return float(ranked[allowed_misses])


def choose_operating_point(unsafe_probabilities: np.ndarray, is_unsafe: np.ndarray,
                           targets: Targets = Targets()) -> OperatingPoint:
    """The §6.2 policy that meets `targets` on validation data (see the module docstring).

    When the recall target is met by the threshold itself, the band is empty (no review).
    """
    safe, unsafe = _checked_sides(unsafe_probabilities, is_unsafe)
    threshold = threshold_for_false_positive_rate(safe, targets.false_positive_rate)
    review_from = min(threshold_for_recall(unsafe, targets.recall), threshold)
    return OperatingPoint(threshold, (review_from, threshold), targets)


@dataclass(frozen=True)
class PolicyFigures:
    """How an operating point does on one labelled set of images."""

    images: int
    recall: float  # unsafe images flagged unsafe or sent to review: not passed as safe
    false_positive_rate: float  # safe images decided unsafe automatically
    decided_automatically: float  # share of images outside the review band
    error_rate_of_automatic_decisions: float  # wrong among those (nan when none)
    decisions: dict[str, dict[str, int]]  # true side ("safe"/"unsafe") → decision → count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def policy_figures(unsafe_probabilities: np.ndarray, is_unsafe: np.ndarray, point: OperatingPoint) -> PolicyFigures:
    """Recall, false-positive rate, share decided automatically and its error rate (see `PolicyFigures`)."""
    truth = np.asarray(is_unsafe, bool)
    decided = point.decisions(np.asarray(unsafe_probabilities, np.float64))
    counts = {side: {d: int(np.sum(decided[mask] == d)) for d in DECISIONS}
              for side, mask in ((SAFE, ~truth), (UNSAFE, truth))}
    automatic = counts[SAFE][SAFE] + counts[SAFE][UNSAFE] + counts[UNSAFE][SAFE] + counts[UNSAFE][UNSAFE]
    return PolicyFigures(
        images=len(truth),
        recall=_share(counts[UNSAFE][UNSAFE] + counts[UNSAFE][REVIEW], int(truth.sum())),
        false_positive_rate=_share(counts[SAFE][UNSAFE], int((~truth).sum())),
        decided_automatically=_share(automatic, len(truth)),
        error_rate_of_automatic_decisions=_share(counts[SAFE][UNSAFE] + counts[UNSAFE][SAFE], automatic),
        decisions=counts,
    )


def at_prevalence(figures: PolicyFigures, prevalence: float) -> dict[str, float]:
    """What an operating point means where unsafe images are `prevalence` of all, from its rates on each side
    (a test split's own mix is not the world's): the precision of its automatic `unsafe` decisions, the share of
    images it decides unsafe and the share it sends to a person."""
    per_side = {side: sum(figures.decisions[side].values()) for side in (SAFE, UNSAFE)}
    rate = {(side, d): _share(figures.decisions[side][d], per_side[side]) for side in (SAFE, UNSAFE) for d in DECISIONS}
    flagged = prevalence * rate[UNSAFE, UNSAFE] + (1 - prevalence) * rate[SAFE, UNSAFE]
    return {"prevalence": prevalence,
            "precision_of_unsafe_decisions": prevalence * rate[UNSAFE, UNSAFE] / flagged if flagged else float("nan"),
            "decided_unsafe": flagged,
            "sent_to_review": prevalence * rate[UNSAFE, REVIEW] + (1 - prevalence) * rate[SAFE, REVIEW]}


def decision_shares(unsafe_probabilities: Sequence[float], point: OperatingPoint) -> dict[str, float]:
    """Share of images per decision: on a folder of harmless photos, `unsafe` and `review` are false alarms."""
    decided = point.decisions(np.asarray(unsafe_probabilities, np.float64))
    return {decision: _share(int(np.sum(decided == decision)), len(decided)) for decision in DECISIONS}


def automatic_decision_agreement(reference: np.ndarray, decisions: np.ndarray) -> dict[str, float | int]:
    """Of the images whose `reference` decision is automatic (safe or unsafe, outside the review band), the share
    with the same decision in `decisions`, and how many of them moved to review or to the opposite side."""
    reference, decisions = np.asarray(reference), np.asarray(decisions)
    automatic = reference != REVIEW
    moved = decisions[automatic] != reference[automatic]
    return {"images": int(automatic.sum()), "agreement": _share(int(automatic.sum() - moved.sum()), int(automatic.sum())),
            "to_review": int(np.sum(decisions[automatic][moved] == REVIEW)),
            "to_opposite_side": int(np.sum(decisions[automatic][moved] != REVIEW))}


def tradeoff(validation: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
             targets: Sequence[Targets]) -> list[dict[str, float]]:
    """One row per `targets`: the operating point chosen on `validation` (unsafe probabilities, is-unsafe) and
    how it does on `test`: what a stricter or looser promise costs in images sent to a person."""
    rows = []
    for target in targets:
        point = choose_operating_point(*validation, target)
        checked = policy_figures(*test, point)
        rows.append({"target false-positive rate": target.false_positive_rate, "target recall": target.recall,
                     "threshold": point.threshold, "review from": point.review_band[0],
                     "validation decided automatically": policy_figures(*validation, point).decided_automatically,
                     "test recall": checked.recall, "test false-positive rate": checked.false_positive_rate,
                     "test decided automatically": checked.decided_automatically,
                     "test errors among automatic decisions": checked.error_rate_of_automatic_decisions})
    return rows


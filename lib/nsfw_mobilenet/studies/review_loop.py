"""Thesis §6.2's review loop, simulated on the open-world proxy (issue 23): does a person's feedback teach the model
the harmless things it never saw?

A stream of photos from the proxy's unseen safe categories (half of each category; the other half is held back)
reaches the app. Each round a reviewer, played by the ground truth (every unseen photo is safe), judges
`per_round` of them, flagged ones first (decided unsafe, then sent to review, the most unsafe first), then the
least sure. After each round the original model is fine-tuned on every verdict so far plus replay
(`training.feedback.finetune`), and its operating point is chosen again on the validation split as `export` would.
Measured each round: on the held-back unseen photos, the share decided unsafe (false-positive rate) and the share
flagged (unsafe or review), for the look-alike categories and for all; on the test split, recall and
false-positive rate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR
from nsfw_mobilenet.core.taxonomy import default_unsafe_classes
from nsfw_mobilenet.evaluation.operating_point import (
    REVIEW,
    UNSAFE,
    OperatingPoint,
    choose_operating_point,
    decision_shares,
    policy_figures,
    unsafe_probabilities,
)
from nsfw_mobilenet.evaluation.run_results import load_result
from nsfw_mobilenet.evaluation.uncertainty import seed_interval
from nsfw_mobilenet.io import photo_datasets
from nsfw_mobilenet.io.atomic_files import write_atomically
from nsfw_mobilenet.io.feedback import SAFE, Feedback, content_hash
from nsfw_mobilenet.io.image_cache import LoadedImages, load_images
from nsfw_mobilenet.io.image_files import LabeledImage, image_files
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.run_data import RunData, load_run_data
from nsfw_mobilenet.training.feedback import FINETUNE_EPOCHS, FINETUNE_LEARNING_RATE, REPLAY_PER_REVIEW, finetune

REVIEWS_PER_ROUND = 25
ROUNDS = 8  # 200 reviews: the budget
SMOKE_PER_CATEGORY = 2  # photos per unseen category and half in a smoke run


@dataclass(frozen=True)
class UnseenSplit:
    """The unseen categories' photos: the stream a reviewer sees, and the held-back half the rates are measured on."""

    stream: list[LabeledImage]
    held_back: list[LabeledImage]


def unseen_split(proxy_root: Path | str, seed: int = 1, smoke: bool = False) -> UnseenSplit:
    """Each unseen category of the proxy halved at random with `seed` (a few photos each when `smoke`); labels are
    the category (`<source>/<category>`)."""
    stream, held_back = [], []
    rng = np.random.default_rng(seed)
    for folder in sorted(p for p in (Path(proxy_root) / "unseen").iterdir() if p.is_dir()):
        listed = image_files(folder)
        files = [listed[k] for k in rng.permutation(len(listed))]
        half = SMOKE_PER_CATEGORY if smoke else len(files) // 2
        category = folder.name.replace(photo_datasets.NAME_SEPARATOR, "/")
        stream += [LabeledImage(path, category) for path in files[:half]]
        held_back += [LabeledImage(path, category) for path in files[half:2 * half if smoke else None]]
    return UnseenSplit(stream, held_back)


def review_order(scores: np.ndarray, point: OperatingPoint, reviewed: set[int]) -> list[int]:
    """Indices of the stream not yet reviewed, in the order a reviewer gets them: decided unsafe, then sent to
    review (each the most unsafe first), then the rest from the least sure (closest to the threshold)."""
    decisions = point.decisions(scores)
    rank = {UNSAFE: 0, REVIEW: 1}
    return sorted((i for i in range(len(scores)) if i not in reviewed),
                  key=lambda i: (rank.get(decisions[i], 2), -scores[i] if decisions[i] in rank
                                 else abs(scores[i] - point.threshold)))


@dataclass(frozen=True)
class RoundFigures:
    """One round's measurements (round 0: the model before any review)."""

    round: int
    reviews: int
    threshold: float
    unseen_false_positive_rate: float
    unseen_flagged: float
    lookalike_false_positive_rate: float
    lookalike_flagged: float
    test_recall: float
    test_false_positive_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shares(scores: np.ndarray, point: OperatingPoint) -> tuple[float, float]:
    """(decided unsafe, flagged: unsafe or review) among photos that are all safe."""
    shares = decision_shares(scores, point)
    return shares[UNSAFE], shares[UNSAFE] + shares[REVIEW]


@dataclass
class _Setting:
    """What every round reads: the proxy's data, the unseen photos decoded, and how to score them."""

    data: RunData
    stream: LoadedImages
    held_back: LoadedImages
    lookalike: np.ndarray  # held-back photos of a look-alike category
    unsafe: list[int]
    backbone: str

    def scores(self, model: Any, images: Any) -> np.ndarray:
        return unsafe_probabilities(predict(model, images, self.backbone), self.unsafe)

    def measure(self, model: Any, round_number: int, reviews: int) -> tuple[RoundFigures, OperatingPoint]:
        validation_unsafe = np.isin(self.data.validation.labels, self.unsafe)
        point = choose_operating_point(self.scores(model, self.data.validation.images), validation_unsafe)
        held = self.scores(model, self.held_back.images)
        test = policy_figures(self.scores(model, self.data.test.images), np.isin(self.data.test.labels, self.unsafe),
                              point)
        unseen, lookalike = _shares(held, point), _shares(held[self.lookalike], point)
        return RoundFigures(round_number, reviews, point.threshold, *unseen, *lookalike, test.recall,
                            test.false_positive_rate), point


def _setting(model_file: Path, proxy_root: Path, seed: int, smoke: bool, cache_dir: Path | None) -> _Setting:
    stored = load_result(model_file.with_suffix(".json"))
    classes = list(stored.data["classes"])
    split = unseen_split(proxy_root, seed, smoke)
    categories = sorted({item.label for item in split.stream + split.held_back})
    safe = [name for name in classes if name not in default_unsafe_classes(classes)][0]
    stream = load_images([LabeledImage(i.path, safe) for i in split.stream], classes, progress=False)
    held_back = load_images([LabeledImage(i.path, safe) for i in split.held_back], classes, progress=False)
    lookalikes = {f"{source}/{name}" for source, name in photo_datasets.UNSEEN_LOOKALIKES} & set(categories)
    return _Setting(load_run_data(proxy_root, smoke=smoke, cache_dir=cache_dir, progress=False), stream, held_back,
                    np.array([item.label in lookalikes for item in split.held_back]),
                    [classes.index(name) for name in default_unsafe_classes(classes)], stored.config.backbone)


def simulate(model_file: Path | str, proxy_root: Path | str, out_dir: Path | str, *, rounds: int = ROUNDS,
             per_round: int = REVIEWS_PER_ROUND, seed: int = 1, smoke: bool = False,
             cache_dir: Path | None = DEFAULT_CACHE_DIR) -> list[RoundFigures]:
    """Round 0 and then `rounds` rounds of `per_round` reviews each (see the module docstring); each round's model
    is written to `<out_dir>/round_<k>/`."""
    import keras

    model_file, proxy_root = Path(model_file), Path(proxy_root)
    setting = _setting(model_file, proxy_root, seed, smoke, cache_dir)
    model = keras.saving.load_model(model_file)
    figures, point = setting.measure(model, 0, 0)
    history, reviews, reviewed = [figures], [], set()
    for round_number in range(1, rounds + 1):
        scores = setting.scores(model, setting.stream.images)
        chosen = review_order(scores, point, reviewed)[:per_round]
        reviewed.update(chosen)
        reviews += [_verdict(setting.stream.paths[i], float(scores[i]), point) for i in chosen]
        tuned = finetune(model_file, reviews, proxy_root, Path(out_dir) / f"round_{round_number}", seed=seed,
                         smoke=smoke, cache_dir=cache_dir)
        model = keras.saving.load_model(tuned.path.with_suffix(".keras"))
        figures, point = setting.measure(model, round_number, len(reviews))
        history.append(figures)
    return history


def _verdict(path: Any, score: float, point: OperatingPoint) -> Feedback:
    """The simulated reviewer's verdict: every unseen photo is safe."""
    return Feedback(str(path), content_hash(path), SAFE, score, str(point.decisions(np.array([score]))[0]))


def rounds_table(history: Sequence[RoundFigures]) -> Any:
    """The rounds as a table, one row each."""
    import pandas as pd

    return pd.DataFrame([figures.to_dict() for figures in history]).set_index("round")


def _loop_key(model_file: Path, rounds: int, per_round: int, seed: int, smoke: bool) -> dict[str, Any]:
    """What a stored history must have been made with to be reused: the same model run (its name and the
    fingerprint of its config, data and weights; training is deterministic per seed) and the same loop."""
    model_run = load_result(model_file.with_suffix(".json"))
    return {"model": model_file.name, "model_fingerprint": model_run.data.get("fingerprint"), "rounds": rounds,
            "per_round": per_round, "seed": seed, "smoke": smoke, "replay_per_review": REPLAY_PER_REVIEW,
            "finetune_epochs": FINETUNE_EPOCHS, "finetune_learning_rate": FINETUNE_LEARNING_RATE}


def history_file(results_dir: Path | str, seed: int, smoke: bool = False) -> Path:
    """Where `stored_or_simulated` keeps one seed's rounds (smoke runs apart, in `smoke/`)."""
    return Path(results_dir) / ("smoke" if smoke else "") / f"review_loop_seed_{seed}.json"


def stored_or_simulated(model_file: Path | str, proxy_root: Path | str, out_dir: Path | str,
                        results_dir: Path | str, *, rounds: int = ROUNDS, per_round: int = REVIEWS_PER_ROUND,
                        seed: int = 1, smoke: bool = False, cache_dir: Path | None = DEFAULT_CACHE_DIR
                        ) -> list[RoundFigures]:
    """`simulate`'s rounds, read from `history_file` when a run with the same model and loop settings wrote them
    (`_loop_key`), else simulated now and written there: a finished seed is never run twice."""
    model_file, path = Path(model_file), history_file(results_dir, seed, smoke)
    key = _loop_key(model_file, rounds, per_round, seed, smoke)
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return [RoundFigures(**row) for row in stored["rounds"]]
    history = simulate(model_file, proxy_root, out_dir, rounds=rounds, per_round=per_round, seed=seed, smoke=smoke,
                       cache_dir=cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"key": key, "rounds": [figures.to_dict() for figures in history]}, indent=1))
    return history


SEED_COLUMNS = {"lookalike_false_positive_rate": "look-alikes decided unsafe",
                "unseen_false_positive_rate": "all unseen decided unsafe", "test_recall": "test recall"}


def seeds_table(histories: Mapping[int, Sequence[RoundFigures]]) -> Any:
    """One row per seed: each `SEED_COLUMNS` figure before any review and after the last round, the change
    (after − before) and after / before (for a false-positive rate, the issue's "halves" when ≤ 0.5)."""
    import pandas as pd

    rows = {}
    for seed, history in histories.items():
        first, last = history[0].to_dict(), history[-1].to_dict()
        row = {"reviews": last["reviews"]}
        for field, name in SEED_COLUMNS.items():
            row |= {f"{name}: before": first[field], f"{name}: after": last[field],
                    f"{name}: change": last[field] - first[field],
                    f"{name}: after / before": last[field] / first[field] if first[field] else float("nan")}
        rows[seed] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("seed")


def seeds_summary(table: Any) -> Any:
    """Each column of `seeds_table` over the seeds: mean and its 95 % Student-t interval (none for one seed)."""
    import pandas as pd

    summaries = {column: seed_interval(table[column].to_numpy()) for column in table.columns if column != "reviews"}
    return pd.DataFrame({column: {"mean": s.mean, "95 % low": s.low, "95 % high": s.high, "seeds": s.seeds}
                         for column, s in summaries.items()}).T

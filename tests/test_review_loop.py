"""Specifications for the simulated review loop of §6.2 (`studies.review_loop`). The loop itself runs end to end in
notebook 09's smoke run (nbval), on the open-world proxy: one round of three reviews."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from image_corpus import shared_datasets_miniature

from nsfw_mobilenet.evaluation.operating_point import OperatingPoint
from nsfw_mobilenet.io import photo_datasets
from nsfw_mobilenet.studies import review_loop


def test_flagged_photos_are_reviewed_first_the_most_unsafe_first_then_the_least_sure():
    point = OperatingPoint(0.9, (0.3, 0.9))
    scores = np.array([0.1, 0.95, 0.5, 0.99, 0.85, 0.02])
    assert review_loop.review_order(scores, point, reviewed={3}) == [1, 4, 2, 0, 5]


def test_each_unseen_category_is_halved_into_a_stream_and_a_held_back_half(tmp_path):
    proxy = photo_datasets.open_world_proxy(shared_datasets_miniature(tmp_path / "shared"), tmp_path / "proxy")
    split = review_loop.unseen_split(proxy.root, seed=1)
    assert {item.label for item in split.stream} == set(proxy.unseen_categories)
    assert not {item.path for item in split.stream} & {item.path for item in split.held_back}
    assert (len(split.stream), len(split.held_back)) == (2 * len(proxy.unseen_categories), 3 * len(proxy.unseen_categories))


def _history(lookalike_before: float, lookalike_after: float, recall_after: float) -> list[review_loop.RoundFigures]:
    return [review_loop.RoundFigures(0, 0, 0.1, 0.08, 0.4, lookalike_before, 0.7, 0.98, 0.01),
            review_loop.RoundFigures(1, 25, 0.2, 0.02, 0.3, lookalike_after, 0.5, recall_after, 0.02)]


def test_a_seed_s_loop_is_stored_and_reused_until_the_model_or_the_loop_changes(tmp_path, monkeypatch):
    runs = []
    monkeypatch.setattr(review_loop, "simulate", lambda *args, **kwargs: runs.append(kwargs) or _history(0.2, 0.1, 0.97))
    monkeypatch.setattr(review_loop, "load_result", lambda path: SimpleNamespace(data={"fingerprint": "f1"}))
    loop = {"rounds": 1, "per_round": 25, "seed": 2}
    first = review_loop.stored_or_simulated(tmp_path / "m.keras", tmp_path, tmp_path / "out", tmp_path / "results", **loop)
    again = review_loop.stored_or_simulated(tmp_path / "m.keras", tmp_path, tmp_path / "out", tmp_path / "results", **loop)
    assert first == again and len(runs) == 1
    assert review_loop.history_file(tmp_path / "results", 2).exists()
    review_loop.stored_or_simulated(tmp_path / "m.keras", tmp_path, tmp_path / "out", tmp_path / "results",
                                    **{**loop, "per_round": 10})
    monkeypatch.setattr(review_loop, "load_result", lambda path: SimpleNamespace(data={"fingerprint": "f2"}))
    review_loop.stored_or_simulated(tmp_path / "m.keras", tmp_path, tmp_path / "out", tmp_path / "results", **loop)
    assert len(runs) == 3


def test_seeds_table_gives_each_seed_s_before_after_and_change_and_the_summary_an_interval_over_seeds():
    table = review_loop.seeds_table({1: _history(0.2, 0.1, 0.97), 2: _history(0.1, 0.02, 0.98)})
    assert table.loc[1, "look-alikes decided unsafe: after / before"] == 0.5
    assert table.loc[2, "test recall: change"] == 0.0 and table.loc[1, "test recall: change"] == pytest.approx(-0.01)
    summary = review_loop.seeds_summary(table)
    ratio = summary.loc["look-alikes decided unsafe: after / before"]
    assert ratio["mean"] == pytest.approx(0.35) and ratio["95 % low"] < 0.35 < ratio["95 % high"] and ratio["seeds"] == 2

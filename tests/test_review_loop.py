"""Specifications for the simulated review loop of §6.2 (`studies.review_loop`)."""

from __future__ import annotations

import numpy as np
import pytest
from image_corpus import shared_datasets_miniature
from random_weights import random_init

from nsfw_mobilenet.core.configs import final_config
from nsfw_mobilenet.evaluation.operating_point import OperatingPoint
from nsfw_mobilenet.io import photo_datasets
from nsfw_mobilenet.studies import review_loop
from nsfw_mobilenet.training import train


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


@pytest.mark.slow
def test_a_round_of_reviews_fine_tunes_the_model_and_measures_it_again(tmp_path):
    proxy = photo_datasets.open_world_proxy(shared_datasets_miniature(tmp_path / "shared"), tmp_path / "proxy")
    trained = train.run_experiment(random_init(final_config().with_overrides(epochs=1)), proxy.root,
                                   tmp_path / "runs", smoke=True, checkpoint_dir=tmp_path / "checkpoints", verbose=0)
    history = review_loop.simulate(trained.path.with_suffix(".keras"), proxy.root, tmp_path / "loop", rounds=1,
                                   per_round=3, smoke=True, cache_dir=None)
    assert [(figures.round, figures.reviews) for figures in history] == [(0, 0), (1, 3)]
    assert (tmp_path / "loop" / "round_1").is_dir()
    table = review_loop.rounds_table(history)
    assert all(0.0 <= value <= 1.0 for value in table[["unseen_flagged", "lookalike_flagged", "test_recall"]].values.flat)

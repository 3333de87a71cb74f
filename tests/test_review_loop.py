"""Specifications for the simulated review loop of §6.2 (`studies.review_loop`). The loop itself runs end to end in
notebook 09's smoke run (nbval), on the open-world proxy: one round of three reviews."""

from __future__ import annotations

import numpy as np
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

"""Specification of what scan rows say about an exported model: false positives under each app policy (§6.2)."""

import numpy as np
import pytest
import tiny_classifier
from PIL import Image

from nsfw_mobilenet.app import scan_evaluation
from nsfw_mobilenet.evaluation.operating_point import fixed_policies


@pytest.fixture(scope="module")
def tflite_path(classifier, tmp_path_factory):
    return tiny_classifier.export_variant(classifier, tmp_path_factory.mktemp("model"), "float32").path


@pytest.fixture(scope="module")
def harmless(classifier, tmp_path_factory):
    """Four harmless photos: the two the tiny model finds most and least unsafe, twice each."""
    images, _ = tiny_classifier.images(32, seed=3)
    sexual = classifier.predict(tiny_classifier.preprocess(images), verbose=0)[:, 1]
    root = tmp_path_factory.mktemp("harmless")
    for name, index in (("a.png", np.argmin(sexual)), ("b.png", np.argmin(sexual)), ("c.png", np.argmax(sexual)),
                        ("d.png", np.argmax(sexual))):
        Image.fromarray(images[index]).save(root / name)
    return root


def test_false_positives_by_policy_has_the_card_policy_then_each_fixed_policy_per_folder(tflite_path, harmless):
    table = scan_evaluation.false_positives_by_policy(tflite_path, [harmless], num_threads=1)
    assert table.index.names == ["policy", "folder"]
    assert table.index.tolist() == [(policy, harmless.name)
                                    for policy in (scan_evaluation.CARD_POLICY, *fixed_policies())]
    assert (table["images"] == 4).all()
    no_band = table.loc[(list(fixed_policies())[1], harmless.name)]
    assert no_band["review"] == 0 and no_band["unsafe share"] == 0.5

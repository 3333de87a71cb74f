"""Model card specification: a card next to a model is type-checked on load, and its classes agree with labels.txt.
Every card is written at test time."""

import json

import pytest
import tiny_classifier
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import model_card
from nsfw_mobilenet.core import exit_codes

GOOD_POINT = {"threshold": 0.6, "review_band": [0.4, 0.8]}


def card_beside_a_model(folder, card, labels=None):
    (folder / model_card.CARD_FILE).write_text(json.dumps(card))
    if labels is not None:
        (folder / model_card.LABELS_FILE).write_text("\n".join(labels) + "\n")
    return folder / "model.tflite"


@pytest.mark.parametrize("card, field, got", [
    ({"operating_point": {"review_band": [0.4, 0.8]}}, "operating_point.threshold", "nothing (missing)"),
    ({"operating_point": {"threshold": None, "review_band": [0.4, 0.8]}}, "operating_point.threshold", "null"),
    ({"operating_point": {"threshold": "0.5", "review_band": [0.4, 0.8]}}, "operating_point.threshold", '"0.5"'),
    ({"operating_point": {"threshold": 0.5, "review_band": 0.3}}, "operating_point.review_band", "0.3"),
    ({"operating_point": [0.5]}, "operating_point", "[0.5]"),
    ({"classes": "normal sexual"}, "classes", '"normal sexual"'),
    ({"backbone": 3}, "backbone", "3"),
])
def test_a_card_field_of_the_wrong_type_is_one_line_naming_the_field(tmp_path, card, field, got):
    with pytest.raises(ValueError) as raised:
        model_card.read_card(card_beside_a_model(tmp_path, card))
    message = str(raised.value)
    assert f"field `{field}` must be" in message and f"got {got};" in message and "\n" not in message
    assert message.startswith(str(tmp_path / model_card.CARD_FILE))


def test_a_card_that_is_a_json_list_is_not_a_model_card(tmp_path):
    with pytest.raises(ValueError, match="not a model card: a JSON object is expected, got a JSON list"):
        model_card.read_card(card_beside_a_model(tmp_path, [GOOD_POINT]))


def test_a_well_typed_card_gives_its_operating_point(tmp_path):
    card = model_card.read_card(card_beside_a_model(tmp_path, {"operating_point": GOOD_POINT}))
    assert model_card.operating_point_of(card) == model_card.OperatingPoint(0.6, (0.4, 0.8))


def test_labels_that_contradict_the_card_are_an_error_naming_both(tmp_path):
    model = card_beside_a_model(tmp_path, {"classes": ["normal", "sexual"]}, labels=["sexual", "normal"])
    with pytest.raises(ValueError) as raised:
        model_card.read_labels(model)
    assert str(tmp_path / "labels.txt") in str(raised.value) and str(tmp_path / "model_card.json") in str(raised.value)
    agreeing = card_beside_a_model(tmp_path, {"classes": ["normal", "sexual"]}, labels=["normal", "sexual"])
    assert model_card.read_labels(agreeing) == ["normal", "sexual"]


@pytest.mark.parametrize("card, labels", [({"operating_point": {"threshold": None}}, None),
                                          ({"classes": ["normal", "sexual"]}, ["sexual", "normal"])])
def test_scan_reports_a_bad_card_in_one_line_and_exits_2(classifier, tmp_path, capsys, card, labels):
    exported = tiny_classifier.export_variant(classifier, tmp_path, "float32")
    card_beside_a_model(exported.path.parent, card, labels)
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "a.png")
    code = cli.main(["scan", "--quiet", str(tmp_path / "a.png"), "--model", str(exported.path)])
    out, err = capsys.readouterr()
    assert code == exit_codes.EXIT_USAGE and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_benign_folders_rank_the_most_decided_unsafe_first_then_the_most_reviewed():
    shares = {"cups": {"images": 10, "unsafe": 0.0, "review": 0.5, "safe": 0.5},
              "sunflowers": {"images": 10, "unsafe": 0.2, "review": 0.1, "safe": 0.7},
              "chairs": {"images": 10, "unsafe": 0.0, "review": 0.1, "safe": 0.9}}
    card = {"metrics": {"test": {"benign": shares}}}
    assert list(model_card.benign_folders(card)) == ["sunflowers", "cups", "chairs"]
    assert list(model_card.benign_folders(card, worst=2)) == ["sunflowers", "cups"]
    assert model_card.benign_folders({"metrics": {}}) == {}


def test_card_against_goals_says_which_goal_is_missed_and_by_how_much():
    card = {"operating_point": {"target_false_positive_rate": 0.01, "target_recall": 0.99,
                                "test": {"false_positive_rate": 0.02, "recall": 1.0, "decided_automatically": 0.85}}}
    rows = {row["test figure"]: row for row in model_card.card_against_goals(card, review_share=0.10)}
    assert not rows["false-positive rate"]["met"] and rows["false-positive rate"]["missed by"] == pytest.approx(0.01)
    assert rows["recall"]["met"] and rows["recall"]["missed by"] == 0.0
    assert rows["images sent to review"]["measured"] == pytest.approx(0.15)
    assert rows["images sent to review"]["missed by"] == pytest.approx(0.05) and rows["recall"]["goal"] == "at least 99.0%"

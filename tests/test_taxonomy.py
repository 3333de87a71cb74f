import itertools

import pytest

from nsfw_mobilenet.core.taxonomy import (
    BINARY,
    FIVE_CLASS,
    checked_unsafe_classes,
    cross_taxonomy_correct,
    default_unsafe_classes,
    taxonomy_for_classes,
)

# Listing 4.8, written out: for each true class, the predictions that count as errors.
LISTING_4_8_ERRORS = {
    "drawings": {"hentai", "porn", "sexy"},
    "hentai": {"drawings", "neutral", "sexy"},
    "neutral": {"hentai", "porn", "sexy"},
    "porn": {"drawings", "neutral", "sexy"},
    "sexy": {"drawings", "hentai", "neutral", "porn"},
}


def test_classes_are_in_keras_folder_order():
    assert BINARY.classes == ("normal", "sexual")
    assert FIVE_CLASS.classes == ("drawings", "hentai", "neutral", "porn", "sexy")


def test_section_5_1_safe_unsafe_mapping():
    assert [FIVE_CLASS.safety(c) for c in FIVE_CLASS.classes] == ["safe", "unsafe", "safe", "unsafe", "unsafe"]
    assert [BINARY.safety(c) for c in BINARY.classes] == ["safe", "unsafe"]
    assert FIVE_CLASS.unsafe_indices() == [1, 3, 4]


@pytest.mark.parametrize("true, predicted", list(itertools.product(FIVE_CLASS.classes, repeat=2)))
def test_safety_error_matches_listing_4_8_for_all_25_pairs(true, predicted):
    assert FIVE_CLASS.safety_error(true, predicted) == (predicted in LISTING_4_8_ERRORS[true])


def test_binary_safety_error_is_plain_mismatch():
    for true, predicted in itertools.product(BINARY.classes, repeat=2):
        assert BINARY.safety_error(true, predicted) == (true != predicted)


@pytest.mark.parametrize("true", FIVE_CLASS.classes)
def test_two_class_model_on_five_class_test_set_follows_section_5_1(true):
    expected_right = "sexual" if true in {"hentai", "porn", "sexy"} else "normal"
    for predicted in BINARY.classes:
        assert cross_taxonomy_correct(true, FIVE_CLASS, predicted, BINARY) == (predicted == expected_right)


@pytest.mark.parametrize("predicted", FIVE_CLASS.classes)
def test_five_class_model_on_two_class_test_set_counts_sexy_as_unsafe(predicted):
    unsafe = predicted in {"hentai", "porn", "sexy"}
    assert cross_taxonomy_correct("sexual", BINARY, predicted, FIVE_CLASS) == unsafe
    assert cross_taxonomy_correct("normal", BINARY, predicted, FIVE_CLASS) == (not unsafe)


def test_unknown_label_names_the_expected_classes():
    with pytest.raises(KeyError, match="drawings"):
        FIVE_CLASS.index("nude")


def test_taxonomy_is_found_from_folder_names_in_any_order():
    assert taxonomy_for_classes(["sexy", "porn", "neutral", "hentai", "drawings"]) is FIVE_CLASS
    with pytest.raises(ValueError, match="match no taxonomy"):
        taxonomy_for_classes(["daisy", "roses"])


@pytest.mark.parametrize("classes, unsafe", [
    (["normal", "sexual"], ["sexual"]),
    (["drawings", "hentai", "neutral", "porn", "sexy"], ["hentai", "porn", "sexy"]),
    (["roses", "tulips"], ["tulips"]),
    (["cats", "dogs", "hamsters"], ["hamsters"]),
])
def test_unsafe_classes_default_to_the_thesis_rule_else_the_last_folder_as_in_training(classes, unsafe):
    assert default_unsafe_classes(classes) == unsafe


def test_named_unsafe_classes_come_back_in_output_order_and_an_unknown_one_names_the_classes():
    assert checked_unsafe_classes(["roses", "tulips", "daisy"], ["daisy", "roses"]) == ["roses", "daisy"]
    with pytest.raises(ValueError, match=r"unsafe class 'lilies' is not one of the classes \['roses', 'tulips'\]"):
        checked_unsafe_classes(["roses", "tulips"], ["lilies"])

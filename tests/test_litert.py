"""LiteRT specification: a `.tflite` that is not one fixed-size RGB image in, one probability per class out, is
refused on load with a line saying what it is. The odd models are built at test time."""


import pytest
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import export, litert, scan
from nsfw_mobilenet.core import exit_codes


def odd_tflite(folder, input_shape):
    """A two-class softmax over the mean of an input of `input_shape` (None: a dynamic size), as a .tflite."""
    import keras

    inputs = keras.Input(input_shape, batch_size=1)
    pooled = keras.layers.Flatten()(keras.layers.GlobalAveragePooling2D()(inputs)) if len(input_shape) == 3 else inputs
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    folder.mkdir(parents=True)
    path = folder / "model.tflite"
    path.write_bytes(export.convert(model, "float32"))
    (folder / "labels.txt").write_text("normal\nsexual\n")
    return path


@pytest.mark.parametrize("input_shape, described", [
    ((8,), "[1, 8] float32"),
    ((224, 224, 1), "[1, 224, 224, 1] float32"),
    ((None, None, 3), "[1, None, None, 3] float32"),
])
def test_a_tflite_whose_input_is_not_a_fixed_rgb_image_is_refused_saying_what_it_is(tmp_path, capsys,
                                                                                        input_shape, described):
    model = odd_tflite(tmp_path / "odd", input_shape)
    with pytest.raises(litert.UnsupportedModel, match=r"its input is " + described.replace("[", r"\[")
                       .replace("]", r"\]") + r", not one RGB image of a fixed size \[1, H, W, 3\]"):
        litert.LiteRTModel(model)
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "a.png")
    code = cli.main(["scan", "--quiet", str(tmp_path / "a.png"), "--model", str(model)])
    out, err = capsys.readouterr()
    assert code == exit_codes.EXIT_USAGE and out == "" and err.count("\n") == 1 and described in err


def test_an_exported_classifier_passes_the_check(classifier, tmp_path):
    import tiny_classifier

    exported = tiny_classifier.export_variant(classifier, tmp_path, "float32")
    assert litert.LiteRTModel(exported.path).image_size == (tiny_classifier.SIDE, tiny_classifier.SIDE)
    assert scan.Detector(exported.path).classes == tiny_classifier.CLASSES

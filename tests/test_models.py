import pytest

from nsfw_mobilenet.core import backbones, configs
from nsfw_mobilenet.training import models

# The trainable layers for every N used in tables 4.1, 4.5, 4.9 and 4.13 (thesis heads, Keras 2 count).
THESIS_TRAINABLE = {
    "mobilenet_v1": {
        3: {"classifier"}, 4: {"classifier"}, 5: {"classifier"},
        10: {"conv_dw_13", "conv_pw_13", "classifier"}, 11: {"conv_dw_13", "conv_pw_13", "classifier"},
        12: {"conv_pw_12", "conv_dw_13", "conv_pw_13", "classifier"},
        13: {"conv_pw_12", "conv_dw_13", "conv_pw_13", "classifier"},
    },
    "mobilenet_v2": {
        3: {"classifier"}, 4: {"classifier"}, 5: {"classifier"},
        10: {"block_16_project", "Conv_1", "classifier"},
        11: {"block_16_depthwise", "block_16_project", "Conv_1", "classifier"},
    },
    "mobilenet_v3_small": {
        5: {"logits", "classifier"}, 8: {"logits", "classifier"},
        10: {"conv_2", "logits", "classifier"}, 11: {"conv_2", "logits", "classifier"},
        12: {"conv_2", "logits", "classifier"},
    },
    "mobilenet_v3_large": {
        5: {"logits", "classifier"}, 8: {"logits", "classifier"},
        10: {"conv_2", "logits", "classifier"}, 11: {"conv_2", "logits", "classifier"},
    },
}
@pytest.fixture(scope="module", params=sorted(backbones.BACKBONES))
def thesis_model(request):
    return request.param, models.build_classifier(request.param, 2, weights=None)


def test_thesis_n_trains_exactly_the_pinned_layers_and_never_batch_norm(thesis_model):
    name, model = thesis_model
    for n, expected in THESIS_TRAINABLE[name].items():
        assert set(models.freeze_all_but_last(model, name, n)) == expected, f"{name} N={n}"
        assert not any(layer.trainable for layer in model.layers if models.is_batch_norm(layer))
        trainable = {w.path.split("/")[0] for w in model.trainable_weights}
        assert trainable == expected


def test_v3_small_thesis_n10_trains_conv2_logits_and_dense_only():
    model = models.build_classifier("mobilenet_v3_small", 2, weights=None)
    assert models.freeze_all_but_last(model, "mobilenet_v3_small", 10) == ["conv_2", "logits", "classifier"]


def test_thesis_heads_output_two_probabilities(thesis_model):
    name, model = thesis_model
    assert tuple(model.output.shape) == (None, 2)
    assert model.layers[-1].name == models.CLASSIFIER_NAME


def test_listing_4_2_filter_misses_most_v2_batch_norm_layers():
    model = models.build_backbone("mobilenet_v2", weights=None)
    batch_norms = [layer for layer in model.layers if models.is_batch_norm(layer)]
    assert len(models.listing_4_2_misses(model)) > len(batch_norms) // 2


def test_keras2_numbering_matches_real_keras2_models(thesis_model):
    """The mapping is derived from tf_keras (Keras 2, the thesis's TensorFlow), not guessed."""
    tf_keras = pytest.importorskip("tf_keras")
    name, model = thesis_model
    keras2 = _keras2_thesis_model(tf_keras, name)
    for n in THESIS_TRAINABLE[name]:
        keras2_trainable = {_normalise(l.name) for l in keras2.layers[-n:]
                            if l.weights and not models.is_batch_norm(l)}
        keras3_trainable = {_normalise(n3) for n3 in models.freeze_all_but_last(model, name, n)}
        assert keras3_trainable == keras2_trainable, f"{name} N={n}"


def _normalise(layer_name: str) -> str:
    return layer_name.lower().replace("/", "_")


def _keras2_thesis_model(tf_keras, name):
    builder = getattr(tf_keras.applications, backbones.BACKBONES[name].builder)
    base = builder(weights=None)
    layers = tf_keras.layers
    if name == "mobilenet_v1":
        x = layers.Dropout(0.5)(layers.Flatten()(base.layers[-5].output))
    elif name == "mobilenet_v2":
        x = layers.Dropout(0.5)(base.layers[-2].output)
    else:
        x = base.output
    output = layers.Dense(2, activation="softmax", name="classifier")(x)
    model = tf_keras.Model(base.input, output)
    if name == "mobilenet_v1":  # the thesis's V1 had no separate flatten layer
        return _DropLayer(model, "flatten")
    return model


class _DropLayer:
    def __init__(self, model, kind):
        self.layers = [l for l in model.layers if not l.name.startswith(kind)]


def test_v1_v2_heads_read_the_pooled_features_and_v2_is_built_without_its_top():
    """V2's no-top weights file is enough: its heads never read the ImageNet top (issue: no-top files)."""
    v2 = models.build_classifier("mobilenet_v2", 2, weights=None)
    assert not backbones.get_backbone("mobilenet_v2").classifier_needs_top
    assert v2.get_layer(models.CLASSIFIER_NAME).input.shape[-1] == 1280
    assert "predictions" not in {layer.name for layer in v2.layers}
    assert backbones.get_backbone("mobilenet_v3_small").classifier_needs_top  # listing 4.7 reads the softmax


def test_the_freezing_table_names_the_layers_each_n_of_a_table_trains():
    table = models.freezing_table(["4.1"])
    assert set(table["backbone"]) == {"mobilenet_v1"}
    assert table["N (thesis)"].tolist() == sorted({c.trainable_layers for c in configs.table_configs("4.1")})
    assert table.iloc[0]["trainable layers"].endswith(models.CLASSIFIER_NAME)

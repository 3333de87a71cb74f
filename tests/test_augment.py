import numpy as np
import pytest

from nsfw_mobilenet import augment, data, experiments, standin, subsets, train


@pytest.fixture(scope="module")
def photos():
    """64 small uint8 images with texture and mid-range brightness, like photos."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 215, 32, dtype=np.float32)
    base = ramp[None, :, None, None] * np.ones((64, 1, 32, 3), np.float32)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def test_letters_compose_in_a_to_f_order_whatever_the_spelling():
    assert augment.parse_letters("edc") == "CDE"
    assert augment.parse_letters("C + D + E") == "CDE"
    assert augment.parse_letters("AA") == "A"
    assert augment.parse_letters("") == ""
    layers = [type(layer).__name__ for layer in augment.augmentation("FDA").layers]
    assert layers == ["RandomFlip", "GaussianNoise", "RandomZoom"]


def test_all_six_techniques_keep_listing_4_5_parameters():
    flip, rotation, contrast, noise, brightness, zoom = augment.augmentation("ABCDEF", seed=3).layers
    assert flip.mode == "horizontal"
    assert (rotation.factor, rotation.fill_mode) == ((-0.05, 0.05), "constant")
    assert contrast.factor == (0.1, 0.1)  # contrast factor in [0.9, 1.1], as in the thesis's TF 2.x
    assert noise.stddev == 0.2
    assert brightness.factor == (-0.2, 0.2) and list(brightness.value_range) == [0, 255]
    assert (zoom.height_factor, zoom.width_factor, zoom.fill_mode) == (0.2, 0.2, "constant")


def test_unknown_letter_names_the_letter_and_the_valid_techniques():
    with pytest.raises(ValueError, match=r"\['G'\].*A flip.*F zoom"):
        augment.augmentation("ACG")


def test_table_4_17_names_combinations_in_the_thesis_words():
    assert augment.technique_names("CDE") == ["contrast", "gaussian noise", "brightness"]


def test_corrected_order_keeps_v1_inputs_in_minus_one_to_one(photos):
    out = augment.training_pipeline(photos, "mobilenet_v1", "ABCDEF", "corrected")
    assert out.shape == photos.shape
    assert out.min() >= -1.0 - 1e-3 and out.max() <= 1.0 + 1e-2  # noise of 0.2 pixel levels at most


def test_thesis_order_pushes_v1_inputs_out_of_their_range(photos):
    out = augment.training_pipeline(photos, "mobilenet_v1", "E", "thesis")
    assert out.min() >= 0.0  # clipped to RandomBrightness's [0, 255]: the [-1, 0) half is gone
    assert out.max() > 10.0  # a positive shift is meant for [0, 255], not [-1, 1]


def test_v3_inputs_stay_in_pixel_space_in_both_orders(photos):
    for order in data.ORDERS:
        out = augment.training_pipeline(photos, "mobilenet_v3_small", "ABCDEF", order)
        assert out.min() >= 0.0 and out.max() <= 255.0
        assert out.std() > 20


def test_thesis_order_destroys_about_half_of_v1_training_images(photos):
    assert augment.destroyed_fraction(photos, "mobilenet_v1", "ABCDEF", "thesis") > 0.3
    assert augment.destroyed_fraction(photos, "mobilenet_v1", "ABCDEF", "corrected") == 0.0


def test_v3_is_spared_in_both_orders(photos):
    for order in data.ORDERS:
        assert augment.destroyed_fraction(photos, "mobilenet_v3_small", "ABCDEF", order) == 0.0


def test_brightness_alone_is_the_culprit_in_thesis_order(photos):
    assert augment.destroyed_fraction(photos, "mobilenet_v2", "ABCDF", "thesis") == 0.0
    assert augment.destroyed_fraction(photos, "mobilenet_v2", "E", "thesis") > 0.3


def test_a_constant_image_counts_as_destroyed_relative_to_the_value_range():
    batch = np.stack([np.full((4, 4, 3), 0.7), np.linspace(-1, 1, 48).reshape(4, 4, 3)])
    assert augment.constant_images(batch, "mobilenet_v1").tolist() == [True, False]
    assert augment.value_range("mobilenet_v1") == pytest.approx(2.0)
    assert augment.value_range("mobilenet_v3_large") == pytest.approx(255.0)


def test_augmentation_reaches_training_batches_only(monkeypatch, tmp_path):
    run_data = subsets.load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)
    calls = []
    real_make_dataset = data.make_dataset

    def spy(images, labels, *args, **kwargs):
        calls.append((len(images), kwargs.get("augmentation")))
        return real_make_dataset(images, labels, *args, **kwargs)

    monkeypatch.setattr(data, "make_dataset", spy)
    config = experiments.table_configs("4.11")[0].with_overrides(epochs=1, weights=None, batch_size=8)
    train.train(config, run_data, checkpoint_dir=tmp_path, verbose=0)
    sizes = run_data.counts()
    augmented = [size for size, layer in calls if layer is not None]
    plain = [size for size, layer in calls if layer is None]
    assert augmented == [sizes["training"]]
    assert sizes["validation"] in plain  # test images are predicted without augmentation too (inference.predict)


def test_da_tables_have_one_config_per_thesis_row():
    for table in ("4.3", "4.7", "4.11", "4.15", "4.17"):
        configs = experiments.table_configs(table)
        assert [c.row for c in configs] == sorted(experiments.thesis_reference()["tables"][table]["rows"])
        for config in configs:
            thesis = experiments.thesis_row(table, config.row)
            assert config.augmentation == augment.parse_letters(thesis["augmentation"])
            assert config.order == "thesis" and config.optimizer == "sgd"
            assert config.trainable_layers == thesis.get("trainable_layers", 10)  # §4.3: 10 layers for table 4.17
            assert config.backbone == experiments.thesis_reference()["tables"][table]["backbone"]


def test_order_effect_pairs_each_config_s_two_orders_and_measures_their_gap():
    def result(order, history, test):
        return {"config": {"table": "4.11", "row": 1, "backbone": "mobilenet_v3_small", "order": order},
                "history": {"val_accuracy": history}, "final": {"val_accuracy": history[-1]},
                "test": {"accuracy": test}}

    same = train.order_effect([result("thesis", [0.5, 0.8], 0.7), result("corrected", [0.5, 0.8], 0.7)])
    assert same.loc[0, "largest per-epoch val. gap"] == 0.0
    apart = train.order_effect([result("thesis", [0.5, 0.3], 0.3), result("corrected", [0.6, 0.9], 0.9)])
    assert apart.loc[0, "largest per-epoch val. gap"] == pytest.approx(0.6)
    assert train.order_effect([result("thesis", [0.5], 0.5)]).empty  # one order alone is no comparison

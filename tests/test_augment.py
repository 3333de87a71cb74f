import numpy as np
import pytest
from random_weights import random_init
from scipy import stats

from nsfw_mobilenet.core.configs import table_configs, thesis_reference, thesis_row
from nsfw_mobilenet.io import input_pipeline, standin
from nsfw_mobilenet.io.run_data import load_run_data
from nsfw_mobilenet.training import augment, train


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
    layers = [type(layer).__name__ for layer in augment.keras_augmentation("FDA").layers]
    assert layers == ["RandomFlip", "GaussianNoise", "RandomZoom"]
    assert augment.augmentation("FDA").letters == "ADF"


def test_all_six_techniques_keep_listing_4_5_parameters():
    flip, rotation, contrast, noise, brightness, zoom = augment.keras_augmentation("ABCDEF", seed=3).layers
    assert flip.mode == "horizontal"
    assert (rotation.factor, rotation.fill_mode) == ((-0.05, 0.05), "constant")
    assert contrast.factor == (0.1, 0.1)  # contrast factor in [0.9, 1.1], as in the thesis's TF 2.x
    assert noise.stddev == 0.2
    assert brightness.factor == (-0.2, 0.2) and list(brightness.value_range) == [0, 255]
    assert (zoom.height_factor, zoom.width_factor, zoom.fill_mode) == (0.2, 0.2, "constant")


def test_unknown_letter_names_the_letter_and_the_valid_techniques():
    with pytest.raises(ValueError, match=r"\['G'\].*A flip.*F zoom"):
        augment.augmentation("ACG")
    with pytest.raises(ValueError, match=r"\['G'\]"):
        augment.keras_augmentation("ACG")


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
    for order in input_pipeline.ORDERS:
        out = augment.training_pipeline(photos, "mobilenet_v3_small", "ABCDEF", order)
        assert out.min() >= 0.0 and out.max() <= 255.0
        assert out.std() > 20


def test_thesis_order_destroys_about_half_of_v1_training_images(photos):
    assert augment.destroyed_fraction(photos, "mobilenet_v1", "ABCDEF", "thesis") > 0.3
    assert augment.destroyed_fraction(photos, "mobilenet_v1", "ABCDEF", "corrected") == 0.0


def test_v3_is_spared_in_both_orders(photos):
    for order in input_pipeline.ORDERS:
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
    run_data = load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)
    calls = []
    real_make_dataset = input_pipeline.make_dataset

    def spy(images, labels, *args, **kwargs):
        calls.append((len(images), kwargs.get("augmentation")))
        return real_make_dataset(images, labels, *args, **kwargs)

    monkeypatch.setattr(input_pipeline, "make_dataset", spy)
    config = random_init(table_configs("4.11")[0].with_overrides(epochs=1, batch_size=8))
    train.train(config, run_data, checkpoint_dir=tmp_path, verbose=0)
    sizes = run_data.counts()
    augmented = [size for size, layer in calls if layer is not None]
    plain = [size for size, layer in calls if layer is None]
    assert augmented == [sizes["training"]]
    assert sizes["validation"] in plain  # test images are predicted without augmentation too (inference.predict)
    assert isinstance(calls[0][1], augment.FusedAugmentation)  # what training uses unless told otherwise


def test_training_with_the_reference_layers_is_one_argument_away(tmp_path):
    run_data = load_run_data(standin.ensure_standin() / "binary", smoke=True, progress=False)
    built = []

    def layers(letters, seed=None):
        built.append(letters)
        return augment.keras_augmentation(letters, seed=seed)

    config = random_init(table_configs("4.11")[0].with_overrides(epochs=1, batch_size=8))
    train.train(config, run_data, checkpoint_dir=tmp_path, verbose=0, augmentation_builder=layers)
    assert built == [config.augmentation]


def test_da_tables_have_one_config_per_thesis_row():
    for table in ("4.3", "4.7", "4.11", "4.15", "4.17"):
        configs = table_configs(table)
        assert [c.row for c in configs] == sorted(thesis_reference()["tables"][table]["rows"])
        for config in configs:
            thesis = thesis_row(table, config.row)
            assert config.augmentation == augment.parse_letters(thesis["augmentation"])
            assert config.order == "thesis" and config.optimizer == "sgd"
            assert config.trainable_layers == thesis.get("trainable_layers", 10)  # §4.3: 10 layers for table 4.17
            assert config.backbone == thesis_reference()["tables"][table]["backbone"]



# --- The fused op against listing 4.5's Keras layers -------------------------------------------
SIDE = 48  # of the constructed images below
DRAWS = 400  # images per distribution comparison


def coordinate_images(count: int) -> np.ndarray:
    """Red = x + 50, green = y + 50, blue = 100: bilinear sampling reproduces a linear image exactly,
    so each output pixel tells where it was sampled, and blue < 100 marks the filled gaps."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    return np.repeat(np.stack([x + 50, y + 50, np.full_like(x, 100)], axis=-1)[None], count, axis=0)


def sampling_parameters(out: np.ndarray) -> dict[str, np.ndarray]:
    """Per image, the flip, angle (degrees) and zoom factors of the map output → input, fitted by
    least squares on the pixels sampled wholly inside the image."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    points = np.stack([x.ravel(), y.ravel(), np.ones(SIDE * SIDE)], axis=1)
    rows = {"flipped": [], "angle": [], "zoom_x": [], "zoom_y": []}
    for image in np.asarray(out, np.float64):
        inside = np.abs(image[..., 2] - 100).ravel() < 1e-3
        source = image[..., :2].reshape(-1, 2)[inside] - 50
        linear = np.linalg.lstsq(points[inside], source, rcond=None)[0][:2].T  # 2×2: [[a0, a1], [b0, b1]]
        sign = np.sign(np.linalg.det(linear))
        rows["flipped"].append(sign < 0)
        rows["angle"].append(np.degrees(np.arctan2(linear[1, 0], sign * linear[0, 0])))
        rows["zoom_x"].append(np.linalg.norm(linear[:, 0]))
        rows["zoom_y"].append(np.linalg.norm(linear[:, 1]))
    return {name: np.array(values) for name, values in rows.items()}


def ramp_images(count: int) -> np.ndarray:
    """Values 80–175, far enough from 0 and 255 that contrast and brightness never clip."""
    ramp = np.linspace(80, 175, SIDE * SIDE * 3, dtype=np.float32).reshape(SIDE, SIDE, 3)
    return np.repeat(ramp[None], count, axis=0)


def photometric_parameters(inputs: np.ndarray, out: np.ndarray) -> dict[str, np.ndarray]:
    """Per image, the contrast factor (slope of output on input), brightness shift and noise std."""
    flat_in = inputs.reshape(len(inputs), -1).astype(np.float64)
    flat_out = np.asarray(out, np.float64).reshape(len(out), -1)
    centred_in = flat_in - flat_in.mean(axis=1, keepdims=True)
    factor = (centred_in * flat_out).sum(axis=1) / (centred_in ** 2).sum(axis=1)
    residual = flat_out - flat_out.mean(axis=1, keepdims=True) - factor[:, None] * centred_in
    return {"factor": factor, "shift": flat_out.mean(axis=1) - flat_in.mean(axis=1), "noise_std": residual.std(axis=1)}


def same_distribution(a: np.ndarray, b: np.ndarray) -> bool:
    from scipy.stats import ks_2samp

    return ks_2samp(a, b).pvalue > 0.01


@pytest.mark.parametrize("letters", ["A", "B", "C", "D", "E", "F", "CDE"])
def test_fused_op_draws_what_the_keras_layers_draw_for_the_same_seed(photos, letters):
    batch = photos.astype(np.float32)
    fused = np.asarray(augment.augmentation(letters, seed=7)(batch))
    layers = np.asarray(augment.keras_augmentation(letters, seed=7)(batch, training=True))
    np.testing.assert_allclose(fused, layers, atol=1e-3)


def test_one_composed_transform_samples_where_flip_rotation_and_zoom_chained_sample():
    images = coordinate_images(64)
    fused = sampling_parameters(augment.augmentation("ABF", seed=3)(images))
    layers = sampling_parameters(augment.keras_augmentation("ABF", seed=3)(images, training=True))
    assert (fused["flipped"] == layers["flipped"]).all()
    for name in ("angle", "zoom_x", "zoom_y"):
        np.testing.assert_allclose(fused[name], layers[name], atol=1e-3)


def test_flip_rotation_and_zoom_keep_the_layers_distributions_and_ranges():
    images = coordinate_images(DRAWS)
    fused = sampling_parameters(augment.augmentation("ABF", seed=1)(images))
    layers = sampling_parameters(augment.keras_augmentation("ABF", seed=2)(images, training=True))
    for sample in (fused, layers):
        assert 0.4 < sample["flipped"].mean() < 0.6
        assert np.abs(sample["angle"]).max() <= 18.0 + 1e-3 and np.abs(sample["angle"]).max() > 17.0  # 0.05 turn
        for axis in ("zoom_x", "zoom_y"):
            assert 0.8 - 1e-4 <= sample[axis].min() < 0.82 and 1.18 < sample[axis].max() <= 1.2 + 1e-4
        assert abs(np.corrcoef(sample["zoom_x"], sample["zoom_y"])[0, 1]) < 0.2  # each axis on its own
    for name in ("angle", "zoom_x", "zoom_y"):
        assert same_distribution(fused[name], layers[name]), name


def test_contrast_noise_and_brightness_keep_the_layers_distributions_and_ranges():
    images = ramp_images(DRAWS)
    fused = photometric_parameters(images, augment.augmentation("CDE", seed=1)(images))
    layers = photometric_parameters(images, augment.keras_augmentation("CDE", seed=2)(images, training=True))
    for sample in (fused, layers):
        assert 0.9 - 1e-3 <= sample["factor"].min() < 0.91 and 1.09 < sample["factor"].max() <= 1.1 + 1e-3
        assert -51.1 <= sample["shift"].min() < -49 and 49 < sample["shift"].max() <= 51.1  # ±0.2 · 255
        assert sample["noise_std"].mean() == pytest.approx(0.2, abs=0.005)
    for name in ("factor", "shift"):
        assert same_distribution(fused[name], layers[name]), name


def test_each_technique_draws_independently():
    images = ramp_images(DRAWS)
    drawn = photometric_parameters(images, augment.augmentation("CE", seed=4)(images))
    assert abs(np.corrcoef(drawn["factor"], drawn["shift"])[0, 1]) < 0.15  # one seed each, not shared


def test_gaps_opened_by_rotation_and_zoom_are_exactly_zero_whatever_the_brightness():
    images = np.full((32, SIDE, SIDE, 3), 200.0, np.float32)
    out = np.asarray(augment.augmentation("ABCDEF", seed=5)(images))
    # A fresh op with the same seed draws the same matrices: where each output pixel was sampled.
    matrix = np.asarray(augment.augmentation("ABCDEF", seed=5).output_to_input(images.shape))
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    source = np.einsum("nij,hwj->nhwi", matrix, np.stack([x, y, np.ones_like(x)], axis=-1))
    outside = ((source[..., :2] < -1) | (source[..., :2] > SIDE)).any(axis=-1)
    inside = ((source[..., :2] >= 0) & (source[..., :2] <= SIDE - 1)).all(axis=-1)
    assert outside.any() and (out[outside] == 0).all()
    assert out[inside].min() > 140  # 200 shifted by at most 51, contrast and noise aside


def test_outputs_stay_in_pixel_range_as_the_layers_clip_them(photos):
    bright = np.full((16, 32, 32, 3), 254.0, np.float32)
    for batch in (photos.astype(np.float32), bright):
        out = np.asarray(augment.augmentation("ABCDEF", seed=6)(batch))
        assert out.min() >= 0.0 and out.max() <= 255.0 + 1e-3  # bilinear weights sum to 1 up to rounding
    assert (np.asarray(augment.augmentation("E", seed=6)(bright)) == 255.0).any()  # clipped, not 254 + 51


def test_no_letters_and_inference_leave_the_batch_unchanged(photos):
    batch = photos.astype(np.float32)
    assert np.array_equal(augment.augmentation("")(batch), batch)
    assert np.array_equal(augment.augmentation("ABCDEF", seed=1)(batch, training=False), batch)


def test_a_seed_gives_the_same_batch_and_another_seed_another(photos):
    batch = photos.astype(np.float32)
    first, again, other = (np.asarray(augment.augmentation("ABCDEF", seed=s)(batch)) for s in (1, 1, 2))
    assert np.array_equal(first, again) and not np.allclose(first, other)


def test_thesis_order_destroys_the_same_v1_images_with_the_fused_op_as_with_the_layers(photos):
    preprocessed = input_pipeline.preprocess_for("mobilenet_v1")(photos.astype(np.float32))  # listing 4.5's order

    def destroyed(build):
        return augment.constant_images(np.asarray(build("ABCDEF", seed=3)(preprocessed, training=True)), "mobilenet_v1")

    fused, layers = destroyed(augment.augmentation), destroyed(augment.keras_augmentation)
    assert fused.mean() > 0.3 and np.array_equal(fused, layers)


def test_training_in_thesis_order_destroys_about_as_many_images_with_batch_seeded_draws(photos):
    layers = augment.constant_images(np.asarray(augment.keras_augmentation("ABCDEF", seed=3)(
        input_pipeline.preprocess_for("mobilenet_v1")(photos.astype(np.float32)), training=True)), "mobilenet_v1")
    trained = augment.constant_images(augment.training_pipeline(photos, "mobilenet_v1", "ABCDEF", "thesis", seed=3),
                                      "mobilenet_v1")
    assert abs(trained.mean() - layers.mean()) < 0.2  # other draws, same distributions


def test_training_batches_are_the_same_in_every_run_and_new_in_every_epoch():
    images = np.random.default_rng(0).integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(24) % 2

    def two_epochs():
        dataset = input_pipeline.make_dataset(images, labels, 2, "mobilenet_v3_small", batch_size=8, shuffle=True, seed=3,
                                    augmentation=augment.augmentation("ABCDEF", seed=3))
        return [np.concatenate([batch.numpy() for batch, _ in dataset]) for _ in range(2)]

    first_run, second_run = two_epochs(), two_epochs()
    np.testing.assert_array_equal(first_run[0], second_run[0])
    np.testing.assert_array_equal(first_run[1], second_run[1])
    assert not np.array_equal(first_run[0], first_run[1])


def test_batch_seeded_draws_keep_the_layers_distributions():
    batch = np.full((400, 8, 8, 3), 128.0, np.float32)
    fused = augment.augmentation("E", seed=1)
    shifted = np.asarray(fused.with_batch_seed(batch, np.array([1, 7], np.int64)))[:, 0, 0, 0] - 128.0
    limit = augment.BRIGHTNESS_FACTOR * 255
    assert shifted.min() >= -limit and shifted.max() <= limit
    assert stats.kstest(shifted, stats.uniform(-limit, 2 * limit).cdf).pvalue > 0.01
    noise = np.asarray(augment.augmentation("D").with_batch_seed(batch, np.array([1, 8], np.int64))) - 128.0
    assert noise.std() == pytest.approx(augment.NOISE_STDDEV, rel=0.05)

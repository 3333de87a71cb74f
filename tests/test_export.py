"""Export specification: every variant runs in LiteRT, agrees with Keras and ships its labels and card."""

import json

import numpy as np
import pytest
import tiny_classifier
from run_result_factory import result_dict

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import export, model_card, scan_evaluation
from nsfw_mobilenet.app.litert import LiteRTModel
from nsfw_mobilenet.evaluation.operating_point import DEFAULT_OPERATING_POINT
from nsfw_mobilenet.io.input_pipeline import preprocess_for

# Measured on the tiny classifier's 64-image batch: all variants agree on 100%; the bar is 99%.
MIN_TOP1_AGREEMENT = export.AGREEMENT_TARGET
MAX_PROBABILITY_DIFF = {"float32": 1e-4, "float16": 5e-3, "dynamic_range": 2e-2, "int8": 5e-2}


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export")
    calibration, _ = tiny_classifier.images(32, seed=1)
    return export.export_variants(classifier, out_dir, export.VARIANTS, classes=tiny_classifier.CLASSES,
                                  pixel_scaling=tiny_classifier.PIXEL_SCALING, representative_images=calibration,
                                  model_card={"backbone": "tiny", "training_data": "colour gradients"})


@pytest.fixture(scope="module")
def parity(classifier, exported):
    images, labels = tiny_classifier.images(64, seed=2)
    rows = export.parity_report(classifier, {v: e.path for v, e in exported.items()}, images, labels,
                                "mobilenet_v1", num_threads=1)
    return {row.variant: row for row in rows}


@pytest.mark.parametrize("variant", export.VARIANTS)
def test_every_variant_loads_in_litert_and_agrees_with_keras(parity, variant):
    row = parity[variant]
    assert row.top1_agreement >= MIN_TOP1_AGREEMENT
    assert row.max_abs_probability_diff <= MAX_PROBABILITY_DIFF[variant]
    assert row.accuracy == pytest.approx(row.keras_accuracy, abs=1 - MIN_TOP1_AGREEMENT)


def test_export_variants_writes_one_folder_per_variant_named_after_it(exported):
    assert list(exported) == list(export.VARIANTS)
    assert all(e.variant == v and e.path.parent.name == v and e.path.name == export.MODEL_FILE
               for v, e in exported.items())


def test_exported_models_take_raw_pixels_uint8_for_int8_and_float_otherwise(exported):
    dtypes = {v: LiteRTModel(e.path).interpreter.get_input_details()[0]["dtype"] for v, e in exported.items()}
    assert dtypes == {"float32": np.float32, "float16": np.float32, "dynamic_range": np.float32, "int8": np.uint8}


def test_exported_models_have_a_fixed_batch_of_one(exported):
    batches = {v: LiteRTModel(e.path).interpreter.get_input_details()[0]["shape_signature"][0] for v, e in exported.items()}
    assert batches == {variant: 1 for variant in export.VARIANTS}


def test_a_flattening_head_converts_without_run_time_shape_ops_xnnpack_leaves_out(tmp_path):
    import keras

    inputs = keras.Input(shape=(8, 8, 3))
    features = keras.layers.Reshape((-1,))(keras.layers.Conv2D(4, 3, strides=2)(inputs))
    path = tmp_path / export.MODEL_FILE
    path.write_bytes(export.convert(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features)), "float32"))
    assert not op_names(path) & {"SHAPE", "STRIDED_SLICE", "PACK"}


def test_export_writes_labels_and_a_model_card_an_app_developer_can_follow(exported):
    int8 = exported["int8"]
    assert int8.labels_path.read_text().split() == tiny_classifier.CLASSES
    card = json.loads(int8.card_path.read_text())
    assert card["classes"] == tiny_classifier.CLASSES and card["unsafe_classes"] == ["sexual"]
    assert card["input"]["shape"] == [1, tiny_classifier.SIDE, tiny_classifier.SIDE, 3]
    assert card["input"]["dtype"] == "uint8"
    assert "baked into the graph" in card["preprocessing"]
    assert card["operating_point"]["review_band"] == list(DEFAULT_OPERATING_POINT.review_band)
    assert card["operating_point"]["chosen_on"] is None and card["calibration"] is None
    assert card["training_data"] == "colour gradients" and card["backbone"] == "tiny"
    assert card["size_bytes"] == int8.path.stat().st_size
    assert {"tensorflow", "keras", "ai_edge_litert", "nsfw_mobilenet"} <= set(card["versions"])
    assert "XNNPACK" in card["hard_swish"] and "hard_swish" not in json.loads(exported["float32"].card_path.read_text())
    assert "# Model card: tiny (int8)" in int8.card_markdown_path.read_text()


def test_parity_reports_top1_agreement_of_every_variant_with_float32(parity):
    assert parity["float32"].float32_agreement == 1.0
    assert parity["int8"].float32_agreement >= export.AGREEMENT_TARGET


def test_parity_without_a_float32_export_has_no_float32_agreement(classifier, exported):
    images, labels = tiny_classifier.images(4, seed=2)
    [row] = export.parity_report(classifier, {"int8": exported["int8"].path}, images, labels, "mobilenet_v1")
    assert row.float32_agreement is None and "| – |" in export.parity_markdown([row])


def test_parity_markdown_has_one_row_per_variant_and_marks_agreement_below_the_target(parity):
    table = export.parity_markdown(list(parity.values()))
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == list(export.VARIANTS)
    assert "✗" not in table and "✗" in export.parity_markdown(list(parity.values()), target=1.01)


@pytest.mark.parametrize("backbone", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"])
def test_baked_pixel_scaling_equals_the_backbones_preprocess_input(backbone):
    pixels = np.linspace(0, 255, 24, dtype=np.float32).reshape(2, 2, 2, 3)
    scaling = export.pixel_scaling_for(backbone)
    baked = pixels if scaling is None else pixels * scaling[0] + scaling[1]
    np.testing.assert_allclose(baked, preprocess_for(backbone)(pixels.copy()), atol=1e-6)


def test_int8_export_without_representative_images_is_refused(classifier, tmp_path):
    with pytest.raises(ValueError, match="representative_images"):
        export.export_tflite(classifier, tmp_path, "int8", classes=tiny_classifier.CLASSES, pixel_scaling=None)


def test_class_count_must_match_the_model_outputs(classifier, tmp_path):
    with pytest.raises(ValueError, match="2 outputs but 5 classes"):
        export.export_tflite(classifier, tmp_path, "float32", classes=list("abcde"), pixel_scaling=None)


def test_labels_are_read_from_the_model_card_when_labels_txt_is_missing(exported, tmp_path):
    (tmp_path / model_card.CARD_FILE).write_text(exported["float32"].card_path.read_text())
    assert model_card.read_labels(tmp_path / export.MODEL_FILE) == tiny_classifier.CLASSES
    assert model_card.read_labels(tmp_path / "elsewhere" / export.MODEL_FILE) is None


def op_names(path):
    interpreter = LiteRTModel(path).interpreter
    return {op["op_name"] for op in interpreter._get_ops_details()}


def test_int8_keeps_hard_swish_in_float_where_xnnpack_runs_it(exported):
    interpreter = LiteRTModel(exported["int8"].path).interpreter
    tensors = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    hard_swish = [op for op in interpreter._get_ops_details() if op["op_name"] == "HARD_SWISH"]
    assert hard_swish and all(tensors[op["outputs"][0]] == np.float32 for op in hard_swish)


def test_int8_with_float_multiplications_keeps_uint8_input_and_runs_every_mul_in_float(classifier, tmp_path):
    calibration, _ = tiny_classifier.images(16, seed=1)
    exported = export.export_tflite(classifier, tmp_path, "int8", classes=tiny_classifier.CLASSES,
                                    pixel_scaling=tiny_classifier.PIXEL_SCALING, representative_images=calibration,
                                    float_ops=export.INT8_FLOAT_MULTIPLICATIONS)
    model = LiteRTModel(exported.path)
    tensors = {t["index"]: t["dtype"] for t in model.interpreter.get_tensor_details()}
    muls = [op for op in model.interpreter._get_ops_details() if op["op_name"] == "MUL"]
    assert model._input["dtype"] == np.uint8
    assert muls and all(tensors[op["outputs"][0]] == np.float32 for op in muls)
    images, labels = tiny_classifier.images(32, seed=2)
    row = export.parity_report(classifier, {"int8": exported.path}, images, labels, "mobilenet_v1")[0]
    assert row.top1_agreement >= MIN_TOP1_AGREEMENT
    assert json.loads(exported.card_path.read_text())["float_ops"] == ["MUL"]


def test_float_ops_apply_to_int8_only(classifier):
    with pytest.raises(ValueError, match="int8"):
        export.convert(classifier, "float16", float_ops=export.INT8_FLOAT_MULTIPLICATIONS)


def write_image_folder(root, images, labels):
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / tiny_classifier.CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def exported_with_evidence(classifier, tmp_path_factory):
    """`nsfw-mobilenet export --data --benign` of the tiny classifier: train/ (40), test/ (24), harmless (6)."""
    from nsfw_mobilenet import cli

    root = tmp_path_factory.mktemp("evidence")
    write_image_folder(root / "data" / "train", *tiny_classifier.images(40, seed=5))
    write_image_folder(root / "data" / "test", *tiny_classifier.images(24, seed=7))
    harmless, _ = tiny_classifier.images(12, seed=8)
    write_image_folder(root / "harmless_parent", harmless[::2], np.zeros(6, int))  # only "normal"-like gradients
    classifier.save(root / "tiny.keras")
    code = cli.main(["export", "--model", str(root / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--out", str(root / "out"), "--variants", "float32", "int8", "--data", str(root / "data"),
                     "--benign", str(root / "harmless_parent" / "normal")])
    assert code == 0
    return root


def card_of(root, variant):
    return json.loads((root / "out" / variant / model_card.CARD_FILE).read_text())


def test_export_command_writes_the_variants_calibrated_on_the_data_folder(exported_with_evidence):
    root = exported_with_evidence
    images, labels = tiny_classifier.images(8, seed=9)
    lite = LiteRTModel(root / "out" / "int8" / export.MODEL_FILE)
    assert lite.predict(images).argmax(axis=1).tolist() == labels.tolist()
    assert model_card.read_labels(root / "out" / "float32" / export.MODEL_FILE) == tiny_classifier.CLASSES


def test_card_carries_the_temperature_fitted_on_validation_data_and_its_ece(exported_with_evidence):
    calibration = card_of(exported_with_evidence, "int8")["calibration"]
    assert calibration["temperature"] > 0 and calibration["bins"] == 15
    assert calibration["ece_after"] <= calibration["ece_before"]
    assert "validation split" in calibration["fitted_on"] and "inside the graph" in calibration["applied"]


def test_card_carries_the_operating_point_chosen_for_the_targets_with_validation_and_test_figures(
        exported_with_evidence):
    point = card_of(exported_with_evidence, "int8")["operating_point"]
    assert point["target_false_positive_rate"] == 0.01 and point["target_recall"] == 0.99
    assert point["review_band"][1] == point["threshold"] and point["review_band"][0] <= point["threshold"]
    assert point["validation"]["false_positive_rate"] <= 0.01 and point["validation"]["recall"] >= 0.99
    assert point["test"]["images"] == 24
    assert set(point["test"]) >= {"recall", "false_positive_rate", "decided_automatically",
                                  "error_rate_of_automatic_decisions", "decisions"}


def test_card_test_metrics_hold_accuracy_per_class_figures_auc_confusion_agreement_and_harmless_rate(
        exported_with_evidence):
    test = card_of(exported_with_evidence, "int8")["metrics"]["test"]
    assert test["accuracy"] > 0.9 and test["roc_auc"] > 0.9
    assert set(test["per_class"]) == set(tiny_classifier.CLASSES)
    assert np.sum(test["confusion_matrix"]) == 24
    assert test["float32_top1_agreement"] >= MIN_TOP1_AGREEMENT
    assert test["benign"]["normal"]["images"] == 6
    assert sum(test["benign"]["normal"][d] for d in ("safe", "review", "unsafe")) == pytest.approx(1.0)
    assert "float32_top1_agreement" not in card_of(exported_with_evidence, "float32")["metrics"]["test"]


def test_scanning_the_test_folder_with_no_flags_reproduces_the_card_test_figures(exported_with_evidence, capsys):
    import csv
    import io

    from nsfw_mobilenet import cli

    root = exported_with_evidence
    card = card_of(root, "int8")
    code = cli.main(["scan", "--quiet", str(root / "data" / "test"), "--model", str(root / "out" / "int8" / export.MODEL_FILE)])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code in (0, 1) and len(rows) == 24
    counted = {side: {d: 0 for d in ("safe", "review", "unsafe")} for side in ("safe", "unsafe")}
    for row in rows:
        counted["unsafe" if "/sexual/" in row["path"] else "safe"][row["decision"]] += 1
    assert counted == card["operating_point"]["test"]["decisions"]
    confusion = scan_evaluation.scan_confusion(rows, root / "data" / "test", tiny_classifier.CLASSES)
    assert scan_evaluation.decisions_by_side(confusion, tiny_classifier.CLASSES) == counted
    assert {float(row["threshold"]) for row in rows} == {card["operating_point"]["threshold"]}
    assert {(float(row["review_low"]), float(row["review_high"])) for row in rows} == {
        tuple(card["operating_point"]["review_band"])}


def test_model_card_markdown_has_the_usual_sections_generated_from_the_json(exported_with_evidence):
    text = (exported_with_evidence / "out" / "int8" / model_card.CARD_MARKDOWN_FILE).read_text()
    for section in ("Model details", "Intended use", "Out-of-scope uses", "Training and evaluation data", "Metrics",
                    "Calibration", "Operating point", "Limitations", "Ethical considerations"):
        assert f"## {section}" in text
    assert f"{card_of(exported_with_evidence, 'int8')['calibration']['temperature']:.3f}" in text


def test_export_command_refuses_a_target_outside_its_range_in_one_line(exported_with_evidence, capsys):
    from nsfw_mobilenet import cli

    root = exported_with_evidence
    code = cli.main(["export", "--model", str(root / "tiny.keras"), "--backbone", "mobilenet_v1", "--out",
                     str(root / "refused"), "--variants", "float32", "--data", str(root / "data"),
                     "--target-false-positive-rate", "1.5"])
    err = capsys.readouterr().err
    assert code == 2 and "target false-positive rate 1.5 must be within [0, 1)" in err and err.count("\n") == 1


def test_export_command_refuses_int8_without_calibration_data(classifier, tmp_path, capsys):
    from nsfw_mobilenet import cli

    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--out", str(tmp_path / "out")])
    assert code == 2 and "--data" in capsys.readouterr().err


def test_export_command_refuses_harmless_folders_without_the_data_that_chooses_the_operating_point(
        classifier, tmp_path, capsys):
    from nsfw_mobilenet import cli

    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--out", str(tmp_path / "out"), "--variants", "float32", "--benign", str(tmp_path)])
    assert code == 2 and "--benign is measured at the operating point chosen on --data" in capsys.readouterr().err


# ---------------------------------------------------------------- quiet native stderr (notebooks store it)


def test_int8_export_writes_nothing_to_native_stderr(classifier, tmp_path, capfd):
    calibration, _ = tiny_classifier.images(8, seed=1)
    capfd.readouterr()
    tiny_classifier.export_variant(classifier, tmp_path, "int8", representative_images=calibration)
    assert "fully_quantize" not in capfd.readouterr().err


def test_tensorflow_and_litert_start_without_native_log_lines(exported):
    import subprocess
    import sys

    code = ("import sys; from nsfw_mobilenet.core import native_output; native_output.import_tensorflow_quietly(); "
            "from nsfw_mobilenet.app.litert import LiteRTModel; LiteRTModel(sys.argv[1])")
    completed = subprocess.run([sys.executable, "-c", code, str(exported["int8"].path)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "InitializeLog" not in completed.stderr and "XNNPACK" not in completed.stderr


def test_model_card_names_the_weights_from_the_results_beside_the_model(tmp_path):
    model = tmp_path / "table_4.9_row_01.keras"
    assert export.trained_from(model).startswith("unknown")
    model.with_suffix(".json").write_text(json.dumps(result_dict(weights="ImageNet (dequantized from TFLite)")))
    assert export.trained_from(model) == "ImageNet (dequantized from TFLite)"


def test_export_also_says_a_text_file_named_keras_is_not_a_keras_model(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code = cli.main(["export", "--model", str(fake), "--backbone", "mobilenet_v1", "--out", str(tmp_path / "out"),
                     "--variants", "float32"])
    err = capsys.readouterr().err
    assert code == 2 and "not a Keras model file" in err and "not found" not in err.lower()

"""Export specification: every variant runs in LiteRT, agrees with Keras and ships its labels and card."""

import json

import numpy as np
import pytest
import tiny_classifier
from run_result_factory import result_dict

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import card_evidence, export, export_command, model_card, scan_evaluation
from nsfw_mobilenet.app.litert import LiteRTModel
from nsfw_mobilenet.app.parity import decision_agreements, parity_markdown, parity_report
from nsfw_mobilenet.evaluation.operating_point import DEFAULT_OPERATING_POINT, OperatingPoint
from nsfw_mobilenet.io.input_pipeline import preprocess_for

# Measured on the tiny classifier's 64-image batch: all variants agree on 100%; the bar is 99%.
MIN_TOP1_AGREEMENT = model_card.AGREEMENT_TARGET
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
    rows = parity_report(classifier, {v: e.path for v, e in exported.items()}, images, labels,
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
    assert parity["int8"].float32_agreement >= model_card.AGREEMENT_TARGET


def test_parity_without_a_float32_export_has_no_float32_agreement(classifier, exported):
    images, labels = tiny_classifier.images(4, seed=2)
    [row] = parity_report(classifier, {"int8": exported["int8"].path}, images, labels, "mobilenet_v1")
    assert row.float32_agreement is None and "| – |" in parity_markdown([row])


def test_parity_markdown_has_one_row_per_variant_and_marks_agreement_below_the_target(parity):
    table = parity_markdown(list(parity.values()))
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == list(export.VARIANTS)
    assert "✗" not in table and "✗" in parity_markdown(list(parity.values()), target=1.01)


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
    row = parity_report(classifier, {"int8": exported.path}, images, labels, "mobilenet_v1")[0]
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


def test_card_gives_precision_and_review_load_at_the_default_prevalences_from_the_test_rates(exported_with_evidence):
    point = card_of(exported_with_evidence, "int8")["operating_point"]
    assert [row["prevalence"] for row in point["at_prevalence"]] == [0.01, 0.05, 0.2]
    assert point["at_prevalence_from"] == "test"
    review = [row["sent_to_review"] for row in point["at_prevalence"]]
    text = (exported_with_evidence / "out" / "int8" / model_card.CARD_MARKDOWN_FILE).read_text()
    assert "| 1.0% |" in text and "precision of unsafe decisions" in text and len(review) == 3


def test_card_test_metrics_hold_accuracy_per_class_figures_auc_confusion_agreement_and_harmless_rate(
        exported_with_evidence):
    test = card_of(exported_with_evidence, "int8")["metrics"]["test"]
    assert test["accuracy"] > 0.9 and test["roc_auc"] > 0.9
    assert set(test["per_class"]) == set(tiny_classifier.CLASSES)
    assert np.sum(test["confusion_matrix"]) == 24
    assert test["float32_top1_agreement"] >= MIN_TOP1_AGREEMENT
    for figure in (model_card.DECISION_AGREEMENT, model_card.DECISION_AGREEMENT_AT_FLOAT32_POINT):
        agreed = test[figure]
        assert 0 < agreed["images"] <= 24 and 0.0 <= agreed["agreement"] <= 1.0
        assert agreed["to_review"] + agreed["to_opposite_side"] == round(agreed["images"] * (1 - agreed["agreement"]))
    assert test["benign"]["normal"]["images"] == 6
    assert sum(test["benign"]["normal"][d] for d in ("safe", "review", "unsafe")) == pytest.approx(1.0)
    assert test["benign_all"] == test["benign"]["normal"]  # one folder: pooled is that folder
    assert "float32_top1_agreement" not in card_of(exported_with_evidence, "float32")["metrics"]["test"]


def test_parity_table_gives_each_file_s_automatic_decision_agreement_from_its_card(exported_with_evidence, parity):
    paths = {variant: exported_with_evidence / "out" / variant / export.MODEL_FILE for variant in ("float32", "int8")}
    agreements = decision_agreements(paths)
    assert list(agreements) == ["int8"]  # float32 is the reference: its card has no such figure
    card = card_of(exported_with_evidence, "int8")["metrics"]["test"]
    assert agreements["int8"] == card[model_card.DECISION_AGREEMENT]
    at_float32_point = decision_agreements(paths, model_card.DECISION_AGREEMENT_AT_FLOAT32_POINT)
    assert at_float32_point["int8"] == card[model_card.DECISION_AGREEMENT_AT_FLOAT32_POINT]
    table = parity_markdown([parity["float32"], parity["int8"]],
                            decisions={"as float32, own point": agreements, "as float32, its point": at_float32_point})
    header, _, float32_row, int8_row = table.splitlines()
    assert "| as float32, own point | as float32, its point |" in header and float32_row.count("| – |") == 1
    assert int8_row.count(f"of {agreements['int8']['images']} (") == 2


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


# ---------------------------------------------------------------- the user's class names, the results beside the model


@pytest.fixture(scope="module")
def trained_on_roses(classifier, tmp_path_factory):
    """The tiny classifier saved as `train` leaves a run (results JSON beside the .keras: class folders roses,
    tulips), exported by `nsfw-mobilenet export` with no --backbone, --classes or --data; its stderr kept."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("roses")
    model = root / "table_4.9_row_04_seed_1.keras"
    classifier.save(model)
    model.with_suffix(".json").write_text(json.dumps(result_dict(backbone="mobilenet_v1")))
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        code = cli.main(["export", "--model", str(model), "--out", str(root / "out"), "--variants", "float32"])
    assert code == 0
    return root / "out" / "float32", stderr.getvalue()


def test_export_keeps_the_class_folders_the_model_was_trained_on_and_the_last_one_is_unsafe(trained_on_roses):
    folder, _ = trained_on_roses
    card = json.loads((folder / model_card.CARD_FILE).read_text())
    assert (folder / model_card.LABELS_FILE).read_text().split() == ["roses", "tulips"]
    assert card["classes"] == ["roses", "tulips"] and card["unsafe_classes"] == ["tulips"]
    assert "unsafe: tulips" in (folder / model_card.CARD_MARKDOWN_FILE).read_text()


def test_the_card_fills_training_config_weights_and_data_from_the_results_beside_the_model(trained_on_roses):
    folder, _ = trained_on_roses
    card = json.loads((folder / model_card.CARD_FILE).read_text())
    assert card["backbone"] == "mobilenet_v1" and card["weights"] == "ImageNet"
    assert card["config"].startswith("table_4.9/row_04, seed 1: backbone mobilenet_v1, trainable_layers 10")
    assert card["training_data"] == ("data/proxy: class folders ['roses', 'tulips'], images "
                                     "{'training': 507, 'validation': 126, 'test': 10}")
    assert card["keras_test_accuracy"] == 0.8
    markdown = (folder / model_card.CARD_MARKDOWN_FILE).read_text()
    assert "- **Training config**: table_4.9/row_04, seed 1" in markdown and "not given" not in markdown


def test_a_model_without_results_beside_it_has_a_card_that_says_what_is_unknown(tmp_path):
    fields = export_command.origin_fields(None, tmp_path / "mine.keras", None)
    unknown = "unknown (no mine.json beside the model)"
    assert fields == {"weights": unknown, "config": unknown, "training_data": "not given"}


def test_export_says_each_step_on_stderr(trained_on_roses):
    _, stderr = trained_on_roses
    steps = [line.removeprefix("nsfw-mobilenet export: ") for line in stderr.splitlines()]
    assert steps[0].startswith("loading ") and steps[0].endswith("table_4.9_row_04_seed_1.keras")
    assert steps[1:] == ["float32: converting to TensorFlow Lite", "float32: writing the model card"]


def test_export_with_data_also_says_when_it_reads_the_data_fits_and_measures(classifier, tmp_path, capsys):
    write_image_folder(tmp_path / "data" / "train", *tiny_classifier.images(24, seed=5))
    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--out", str(tmp_path / "out"), "--variants", "float32", "--data", str(tmp_path / "data")])
    steps = capsys.readouterr().err.splitlines()
    assert code == 0 and len(steps) == 6
    assert ["reading" in steps[1], "temperature" in steps[2], "operating point" in steps[4]] == [True] * 3


def test_quiet_export_writes_nothing_on_stderr(classifier, tmp_path, capsys):
    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--quiet", "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--classes", "roses", "tulips", "--out", str(tmp_path / "out"), "--variants", "float32"])
    assert code == 0 and capsys.readouterr().err == ""


def test_classes_and_unsafe_class_options_name_the_outputs_and_the_unsafe_one_and_scan_uses_them(
        classifier, tmp_path, capsys):
    import csv
    import io

    from PIL import Image

    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--quiet", "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1",
                     "--classes", "roses", "tulips", "--unsafe-class", "roses", "--out", str(tmp_path / "out"),
                     "--variants", "float32"])
    assert code == 0 and card_of(tmp_path, "float32")["unsafe_classes"] == ["roses"]
    Image.fromarray(tiny_classifier.images(1)[0][0]).save(tmp_path / "a.png")
    capsys.readouterr()
    model = tmp_path / "out" / "float32" / export.MODEL_FILE
    code = cli.main(["scan", "--quiet", str(tmp_path / "a.png"), "--model", str(model)])
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code in (0, 1) and row["label"] in ("roses", "tulips") and row["unsafe_probability"] == row["p_roses"]


@pytest.mark.parametrize("argv, message", [
    (["--backbone", "mobilenet_v1"],
     "its class names are unknown (no tiny.json beside it and no --data): pass --classes"),
    (["--backbone", "mobilenet_v1", "--classes", "roses", "tulips", "--unsafe-class", "lilies"],
     "unsafe class 'lilies' is not one of the classes ['roses', 'tulips']"),
    (["--classes", "roses", "tulips"], "its backbone is unknown (no tiny.json beside it): pass --backbone"),
])
def test_export_without_names_it_can_trust_is_a_one_line_error_naming_the_fix(classifier, tmp_path, capsys, argv,
                                                                               message):
    classifier.save(tmp_path / "tiny.keras")
    code = cli.main(["export", "--quiet", "--model", str(tmp_path / "tiny.keras"), "--out", str(tmp_path / "out"),
                     "--variants", "float32", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_backbone_option_that_contradicts_the_results_beside_the_model_is_refused(classifier, tmp_path, capsys):
    model = tmp_path / "table_4.9_row_04_seed_1.keras"
    classifier.save(model)
    model.with_suffix(".json").write_text(json.dumps(result_dict(backbone="mobilenet_v1")))
    code = cli.main(["export", "--model", str(model), "--backbone", "mobilenet_v2", "--out", str(tmp_path / "out"),
                     "--variants", "float32"])
    assert code == 2 and "was trained from mobilenet_v1: drop --backbone" in capsys.readouterr().err


def test_every_export_option_has_a_help_line_and_backbone_lists_its_choices():
    from nsfw_mobilenet.core import backbones

    parser = cli.build_parser("export")._subparsers._group_actions[0].choices["export"]
    assert all(action.help for action in parser._actions)
    backbone = next(action for action in parser._actions if action.dest == "backbone")
    assert sorted(backbone.choices) == sorted(backbones.BACKBONES)


# ---------------------------------------------------------------- numbers a person reads


def decimals(value):
    """Every float in a card, walked."""
    if isinstance(value, dict):
        return [d for item in value.values() for d in decimals(item)]
    if isinstance(value, list):
        return [d for item in value for d in decimals(item)]
    return [value] if isinstance(value, float) else []


def test_every_number_on_the_card_has_at_most_4_decimals(exported_with_evidence):
    floats = decimals(card_of(exported_with_evidence, "int8"))
    assert floats and all(value == round(value, 4) for value in floats if value == value)


@pytest.mark.parametrize("chosen, on_the_grid", [
    ((0.6132812500000001, (0.41, 0.6132812500000001)), (0.6133, (0.41, 0.6133))),
    ((0.61325, (0.40006, 0.61325)), (0.6133, (0.4, 0.6133))),  # low end down: fewer decided safe
    ((3e-7, (3e-7, 3e-7)), (0.0001, (0.0001, 0.0001))),  # an empty band stays empty
    ((0.7, (0.3, 0.7)), (0.7, (0.3, 0.7))),
])
def test_the_operating_point_is_rounded_to_4_decimals_away_from_what_its_targets_guard(chosen, on_the_grid):
    point = card_evidence.on_card_grid(OperatingPoint(chosen[0], chosen[1]))
    assert (point.threshold, point.review_band) == on_the_grid


def test_export_also_says_a_text_file_named_keras_is_not_a_keras_model(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code = cli.main(["export", "--model", str(fake), "--backbone", "mobilenet_v1", "--out", str(tmp_path / "out"),
                     "--variants", "float32"])
    err = capsys.readouterr().err
    assert code == 2 and "not a Keras model file" in err and "not found" not in err.lower()

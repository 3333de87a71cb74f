"""Scan specification: the §6.2 review band, .keras/.tflite detectors, bad inputs never fatal, schemas, exit codes."""

import csv
import fcntl
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_classifier
from image_corpus import BAD_EXIF
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan, scan_evaluation, scan_listing, scan_output
from nsfw_mobilenet.app.parity import VariantParity
from nsfw_mobilenet.core import exit_codes
from nsfw_mobilenet.core.taxonomy import FIVE_CLASS
from nsfw_mobilenet.io import image_files

TINY_BACKBONE = "mobilenet_v1"  # its preprocess_input is the tiny classifier's [-1, 1] scaling
CSV_COLUMNS = [*scan_output.ROW_FIELDS, "p_normal", "p_sexual"]
JSONL_KEYS = {*scan_output.ROW_FIELDS, "probabilities"}


@pytest.fixture(scope="module")
def models(classifier, tmp_path_factory):
    """The same classifier as .tflite (exported, labels next to it) and as .keras."""
    folder = tmp_path_factory.mktemp("models")
    keras_path = folder / "tiny.keras"
    classifier.save(keras_path)
    tflite = tiny_classifier.export_variant(classifier, folder, "float32")
    return {"tflite": tflite.path, "keras": keras_path}


@pytest.fixture(scope="module")
def decisive(classifier):
    """One clearly safe and one clearly unsafe image (probability of "sexual" < 0.05 / > 0.95)."""
    images, _ = tiny_classifier.images(32, seed=3)
    sexual = classifier.predict(tiny_classifier.preprocess(images), verbose=0)[:, 1]
    return {"safe": images[np.argmin(sexual)], "unsafe": images[np.argmax(sexual)]}


@pytest.fixture
def corpus(tmp_path, decisive):
    """Folder with a safe image, a nested unsafe image, three broken 'JPEGs', a corrupt and a safe video."""
    root = tmp_path / "inbox"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(decisive["safe"]).save(root / "safe.png")
    Image.fromarray(decisive["unsafe"]).save(root / "nested" / "unsafe.png")
    jpeg = io.BytesIO()
    Image.fromarray(decisive["safe"]).resize((200, 200)).save(jpeg, "JPEG")
    (root / "zero_bytes.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (root / "header_cut.jpg").write_bytes(jpeg.getvalue()[:120])
    (root / "text.jpg").write_text("this is not a picture")
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write_video(root / "safe_clip.mp4", decisive["safe"])
    return root


def write_video(path, frame_rgb, frames=20, fps=10):
    height, width = frame_rgb.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for _ in range(frames):
        writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def run_scan(capsys, *argv):
    code = cli.main(["scan", "--quiet", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- Detector API


@pytest.mark.parametrize("kind", ["tflite", "keras"])
def test_detector_gives_the_same_verdict_for_an_array_and_its_file(models, decisive, tmp_path, kind):
    detector = scan.Detector(models[kind], backbone=TINY_BACKBONE if kind == "keras" else None)
    path = tmp_path / "unsafe.png"
    Image.fromarray(decisive["unsafe"]).save(path)
    from_array, from_file = detector.classify(decisive["unsafe"]), detector.classify(path)
    assert from_array.decision == from_file.decision == "unsafe"
    assert from_array.label == "sexual" and from_array.unsafe_probability == pytest.approx(from_file.unsafe_probability)
    assert sum(from_array.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert detector.classify(decisive["safe"]).decision == "safe"


def test_tflite_and_keras_detectors_agree(models, decisive):
    lite = scan.Detector(models["tflite"])
    keras_detector = scan.Detector(models["keras"], backbone=TINY_BACKBONE)
    for image in decisive.values():
        assert lite.classify(image).unsafe_probability == pytest.approx(
            keras_detector.classify(image).unsafe_probability, abs=1e-4)


def test_detector_resizes_arrays_of_any_size(models, decisive):
    big = np.asarray(Image.fromarray(decisive["unsafe"]).resize((300, 200)))
    assert scan.Detector(models["tflite"]).classify(big).decision == "unsafe"


def test_five_class_unsafe_probability_is_the_sum_of_the_unsafe_classes():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    detector = scan.Detector(model, backbone="mobilenet_v3_small")  # V3: pixels as they are
    verdict = detector.classify(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert detector.classes == list(FIVE_CLASS.classes)
    expected = sum(verdict.probabilities[c] for c in ("hentai", "porn", "sexy"))
    assert verdict.unsafe_probability == pytest.approx(expected)


def test_keras_model_with_unknown_preprocessing_is_a_model_error(models):
    with pytest.raises(scan.ModelError, match="--backbone"):
        scan.Detector(models["keras"])


# ---------------------------------------------------------------- command line


def test_bad_file_corpus_and_corrupt_video_are_reported_not_fatal(models, corpus, capsys):
    code, out, err = run_scan(capsys, corpus, "--model", models["tflite"])
    rows = {(r["path"].split("/")[-1], r["kind"]): r for r in csv.DictReader(io.StringIO(out)) if r["kind"] != "frame"}
    assert code == exit_codes.EXIT_FLAGGED  # the unsafe image outranks the unreadable files
    for name, reason in [("zero_bytes.jpg", "zero bytes"), ("truncated.jpg", "truncated"),
                         ("header_cut.jpg", "truncated"),
                         ("text.jpg", "not an image"), ("noise.mp4", "OpenCV cannot open it")]:
        kind = "video" if name.endswith(".mp4") else "image"
        assert rows[(name, kind)]["decision"] == "error" and reason in rows[(name, kind)]["error"]
        assert name in err
    assert rows[("unsafe.png", "image")]["decision"] == "unsafe"
    assert rows[("safe.png", "image")]["decision"] == "safe"
    assert rows[("safe_clip.mp4", "video")]["decision"] == "safe"


def test_csv_schema_is_fixed_columns_then_one_probability_per_class(models, corpus, capsys):
    output = corpus.parent / "scan.csv"
    run_scan(capsys, corpus / "safe.png", corpus / "text.jpg", "--model", models["tflite"], "--output", output)
    reader = csv.DictReader(output.open())
    rows = list(reader)
    assert reader.fieldnames == CSV_COLUMNS
    assert float(rows[0]["p_normal"]) + float(rows[0]["p_sexual"]) == pytest.approx(1.0, abs=1e-5)
    assert float(rows[0]["unsafe_probability"]) == pytest.approx(float(rows[0]["p_sexual"]))
    assert rows[1]["unsafe_probability"] == "" and rows[1]["label"] == "" and rows[1]["error"]


def test_jsonl_schema_has_a_probability_map_and_null_for_missing_values(models, corpus, capsys):
    _, out, _ = run_scan(capsys, corpus / "safe.png", corpus / "text.jpg", "--model", models["tflite"],
                         "--format", "jsonl")
    good, bad = [json.loads(line) for line in out.splitlines()]
    assert set(good) == set(bad) == JSONL_KEYS
    assert good["kind"] == "image" and good["error"] == "" and good["time_s"] is None
    assert set(good["probabilities"]) == set(tiny_classifier.CLASSES)
    assert bad["decision"] == "error" and bad["unsafe_probability"] is None and bad["probabilities"] == {}


def test_video_gives_one_row_per_sampled_frame_and_one_verdict_row(models, corpus, capsys):
    _, out, _ = run_scan(capsys, corpus / "safe_clip.mp4", "--model", models["tflite"], "--format", "jsonl",
                         "--fps", "5", "--max-frames", "3")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in rows] == ["frame", "frame", "frame", "video"]
    assert [r["time_s"] for r in rows[:3]] == [0.0, 0.2, 0.4]
    assert rows[-1]["unsafe_probability"] == pytest.approx(max(r["unsafe_probability"] for r in rows[:3]))


@pytest.mark.parametrize("names, expected", [
    (["safe.png", "safe_clip.mp4"], exit_codes.EXIT_OK),
    (["safe.png", "nested/unsafe.png"], exit_codes.EXIT_FLAGGED),
    (["safe.png", "text.jpg", "noise.mp4"], exit_codes.EXIT_UNREADABLE),
    (["safe.png", "does_not_exist.jpg"], exit_codes.EXIT_UNREADABLE),
])
def test_exit_code_says_safe_flagged_or_unreadable(models, corpus, capsys, names, expected):
    code, _, _ = run_scan(capsys, *(corpus / n for n in names), "--model", models["tflite"])
    assert code == expected


def test_review_band_verdict_sets_the_flagged_exit_code(models, corpus, capsys):
    code, out, _ = run_scan(capsys, corpus / "safe.png", "--model", models["tflite"], "--threshold", "0.0",
                            "--review-band", "0.0", "1.0")
    assert code == exit_codes.EXIT_FLAGGED and ",review," in out


@pytest.mark.parametrize("extra", [["--review-band", "0.7", "0.3"], ["--threshold", "0.9"], ["--fps", "0"]])
def test_bad_options_are_usage_errors(models, corpus, capsys, extra):
    code, out, err = run_scan(capsys, corpus / "safe.png", "--model", models["tflite"], *extra)
    assert code == exit_codes.EXIT_USAGE and out == "" and "error" in err


def test_unloadable_model_is_a_usage_error_naming_the_file(corpus, capsys, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_text("not a flatbuffer")
    code, _, err = run_scan(capsys, corpus / "safe.png", "--model", broken)
    assert code == exit_codes.EXIT_USAGE and "broken.tflite" in err


def test_keras_model_is_scanned_with_the_named_backbone_preprocessing(models, corpus, capsys):
    code, out, _ = run_scan(capsys, corpus / "safe.png", "--model", models["keras"], "--backbone", "mobilenet_v1")
    assert code == exit_codes.EXIT_OK and ",safe," in out  # V1 preprocessing is the tiny model's [-1, 1] scaling


# ---------------------------------------------------------------- scan results against known truth


@pytest.fixture
def harmless(tmp_path, decisive):
    """A folder of harmless photos: three the model calls safe, one it calls unsafe, one unreadable."""
    root = tmp_path / "harmless"
    (root / "more").mkdir(parents=True)
    for name in ("a.png", "b.png", "more/c.jpg"):
        Image.fromarray(decisive["safe"]).save(root / name)
    Image.fromarray(decisive["unsafe"]).save(root / "d.png")
    (root / "e.jpg").write_bytes(b"")
    return root


def test_harmless_folder_counts_each_decision_and_unreadable_files_apart(models, harmless):
    counts = scan_evaluation.decision_counts(scan.Detector(models["tflite"]), harmless)
    assert (counts.folder, counts.images, counts.safe, counts.review, counts.unsafe, counts.unreadable) == (
        "harmless", 4, 3, 0, 1, 1)
    assert counts.share("unsafe") == 0.25 and counts.share("unsafe", "review") == 0.25


def test_an_unsure_detector_sends_harmless_photos_to_review_not_to_unsafe(models, harmless):
    everything_in_review = scan.Detector(models["tflite"], threshold=0.5, review_band=(0.0, 1.0))
    counts = scan_evaluation.decision_counts(everything_in_review, harmless)
    assert (counts.review, counts.unsafe, counts.share("review")) == (4, 0, 1.0)


def test_decision_counts_limit_takes_that_many_images_spread_over_the_folder(models, harmless):
    counts = scan_evaluation.decision_counts(scan.Detector(models["tflite"]), harmless, limit=2)  # first and last: a.png, more/c.jpg
    assert (counts.images, counts.safe, counts.unreadable) == (2, 2, 0)


def test_false_positive_table_has_one_row_per_folder_with_flagged_shares(models, harmless, tmp_path, decisive):
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(decisive["safe"]).save(faces / "face.png")
    table = scan_evaluation.false_positive_table(scan.Detector(models["tflite"]), [harmless, faces])
    assert table.index.tolist() == ["harmless", "faces"]
    assert table.loc["harmless", "flagged share"] == 0.25 and table.loc["faces", "flagged share"] == 0.0
    assert table.loc["faces", "images"] == 1 and table.loc["harmless", "unreadable"] == 1


def test_false_positive_check_of_a_missing_folder_names_it(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_evaluation.decision_counts(scan.Detector(models["tflite"]), tmp_path / "nowhere")


def test_app_summary_puts_int8_parity_next_to_the_decisions_on_the_test_and_harmless_folders(
        models, harmless, decisive, tmp_path):
    test = tmp_path / "test"
    for folder, kind in (("normal", "safe"), ("sexual", "unsafe")):
        (test / folder).mkdir(parents=True)
        Image.fromarray(decisive[kind]).save(test / folder / "x.png")
    parity = [VariantParity("float32", 10, 1.0, 1.0, 0.0, 0.9, 0.9),
              VariantParity("int8", 5, 0.8, 0.75, 0.2, 0.85, 0.9)]
    unsure = scan.Detector(models["tflite"], review_band=(0.0, 1.0))
    summary = scan_evaluation.app_summary(scan.Detector(models["tflite"]), parity, test, [harmless])
    assert summary["Keras test accuracy"] == 0.9 and summary["int8 test accuracy"] == 0.85
    assert summary["int8 vs float32 top-1 agreement"] == 0.75
    assert (summary["test images decided automatically"], summary["test images sent to review"]) == (1.0, 0.0)
    assert [summary[f"harmless: {d}"] for d in ("unsafe", "review", "safe")] == [0.25, 0.0, 0.75]
    assert scan_evaluation.app_summary(unsure, parity, test)["test images sent to review"] == 1.0


@pytest.mark.parametrize("folders, labels", [(["normal", "sexual"], ["normal", "sexual"]),
                                             (["roses", "tulips"], ["roses (normal)", "tulips (sexual)"])])
def test_scan_csv_gives_the_confusion_matrix_of_a_test_folder(models, decisive, tmp_path, capsys, folders, labels):
    test = tmp_path / "test"
    for folder, kind, count in ((folders[0], "safe", 3), (folders[1], "unsafe", 2)):
        (test / folder).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(decisive[kind]).save(test / folder / f"{i}.png")
    Image.fromarray(decisive["safe"]).save(test / folders[1] / "missed.png")
    (test / folders[0] / "broken.jpg").write_text("not a picture")
    output = tmp_path / "scan.csv"
    code, _, _ = run_scan(capsys, test, "--model", models["tflite"], "--output", output)
    confusion = scan_evaluation.scan_confusion(csv.DictReader(output.open()), test, tiny_classifier.CLASSES)
    assert code == exit_codes.EXIT_FLAGGED and confusion.labels == labels
    assert confusion.matrix == [[3, 0], [1, 2]] and confusion.unreadable == 1
    assert confusion.decisions == [[3, 0, 0], [1, 0, 2]]
    assert confusion.images == 6 and confusion.accuracy == pytest.approx(5 / 6)


def test_scan_confusion_refuses_a_folder_with_other_classes_than_the_model(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match="3 class folders"):
        scan_evaluation.scan_confusion([], tmp_path, tiny_classifier.CLASSES)


def test_a_corrupt_model_card_is_a_usage_error_naming_it(classifier, tmp_path, capsys):
    exported = tiny_classifier.export_variant(classifier, tmp_path, "float32")
    exported.card_path.write_text('{"classes": ["normal", "sex')
    code, _, err = run_scan(capsys, tmp_path, "--model", exported.path)
    assert code == exit_codes.EXIT_USAGE and "model_card.json: not a model card" in err


def test_threshold_and_band_flags_override_the_card_and_each_row_records_them(models, corpus, capsys):
    code, out, _ = run_scan(capsys, corpus / "safe.png", "--model", models["tflite"], "--threshold", "0.6",
                            "--review-band", "0.4", "0.8")
    row = next(csv.DictReader(io.StringIO(out)))
    assert (row["threshold"], row["review_low"], row["review_high"]) == ("0.6", "0.4", "0.8")


def test_a_threshold_outside_the_cards_band_asks_for_both_flags(classifier, tmp_path, capsys):
    exported = tiny_classifier.export_variant(classifier, tmp_path, "float32")  # card: §6.2's [0.3, 0.7)
    code, _, err = run_scan(capsys, tmp_path, "--model", exported.path, "--threshold", "0.9")
    assert code == exit_codes.EXIT_USAGE and "give both --threshold and --review-band" in err


# ---------------------------------------------------------------- decoding on threads, shards


@pytest.fixture
def many_images(tmp_path, decisive):
    """24 images in nested folders, safe and unsafe mixed, one unreadable."""
    root = tmp_path / "many"
    for index in range(24):
        folder = root / f"part{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(decisive["unsafe" if index % 5 == 0 else "safe"]).save(folder / f"{index:02d}.png")
    (root / "part1" / "broken.jpg").write_text("not a picture")
    return root


def probabilities_by_path(rows):
    return [(row["path"], row["kind"], row["decision"], row["unsafe_probability"]) for row in rows]


def test_rows_come_in_input_order_even_when_later_files_finish_decoding_first(models, many_images, monkeypatch):
    detector = scan.Detector(models["tflite"])
    one_thread = list(scan.scan(detector, [many_images], progress=False, decode_threads=1))
    finished, completed, real_decode_input = {}, [], scan.decode_input

    def first_of_four_waits_for_the_fourth(detector, path, **options):  # file 0 ends after file 3, 4 after 7...
        position = sorted(many_images.rglob("*.png")).index(path) if path.suffix == ".png" else -1
        finished.setdefault(position, threading.Event())
        if position % 4 == 0:
            finished.setdefault(position + 3, threading.Event()).wait(timeout=10)
        decoded = real_decode_input(detector, path, **options)
        completed.append(position)
        finished[position].set()
        return decoded

    monkeypatch.setattr(scan, "decode_input", first_of_four_waits_for_the_fourth)
    four_threads = list(scan.scan(detector, [many_images], progress=False, decode_threads=4))
    assert completed.index(0) > completed.index(3)  # the threads did finish out of order...
    assert probabilities_by_path(four_threads) == probabilities_by_path(one_thread)  # ...the rows did not
    assert [row["path"] for row in four_threads] == [str(path) for path, _, _ in scan_listing.find_inputs([many_images])]
    assert {row["decision"] for row in four_threads} == {"safe", "unsafe", "error"}


def test_the_shards_of_a_scan_are_disjoint_and_together_are_the_whole_scan(models, many_images, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    code, whole, _ = run_scan(capsys, many_images, missing, "--model", models["tflite"])
    parts = [run_scan(capsys, many_images, missing, "--model", models["tflite"], "--shard", f"{i}/3")[1]
             for i in range(3)]
    whole_rows = list(csv.DictReader(io.StringIO(whole)))
    part_rows = [list(csv.DictReader(io.StringIO(part))) for part in parts]
    assert all(part_rows)  # 26 inputs: every part has some
    by_path = [{row["path"] for row in rows} for rows in part_rows]
    assert sum(map(len, by_path)) == len(set().union(*by_path)) == len(whole_rows)
    order = [row["path"] for row in whole_rows]
    for rows in part_rows:  # each part keeps the whole scan's order and its rows are the whole scan's rows
        assert [order.index(row["path"]) for row in rows] == sorted(order.index(row["path"]) for row in rows)
        assert all(row in whole_rows for row in rows)


def test_adding_files_never_moves_the_others_to_another_shard(many_images, decisive):
    before = {i: {path for path, _, _ in scan_listing.find_inputs([many_images], scan_listing.Shard(i, 4))} for i in range(4)}
    for index in range(10):
        Image.fromarray(decisive["safe"]).save(many_images / f"new{index}.png")
    after = {i: {path for path, _, _ in scan_listing.find_inputs([many_images], scan_listing.Shard(i, 4))} for i in range(4)}
    assert all(before[i] <= after[i] for i in range(4))


def test_a_corpus_shards_alike_wherever_it_is_mounted(many_images, tmp_path):
    moved = tmp_path / "elsewhere" / "mount"
    shutil.copytree(many_images, moved)
    for i in range(3):
        here = [path.relative_to(many_images) for path, _, _ in scan_listing.find_inputs([many_images], scan_listing.Shard(i, 3))]
        there = [path.relative_to(moved) for path, _, _ in scan_listing.find_inputs([moved], scan_listing.Shard(i, 3))]
        assert here == there


@pytest.mark.parametrize("shard", ["3/3", "-1/3", "1/0", "one/3", "1", "1/2/3", ""])
def test_a_bad_shard_is_a_one_line_usage_error(models, corpus, capsys, shard):
    code, out, err = run_scan(capsys, corpus, "--model", models["tflite"], f"--shard={shard}")
    assert code == exit_codes.EXIT_USAGE and out == "" and err.count("\n") == 1
    assert "--shard" in err and "0 <= i < n" in err


def test_the_scan_command_starts_without_the_training_stack():
    """`scan` imports only its own module: scikit-learn, SciPy and TensorFlow (a second of start-up) stay out."""
    modules_after_scan_help = ("import contextlib, sys\nfrom nsfw_mobilenet import cli\n"
                               "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(None):\n"
                               "    cli.main(['scan', '--help'])\nprint(*sys.modules)")
    imported = set(subprocess.run([sys.executable, "-c", modules_after_scan_help], capture_output=True, text=True,
                                  check=True).stdout.split())
    assert "nsfw_mobilenet.app.scan" in imported
    assert not imported & {"sklearn", "scipy", "tensorflow", "keras", "nsfw_mobilenet.training.train"}


# ---------------------------------------------------------------- odd files, special files, output faults


def _safe_png(path, decisive):
    Image.fromarray(decisive["safe"]).save(path)
    return path


@pytest.mark.parametrize("output_format", ["csv", "jsonl"])
def test_a_file_name_that_is_not_utf8_gets_a_lossless_row_and_the_files_after_it_theirs(
        models, decisive, tmp_path, capsys, output_format):
    folder = tmp_path / "inbox"
    folder.mkdir()
    odd = folder / os.fsdecode(b"caf\xe9 \\ 1.png")  # Latin-1 bytes and a backslash, as an old camera names them
    _safe_png(odd, decisive)
    _safe_png(folder / "z_after.png", decisive)
    output = tmp_path / f"rows.{output_format}"
    code, _, err = run_scan(capsys, folder, "--model", models["tflite"], "--format", output_format, "--output", output)
    text = output.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text))) if output_format == "csv" else list(map(json.loads, text.splitlines()))
    assert code == exit_codes.EXIT_OK and [row["decision"] for row in rows] == ["safe", "safe"], err
    assert rows[0]["path"].endswith("caf\\xe9 \\\\ 1.png")  # the declared escaping: \xNN and \\
    round_trip = Path(os.fsdecode(scan_output.path_bytes(rows[0]["path"])))
    assert os.fsencode(round_trip) == os.fsencode(odd) and round_trip.read_bytes() == odd.read_bytes()


def test_a_write_error_is_one_line_exit_4_and_leaves_only_whole_rows(models, decisive, tmp_path):
    for index in range(30):
        _safe_png(tmp_path / f"{index:02d}.png", decisive)
    output = tmp_path / "out" / "rows.csv"
    limit = 1500  # bytes: the file system refuses the rest (EFBIG, as a full disk refuses with ENOSPC)

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    completed = subprocess.run([sys.executable, "-m", "nsfw_mobilenet", "scan", "--quiet", str(tmp_path), "--model",
                                str(models["tflite"]), "--output", str(output)],
                               capture_output=True, text=True, preexec_fn=small_disk)
    assert completed.returncode == exit_codes.EXIT_OUTPUT_FAILED
    assert completed.stderr.count("\n") == 1 and str(output) in completed.stderr and "Traceback" not in completed.stderr
    text = output.read_text()
    assert 0 < len(text) <= limit and text.endswith("\n")
    assert all(len(row) == len(CSV_COLUMNS) and None not in row.values() for row in csv.DictReader(io.StringIO(text)))


def test_a_full_disk_under_stdout_is_one_line_and_exit_4(models, decisive, tmp_path):
    _safe_png(tmp_path / "a.png", decisive)
    with open("/dev/full", "w") as full:
        completed = subprocess.run([sys.executable, "-m", "nsfw_mobilenet", "scan", "--quiet", str(tmp_path),
                                    "--model", str(models["tflite"])], stdout=full, stderr=subprocess.PIPE, text=True)
    assert completed.returncode == exit_codes.EXIT_OUTPUT_FAILED
    assert completed.stderr == "nsfw-mobilenet scan: error: stdout: cannot write (No space left on device); the rows " \
                               "before it are whole\n"


def _deep_folder(root, depth=20):
    """A chain of folders whose full path is longer than PATH_MAX (made step by step, as no path reaches it)."""
    name, descriptor = "d" * 250, os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=descriptor)
        descriptor, parent = os.open(name, os.O_RDONLY, dir_fd=descriptor), descriptor
        os.close(parent)
    os.close(descriptor)
    return root / name


def test_a_path_longer_than_path_max_is_an_error_row_naming_it_and_the_rest_is_scanned(models, decisive, tmp_path,
                                                                                        capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    _deep_folder(folder)
    _safe_png(folder / "z.png", decisive)
    code, out, err = run_scan(capsys, folder, "--model", models["tflite"])
    rows = list(csv.DictReader(io.StringIO(out)))
    deep = [row for row in rows if row["decision"] == "error"]
    assert len(deep) == 1 and "path too long for the system" in deep[0]["error"] and "Traceback" not in err
    assert [row["decision"] for row in rows if row["path"].endswith("z.png")] == ["safe"]
    assert code == exit_codes.EXIT_UNREADABLE


def test_frames_are_streamed_a_batch_at_a_time_and_max_frames_has_a_default_that_is_noted(
        models, decisive, tmp_path, capsys, monkeypatch):
    frames = [Image.fromarray(np.roll(decisive["safe"], index, axis=1)) for index in range(100)]
    path = tmp_path / "long.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000, loop=0)
    decoded, held = [], []
    real_rgb_pixels, real_verdicts = scan.image_files.rgb_pixels, scan.Detector.verdicts
    monkeypatch.setattr(scan.image_files, "rgb_pixels", lambda *a, **k: decoded.append(1) or real_rgb_pixels(*a, **k))
    monkeypatch.setattr(scan.Detector, "verdicts", lambda self, images: held.append((len(decoded), len(images)))
                        or real_verdicts(self, images))
    code, out, _ = run_scan(capsys, path, "--model", models["tflite"], "--max-frames", "70")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["kind"] for row in rows] == ["frame"] * 70 + ["animation"]
    assert "first 70 sampled frames (--max-frames)" in rows[-1]["note"]
    assert held[0] == (scan.FRAMES_AT_ONCE, scan.FRAMES_AT_ONCE)  # the first batch is classified before more decode
    assert max(count for _, count in held) <= scan.FRAMES_AT_ONCE
    assert cli.build_parser("scan").parse_args(["scan", "x", "--model", "m"]).max_frames == scan.DEFAULT_MAX_FRAMES


def test_an_output_that_is_one_of_the_inputs_is_refused_before_anything_is_opened(models, decisive, tmp_path,
                                                                                   capsys):
    image = _safe_png(tmp_path / "photo.png", decisive)
    before = image.read_bytes()
    for given in (image, tmp_path):
        code, _, err = run_scan(capsys, given, "--model", models["tflite"], "--output", image)
        assert code == exit_codes.EXIT_USAGE and "is one of the inputs" in err and err.count("\n") == 1
    assert image.read_bytes() == before


def test_a_folder_that_cannot_be_read_is_an_error_row_naming_it_not_skipped_or_called_empty(
        models, decisive, tmp_path, capsys, monkeypatch):
    (tmp_path / "inbox" / "locked").mkdir(parents=True)
    _safe_png(tmp_path / "inbox" / "locked" / "a.png", decisive)
    _safe_png(tmp_path / "inbox" / "b.png", decisive)
    real_scandir = os.scandir

    def permission_denied(path):  # what chmod 000 does to anyone but root, who runs these tests
        if os.path.basename(path) in ("locked", "alone"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(scan.os, "scandir", permission_denied)
    code, out, _ = run_scan(capsys, tmp_path / "inbox", "--model", models["tflite"])
    rows = {Path(row["path"]).name: row for row in csv.DictReader(io.StringIO(out))}
    assert rows["locked"]["error"] == "folder cannot be read (Permission denied)" and rows["b.png"]["decision"] == "safe"
    assert code == exit_codes.EXIT_UNREADABLE
    (tmp_path / "alone").mkdir()
    out = run_scan(capsys, tmp_path / "alone", "--model", models["tflite"])[1]
    assert [row["error"] for row in csv.DictReader(io.StringIO(out))] == ["folder cannot be read (Permission denied)"]


def test_a_second_scan_to_the_same_output_is_refused_while_the_first_writes_it(models, decisive, tmp_path, capsys):
    _safe_png(tmp_path / "a.png", decisive)
    output = tmp_path / "rows.csv"
    output.write_text("the first scan's rows\n")
    with open(output, "a") as first_scan:
        fcntl.flock(first_scan, fcntl.LOCK_EX)
        code, _, err = run_scan(capsys, tmp_path / "a.png", "--model", models["tflite"], "--output", output)
    assert code == exit_codes.EXIT_USAGE and "another scan is writing it" in err and err.count("\n") == 1
    assert output.read_text() == "the first scan's rows\n"


def test_the_output_file_inside_the_scanned_folder_is_left_out_of_the_scan(models, decisive, tmp_path, capsys):
    _safe_png(tmp_path / "a.png", decisive)
    (tmp_path / "rows.csv").write_text("an older scan\n")
    code, _, _ = run_scan(capsys, tmp_path, "--model", models["tflite"], "--output", tmp_path / "rows.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "rows.csv").read_text())))
    assert code == exit_codes.EXIT_OK and [Path(row["path"]).name for row in rows] == ["a.png"]


def test_an_mpo_photo_and_a_multi_page_tiff_are_one_image_row_with_a_note(models, decisive, tmp_path, capsys):
    def views():  # fresh images per file: Pillow keeps the JPEG encoder's settings on an image it saved
        return [Image.fromarray(decisive["safe"]), Image.fromarray(np.ascontiguousarray(decisive["safe"][::-1]))]

    first, second = views()
    first.save(tmp_path / "phone.mpo", save_all=True, append_images=[second])
    first, second = views()
    first.save(tmp_path / "scan.tif", save_all=True, append_images=[second, second])
    code, out, _ = run_scan(capsys, tmp_path, "--model", models["tflite"])
    rows = {Path(row["path"]).name: row for row in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"phone.mpo", "scan.tif"} and {row["kind"] for row in rows.values()} == {"image"}
    assert rows["phone.mpo"]["note"] == "MPO: judged as one photo, its first image (of 2)"
    assert rows["scan.tif"]["note"] == "TIFF with 3 pages or frames: only page 1 was judged"


def test_fifos_sockets_and_devices_are_named_for_what_they_are_and_never_opened(models, tmp_path, capsys,
                                                                                  monkeypatch):
    folder = tmp_path / "s"
    folder.mkdir()
    os.mkfifo(folder / "pipe.jpg")
    monkeypatch.chdir(folder)  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("socket.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "noise.mp4").symlink_to("/dev/urandom")
    code, out, err = run_scan(capsys, folder, "--model", models["tflite"])
    server.close()
    rows = {Path(row["path"]).name: (row["decision"], row["error"]) for row in csv.DictReader(io.StringIO(out))}
    assert rows == {"pipe.jpg": ("skipped", "not a regular file (FIFO)"),
                    "socket.png": ("skipped", "not a regular file (socket)"),
                    "zero.png": ("skipped", "not a regular file (character device)"),
                    "noise.mp4": ("skipped", "not a regular file (character device)")}
    assert code == exit_codes.EXIT_UNREADABLE


def test_dev_stdin_fed_from_a_pipe_is_a_fifo_not_zero_bytes(models):
    completed = subprocess.run([sys.executable, "-m", "nsfw_mobilenet", "scan", "--quiet", "/dev/stdin", "--model",
                                str(models["tflite"])], input=b"not read", capture_output=True)
    row = next(csv.DictReader(io.StringIO(completed.stdout.decode())))
    assert (row["decision"], row["error"]) == ("skipped", "not a regular file (FIFO)")


# ---------------------------------------------------------------- the Detector API and scan() on bad inputs


def test_labels_in_the_model_card_count(models, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(models["tflite"].read_bytes())
    (tmp_path / "labels.txt").write_text("\n")
    (tmp_path / "model_card.json").write_text(json.dumps({"classes": ["normal", "sexual"]}))
    assert scan.Detector(model).classes == ["normal", "sexual"]


@pytest.fixture
def roses_model(models, tmp_path):
    """The tiny .tflite as a roses/tulips model: labels.txt and a card with its classes, no `unsafe_classes` yet."""
    model = tmp_path / "model.tflite"
    model.write_bytes(models["tflite"].read_bytes())
    (tmp_path / "labels.txt").write_text("roses\ntulips\n")
    return model


def write_card(model, card):
    (model.parent / "model_card.json").write_text(json.dumps(card))


def test_a_card_that_names_its_unsafe_class_is_scanned_with_the_users_class_names(roses_model, decisive, capsys):
    write_card(roses_model, {"classes": ["roses", "tulips"], "unsafe_classes": ["roses"]})
    detector = scan.Detector(roses_model)
    assert (detector.classes, detector.unsafe_classes) == (["roses", "tulips"], ["roses"])
    verdict = detector.classify(decisive["safe"])  # the tiny model's first output is high for it: roses
    assert verdict.label == "roses" and verdict.unsafe_probability == verdict.probabilities["roses"]
    Image.fromarray(decisive["safe"]).save(roses_model.parent / "a.png")
    _, out, _ = run_scan(capsys, roses_model.parent / "a.png", "--model", roses_model)
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["label"] == "roses" and {"p_roses", "p_tulips"} <= set(row) and row["decision"] == "unsafe"


@pytest.mark.parametrize("classes, unsafe", [(["roses", "tulips"], ["tulips"]), (["normal", "sexual"], ["sexual"])])
def test_an_older_card_without_unsafe_classes_counts_the_thesis_rule_else_the_last_class(roses_model, classes, unsafe):
    (roses_model.parent / "labels.txt").write_text("\n".join(classes))
    write_card(roses_model, {"classes": classes})
    assert scan.Detector(roses_model).unsafe_classes == unsafe


def test_the_unsafe_class_option_overrides_the_card_and_an_unknown_one_is_a_usage_error(roses_model, decisive, capsys):
    write_card(roses_model, {"classes": ["roses", "tulips"], "unsafe_classes": ["tulips"]})
    assert scan.Detector(roses_model, unsafe_classes=["roses"]).unsafe_classes == ["roses"]
    Image.fromarray(decisive["safe"]).save(roses_model.parent / "a.png")
    code, _, err = run_scan(capsys, roses_model.parent / "a.png", "--model", roses_model, "--unsafe-class", "lilies")
    assert code == exit_codes.EXIT_USAGE
    assert "unsafe class 'lilies' is not one of the classes ['roses', 'tulips']" in err


def test_a_card_whose_unsafe_class_is_not_one_of_its_classes_names_the_field(roses_model):
    write_card(roses_model, {"classes": ["roses", "tulips"], "unsafe_classes": ["sexual"]})
    with pytest.raises(ValueError, match="model_card.json: field `unsafe_classes`: unsafe class 'sexual'"):
        scan.Detector(roses_model)


def test_a_keras_model_takes_its_classes_and_backbone_from_the_results_beside_it(classifier, tmp_path):
    from run_result_factory import result_dict

    model = tmp_path / "table_4.9_row_04_seed_1.keras"
    classifier.save(model)
    model.with_suffix(".json").write_text(json.dumps(result_dict(backbone=TINY_BACKBONE)))
    detector = scan.Detector(model)
    assert (detector.classes, detector.unsafe_classes) == (["roses", "tulips"], ["tulips"])


def test_the_detector_api_refuses_a_too_small_file_as_the_scan_does(models, tmp_path):
    Image.new("RGB", (1, 1), (200, 20, 20)).save(tmp_path / "pixel.png")
    with pytest.raises(image_files.CorruptImage, match="too small to classify"):
        scan.Detector(models["tflite"]).classify(tmp_path / "pixel.png")


def test_each_file_keeps_its_own_pillow_notes_when_files_decode_on_threads(models, tmp_path):
    for index in range(40):
        exif = {"exif": BAD_EXIF} if index % 3 == 0 else {}
        Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / f"{index:02d}.jpg", **exif)
    filters, showwarning = list(warnings.filters), warnings.showwarning
    rows = list(scan.scan(scan.Detector(models["tflite"]), [tmp_path], progress=False, decode_threads=8))
    assert [bool(row["note"]) for row in rows] == [index % 3 == 0 for index in range(40)]
    assert all(row["note"].startswith("UserWarning: Corrupt EXIF data") for row in rows if row["note"])
    assert warnings.filters == filters and warnings.showwarning is showwarning  # left as they were

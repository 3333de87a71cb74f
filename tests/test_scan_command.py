"""Specifications of app.scan_command (`nsfw-mobilenet scan`): every input gets a row, exit codes, options, Ctrl-C.

Every odd input is generated here at test time (harmless colour images, text, links); nothing binary is committed.
"""

import csv
import io
import os
import re
import signal
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import tiny_classifier
from image_corpus import BAD_EXIF
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan, scan_output
from nsfw_mobilenet.core import backbones, exit_codes
from nsfw_mobilenet.evaluation import operating_point
from nsfw_mobilenet.io import image_files


@pytest.fixture(scope="module")
def tflite(classifier, tmp_path_factory):
    """The tiny classifier exported as float32 (labels.txt and card next to it, §6.2's default policy)."""
    return tiny_classifier.export_variant(classifier, tmp_path_factory.mktemp("model"), "float32").path


@pytest.fixture(scope="module")
def decisive(classifier):
    """A clearly safe and a clearly unsafe image of the tiny classifier's input size."""
    images, _ = tiny_classifier.images(32, seed=3)
    sexual = classifier.predict(tiny_classifier.preprocess(images), verbose=0)[:, 1]
    return {"safe": images[np.argmin(sexual)], "unsafe": images[np.argmax(sexual)]}


def run_scan(capsys, *argv):
    code = cli.main(["scan", "--quiet", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def rows_of(out):
    return list(csv.DictReader(io.StringIO(out)))


def by_name(rows):
    return {os.path.basename(row["path"]): row for row in rows}


# ---------------------------------------------------------------- every file gets a row


def test_every_non_hidden_file_gets_one_row_and_pillow_formats_are_classified(tflite, decisive, tmp_path, capsys):
    folder = tmp_path / "inbox"
    (folder / "real").mkdir(parents=True)
    for name in ("photo.webp", "scan.tif", "scan2.tiff", "photo.jpg"):
        Image.fromarray(decisive["safe"]).save(folder / name)
    (folder / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))  # Pillow has no HEIC reader
    (folder / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.png").write_bytes(b"")
    Image.fromarray(decisive["safe"]).save(folder / "real" / "target.png")
    (folder / "broken.png").symlink_to(folder / "gone.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "linked_folder").symlink_to(folder / "real", target_is_directory=True)
    code, out, err = run_scan(capsys, folder, "--model", tflite)
    rows = by_name(rows_of(out))
    assert sorted(rows) == sorted(["photo.webp", "scan.tif", "scan2.tiff", "photo.jpg", "phone.heic", "logo.svg",
                                   "notes.txt", "target.png", "broken.png", "loop.png", "linked_folder"])
    assert {rows[n]["decision"] for n in ("photo.webp", "scan.tif", "scan2.tiff", "photo.jpg")} == {"safe"}
    for name, reason in [("phone.heic", "not an image or video"), ("logo.svg", "not an image or video"),
                         ("notes.txt", "not an image or video"), ("broken.png", "broken symbolic link"),
                         ("loop.png", "symbolic link loop")]:
        assert rows[name]["decision"] == "error" and rows[name]["error"] == reason, name
    assert rows["linked_folder"]["decision"] == "skipped" and "not followed" in rows["linked_folder"]["error"]
    assert code == exit_codes.EXIT_UNREADABLE  # nothing flagged, but not everything could be read


def test_a_file_that_is_neither_image_nor_video_has_its_own_kind_and_a_broken_jpeg_stays_an_image(
        tflite, decisive, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "text.jpg").write_text("not a picture either")
    Image.fromarray(decisive["safe"]).save(tmp_path / "photo.png")
    rows = by_name(rows_of(run_scan(capsys, tmp_path, "--model", tflite)[1]))
    assert {name: row["kind"] for name, row in rows.items()} == {"notes.txt": scan.OTHER, "text.jpg": "image",
                                                                 "photo.png": "image"}
    assert scan.OTHER == "other" and rows["notes.txt"]["error"] == "not an image or video"


# ---------------------------------------------------------------- what a person reads


@pytest.mark.parametrize("output_format", ["csv", "jsonl"])
def test_probabilities_and_thresholds_in_rows_have_at_most_4_decimals(tflite, decisive, tmp_path, capsys,
                                                                       output_format):
    import json

    Image.fromarray(decisive["unsafe"]).save(tmp_path / "a.png")
    _, out, _ = run_scan(capsys, tmp_path / "a.png", "--model", tflite, "--format", output_format,
                         "--threshold", "0.6132812500000001", "--review-band", "0.30000000000000004", "0.7")
    if output_format == "csv":
        [row] = rows_of(out)
        numbers = [row[key] for key in ("unsafe_probability", "threshold", "review_low", "review_high",
                                        "p_normal", "p_sexual")]
    else:
        row = json.loads(out)
        numbers = [str(row[key]) for key in ("unsafe_probability", "threshold", "review_low", "review_high")]
        numbers += [str(p) for p in row["probabilities"].values()]
    assert all(len(number.partition(".")[2]) <= 4 for number in numbers), numbers
    assert numbers[1:4] == ["0.6133", "0.3", "0.7"]


def test_a_scan_ends_with_one_summary_line_on_stderr_that_quiet_turns_off(tflite, decisive, tmp_path, capsys):
    Image.fromarray(decisive["safe"]).save(tmp_path / "safe.png")
    Image.fromarray(decisive["unsafe"]).save(tmp_path / "unsafe.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "pipe.jpg")
    code = cli.main(["scan", str(tmp_path), "--model", str(tflite)])
    summary = capsys.readouterr().err.rstrip("\n").splitlines()[-1]
    assert code == exit_codes.EXIT_FLAGGED
    assert re.fullmatch(r"nsfw-mobilenet scan: 4 inputs: 1 safe, 0 review, 1 unsafe, 1 error, 1 skipped in "
                        r"\d+\.\d s", summary), summary
    quiet_err = run_scan(capsys, tmp_path, "--model", tflite)[2]  # run_scan passes --quiet
    assert "inputs:" not in quiet_err and quiet_err.count("\n") == 2  # the two unreadable files, as always


def test_every_scan_option_has_a_help_line_and_backbone_lists_its_choices():
    parser = cli.build_parser("scan")._subparsers._group_actions[0].choices["scan"]
    assert all(action.help for action in parser._actions)
    backbone = next(action for action in parser._actions if action.dest == "backbone")
    assert sorted(backbone.choices) == sorted(backbones.BACKBONES)


# ---------------------------------------------------------------- animations are judged on every frame


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animation_gets_frame_rows_and_one_verdict_any_unsafe_frame_makes_it_unsafe(
        tflite, decisive, tmp_path, capsys, suffix):
    safe, unsafe = decisive["safe"], decisive["unsafe"]
    frames = [Image.fromarray(frame) for frame in (safe, safe[::-1], unsafe, safe[:, ::-1])]  # no two alike
    path = tmp_path / f"clip{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000, loop=0, lossless=True)
    code, out, _ = run_scan(capsys, path, "--model", tflite, "--threshold", "0.5", "--review-band", "0.5", "0.5")
    rows = rows_of(out)
    assert [row["kind"] for row in rows] == ["frame"] * 4 + ["animation"]
    assert [row["decision"] for row in rows[:4]] == ["safe", "safe", "unsafe", "safe"]
    assert [float(row["time_s"]) for row in rows[:4]] == [0.0, 1.0, 2.0, 3.0]
    assert rows[-1]["decision"] == "unsafe" and code == exit_codes.EXIT_FLAGGED


# ---------------------------------------------------------------- too small, truncated, too big


def test_an_image_below_the_minimum_side_is_too_small_to_classify(tflite, tmp_path, capsys):
    Image.new("RGB", (1, 1), (200, 20, 20)).save(tmp_path / "pixel.png")
    Image.new("RGB", (scan.MIN_SIDE, scan.MIN_SIDE), (200, 20, 20)).save(tmp_path / "small_enough.png")
    rows = by_name(rows_of(run_scan(capsys, tmp_path, "--model", tflite)[1]))
    assert rows["pixel.png"]["decision"] == "error" and "too small to classify: 1x1" in rows["pixel.png"]["error"]
    assert rows["small_enough.png"]["decision"] in operating_point.DECISIONS


def test_a_truncated_video_says_so_in_its_own_row(tflite, tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.9)])
    code, out, err = run_scan(capsys, cut, "--model", tflite)
    video_row = [row for row in rows_of(out) if row["kind"] == "video"][0]
    assert "truncated" in video_row["note"] and "truncated" not in err


def test_an_oversized_file_is_refused_from_its_size_without_reading_it(tflite, tmp_path, capsys, monkeypatch):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:
        handle.truncate(image_files.MAX_IMAGE_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(image_files.Path, "read_bytes", lambda self: pytest.fail(f"{self} was read"))
    row = rows_of(run_scan(capsys, huge, "--model", tflite)[1])[0]
    assert row["decision"] == "error" and f"above the {image_files.MAX_IMAGE_BYTES // 2**20} MiB limit" in row["error"]


# ---------------------------------------------------------------- clear usage errors


def test_output_in_a_missing_folder_is_created(tflite, decisive, tmp_path, capsys):
    Image.fromarray(decisive["safe"]).save(tmp_path / "a.png")
    target = tmp_path / "new" / "deeper" / "rows.csv"
    code, _, _ = run_scan(capsys, tmp_path / "a.png", "--model", tflite, "--output", target)
    assert code == exit_codes.EXIT_OK and len(rows_of(target.read_text())) == 1


def test_output_pointing_at_a_folder_is_a_one_line_usage_error(tflite, tmp_path, capsys):
    code, _, err = run_scan(capsys, tmp_path, "--model", tflite, "--output", tmp_path)
    assert code == exit_codes.EXIT_USAGE and "is a folder" in err and "Traceback" not in err and err.count("\n") == 1


def test_a_text_file_named_keras_is_not_called_missing(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code, _, err = run_scan(capsys, tmp_path, "--model", fake, "--backbone", "mobilenet_v1")
    assert code == exit_codes.EXIT_USAGE and "not a Keras model file" in err and "not found" not in err.lower()


def test_zero_threads_is_blamed_on_the_option_not_the_model(tflite, tmp_path, capsys):
    code, _, err = run_scan(capsys, tmp_path, "--model", tflite, "--threads", "0")
    assert code == exit_codes.EXIT_USAGE and "--threads must be at least 1" in err


@pytest.mark.parametrize("labels", [None, ""])
def test_tflite_without_labels_is_an_error_unless_classes_are_given(tflite, decisive, tmp_path, capsys, labels):
    model = tmp_path / "model.tflite"
    model.write_bytes(tflite.read_bytes())  # no card next to it
    if labels is not None:
        (tmp_path / "labels.txt").write_text(labels)
    Image.fromarray(decisive["safe"]).save(tmp_path / "a.png")
    code, _, err = run_scan(capsys, tmp_path / "a.png", "--model", model)
    assert code == exit_codes.EXIT_USAGE and "no class names" in err and "--classes" in err
    code, out, _ = run_scan(capsys, tmp_path / "a.png", "--model", model, "--classes", "normal", "sexual")
    assert code == exit_codes.EXIT_OK and rows_of(out)[0]["label"] == "normal"


# ---------------------------------------------------------------- Ctrl-C, stderr noise


def test_ctrl_c_says_where_it_stopped_exits_130_and_leaves_whole_rows(tflite, decisive, tmp_path, capsys,
                                                                         monkeypatch):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(decisive["safe"]).save(tmp_path / name)
    real_decode_input = scan.decode_input

    def interrupted_on_b(detector, path, **options):  # b.png is decoded on a thread; the main thread is told
        if path.name == "b.png":
            raise KeyboardInterrupt
        return real_decode_input(detector, path, **options)

    monkeypatch.setattr(scan, "decode_input", interrupted_on_b)
    code, out, err = run_scan(capsys, tmp_path, "--model", tflite)
    assert code == exit_codes.EXIT_INTERRUPTED == 130
    assert err.strip() == "nsfw-mobilenet scan: interrupted after 1 of 3 inputs"
    assert [by_name(rows_of(out))] == [{"a.png": rows_of(out)[0]}] and out.endswith("\n")


def test_pillow_warnings_become_notes_on_the_row_not_stderr(tflite, tmp_path, capsys):
    path = tmp_path / "bad_exif.jpg"
    Image.new("RGB", (64, 64), (10, 200, 10)).save(path, exif=BAD_EXIF)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped the row would fail the scan
        code, out, err = run_scan(capsys, path, "--model", tflite)
    assert "Corrupt EXIF data" in rows_of(out)[0]["note"] and err == ""


def test_scanning_with_a_keras_model_prints_only_our_own_messages(classifier, decisive, tmp_path):
    classifier.save(tmp_path / "tiny.keras")
    Image.fromarray(decisive["safe"]).save(tmp_path / "a.png")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # even when TensorFlow is asked to log everything
    completed = subprocess.run([sys.executable, "-m", "nsfw_mobilenet.cli", "scan", "--quiet", str(tmp_path / "a.png"),
                                "--model", str(tmp_path / "tiny.keras"), "--backbone", "mobilenet_v1"],
                               capture_output=True, text=True, env=env)
    assert completed.returncode in (exit_codes.EXIT_OK, exit_codes.EXIT_FLAGGED), completed.stderr
    assert completed.stderr == ""


INTERRUPTED_SCAN = """
import signal, sys, threading, time
from pathlib import Path
from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also when the tests run in the background

output, real_decode_input = Path(sys.argv[1]), scan.decode_input

def stuck_on_c(detector, path, **options):  # c.png decodes on a thread until the rows of a and b are written
    if path.name == "c.png":
        while output.read_text().count("\\n") < 3:
            time.sleep(0.01)
        print("c is decoding", file=sys.stderr, flush=True)
        threading.Event().wait(timeout=5)
    return real_decode_input(detector, path, **options)

scan.decode_input = stuck_on_c
sys.exit(cli.main(["scan", "--quiet", *sys.argv[2:], "--output", str(output)]))
"""


def test_ctrl_c_while_the_main_thread_waits_for_a_decoding_thread_exits_130_with_whole_rows(tflite, decisive,
                                                                                             tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.fromarray(decisive["safe"]).save(folder / name)
    output = tmp_path / "rows.csv"
    process = subprocess.Popen([sys.executable, "-c", INTERRUPTED_SCAN, str(output), str(folder),
                                "--model", str(tflite)], stderr=subprocess.PIPE, text=True)
    assert process.stderr.readline() == "c is decoding\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == exit_codes.EXIT_INTERRUPTED
    assert err.strip() == "nsfw-mobilenet scan: interrupted after 2 of 4 inputs"
    rows = rows_of(output.read_text())
    assert list(by_name(rows)) == ["a.png", "b.png"]
    assert all(len(row) == len(scan_output.ROW_FIELDS) + 2 and row["decision"] == "safe" for row in rows)  # whole rows

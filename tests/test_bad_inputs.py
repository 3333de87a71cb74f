"""Bad inputs to `nsfw-mobilenet scan` (issue 10, items 1–12): every input gets a row, no traceback.

Every odd input is generated here at test time (harmless colour images, text, links); nothing binary is
committed. Each test names the issue's case it covers.
"""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import tiny_classifier
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan, scan_output
from nsfw_mobilenet.core import exit_codes
from nsfw_mobilenet.evaluation import operating_point
from nsfw_mobilenet.io import image_files

SIDE = tiny_classifier.SIDE
BAD_EXIF = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12"  # an IFD cut short: "Corrupt EXIF data"


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


# ---------------------------------------------------------------- 1. every file gets a row


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


# ---------------------------------------------------------------- 2, 4. pixels as a viewer sees them


def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped_to_white(tmp_path):
    path = tmp_path / "depth16.png"
    Image.fromarray(np.full((64, 64), 30000, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    assert image_files.decode_image(path, (32, 32))[0, 0].tolist() == [117, 117, 117]  # 30000 / 257


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_composited_on_white_not_their_hidden_colour(tmp_path, mode):
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[..., 0] = 255  # red hidden under alpha 0 on the left half
    pixels[:, 32:, 3] = 255
    image = Image.fromarray(pixels)
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        pixels[:, 32:, :3] = (0, 0, 255)
        image = Image.fromarray(pixels[..., :3]).quantize(2)
        image.info["transparency"] = image.getpixel((0, 0))  # the left half's palette entry
    path = tmp_path / f"transparent_{mode}.png"
    image.save(path, transparency=image.info["transparency"]) if mode == "P" else image.save(path)
    decoded = image_files.decode_image(path, (64, 64))
    assert decoded[10, 5].tolist() == list(image_files.TRANSPARENT_BACKGROUND)
    assert decoded[10, 50].tolist() != list(image_files.TRANSPARENT_BACKGROUND)


# ---------------------------------------------------------------- 3. animations are judged on every frame


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


# ---------------------------------------------------------------- 5, 6, 7. too small, truncated, too big


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


def test_a_non_image_is_rejected_from_its_header(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"PK\x03\x04" + bytes(1000))
    with pytest.raises(image_files.CorruptImage, match="not an image"):
        image_files.read_image(fake)


# ---------------------------------------------------------------- 8, 9, 10. clear usage errors


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


def test_labels_in_the_model_card_count(tflite, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(tflite.read_bytes())
    (tmp_path / "labels.txt").write_text("\n")
    (tmp_path / "model_card.json").write_text(json.dumps({"classes": ["normal", "sexual"]}))
    assert scan.Detector(model).classes == ["normal", "sexual"]


# ---------------------------------------------------------------- 11, 12. Ctrl-C, stderr noise


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


def test_export_also_says_a_text_file_named_keras_is_not_a_keras_model(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code = cli.main(["export", "--model", str(fake), "--backbone", "mobilenet_v1", "--out", str(tmp_path / "out"),
                     "--variants", "float32"])
    err = capsys.readouterr().err
    assert code == 2 and "not a Keras model file" in err and "not found" not in err.lower()


def test_the_detector_api_refuses_a_too_small_file_as_the_scan_does(tflite, tmp_path):
    Image.new("RGB", (1, 1), (200, 20, 20)).save(tmp_path / "pixel.png")
    with pytest.raises(image_files.CorruptImage, match="too small to classify"):
        scan.Detector(tflite).classify(tmp_path / "pixel.png")


# ---------------------------------------------------------------- 11, 12 with files decoded on threads


def test_each_file_keeps_its_own_pillow_notes_when_files_decode_on_threads(tflite, tmp_path):
    for index in range(40):
        exif = {"exif": BAD_EXIF} if index % 3 == 0 else {}
        Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / f"{index:02d}.jpg", **exif)
    filters, showwarning = list(warnings.filters), warnings.showwarning
    rows = list(scan.scan(scan.Detector(tflite), [tmp_path], progress=False, decode_threads=8))
    assert [bool(row["note"]) for row in rows] == [index % 3 == 0 for index in range(40)]
    assert all(row["note"].startswith("UserWarning: Corrupt EXIF data") for row in rows if row["note"])
    assert warnings.filters == filters and warnings.showwarning is showwarning  # left as they were


def test_read_image_on_many_threads_at_once_gives_each_file_its_own_notes(tmp_path):
    paths = []
    for index in range(12):
        paths.append(tmp_path / f"{index:02d}.jpg")
        Image.new("RGB", (64, 64), (index, 20, 20)).save(paths[-1], **({"exif": BAD_EXIF} if index % 2 else {}))
    with ThreadPoolExecutor(8) as pool:
        notes = list(pool.map(lambda path: image_files.read_image(path, (32, 32)).notes, paths * 10))
    assert [bool(note) for note in notes] == [index % 2 == 1 for index in range(12)] * 10


def test_a_warning_of_another_thread_is_not_taken_as_a_note(tmp_path):
    collecting, release = threading.Event(), threading.Event()

    def notes_of_a_quiet_block():
        with image_files.pillow_warnings_as_notes() as notes:
            collecting.set()
            release.wait(timeout=10)
        return notes

    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(1) as pool:
        warnings.simplefilter("always")
        quiet = pool.submit(notes_of_a_quiet_block)
        collecting.wait(timeout=10)
        warnings.warn("raised by the main thread", UserWarning)
        release.set()
        assert quiet.result() == []
    assert [str(warning.message) for warning in caught] == ["raised by the main thread"]


INTERRUPTED_SCAN = """
import sys, threading, time
from pathlib import Path
from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan

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

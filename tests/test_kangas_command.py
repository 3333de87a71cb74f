"""Specifications for `nsfw-mobilenet kangas build | serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_classifier
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import kangas_grid
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE


@pytest.fixture(scope="module")
def keras_model(classifier, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    classifier.save(path)
    return path


def labelled_test_folder(root: Path, count: int = 12) -> Path:
    """test/normal and test/sexual of the tiny classifier's colour rule, plus one file that is not an image."""
    pixels, labels = tiny_classifier.images(count, seed=7)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        path = root / "test" / tiny_classifier.CLASSES[label] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    (root / "test" / "normal" / "broken.png").write_bytes(b"not a png")
    return root


def grid_paths(path: Path) -> list[str]:
    code = ("import json, sys, kangas\ngrid = kangas.DataGrid(sys.argv[1])\n"
            "print(json.dumps([grid[i][-1] for i in range(grid.nrows)]))")
    read = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          env={**os.environ, kangas_grid.VERSION_CHECK_ENV: "0"})
    assert read.returncode == 0, read.stderr
    return json.loads(read.stdout.splitlines()[-1])


def test_build_writes_a_grid_of_every_test_image_or_only_the_errors_and_reports_unreadable_files(
        keras_model, tmp_path, capsys):
    data = labelled_test_folder(tmp_path / "data")
    everything = tmp_path / "all.datagrid"
    assert cli.main(["kangas", "build", "--model", str(keras_model), "--data", str(data), "--backbone",
                     "mobilenet_v2", "--out", str(everything), "--all"]) == EXIT_OK
    output = capsys.readouterr()
    assert f"wrote {everything}: 12 of 12 test images (all)" in output.out
    assert f"nsfw-mobilenet kangas serve {everything}" in output.out
    assert "broken.png" in output.err and len(grid_paths(everything)) == 12
    errors = tmp_path / "errors.datagrid"
    assert cli.main(["kangas", "build", "--model", str(keras_model), "--data", str(data), "--backbone",
                     "mobilenet_v2", "--out", str(errors)]) == EXIT_OK
    kept = int(capsys.readouterr().out.split(": ")[1].split()[0])  # "wrote <grid>: K of 12 test images (the errors…"
    assert len(grid_paths(errors)) == kept < 12  # the tiny classifier gets most of its colour rule right


def test_build_refuses_class_folders_the_model_does_not_know_in_one_line(keras_model, tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("cats", "normal"):
        (data / "test" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(data / "test" / name / "0.png")
    assert cli.main(["kangas", "build", "--model", str(keras_model), "--data", str(data), "--backbone",
                     "mobilenet_v2"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("nsfw-mobilenet kangas build: error: ") and "['cats']" in error
    assert error.count("\n") == 1


def test_kangas_without_a_sub_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["kangas"])
    assert stopped.value.code == EXIT_USAGE and "{build,serve}" in capsys.readouterr().err

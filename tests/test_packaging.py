"""Packaging specification: a wheel carries the configs and the thesis's numbers and runs from any folder,
`python -m nsfw_mobilenet` is the command line, and the environment enters through `settings_from_environment`."""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from nsfw_mobilenet import cli
from nsfw_mobilenet.core import configs
from nsfw_mobilenet.core.settings import Settings
from nsfw_mobilenet.evaluation import run_results

CHECKOUT = Path(__file__).resolve().parents[1]
BUILD_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "lib")


def run_python(*arguments: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """`python3 arguments…` in `cwd`, with `pythonpath` (an installed package) first on the path; must succeed."""
    environment = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    completed = subprocess.run([sys.executable, *arguments], cwd=cwd, env=environment, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout's sources (a build writes build/ and *.egg-info beside them)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    source.mkdir()
    for name in BUILD_SOURCES:
        if (CHECKOUT / name).is_dir():
            shutil.copytree(CHECKOUT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(CHECKOUT / name, source / name)
    offline = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []  # else pip fetches it
    run_python("-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", str(folder / "dist"), str(source), cwd=folder)
    return next((folder / "dist").glob("nsfw_mobilenet-*.whl"))


def test_wheel_carries_every_config_the_thesis_numbers_and_the_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data_files = [*configs.EXPERIMENTS_DIR.rglob("*.yaml"), configs.REFERENCE_FILE]
    assert {f"nsfw_mobilenet/{path.relative_to(configs.PACKAGE_DIR).as_posix()}" for path in data_files} <= names
    assert "nsfw_mobilenet/configs/table_4.1/row_01.yaml" in names and "nsfw_mobilenet/__main__.py" in names
    assert any(name.endswith(".dist-info/LICENSE") for name in names)


@pytest.mark.slow
def test_installed_wheel_trains_a_thesis_table_row_from_any_folder(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_python("-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel), cwd=tmp_path)
    where = run_python("-c", "import nsfw_mobilenet.core.paths as e; print(e.__file__); print(e.PROJECT_ROOT)",
                       cwd=elsewhere, pythonpath=site).stdout.split()
    assert [Path(line).resolve() for line in where] == [(site / "nsfw_mobilenet" / "core" / "paths.py").resolve(),
                                                        elsewhere.resolve()]  # not the checkout's package

    run_python("-m", "nsfw_mobilenet", "make-standin", "standin", "--images-per-class", "16", "--no-videos", "--quiet",
               cwd=elsewhere, pythonpath=site)
    run_python("-m", "nsfw_mobilenet", "train", "--table", "4.1", "--row", "1", "--smoke", "--data", "standin/binary",
               "--out", "out", cwd=elsewhere, pythonpath=site)
    result = run_results.load_result(elsewhere / "out" / "smoke" / "table_4.1_row_01_seed_1.json")
    assert (result.config.table, result.config.row, result.smoke) == ("4.1", 1, True)


def test_python_m_nsfw_mobilenet_is_the_command_line(tmp_path):
    usage = run_python("-m", "nsfw_mobilenet", "--help", cwd=tmp_path).stdout
    assert usage.startswith("usage: nsfw-mobilenet")
    assert all(command in usage for command in ("make-standin", "train", "scan", "export", "kangas"))


def test_the_command_line_hands_each_command_the_settings_of_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NSFW_MOBILENET_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("NSFW_MOBILENET_SMOKE", "0")
    seen = []
    parser = argparse.ArgumentParser()
    parser.add_subparsers().add_parser("record").set_defaults(func=lambda args: seen.append(args.settings))
    monkeypatch.setattr(cli, "build_parser", lambda command=None: parser)
    assert cli.main(["record"]) == 0
    assert seen == [Settings(weights_dir=tmp_path, smoke=False)]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_runs_pip_again_only_when_the_requirements_or_pyproject_changed(tmp_path):
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy2(CHECKOUT / name, tmp_path / name)
    (tmp_path / "env" / "bin").mkdir(parents=True)
    planned = ["make", "-n", "install", f"VIRTUAL_ENV={tmp_path / 'env'}"]

    def pip_runs() -> bool:
        return "pip install" in subprocess.run(planned, cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    assert pip_runs()
    stamp, installed = tmp_path / "env" / ".nsfw-mobilenet-installed", time.time() - 60
    stamp.touch()  # what the install's last step does, a minute ago
    os.utime(stamp, (installed, installed))
    for name in ("requirements.txt", "pyproject.toml"):
        os.utime(tmp_path / name, (installed - 60, installed - 60))
    assert not pip_runs()
    os.utime(tmp_path / "requirements.txt")  # a requirement changed since
    assert pip_runs()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_points_the_weights_variable_at_the_shared_weights_beside_the_clone_unless_it_is_set(environment):
    show = ["make", "-s", "--eval", "show-weights: ; @echo $$NSFW_MOBILENET_WEIGHTS_DIR", "show-weights"]
    unset = {name: value for name, value in environment.items() if name != "NSFW_MOBILENET_WEIGHTS_DIR"}
    shared = CHECKOUT.parent / "shared" / "weights"
    shown = subprocess.run(show, cwd=CHECKOUT, env=unset, capture_output=True, text=True, check=True).stdout.strip()
    assert shown == (str(shared) if shared.is_dir() else "")
    chosen = subprocess.run(show, cwd=CHECKOUT, env={**unset, "NSFW_MOBILENET_WEIGHTS_DIR": "/elsewhere"},
                            capture_output=True, text=True, check=True).stdout.strip()
    assert chosen == "/elsewhere"

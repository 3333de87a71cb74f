"""Command-line specification: exit codes no script can confuse, and no traceback a user did not ask for."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import scan_command
from nsfw_mobilenet.core import exit_codes

USAGE = Path(__file__).resolve().parents[1] / "docs" / "USAGE.md"


def crash(args):
    raise RuntimeError("a bug's message\nand its second line")


def test_an_unexpected_error_is_one_line_asking_for_a_report_with_its_own_exit_code(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(scan_command, "run", crash)
    code = cli.main(["scan", str(tmp_path), "--model", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err
    assert code == exit_codes.EXIT_INTERNAL_ERROR not in (exit_codes.EXIT_OK, exit_codes.EXIT_FLAGGED)
    assert err == ("nsfw-mobilenet scan: internal error: RuntimeError: a bug's message -- please report it, with the "
                   "traceback that --debug (or NSFW_MOBILENET_DEBUG=1) shows\n")


@pytest.mark.parametrize("argv, environment", [(["--debug", "scan"], {}), (["scan", "--debug"], {}),
                                               (["scan"], {cli.DEBUG_ENV: "1"})])
def test_the_debug_flag_or_variable_gives_the_traceback(tmp_path, monkeypatch, argv, environment):
    monkeypatch.setattr(scan_command, "run", crash)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="a bug's message"):
        cli.main([*argv, str(tmp_path), "--model", str(tmp_path / "m.tflite")])


def test_every_exit_code_is_documented_in_help_and_in_the_readme(capsys):
    for argv in (["--help"], ["scan", "--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        shown = capsys.readouterr().out
        assert all(re.search(rf"^\s+{code}\s+{re.escape(meaning[:20])}", shown, re.M)
                   for code, meaning in exit_codes.EXIT_CODES.items()), argv
    section = USAGE.read_text().split("## What happens to bad input")[1].split("\n## ")[0]
    assert all(f"| {code} |" in section for code in exit_codes.EXIT_CODES)


def test_a_reader_closing_the_pipe_ends_the_scan_quietly_with_141(classifier, tmp_path):
    import tiny_classifier

    model = tiny_classifier.export_variant(classifier, tmp_path / "model", "float32").path
    folder = tmp_path / "inbox"
    folder.mkdir()
    Image.new("RGB", (48, 48), (10, 200, 10)).save(folder / "0000.png")
    for index in range(1, 400):  # more rows than a pipe holds: the scan must still be writing when it closes
        os.link(folder / "0000.png", folder / f"{index:04d}.png")
    process = subprocess.Popen([sys.executable, "-m", "nsfw_mobilenet", "scan", "--quiet", str(folder), "--model",
                                str(model), "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b'{"path"')
    process.stdout.close()  # as `| head -1` does
    assert process.wait(timeout=120) == exit_codes.EXIT_BROKEN_PIPE
    assert process.stderr.read() == b""


def test_every_command_and_option_has_a_help_line_and_a_description():
    import argparse

    parser = cli.build_parser()
    commands = cli._command_parsers(parser._subparsers._group_actions[0])
    assert {command.prog.removeprefix("nsfw-mobilenet ") for command in commands} >= {
        "make-standin", "train", "scan", "export", "kangas", "kangas build", "kangas serve"}
    for command in commands:
        assert command.description, command.prog
        for action in command._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"{command.prog} {action.option_strings or action.dest}"

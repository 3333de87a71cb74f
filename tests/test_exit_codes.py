"""Specifications of core.exit_codes: one set of exit codes for every `nsfw-mobilenet` command, each described once."""

import re
import signal

from nsfw_mobilenet.core import exit_codes

CODES = {name: value for name, value in vars(exit_codes).items() if name.startswith("EXIT_") and name != "EXIT_CODES"}


def test_every_exit_code_is_distinct_fits_a_shell_and_has_one_description() -> None:
    assert len(set(CODES.values())) == len(CODES)
    assert all(0 <= code <= 255 for code in CODES.values())
    assert set(exit_codes.EXIT_CODES) == set(CODES.values()) and all(exit_codes.EXIT_CODES.values())


def test_a_crash_and_a_signal_never_share_a_verdicts_code() -> None:
    verdicts = {exit_codes.EXIT_OK, exit_codes.EXIT_FLAGGED, exit_codes.EXIT_UNREADABLE}
    assert exit_codes.EXIT_INTERNAL_ERROR not in verdicts and exit_codes.EXIT_USAGE not in verdicts
    assert (exit_codes.EXIT_INTERRUPTED, exit_codes.EXIT_BROKEN_PIPE) == (128 + signal.SIGINT, 128 + signal.SIGPIPE)


def test_exit_codes_help_lists_every_code_with_its_meaning_in_order() -> None:
    lines = exit_codes.exit_codes_help().splitlines()
    assert lines[0] == "exit codes:"
    parsed = [re.fullmatch(r"  +(\d+)  (.+)", line).groups() for line in lines[1:]]
    assert [(int(code), meaning) for code, meaning in parsed] == list(exit_codes.EXIT_CODES.items())

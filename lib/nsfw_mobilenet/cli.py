"""`nsfw-mobilenet` command line: one sub-command per pipeline stage.

Each stage module that offers a command defines `add_command(subparsers)`, which registers
its parser and sets `func` to a callable taking the parsed arguments and returning an exit code.
A command imports only its own module, so `scan` starts without the training stack.
The environment is read here, once: the arguments carry it as `settings`
(`nsfw_mobilenet.Settings`), for the commands to pass down.

Whatever a command raises ends here as one line on stderr and an exit code of its own
(`exit_codes`), never a traceback a script could mistake for output, nor exit 1 ("flagged"):
`--debug` (or NSFW_MOBILENET_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from nsfw_mobilenet.core.exit_codes import EXIT_BROKEN_PIPE, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, exit_codes_help
from nsfw_mobilenet.core.settings import settings_from_environment

COMMAND_MODULES = {"make-standin": "io.standin", "train": "training.train_command", "scan": "app.scan_command",
                   "export": "app.export_command", "kangas": "app.kangas_command", "review": "app.review_command",
                   "finetune": "training.finetune_command"}  # command name: the module defining it
DEBUG_ENV = "NSFW_MOBILENET_DEBUG"  # "1": tracebacks of internal errors, as --debug
DEBUG_HELP = f"show the traceback of an internal error (also {DEBUG_ENV}=1)"
MESSAGE_LIMIT = 300  # characters of an internal error's message on its one line
# TensorFlow's C++ INFO lines ("XLA service ... initialized", "Compiled cluster using XLA!") are not a command's
# output; set before TensorFlow is imported, unless the caller chose a level.
NATIVE_LOG_LEVEL = {"TF_CPP_MIN_LOG_LEVEL": "1"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `command` alone (importing train's modules costs `scan` a second)."""
    parser = argparse.ArgumentParser(prog="nsfw-mobilenet", description=__doc__.splitlines()[0],
                                     epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMAND_MODULES.items():
        if command in (None, name):
            importlib.import_module(f"nsfw_mobilenet.{module}").add_command(subparsers)
    for subparser in _command_parsers(subparsers):  # --debug after the command too; exit codes in every --help
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        subparser.epilog, subparser.formatter_class = exit_codes_help(), argparse.RawDescriptionHelpFormatter
    return parser


def _command_parsers(subparsers: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """The parser of every command and sub-command (`kangas build`, `kangas serve`)."""
    found = []
    for parser in subparsers.choices.values():
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += _command_parsers(action)
    return found


def internal_error_line(command: str, error: BaseException) -> str:
    """One line for an error no command expected: what it is, and that it is ours to fix."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0][:MESSAGE_LIMIT] if lines else "(no message)"
    return (f"nsfw-mobilenet {command}: internal error: {type(error).__name__}: {message} -- please report it, "
            f"with the traceback that --debug (or {DEBUG_ENV}=1) shows")


def _stdout_to_devnull() -> None:
    """After a broken pipe, Python's own final flush of stdout would print a second error."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    words = [word for word in argv if not word.startswith("-")]
    command = words[0] if words else "?"
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV) == "1"
    for name, level in NATIVE_LOG_LEVEL.items():
        os.environ.setdefault(name, level)
    try:
        args = build_parser(command if command in COMMAND_MODULES else None).parse_args(argv)
        args.settings = settings_from_environment(os.environ)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `| head`: the Unix way is to end quietly
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"nsfw-mobilenet {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if debug:
            raise
        print(internal_error_line(command, error), file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # python -m nsfw_mobilenet.cli, as python -m nsfw_mobilenet
    sys.exit(main())

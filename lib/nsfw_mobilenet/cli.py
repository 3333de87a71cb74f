"""`nsfw-mobilenet` command line: one sub-command per pipeline stage.

Each stage module that offers a command defines `add_command(subparsers)`, which registers
its parser and sets `func` to a callable taking the parsed arguments and returning an exit code.
A command imports only its own module, so `scan` starts without the training stack.
The environment is read here, once: the arguments carry it as `settings`
(`nsfw_mobilenet.Settings`), for the commands to pass down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nsfw_mobilenet import settings_from_environment

COMMAND_MODULES = {"make-standin": "standin", "train": "train", "scan": "scan", "export": "export",
                   "kangas": "kangas_grid"}  # command name: the module defining it


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `command` alone (importing train's modules costs `scan` a second)."""
    parser = argparse.ArgumentParser(prog="nsfw-mobilenet", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMAND_MODULES.items():
        if command in (None, name):
            importlib.import_module(f"nsfw_mobilenet.{module}").add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command if command in COMMAND_MODULES else None).parse_args(argv)
    args.settings = settings_from_environment()
    return int(args.func(args) or 0)


if __name__ == "__main__":  # python -m nsfw_mobilenet.cli, as python -m nsfw_mobilenet
    sys.exit(main())

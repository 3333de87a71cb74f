"""`nsfw-mobilenet` command line: one sub-command per pipeline stage.

Each stage module that offers a command defines `add_command(subparsers)`, which registers
its parser and sets `func` to a callable taking the parsed arguments and returning an exit code.
The environment is read here, once: the arguments carry it as `settings`
(`nsfw_mobilenet.Settings`), for the commands to pass down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nsfw_mobilenet import settings_from_environment

COMMAND_MODULES = ("standin", "train", "scan", "export", "kangas_grid")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nsfw-mobilenet", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"nsfw_mobilenet.{name}").add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.settings = settings_from_environment()
    return int(args.func(args) or 0)


if __name__ == "__main__":  # python -m nsfw_mobilenet.cli, as python -m nsfw_mobilenet
    sys.exit(main())

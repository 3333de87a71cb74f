"""Exit codes of every `nsfw-mobilenet` command, one set for all, so that a script never takes a crash for a verdict.

`EXIT_CODES` is their one description: `--help` and the README's bad-input section print it.
"""




EXIT_OK = 0  # done; for `scan`: every input was read and is safe
EXIT_FLAGGED = 1  # `scan`: at least one input is unsafe or needs review
EXIT_USAGE = 2  # usage error, or an input the command cannot start from (model, card, data folder, --output)
EXIT_UNREADABLE = 3  # `scan`: nothing flagged, but some inputs could not be read
EXIT_OUTPUT_FAILED = 4  # the output could not be written (disk full, ...): the rows written before are whole
EXIT_INTERNAL_ERROR = 70  # a bug: one line on stderr asks for a report (sysexits.h's EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells report for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head`); nothing is printed

EXIT_CODES = {
    EXIT_OK: "done (scan: every input read and safe)",
    EXIT_FLAGGED: "scan: something unsafe or in review (takes precedence over 3)",
    EXIT_USAGE: "usage error, or a model, card, data folder or --output the command cannot start from",
    EXIT_UNREADABLE: "scan: nothing flagged, but some inputs could not be read (each has an error or skipped row)",
    EXIT_OUTPUT_FAILED: "the output could not be written (disk full, write error); the rows before are whole",
    EXIT_INTERNAL_ERROR: "internal error: one line on stderr, please report it (--debug shows the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); scan: every written row is whole",
    EXIT_BROKEN_PIPE: "the reader of stdout closed it (e.g. `| head`); ends quietly",
}


def exit_codes_help() -> str:
    """The exit codes as lines for an argparse epilog."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


"""Exit codes of every `nsfw-mobilenet` command, one set for all (what each means for `scan`: its docstring)."""

EXIT_OK = 0  # done; for `scan`: every input was read and is safe
EXIT_FLAGGED = 1  # `scan`: at least one input is unsafe or needs review
EXIT_USAGE = 2  # usage error, or an input the command cannot start from (model, data folder)
EXIT_UNREADABLE = 3  # `scan`: nothing flagged, but some inputs could not be read
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells report for Ctrl-C

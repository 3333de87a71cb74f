"""`python -m nsfw_mobilenet <command>`: the `nsfw-mobilenet` command line, also where its script is not on PATH."""

import sys

from nsfw_mobilenet.cli import main

if __name__ == "__main__":
    sys.exit(main())

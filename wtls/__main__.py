"""``python -m wtls``: the same as ``wtls serve`` with no arguments, or the CLI with some."""

from __future__ import annotations

import sys

from wtls.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["serve"]))

"""The `lifeguard` command: a small dispatcher; each subcommand lives in its own module.

A module registers its subcommand with `register(subparsers)` and sets `handler` on it, a
function from the parsed arguments to an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lifeguard.cli import db, explain, run

SUBCOMMANDS = (run, explain, db)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lifeguard",
        description="River Lifeguard: keeps long-running River jobs honest.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

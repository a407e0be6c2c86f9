"""The `kefu` command."""

from __future__ import annotations

import argparse
import sys
from typing import List


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="kefu customer-service assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the embedded stack (Rasa, actions, desk)")
    return parser


def main(argv: List[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from kefu.runner import run

        return run()
    return 2


if __name__ == "__main__":
    sys.exit(main())

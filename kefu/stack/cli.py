"""The `kefu` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, List

from kefu.paths import ROOT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="kefu customer-service assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the embedded stack (Rasa, actions, orders, desk)")
    commands.add_parser(
        "run-scaled",
        help="2 Rasa, 2 action servers, 2 desks on PostgreSQL and Redis, behind a front",
    )
    doctor = commands.add_parser(
        "doctor", help="versions, runtime fixes, model, policy, ports, stores, Chromium"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object on stdout")
    phrasing = commands.add_parser("phrasing", help="the service-phrasing standard")
    tools = phrasing.add_subparsers(dest="tool", required=True)
    tools.add_parser(
        "check",
        help='read {"text": ...} JSON lines (or plain lines) on stdin, '
        "write one JSON verdict per line",
    )
    tools.add_parser("lint", help="check every response, policy phrase and action text")
    from kefu.tools import commands as developer_commands

    developer_commands.register(commands)
    return parser


def text_of(line: str) -> str:
    """A JSON object with a string "text" gives that text; anything else is plain text."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            return line
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            return str(value["text"])
    return line


def phrasing_check(stdin: IO[str], stdout: IO[str]) -> int:
    from kefu.domain.phrasing.checker import Checker
    from kefu.domain.policy import load_policy

    checker = Checker.for_policy(load_policy())
    for raw in stdin:
        text = text_of(raw.rstrip("\r\n"))
        violations = [v.as_dict() for v in checker.check(text)]
        verdict = {"text": text, "ok": not violations, "violations": violations}
        stdout.write(json.dumps(verdict, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def phrasing_lint(stdout: IO[str]) -> int:
    from kefu.domain.phrasing.lint import lint
    from kefu.domain.policy import load_policy

    findings = lint(ROOT, load_policy())
    for finding in findings:
        stdout.write(f"{finding}\n")
    if findings:
        stdout.write(f"phrasing lint: {len(findings)} problem(s)\n")
        return 1
    stdout.write("phrasing lint: every response, phrase and action text passes\n")
    return 0


def main(argv: List[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from kefu.domain.policy import PolicyError

    try:
        if args.command in ("run", "run-scaled"):
            from kefu.stack.runner import run

            return run(supervise=args.command == "run-scaled")
        if args.command in ("review", "intent"):
            from kefu.tools import commands as developer_commands

            return developer_commands.main(args)
        if args.command == "doctor":
            from kefu.stack import doctor

            return doctor.main(as_json=args.json)
        if args.tool == "check":
            return phrasing_check(sys.stdin, sys.stdout)
        return phrasing_lint(sys.stdout)
    except PolicyError as error:
        print(f"kefu: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

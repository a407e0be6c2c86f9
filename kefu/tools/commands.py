"""`kefu review ...` and `kefu intent ...`: the developers' loop on the command line.

Bad input gives one line on stderr and a non-zero exit, never a traceback: 2 for a
refusal or a bad option, 1 for a source that cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, List, NoReturn, Tuple

from kefu.paths import ROOT

REFUSED = 2
UNREADABLE = 1


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line (its usage block is for --help)."""

    def error(self, message: str) -> NoReturn:
        _say(f"{self.prog}: {message} (see {self.prog} --help)")
        sys.exit(REFUSED)


def _one_line(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.error = OneLineParser.error.__get__(parser)  # type: ignore[method-assign]
    return parser


def register(commands: Any) -> None:
    review = _one_line(
        commands.add_parser("review", help="what the bot did not understand in real chats")
    )
    tools = review.add_subparsers(dest="tool", required=True, parser_class=OneLineParser)
    listing = tools.add_parser(
        "list", help="messages that fell back, were doubtful, failed or were corrected"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.add_argument("--since", help="2026-12-01, 2026-12-01T08:00, or 7d / 24h back")
    listing.add_argument(
        "--reason", choices=("fallback", "low_confidence", "bot_failure", "corrected")
    )
    listing.add_argument(
        "--low-confidence",
        type=float,
        default=None,
        help="below this confidence a guess is doubtful (default 0.5)",
    )
    _sources(listing)

    label = tools.add_parser("label", help="add a message to the training data under an intent")
    label.add_argument("--text", help="the message as the visitor typed it")
    label.add_argument("--intent", help="the intent it means (faq/<topic> for a shop question)")
    label.add_argument(
        "--file",
        help="many at once: lines of TEXT<TAB>INTENT, or JSON objects with text and intent "
        "(kefu review list --json with an intent added)",
    )
    label.add_argument("--new", action="store_true", help="the intent is new: add it")
    label.add_argument("--topic", help="data/nlu/<topic>.yml for a new intent")
    label.add_argument(
        "--keep-going", action="store_true", help="with --file: write what passes, report the rest"
    )

    story = tools.add_parser("story", help="a Rasa test story from a stored conversation")
    story.add_argument("conversation_id")
    _sources(story, desk=False)

    intent = _one_line(commands.add_parser("intent", help="add a new intent, check one"))
    tools = intent.add_subparsers(dest="tool", required=True, parser_class=OneLineParser)
    add = tools.add_parser("add", help="domain, examples, response, rule and test story at once")
    add.add_argument("name")
    add.add_argument("--topic", help="data/nlu/<topic>.yml that takes the examples")
    add.add_argument("--examples", required=True, help="a file with one example a line")
    add.add_argument(
        "--answer",
        help="the bot's answer (checked by the phrasing lint); with --faq, a new topic's answer",
    )
    add.add_argument(
        "--faq",
        metavar="TOPIC_ID",
        nargs="?",
        const="",
        help="a shop question: the examples become FAQ topic TOPIC_ID (default: NAME) of "
        "policy/faq.yml, answered by its answer",
    )
    add.add_argument(
        "--flow",
        metavar="FORM",
        nargs="?",
        const="",
        help="the intent opens a flow: the form FORM of domain.yml (default: order_form), "
        "after the --answer if given",
    )
    check = tools.add_parser("check", help="how separable an intent is from its neighbours")
    check.add_argument("name")
    check.add_argument("--examples", help="candidate examples (one a line) not yet in data/")
    check.add_argument("--folds", type=int, default=5)
    check.add_argument("--json", action="store_true")


def _sources(parser: argparse.ArgumentParser, desk: bool = True) -> None:
    if desk:
        parser.add_argument(
            "--database", help="the desk's store (default: KEFU_DATABASE_URL or var/kefu.db)"
        )
    parser.add_argument("--tracker", help="Rasa's tracker store URL (default: from --endpoints)")
    parser.add_argument(
        "--endpoints",
        default=os.environ.get("KEFU_RASA_ENDPOINTS") or "endpoints.yml",
        help="Rasa's endpoints file naming the tracker store (KEFU_RASA_ENDPOINTS, "
        "default endpoints.yml; endpoints.scaled.yml for run-scaled)",
    )


def main(args: argparse.Namespace, stdout: IO[str] = sys.stdout) -> int:
    from kefu.domain.policy import PolicyError
    from kefu.store.sql import StoreError
    from kefu.tools.nludata import DataError
    from kefu.tools.review import ReviewError

    name = f"kefu {args.command} {args.tool}"
    try:
        if args.command == "review":
            if args.tool == "list":
                return review_list(args, stdout)
            if args.tool == "label":
                return review_label(args, stdout)
            return review_story(args, stdout)
        from kefu.tools import intents

        if args.tool == "add":
            return intents.add_command(args, stdout)
        return intents.check_command(args, stdout)
    except (DataError, ReviewError, PolicyError) as e:
        _say(f"{name}: {e}")
        return REFUSED
    except (StoreError, OSError) as e:
        _say(f"{name}: cannot read the store: {e}")
        return UNREADABLE


def _say(line: str) -> None:
    print(" ".join(line.split()), file=sys.stderr)


def _endpoints(args: argparse.Namespace) -> Path:
    path = Path(args.endpoints)
    return path if path.is_absolute() else ROOT / path


def review_list(args: argparse.Namespace, stdout: IO[str]) -> int:
    from kefu.tools.review import LOW_CONFIDENCE, REASONS, Sources, collect, parse_since, table

    since = parse_since(args.since)
    sources = Sources.default(args.database, args.tracker, _endpoints(args))
    threshold = LOW_CONFIDENCE if args.low_confidence is None else args.low_confidence
    reasons = [args.reason] if args.reason else list(REASONS)
    items = asyncio.run(collect(sources, since, reasons, threshold))
    if args.json:
        for item in items:
            stdout.write(json.dumps(item.as_json(), ensure_ascii=False) + "\n")
    else:
        stdout.write(table(items) + "\n")
    return 0


def _label_requests(args: argparse.Namespace) -> List[Tuple[str, str, str]]:
    """(where, text, intent) for each example asked for."""
    from kefu.tools.nludata import DataError

    if args.file:
        if args.text or args.intent:
            raise DataError("give either --file or --text with --intent, not both")
        path = Path(args.file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read {path}: {e}") from None
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            out.append((f"{path.name}:{number}", *_text_and_intent(line, path.name, number)))
        if not out:
            raise DataError(f"{path} has no examples")
        return out
    if not args.text or not args.intent:
        raise DataError("give --text and --intent (or --file)")
    return [("", args.text, args.intent)]


def _text_and_intent(line: str, name: str, number: int) -> Tuple[str, str]:
    from kefu.tools.nludata import DataError

    if line.lstrip().startswith("{"):
        try:
            value = json.loads(line)
        except ValueError:
            raise DataError(f"{name}:{number}: not a JSON object") from None
        if not isinstance(value, dict):
            raise DataError(f"{name}:{number}: not a JSON object")
        text, intent = value.get("text"), value.get("intent")
    else:
        text, _, intent = line.partition("\t")
    if not isinstance(text, str) or not isinstance(intent, str) or not intent.strip():
        raise DataError(f'{name}:{number}: expected TEXT<TAB>INTENT or {{"text", "intent"}}')
    return text, intent.strip()


def review_label(args: argparse.Namespace, stdout: IO[str]) -> int:
    from kefu.tools.nludata import DataError, TrainingData, clean_example, fold

    data = TrainingData(ROOT)
    requests = _label_requests(args)
    accepted: List[Tuple[str, str, str]] = []
    refused: List[str] = []
    seen: dict = {}
    for where, raw, intent in requests:
        prefix = f"{where}: " if where else ""
        try:
            text = clean_example(raw)
        except DataError as e:
            refused.append(f"{prefix}{e}")
            continue
        reason = data.refusal(text, intent, new=args.new)
        if reason is None and fold(text) in seen:
            reason = f"duplicate: also on {seen[fold(text)]} of the file"
        if reason is not None:
            refused.append(f"{prefix}refused: {reason}: {text}")
            continue
        seen[fold(text)] = where
        accepted.append((where, text, intent))
    if refused and not args.keep_going:
        for reason in refused:
            _say(f"kefu review label: {reason}")
        if len(requests) > 1:
            _say(f"kefu review label: nothing written ({len(refused)} of {len(requests)} refused)")
        return REFUSED
    for _where, text, intent in accepted:
        path, number = data.append(text, intent, args.topic)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        stdout.write(f"labelled {intent}: {text}  ({shown}:{number})\n")
    for reason in refused:
        _say(f"kefu review label: {reason}")
    return REFUSED if refused else 0


def review_story(args: argparse.Namespace, stdout: IO[str]) -> int:
    from kefu.tools.review import ReviewError, Sources, TrackerReader

    sources = Sources.default(None, args.tracker, _endpoints(args))
    events = asyncio.run(TrackerReader(sources.tracker_url).events(args.conversation_id))
    if not events:
        raise ReviewError(f"no conversation {args.conversation_id!r} in Rasa's tracker store")
    from kefu.rasa.stories import as_test_story

    try:
        story = as_test_story(args.conversation_id, events)
    except ValueError as e:
        raise ReviewError(str(e)) from None
    stdout.write(story)
    return 0

"""The project's training data as text: where each intent's examples live, what is held
out, and appending an example without disturbing anything else in the file.

The files are edited as text, never loaded and dumped again: a YAML dumper would drop
the comments and reorder keys. Reading uses the same line structure Rasa's files have
here (`- intent: NAME` / `  examples: |` / `    - text`), and policy/faq.yml's topics
(`  topic:` / `    examples:` / `      - text`). Plain Python: no Rasa import.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from kefu.domain import order_ids
from kefu.domain.script import to_simplified

FAQ_PREFIX = "faq/"
_INTENT = re.compile(r"^- intent:\s*(?P<name>[^\s#]+)\s*(?:#.*)?$")
_ITEM = re.compile(r"^(?P<indent>\s+)- (?P<text>.*?)\s*$")
# Rasa's inline entity syntax: [text](entity), [text](entity:value), [text]{...}, [text][...]
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+?)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")
# The patterns of data/nlu/entities.yml, and the words before an 11-digit number that
# say what it is: the same rule as kefu/rasa/nlu/entity_reconciler.py (a test keeps the
# two in step; that module imports Rasa, this one must not).
PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
PHONE_CUE = re.compile(r"(手机|电话|号码|联系|致电|打给|回电|tel|phone|call)", re.I)
ORDER_CUE = re.compile(r"(订单|单号|编号|order|单子|这个单)", re.I)
CUE_WINDOW = 8
# Intents the README names as a contract: `kefu intent add` never takes these names.
CONTRACT_INTENTS = frozenset(
    {
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "inform",
        "query_order",
        "hold_on",
        "urge",
        "complain",
        "request_return",
        "suggest",
        "praise",
        "ask_human",
        "ask_supervisor",
        "demand_compensation",
        "threaten",
        "insult",
        "report_safety",
        "out_of_scope",
        "ask_why_name",
        "faq",
        "nlu_fallback",
    }
)
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class DataError(ValueError):
    """A request the training data refuses; the message is the one-line reason."""


# --- normalised text -----------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]{5,}")


def fold(text: str) -> str:
    """The form two texts are compared in: half-width, simplified, lower case, order ids
    and phone numbers folded to placeholders (and any other long number), punctuation,
    symbols and spaces dropped. 訂單 2023-1125-0012-3456 到哪了？ and 订单2023112599999999到哪了
    fold to the same key."""
    text = unicodedata.normalize("NFKC", plain_text(text or ""))
    text = to_simplified(text).lower()
    pieces, last = [], 0
    for _value, start, end in order_ids.find_all(text):
        pieces += [text[last:start], "#"]
        last = end
    text = "".join(pieces) + text[last:]
    text = _DIGITS.sub("#", PHONE.sub("#", text))
    kept = [
        ch
        for ch in text
        if ch == "#" or not unicodedata.category(ch).startswith(("P", "S", "Z", "C"))
    ]
    folded = _SPACE.sub("", "".join(kept))
    return folded or _SPACE.sub(" ", text).strip()


def plain_text(example: str) -> str:
    """An example without its entity annotations: [2023…](order_id)到哪了 → 2023…到哪了."""
    return _ANNOTATION.sub(lambda m: m.group("text"), example)


# --- entities ------------------------------------------------------------------------


def entity_spans(text: str) -> List[Tuple[int, int, str]]:
    """(start, end, entity) for the order ids and phone numbers in `text`, decided as
    the NLU decides them: an 11-digit mobile-like number is a phone unless the words just
    before it name an order."""
    spans: List[Tuple[int, int, str]] = []
    for _value, start, end in order_ids.find_all(text):
        raw = text[start:end]
        entity = "order_id"
        if PHONE.fullmatch(raw):
            before = text[max(0, start - CUE_WINDOW) : start]
            order = ORDER_CUE.search(before) and not PHONE_CUE.search(before)
            entity = "order_id" if order else "phone"
        spans.append((start, end, entity))
    for match in PHONE.finditer(text):
        if not any(s < match.end() and match.start() < e for s, e, _ in spans):
            spans.append((match.start(), match.end(), "phone"))
    return sorted(spans)


def annotate(text: str) -> str:
    """The example as data/nlu/ writes it: 帮我查查[2023112500123456](order_id)这个单."""
    out, last = [], 0
    for start, end, entity in entity_spans(text):
        out += [text[last:start], f"[{text[start:end]}]({entity})"]
        last = end
    return "".join(out) + text[last:]


def clean_example(text: str) -> str:
    """One line of visible text, or DataError."""
    if not isinstance(text, str):
        raise DataError("the text must be a string")
    text = "".join(ch for ch in text if ch in "\t " or unicodedata.category(ch)[0] != "C")
    text = _SPACE.sub(" ", text).strip()
    if not text:
        raise DataError("the text is empty")
    if len(text) > 500:
        raise DataError("the text is longer than 500 characters")
    if _ANNOTATION.search(text):
        raise DataError("the text contains [..](..), which training data reads as an entity")
    if text.startswith("/"):
        raise DataError(
            "a text starting with / is an intent trigger, not something a visitor typed"
        )
    return text


# --- the files -----------------------------------------------------------------------


@dataclass
class Block:
    """One intent's examples in one file (or one FAQ topic's in policy/faq.yml)."""

    intent: str
    path: Path
    header: int  # line index of `- intent:` (or the topic's key)
    last_item: Optional[int]  # line index of the last example, None when it has none
    item_indent: str
    examples: List[str] = field(default_factory=list)


def _blocks_in_nlu_file(path: Path, lines: List[str]) -> List[Block]:
    blocks: List[Block] = []
    current: Optional[Block] = None
    for i, line in enumerate(lines):
        if line and not line[0].isspace():
            current = None
            match = _INTENT.match(line)
            if match:
                current = Block(match.group("name"), path, i, None, "    ")
                blocks.append(current)
            continue
        if current is None:
            continue
        item = _ITEM.match(line)
        if item and not line.lstrip().startswith("examples:"):
            current.last_item = i
            current.item_indent = item.group("indent")
            current.examples.append(plain_text(item.group("text")))
    return blocks


def _faq_blocks(path: Path, lines: List[str]) -> List[Block]:
    blocks: List[Block] = []
    in_topics = False
    current: Optional[Block] = None
    in_examples = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if line and not line[0].isspace() and not stripped.startswith("#"):
            in_topics = stripped == "topics:"
            current = None
            continue
        if not in_topics or not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 2 and stripped.endswith(":"):
            current = Block(FAQ_PREFIX + stripped[:-1], path, i, None, "      ")
            blocks.append(current)
            in_examples = False
        elif current is not None and indent == 4:
            in_examples = stripped == "examples:"
        elif current is not None and in_examples and stripped.startswith("- "):
            item = _ITEM.match(line)
            if item:
                current.last_item = i
                current.item_indent = item.group("indent")
                current.examples.append(_unquote(item.group("text")))
    return blocks


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _read_lines(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").split("\n")


class TrainingData:
    """data/nlu/*.yml, policy/faq.yml, domain.yml and the held-out split of a project."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nlu_dir = root / "data" / "nlu"
        self.faq_file = root / "policy" / "faq.yml"
        self.domain_file = root / "domain.yml"
        self.held_out_file = root / "tests" / "nlu" / "test_nlu.yml"

    def blocks(self) -> List[Block]:
        out: List[Block] = []
        for path in sorted(self.nlu_dir.glob("*.yml")):
            out += _blocks_in_nlu_file(path, _read_lines(path))
        if self.faq_file.exists():
            out += _faq_blocks(self.faq_file, _read_lines(self.faq_file))
        return out

    def held_out(self) -> Dict[str, str]:
        """Folded text → intent, for every example of the held-out split."""
        if not self.held_out_file.exists():
            return {}
        blocks = _blocks_in_nlu_file(self.held_out_file, _read_lines(self.held_out_file))
        return {fold(text): b.intent for b in blocks for text in b.examples}

    def domain_intents(self) -> List[str]:
        return list(_domain_intents(_read_lines(self.domain_file))[0])

    def known_intents(self) -> List[str]:
        """The domain's intents and the FAQ topics as faq/<topic>."""
        faq = [b.intent for b in self.blocks() if b.intent.startswith(FAQ_PREFIX)]
        return [i for i in self.domain_intents() if i != "faq"] + faq

    def examples(self) -> Dict[str, str]:
        """Folded text → intent over every training example."""
        return {fold(text): b.intent for b in self.blocks() for text in b.examples}

    def topics(self) -> List[str]:
        return sorted(p.stem for p in self.nlu_dir.glob("*.yml") if p.stem != "entities")

    # --- checks --------------------------------------------------------------------

    def refusal(self, text: str, intent: str, new: bool = False) -> Optional[str]:
        """Why this example may not be added (one line), or None."""
        key = fold(text)
        held = self.held_out().get(key)
        if held is not None:
            return f"held out: the text is in tests/nlu/test_nlu.yml (intent {held})"
        known = self.known_intents()
        if intent not in known:
            if not new:
                return f"unknown intent {intent!r} (use --new to add it)"
            if intent.startswith(FAQ_PREFIX):
                return "a new FAQ topic needs an answer: use kefu intent add ... --faq"
            if not INTENT_NAME.match(intent):
                return f"bad intent name {intent!r}: lower-case letters, digits and _"
        existing = self.examples().get(key)
        if existing is not None:
            return f"duplicate: already an example of {existing}"
        return None

    # --- writing -------------------------------------------------------------------

    def append(self, text: str, intent: str, topic: Optional[str] = None) -> Tuple[Path, int]:
        """Appends one example (annotated) to its intent's block; a new intent gets a
        block at the end of data/nlu/<topic>.yml and a line in domain.yml. Returns the
        file and the 1-based line written."""
        blocks = [b for b in self.blocks() if b.intent == intent]
        if intent.startswith(FAQ_PREFIX):
            if not blocks:
                raise DataError(f"no FAQ topic {intent[len(FAQ_PREFIX) :]} in policy/faq.yml")
            return self._insert(blocks[0], faq_item(text))
        line = annotate(text)
        if topic is not None:
            chosen = [b for b in blocks if b.path.stem == topic]
            if blocks and not chosen:
                where = ", ".join(sorted({b.path.name for b in blocks}))
                raise DataError(f"{intent} lives in {where}, not {topic}.yml")
            blocks = chosen
        if blocks:
            # The file holding most of its examples (an intent may be split over files).
            block = max(blocks, key=lambda b: len(b.examples))
            return self._insert(block, line)
        if topic is None:
            raise DataError(f"a new intent needs --topic (one of {', '.join(self.topics())})")
        self.add_domain_intent(intent)
        return self.add_block(topic, intent, [line])

    def _insert(self, block: Block, item: str) -> Tuple[Path, int]:
        lines = _read_lines(block.path)
        at = (block.last_item if block.last_item is not None else block.header + 1) + 1
        if block.last_item is None and block.intent.startswith(FAQ_PREFIX):
            raise DataError(f"FAQ topic {block.intent} has no examples list to extend")
        lines.insert(at, f"{block.item_indent}- {item}")
        _write(block.path, lines)
        return block.path, at + 1

    def add_block(self, topic: str, intent: str, items: Iterable[str]) -> Tuple[Path, int]:
        """A new `- intent:` block at the end of data/nlu/<topic>.yml (created if new)."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", topic) or topic == "entities":
            raise DataError(f"bad topic {topic!r}: a file name under data/nlu/ (not entities)")
        path = self.nlu_dir / f"{topic}.yml"
        if path.exists():
            text = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
        else:
            text = 'version: "3.1"\nnlu:\n'
        first = text.count("\n") + 1
        body = "".join(f"    - {item}\n" for item in items)
        path.write_text(f"{text}- intent: {intent}\n  examples: |\n{body}", encoding="utf-8")
        return path, first

    def add_domain_intent(self, intent: str) -> None:
        lines = _read_lines(self.domain_file)
        names, last = _domain_intents(lines)
        if intent in names:
            return
        if last is None:
            raise DataError("domain.yml has no intents: list")
        lines.insert(last + 1, f"  - {intent}")
        _write(self.domain_file, lines)


def faq_item(text: str) -> str:
    # A YAML list item in a plain (non-block) context: quote what YAML would misread.
    if re.search(r"(^[-?:,\[\]{}#&*!|>'\"%@`])|(: )|( #)|(:$)", text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _domain_intents(lines: List[str]) -> Tuple[List[str], Optional[int]]:
    names: List[str] = []
    last: Optional[int] = None
    inside = False
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.strip() == "intents:"
            continue
        if inside:
            match = re.match(r"^\s+- ([A-Za-z0-9_/]+)\s*(?:#.*)?$", line)
            if match:
                names.append(match.group(1))
                last = i
    return names, last


def _write(path: Path, lines: List[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)

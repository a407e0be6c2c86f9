"""Find where a service text breaks the phrasing policy."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from kefu.domain.policy.loader import Policy, Rule, ToneModelConfig
from kefu.domain.script import normalise
from kefu.paths import DATA_DIR

DICTIONARY_DIR = DATA_DIR / "dicts"
# A clause and the punctuation after it.
_CLAUSE = re.compile(r"([^，,。！!？?；;~～\n]*)([，,。！!？?；;~～\n]*)")
_TIDY = re.compile(r"[，,。？?！!]{2,}")
# Text inside quotation marks or book-title marks: an engraving, a card, a title the
# agent repeats, not the agent's own words.
_QUOTED = re.compile(
    r"“[^”]{1,40}”|「[^」]{1,40}」|『[^』]{1,40}』|《[^》]{1,40}》|\"[^\"]{1,40}\""
)


@dataclass(frozen=True)
class Violation:
    rule: str
    kind: str
    start: int
    end: int
    match: str
    reason: str
    rewrite: str
    source: str
    how: str = "rule"  # "rule": a listed word or pattern; "tone": the learned tone model

    @classmethod
    def of(cls, rule: Rule, text: str, start: int, end: int, how: str = "rule") -> "Violation":
        """The violation of `rule` at text[start:end]."""
        return cls(
            rule.id,
            rule.kind,
            start,
            end,
            text[start:end],
            rule.reason,
            rule.rewrite,
            rule.source,
            how,
        )

    def as_dict(self) -> Dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "span": [self.start, self.end],
            "match": self.match,
            "reason": self.reason,
            "rewrite": self.rewrite,
            "source": self.source,
            "how": self.how,
        }


@functools.lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    """jieba with the project dictionary: the same words the NLU sees.

    Loaded on first use (about a second), not at import time.
    """
    import jieba

    jieba.setLogLevel(60)
    for dictionary in sorted(DICTIONARY_DIR.glob("*.txt")):
        with open(dictionary, "rb") as handle:
            jieba.load_userdict(handle)
    return jieba


def tokens(text: str) -> List[Tuple[str, int, int]]:
    return [(w, s, e) for w, s, e in _jieba().tokenize(text) if w.strip()]


def _occurrences(text: str, word: str) -> Iterable[Tuple[int, int]]:
    start = text.find(word)
    while start >= 0:
        yield start, start + len(word)
        start = text.find(word, start + 1)


class Checker:
    """Checks text against the policy's rules.

    Words match on jieba token boundaries: 不知道 in 我不知道 (tokens 我/不/知道)
    but not in 知不知道 (one token); 你 but not 你们. Patterns
    match the text. A match inside a span an `unless` pattern covers is allowed, and
    so is one inside quotation marks (the words of a card or an engraving).
    Traditional text is checked in simplified form; spans refer to the input.
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        tone: ToneModelConfig | None = None,
        compliant: Sequence[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.tone = tone
        self.compliant = tuple(compliant)
        self._by_id = {r.id: r for r in self.rules}

    @classmethod
    def for_policy(cls, policy: Policy) -> "Checker":
        """The listed rules and, where policy/rules.yml configures it, the tone model
        (which also learns the policy's own phrases and FAQ answers as compliant)."""
        known_good = [p.text for p in policy.phrases.values()]
        known_good += [t.answer for t in policy.faq.values()]
        return cls(policy.rules, policy.tone_model, [t for t in known_good if "{" not in t])

    def warm(self) -> None:
        """Load jieba and fit the tone model now (about two seconds), so the first
        real check does not pay for it. Servers call it at start-up, off their loop."""
        self.check("您好，请问有什么可以帮您？")

    def check(self, text: str) -> List[Violation]:
        if not text or not text.strip():
            return []
        simplified = normalise(text)
        words = tokens(simplified)
        starts = {s for _, s, _ in words}
        ends = {e for _, _, e in words}
        found: Dict[Tuple[str, int, int], Violation] = {}
        quoted = [m.span() for m in _QUOTED.finditer(simplified)]
        for rule in self.rules:
            spans = [
                span
                for word in rule.words
                for span in _occurrences(simplified, word)
                if span[0] in starts and span[1] in ends
            ]
            for pattern in rule.patterns:
                spans += [m.span() for m in pattern.finditer(simplified) if m.end() > m.start()]
            if not spans:
                continue
            allowed = [m.span() for p in rule.unless for m in p.finditer(simplified)]
            allowed += quoted  # words quoted, not said: 卡片上写“祝你生日快乐”
            for start, end in spans:
                if any(a <= start and end <= b for a, b in allowed):
                    continue
                found.setdefault((rule.id, start, end), Violation.of(rule, text, start, end))
        listed = list(found.values())
        return sorted(listed + self._tone(text, listed), key=lambda v: (v.start, v.end, v.rule))

    def _tone(self, text: str, listed: List[Violation]) -> List[Violation]:
        """Sentences the tone model reads as a violation that no listed rule explains."""
        if self.tone is None:
            return []
        from kefu.domain.phrasing import tone_model

        out = []
        for finding in tone_model.model_for(self.tone, self.compliant).findings(text):
            rule = self._by_id.get(self.tone.families.get(finding.family, ""))
            if rule is None:
                continue
            if any(finding.start <= v.start and v.end <= finding.end for v in listed):
                continue  # a listed rule already names the problem in this sentence
            start, end = finding.start, finding.end
            while end > start and text[end - 1] in "。！!？?；;\n ":
                end -= 1  # the span is the words, not the punctuation after them
            out.append(Violation.of(rule, text, start, end, how="tone"))
        return out

    def fix(self, text: str) -> str:
        """Apply the literal fixes rules carry, right to left so spans stay valid;
        of two fixes for overlapping spans the longer span's wins (亲， → 您好，)."""
        by_id = self._by_id
        fixed = text
        taken: List[Tuple[int, int]] = []
        for v in sorted(self.check(text), key=lambda v: (v.start, v.end), reverse=True):
            replacement = by_id[v.rule].fix if v.how == "rule" else None
            if replacement is None or any(v.start < b and a < v.end for a, b in taken):
                continue
            fixed = fixed[: v.start] + replacement + fixed[v.end :]
            taken.append((v.start, v.end))
        return fixed

    def suggest(self, text: str) -> str | None:
        """A rewrite that passes: literal fixes first; then each clause that still
        breaks a rule is replaced by that rule's rewrite, a whole sentence that reads
        naturally. None when even that does not pass."""
        if not self.check(text):
            return None
        fixed = self.fix(text)
        remaining = self.check(fixed)
        if not remaining:
            return fixed
        by_id = self._by_id
        pieces = [(m.group(1), m.group(2)) for m in _CLAUSE.finditer(fixed)]
        out: List[str] = []
        offset = 0
        used: set = set()
        for body, delimiter in pieces:
            start, end = offset, offset + len(body)
            offset = end + len(delimiter)
            hits = [v for v in remaining if v.start < end and start < v.end]
            if not hits:
                out.append(body + delimiter)
                continue
            rewrite = by_id[hits[0].rule].rewrite.rstrip("。！!，,")
            if rewrite in used:  # two clauses, one fix: say it once
                continue
            used.add(rewrite)
            # A rewrite is a statement: it keeps a comma after it, else ends the sentence.
            if rewrite.endswith(("？", "?")):
                ending = "，" if delimiter.strip() in ("，", ",") else ""
            else:
                ending = delimiter if delimiter.strip() in ("，", ",") else "。"
            out.append(rewrite + ending)
        candidate = "".join(out).strip()
        candidate = _TIDY.sub(lambda m: m.group(0)[0], candidate).strip("，, ")
        if candidate and candidate[-1] not in "。！!？?":
            candidate += "。"
        if candidate and not self.check(candidate):
            return candidate
        return next(
            (r for r in (by_id[v.rule].rewrite for v in remaining) if not self.check(r)), None
        )

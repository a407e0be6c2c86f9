"""Risk read from a visitor's own words: safety, legal or media threats, abuse,
compensation, a supervisor or a person asked for, sentence by sentence.

The intent classifier gives one label for a whole message; a long message of five
sentences about a late parcel may mention in the fourth that the charger smoked.
This reads every sentence with the lexicons of policy/risk.yml, whatever the intent,
and keeps the evidence (which words, in which sentence) for the agent. It decides
nothing itself: `kefu.domain.escalation.decide` weighs it with the intent and the tone.

Matching is done on a normalised copy of the text with the same length as the
original (simplified characters, half-width forms, lower case), so every span
points into what the visitor typed. Abuse is also matched on a compact copy with
separators removed and mask characters unified (傻 逼, s.b, 你**), mapped back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from kefu.domain.policy.loader import Risk, RiskLexicon, StoryWords
from kefu.domain.script import normalise

_SENTENCE_END = re.compile(r"[。！？!?；;\n…]+|\s{2,}|(?<=[~～])")
_CLAUSE_END = re.compile(r"[，,、\s]+")
MASK = "*"


@dataclass(frozen=True)
class Evidence:
    reason: str
    sentence: str  # the sentence as the visitor typed it
    match: str  # the words that showed it, as typed
    start: int  # span of the words in the whole message
    end: int
    how: str  # "words", "words+context", "aimed", "classifier"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "reason": self.reason,
            "sentence": self.sentence,
            "match": self.match,
            "span": [self.start, self.end],
            "how": self.how,
        }


@dataclass(frozen=True)
class Reading:
    evidence: Tuple[Evidence, ...] = ()
    # Reasons whose near-misses (`unless`: 人工刻字, 不需要找主管) the words show, or
    # whose `grounds` the message lacks, and that no words show: they speak against the
    # classifier's reading of that reason.
    lifted: Tuple[str, ...] = ()

    @property
    def reasons(self) -> Tuple[str, ...]:
        seen: List[str] = []
        for e in self.evidence:
            if e.reason not in seen:
                seen.append(e.reason)
        return tuple(seen)

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "reasons": list(self.reasons),
            "evidence": [e.as_dict() for e in self.evidence],
        }
        if self.lifted:
            out["lifted"] = list(self.lifted)
        return out


def fold(text: str) -> str:
    """Simplified, half-width, lower case; one character for one character."""
    simplified = normalise(text)
    out = []
    for ch in simplified:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded.lower() if len(folded) == 1 else ch.lower())
    return "".join(out)


def sentences(text: str) -> List[Tuple[int, int]]:
    """Spans of the sentences of a message (punctuation, line breaks, wide gaps)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _clause_at(text: str, position: int) -> Tuple[int, int]:
    start = 0
    for m in _CLAUSE_END.finditer(text):
        if m.end() <= position:
            start = m.end()
        elif m.start() >= position:
            return start, m.start()
    return start, len(text)


def _compact(text: str, risk: Risk) -> Tuple[str, List[int]]:
    """The text without separators, masks as `*`; and each kept character's index."""
    kept, where = [], []
    for i, ch in enumerate(text):
        if ch in risk.separators:
            continue
        kept.append(MASK if ch in risk.masks else ch)
        where.append(i)
    return "".join(kept), where


def _covered(span: Tuple[int, int], allowed: Sequence[Tuple[int, int]]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in allowed)


class Reader:
    """Reads risk from text with one policy's lexicons."""

    def __init__(self, risk: Risk) -> None:
        self.risk = risk

    def read(self, text: str, classifier: Iterable[Evidence] = ()) -> Reading:
        if not text or not text.strip():
            return Reading(tuple(classifier))
        folded = fold(text)
        spans = sentences(folded)
        found: List[Evidence] = []
        takebacks = [self._takebacks(folded[s:e]) for s, e in spans]
        quoted = self._quoted_spans(folded)
        # A reason whose grounds the message lacks: the classifier's reading of it is doubted.
        near_misses = {
            lexicon.code
            for lexicon in self.risk.reasons.values()
            if lexicon.grounds and not any(p.search(folded) for p in lexicon.grounds)
        }
        for index, (start, end) in enumerate(spans):
            sentence = folded[start:end]
            previous = folded[spans[index - 1][0] : spans[index - 1][1]] if index else ""
            after = takebacks[index + 1] if index + 1 < len(spans) else []
            for lexicon in self.risk.reasons.values():
                if any(p.search(sentence) for p in lexicon.unless):
                    near_misses.add(lexicon.code)
                for s, e, how in self._matches(lexicon, sentence, previous):
                    if _taken_back(lexicon.code, e, takebacks[index], after):
                        near_misses.add(lexicon.code)  # 开玩笑的 / 后来处理得挺好
                        continue
                    if self._aside(lexicon.code, sentence, s, e, quoted, start, folded):
                        near_misses.add(lexicon.code)  # “律师函警告”T恤 / 同事的车着了
                        continue
                    found.append(
                        Evidence(
                            reason=lexicon.code,
                            sentence=text[start:end].strip(),
                            match=text[start + s : start + e],
                            start=start + s,
                            end=start + e,
                            how=how,
                        )
                    )
        worded = {e.reason for e in found}
        lifted = tuple(sorted(near_misses - worded))
        # A sentence the classifier read as a reason the words explain away is not evidence.
        found += [e for e in classifier if e.reason not in lifted]
        return Reading(tuple(_first_per_sentence(found)), lifted)

    def _quoted_spans(self, folded: str) -> List[Tuple[int, int]]:
        """Spans of the text between paired quotation marks, marks included."""
        spans: List[Tuple[int, int]] = []
        for pair in self.risk.asides.quotes:
            opening, closing = pair[0], pair[1]
            at = folded.find(opening)
            while at >= 0:
                end = folded.find(closing, at + 1)
                if end < 0:
                    break
                spans.append((at, end + 1))
                at = folded.find(opening, end + 1)
        return spans

    def _aside(
        self,
        code: str,
        sentence: str,
        s: int,
        e: int,
        quoted: Sequence[Tuple[int, int]],
        offset: int,
        message: str,
    ) -> bool:
        """Words that are not the visitor's own matter (`quoted`, `others` and
        `buying_for` in policy/risk.yml): inside quotation marks; in a sentence about
        someone else (同事, 邻居, 有人) named before the words, that nothing ties to the
        shop; or in a message that tells a story to explain what the visitor wants to buy,
        in a sentence that nothing ties to the shop."""
        asides = self.risk.asides
        if code in asides.quoted_reasons and _covered((offset + s, offset + e), quoted):
            return True
        tied = any(p.search(sentence) for p in asides.links)
        if code in asides.buying_reasons and any(p.search(message) for p in asides.plans):
            _, c1 = _clause_at(sentence, s)  # the product asked about may follow
            if not any(p.search(sentence[:c1]) for p in asides.links):
                return True
        if code not in asides.others_reasons:
            return False
        # the someone else may open the words themselves (博主说……要去曝光)
        if not any(m.start() <= s for p in asides.subjects for m in p.finditer(sentence)):
            return False
        return not tied

    def _takebacks(self, sentence: str) -> List[Tuple[int, Tuple[str, ...]]]:
        """Where in a sentence words take back what came before them, and for which
        reasons (`settled` in policy/risk.yml)."""
        return [
            (m.start(), group.reasons)
            for group in self.risk.settled
            for p in group.patterns
            for m in p.finditer(sentence)
        ]

    def _matches(
        self, lexicon: RiskLexicon, sentence: str, previous: str
    ) -> Iterable[Tuple[int, int, str]]:
        allowed = [m.span() for p in lexicon.unless for m in p.finditer(sentence)]

        def usable(span: Tuple[int, int]) -> bool:
            if span[1] <= span[0] or _covered(span, allowed):
                return False
            return not (lexicon.hypothetical and self._hypothetical(sentence, span))

        for pattern in lexicon.strong:
            for m in pattern.finditer(sentence):
                if usable(m.span()):
                    yield m.start(), m.end(), "words"
        for pattern in lexicon.certain:
            for m in pattern.finditer(sentence):
                if m.end() > m.start() and not _covered(m.span(), allowed):
                    yield m.start(), m.end(), "words"
        if lexicon.code == "abuse":
            yield from self._compact_matches(lexicon, sentence, allowed)
        for cue in lexicon.weak:
            near = previous + sentence
            if not any(c.search(near) for c in cue.context):
                continue
            for pattern in cue.patterns:
                for m in pattern.finditer(sentence):
                    if usable(m.span()):
                        yield m.start(), m.end(), "words+context"
        for pattern in lexicon.targeted:
            for m in pattern.finditer(sentence):
                c0, c1 = _clause_at(sentence, m.start())
                clause = sentence[c0:c1]
                if usable(m.span()) and any(t.search(clause) for t in lexicon.targets):
                    yield m.start(), m.end(), "aimed"

    def _compact_matches(
        self, lexicon: RiskLexicon, sentence: str, allowed: Sequence[Tuple[int, int]]
    ) -> Iterable[Tuple[int, int, str]]:
        compact, where = _compact(sentence, self.risk)
        if compact == sentence:
            return
        compact_allowed = [m.span() for p in lexicon.unless for m in p.finditer(compact)]
        for pattern in lexicon.strong:
            for m in pattern.finditer(compact):
                if m.end() <= m.start() or _covered(m.span(), compact_allowed):
                    continue
                span = (where[m.start()], where[m.end() - 1] + 1)
                if not _covered(span, allowed):
                    yield span[0], span[1], "words"

    def _hypothetical(self, sentence: str, span: Tuple[int, int]) -> bool:
        if sentence[span[1] : span[1] + 1] == "了":
            return False  # 会不会被他吞下去了: a worry about what already happened
        c0, c1 = _clause_at(sentence, span[0])
        clause = sentence[c0:c1]
        if self.risk.clause.search(clause):
            return True
        before = sentence[c0 : span[0]]
        after = sentence[span[1] : c1]
        return bool(self.risk.before.search(before) or self.risk.after.search(after))


def outweighed(reading: Reading, intent: Dict[str, Any], story: Optional[StoryWords]) -> Reading:
    """The reading without the words the classifier outweighs: when it reads the whole
    message, confidently, as a shop question, thanks or praise, a reason's words are part
    of a story (我舅舅当了三十年律师……这套文房四宝适合送他吗), not a demand. The words of
    `story.always` reasons (safety) always count; dropped reasons are `lifted`."""
    if story is None or str(intent.get("name") or "") not in story.intents:
        return reading
    if float(intent.get("confidence") or 0.0) < story.confidence:
        return reading
    kept = tuple(e for e in reading.evidence if e.how == "classifier" or e.reason in story.always)
    if len(kept) == len(reading.evidence):
        return reading
    dropped = {e.reason for e in reading.evidence if e not in kept}
    lifted = set(reading.lifted) | (dropped - {e.reason for e in kept})
    return Reading(kept, tuple(sorted(lifted)))


def _taken_back(
    code: str,
    end: int,
    here: Sequence[Tuple[int, Tuple[str, ...]]],
    next_sentence: Sequence[Tuple[int, Tuple[str, ...]]],
) -> bool:
    """Words of `code` ending at `end` are taken back by words after them in the same
    sentence, or anywhere in the next one."""
    return any(code in codes and at >= end for at, codes in here) or any(
        code in codes for _, codes in next_sentence
    )


def _first_per_sentence(found: Iterable[Evidence]) -> List[Evidence]:
    """One piece of evidence per reason and sentence, in text order: the earliest
    words, or the classifier's reading when no words showed it."""
    best: Dict[Tuple[str, str], Evidence] = {}

    def rank(e: Evidence) -> Tuple[bool, int]:
        return (e.how == "classifier", e.start)

    for e in found:
        key = (e.reason, e.sentence)
        if key not in best or rank(e) < rank(best[key]):
            best[key] = e
    return sorted(best.values(), key=lambda e: (e.start, e.reason))


def from_classifier(
    sentence_intents: Sequence[Dict[str, Any]],
    reason_of_intent: Dict[str, str],
    min_confidence: float,
    original: str = "",
) -> List[Evidence]:
    """Evidence from the intent classifier's reading of each sentence of a long message.

    Spans are those of the normalised text, the same as the original's.
    """
    out = []
    for item in sentence_intents:
        reason = reason_of_intent.get(str(item.get("intent")))
        if reason and float(item.get("confidence") or 0.0) >= min_confidence:
            start, end = (int(x) for x in item.get("span") or (0, 0))
            text = original[start:end].strip() if original else str(item.get("text") or "")
            out.append(Evidence(reason, text, text, start, end, "classifier"))
    return out


def reading_of(parse: Optional[Dict[str, Any]]) -> Tuple[str, ...]:
    """The reasons a stored parse result carries (`risk` set by the RiskScanner)."""
    risk = (parse or {}).get("risk") or {}
    return tuple(str(r) for r in risk.get("reasons") or ())


def revised_intent(
    intent: Dict[str, Any],
    ranking: Sequence[Dict[str, Any]],
    reading: Reading,
    reason_of_intent: Dict[str, str],
    priority: Dict[str, int],
    min_confidence: float,
) -> Optional[Dict[str, Any]]:
    """The intent a message gets after its words were read, or None to keep it.

    - The words show a reason: that reason's intent, unless the classifier already
      chose an escalation intent that ranks as high (and is not doubted, below).
    - The classifier chose an escalation intent that nothing in the words backs,
      with less than `min_confidence`, or whose near-misses the words show (`lifted`):
      it is doubted, and the best-ranked other intent is taken instead (人工刻字 is a
      product question, not a request for a person).
    """
    intent_of_reason: Dict[str, str] = {}
    for name, code in reason_of_intent.items():
        intent_of_reason.setdefault(code, name)
    current = str(intent.get("name") or "")
    now = reason_of_intent.get(current)
    worded = [e.reason for e in reading.evidence if e.how != "classifier"]
    worded = [code for code in worded if code in intent_of_reason]
    backed = any(e.reason == now for e in reading.evidence)  # a sentence said so, confidently
    doubted = (
        now is not None
        and not backed
        and (now in reading.lifted or float(intent.get("confidence") or 0.0) < min_confidence)
    )
    if worded:
        best = max(worded, key=lambda code: priority.get(code, 0))
        if now is not None and not doubted and priority.get(now, 0) >= priority.get(best, 0):
            return None
        return {"name": intent_of_reason[best], "confidence": 1.0}
    if not doubted:
        return None
    for other in ranking:
        if other.get("name") not in reason_of_intent and other.get("name") != current:
            return {"name": other["name"], "confidence": float(other.get("confidence") or 0.0)}
    return {"name": "nlu_fallback", "confidence": float(intent.get("confidence") or 0.0)}


@dataclass(frozen=True)
class MessageJudge:
    """The whole chain for one parse, in one place: the classifier's sentence readings,
    the words (`Reader.read`), what the classifier outweighs (`outweighed`) and the
    intent revised by what the words showed (`revised_intent`). The RiskScanner runs it
    on every message; `make eval` runs it again on stored parses when only the policy
    files changed."""

    reader: Reader
    reason_of_intent: Dict[str, str]
    priority: Dict[str, int]
    sentence_confidence: float
    intent_min_confidence: float
    story: Optional[StoryWords]

    @classmethod
    def for_policy(cls, policy: Any, sentence_confidence: float) -> "MessageJudge":
        reasons = policy.escalation.reasons
        return cls(
            Reader(policy.risk),
            {intent: code for code, r in reasons.items() for intent in r.intents},
            {code: r.priority for code, r in reasons.items()},
            sentence_confidence,
            policy.escalation.intent_min_confidence,
            policy.escalation.story,
        )

    def judge(
        self,
        text: str,
        intent: Dict[str, Any],
        ranking: Sequence[Dict[str, Any]],
        sentence_intents: Sequence[Dict[str, Any]],
    ) -> Tuple[Reading, Optional[Dict[str, Any]]]:
        """The reading and the revised intent (None: the classifier's stays)."""
        classifier = from_classifier(
            sentence_intents, self.reason_of_intent, self.sentence_confidence, original=text
        )
        reading = outweighed(self.reader.read(text, classifier), intent, self.story)
        chosen = revised_intent(
            intent,
            ranking,
            reading,
            self.reason_of_intent,
            self.priority,
            self.intent_min_confidence,
        )
        return reading, chosen

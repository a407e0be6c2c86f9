"""Load and validate the operator's policy files under policy/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kefu.domain.policy.yaml_source import PathKey, PolicyError, Source
from kefu.paths import POLICY_DIR

DEFAULT_DIR = POLICY_DIR
PHRASING_FILE = "phrasing.yml"
RULES_FILE = "rules.yml"
ESCALATION_FILE = "escalation.yml"
SERVICE_FILE = "service.yml"
RISK_FILE = "risk.yml"
FAQ_FILE = "faq.yml"
SHORTHAND_FILE = "shorthand.yml"  # optional: no file, no shorthand
# FAQ topics every shop has (a contract: the team's checks ask about each).
FAQ_TOPICS = (
    "invoice",
    "change_address",
    "shipping_time",
    "delivery_time",
    "shipping_fee",
    "coupon",
    "cancel_order",
    "refund_time",
    "return_shipping",
    "payment",
    "warranty",
    "size",
    "stock",
    "price_protection",
    "service_hours",
    "contact",
    "account",
    "points",
    "exchange",
    "pickup",
)
FAQ_VARIANTS = ("with_order", "with_return", "with_ticket")
FAQ_MIN_EXAMPLES = 10
_TOPIC_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# The reason codes are a contract: the desk's API and the agents' badges use them.
REASON_CODES = (
    "customer_request",
    "supervisor",
    "compensation",
    "legal_media",
    "abuse",
    "anger",
    "safety",
    "bot_failure",
)
TONE_WEIGHTS = (
    "insult_word",
    "anger_word",
    "exclamation_run",
    "question_run",
    "repeat_count",
    "shouting",
)
RULE_KINDS = ("forbidden", "tones", "rewrites", "honorifics")
TONE_MODEL_KEYS = (
    "threshold",
    "char_ngrams",
    "sublinear_tf",
    "C",
    "training",
    "families",
    "source",
)
# Reasons read from the text itself (risk.yml); anger and bot_failure are decided otherwise.
RISK_CODES = ("safety", "legal_media", "abuse", "compensation", "supervisor", "customer_request")
# Phrases the product cannot run without.
REQUIRED_PHRASES = ("safe_fallback",)
# Seeds sit beside the project (../shared/seeds); checked when present.
SEEDS_RELATIVE = Path("..", "..", "shared", "seeds")


@dataclass(frozen=True)
class Brand:
    name: str
    bot_name: str
    timezone: str


@dataclass(frozen=True)
class Greeting:
    start: time
    end: time
    text: str

    def covers(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # spans midnight


@dataclass(frozen=True)
class Phrase:
    scene: str
    text: str
    source: str


@dataclass(frozen=True)
class Rule:
    """One thing service text must not say, and what to say instead."""

    id: str
    kind: str  # forbidden / tones / rewrites / honorifics
    words: Tuple[str, ...]
    patterns: Tuple[re.Pattern[str], ...]
    unless: Tuple[re.Pattern[str], ...]
    reason: str
    rewrite: str
    fix: str | None
    source: str
    line: int | None


@dataclass(frozen=True)
class ToneModelConfig:
    """The learned tone reading (kefu.domain.phrasing.tone_model): its data and settings."""

    threshold: float
    training: Tuple[Path, ...]
    families: Dict[str, str]  # family → the rule id its findings are reported as
    char_ngrams: Tuple[int, int]
    C: float  # inverse regularisation strength of the logistic regression
    sublinear_tf: bool  # tf-idf of 1 + log(count) instead of raw counts


@dataclass(frozen=True)
class Reason:
    code: str
    priority: int
    intents: Tuple[str, ...]
    phrase: str
    retain_first: bool


@dataclass(frozen=True)
class Tone:
    insult_words: Tuple[str, ...]
    anger_words: Tuple[str, ...]
    repeat_patterns: Tuple[re.Pattern[str], ...]
    weights: Dict[str, float]
    decay: float
    anger_threshold: float
    min_tense_turns: int


@dataclass(frozen=True)
class WeakCue:
    """Words that count only with one of their context words nearby (过敏 + 涂了)."""

    id: str
    patterns: Tuple[re.Pattern[str], ...]
    context: Tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RiskLexicon:
    code: str
    strong: Tuple[re.Pattern[str], ...]
    certain: Tuple[re.Pattern[str], ...]  # strong, and counted even in a question
    weak: Tuple[WeakCue, ...]
    targeted: Tuple[re.Pattern[str], ...]
    targets: Tuple[re.Pattern[str], ...]
    unless: Tuple[re.Pattern[str], ...]
    hypothetical: bool  # a denial or a question in the clause lifts a match
    # The classifier's reading of this reason counts only in a message one of these
    # matches (empty: always); what the words show is not affected.
    grounds: Tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class StoryWords:
    intents: Tuple[str, ...]
    confidence: float
    always: Tuple[str, ...]


@dataclass(frozen=True)
class Settled:
    """Words that take back what came before them (开玩笑的, 后来处理得挺好)."""

    id: str
    reasons: Tuple[str, ...]
    patterns: Tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class Asides:
    """Words that are not the visitor's own matter: quoted (印着“律师函警告”的T恤), or
    someone else's story that the sentence does not tie to the shop (同事的电动车着了)."""

    quoted_reasons: Tuple[str, ...] = ()
    quotes: Tuple[str, ...] = ()  # pairs of opening and closing marks: “” 「」
    others_reasons: Tuple[str, ...] = ()
    subjects: Tuple[re.Pattern[str], ...] = ()
    links: Tuple[re.Pattern[str], ...] = ()
    # A household's story told to explain a purchase (我妈住院了，想给她买个护颈枕).
    buying_reasons: Tuple[str, ...] = ()
    plans: Tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Risk:
    separators: str
    masks: str
    before: re.Pattern[str]
    after: re.Pattern[str]
    clause: re.Pattern[str]
    reasons: Dict[str, RiskLexicon]
    settled: Tuple[Settled, ...] = ()
    asides: Asides = Asides()


@dataclass(frozen=True)
class FaqTopic:
    id: str
    answer: str
    variants: Dict[str, str]  # with_order / with_return / with_ticket
    examples: Tuple[str, ...]
    source: str
    line: int | None


@dataclass(frozen=True)
class WorkingHours:
    timezone: str
    open: time
    close: time
    weekdays: Tuple[int, ...]

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        return local.isoweekday() in self.weekdays and self.open <= local.time() < self.close


@dataclass(frozen=True)
class Escalation:
    reasons: Dict[str, Reason]
    fallbacks_in_a_row: int
    form_failures: int
    tone: Tone
    hours: WorkingHours
    minutes_per_conversation: float
    agent_online_seconds: float
    # An escalation intent with no words behind it (policy/risk.yml found none)
    # hands over only from this classifier confidence on.
    intent_min_confidence: float = 0.0
    # Words of a reason in a message the classifier confidently reads as a shop question,
    # thanks or praise are a story, not a demand (`story_words`); safety always counts.
    story: Optional[StoryWords] = None
    # Who takes a queued conversation: `auto` (the desk assigns it) or `manual`.
    assignment: str = "auto"
    # An assigned conversation nobody answered this long goes to the next agent.
    reassign_after_s: float = 120.0
    # A person's first reply is due this long after the hand-over.
    first_response_s: float = 60.0

    def reason_for_intent(self, intent: str | None) -> Reason | None:
        for reason in self.reasons.values():
            if intent in reason.intents:
                return reason
        return None


@dataclass(frozen=True)
class ReturnException:
    id: str
    keywords: Tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Service:
    idle_after_s: float
    idle_prompts: int
    hold_on_factor: float
    follow_up_hours: int
    return_window_days: int
    return_exceptions: Tuple[ReturnException, ...]
    retention_days: int
    announce_wait_after_s: float = 1.5
    ack_every_s: float = 30.0
    # Channels whose idle visitors get no "还在线吗" prompt, only the quiet close: on
    # WeChat and WeCom each message counts against the platform's 48-hour quota and
    # rings the visitor's phone.
    idle_quiet_channels: Tuple[str, ...] = ()
    # A form's free-text question answered with words the classifier reads as another
    # flow's request, below this confidence, is taken as the answer (no switch offered).
    switch_min_confidence: float = 0.75


@dataclass(frozen=True)
class Policy:
    brand: Brand
    greetings: Tuple[Greeting, ...]
    phrases: Dict[str, Phrase]
    rules: Tuple[Rule, ...]
    escalation: Escalation
    service: Service
    risk: Risk
    faq: Dict[str, FaqTopic]
    directory: Path
    tone_model: ToneModelConfig | None = None
    # The agents' own quick replies in the console (phrasing.yml `quick_replies`).
    quick_replies: Tuple[Phrase, ...] = ()
    # Pinyin initials the NLU reads written out (shorthand.yml): tk → 退款.
    shorthand: Dict[str, str] = field(default_factory=dict)

    def phrase(self, scene: str) -> Phrase | None:
        return self.phrases.get(scene)

    def greeting_at(self, moment: time) -> str:
        for greeting in self.greetings:
            if greeting.covers(moment):
                return greeting.text
        return "您好"


def policy_dir() -> Path:
    return Path(os.environ.get("KEFU_POLICY_DIR") or DEFAULT_DIR)


def load_policy(directory: Path | str | None = None) -> Policy:
    """Read every policy file; the first problem found raises PolicyError."""
    directory = Path(directory) if directory else policy_dir()
    phrasing = Source.read(directory / PHRASING_FILE)
    root = _mapping(phrasing, ())
    rules = Source.read(directory / RULES_FILE)
    escalation = Source.read(directory / ESCALATION_FILE)
    service = Source.read(directory / SERVICE_FILE)
    risk = Source.read(directory / RISK_FILE)
    faq = Source.read(directory / FAQ_FILE)
    phrases = _phrases(phrasing, root)
    return Policy(
        brand=_brand(phrasing, root),
        greetings=_greetings(phrasing, root),
        phrases=phrases,
        quick_replies=_quick_replies(phrasing, root),
        rules=_rules(rules, _mapping(rules, ())),
        tone_model=_tone_model(rules, _mapping(rules, ()), directory),
        escalation=_escalation(escalation, _mapping(escalation, ()), phrases),
        service=_service(service, _mapping(service, ())),
        risk=_risk(risk, _mapping(risk, ())),
        faq=_faq(faq, _mapping(faq, ())),
        shorthand=_shorthand(directory / SHORTHAND_FILE),
        directory=directory,
    )


_SHORTHAND_KEY = re.compile(r"[a-z]{2,4}")


def _shorthand(path: Path) -> Dict[str, str]:
    if not path.exists():
        return {}
    src = Source.read(path)
    root = _mapping(src, ())
    _source(src, root, ())
    entries = _mapping(src, ("shorthand",), _field(src, root, (), "shorthand"))
    table: Dict[str, str] = {}
    for key, meaning in entries.items():
        where: PathKey = ("shorthand", str(key))
        if not isinstance(key, str) or not _SHORTHAND_KEY.fullmatch(key):
            raise src.error(where, "a key is 2-4 lower-case latin letters")
        if not isinstance(meaning, str) or len(meaning) != len(key):
            raise src.error(
                where, f"the meaning needs exactly {len(key)} characters, as many as the key"
            )
        table[key] = meaning
    return table


# --- validation helpers: each names the key it checks -------------------------


def _mapping(src: Source, key: PathKey, value: Any = None) -> dict:
    value = src.data if key == () else value
    if not isinstance(value, dict):
        raise src.error(key, "must be a mapping of keys to values")
    return value


def _field(src: Source, parent: dict, key: PathKey, name: str) -> Any:
    if name not in parent:
        raise src.error(key, f"missing required key '{name}'")
    return parent[name]


def _text(src: Source, parent: dict, key: PathKey, name: str) -> str:
    value = _field(src, parent, key, name)
    if not isinstance(value, str) or not value.strip():
        raise src.error(key + (name,), "must be a non-empty string")
    return value.strip()


def _list(src: Source, parent: dict, key: PathKey, name: str) -> List[Any]:
    value = _field(src, parent, key, name)
    if not isinstance(value, list) or not value:
        raise src.error(key + (name,), "must be a non-empty list")
    return value


def _clock(src: Source, key: PathKey, value: Any) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise src.error(key, f"'{value}' is not a time of day like 09:00") from None


def _brand(src: Source, root: dict) -> Brand:
    key: PathKey = ("brand",)
    brand = _mapping(src, key, _field(src, root, (), "brand"))
    timezone = _text(src, brand, key, "timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise src.error(key + ("timezone",), f"unknown time zone '{timezone}'") from None
    return Brand(
        name=_text(src, brand, key, "name"),
        bot_name=_text(src, brand, key, "bot_name"),
        timezone=timezone,
    )


def _greetings(src: Source, root: dict) -> Tuple[Greeting, ...]:
    out = []
    for i, item in enumerate(_list(src, root, (), "greetings")):
        key: PathKey = ("greetings", i)
        entry = _mapping(src, key, item)
        _source(src, entry, key)  # every entry names where it comes from
        out.append(
            Greeting(
                start=_clock(src, key + ("from",), _field(src, entry, key, "from")),
                end=_clock(src, key + ("to",), _field(src, entry, key, "to")),
                text=_text(src, entry, key, "text"),
            )
        )
    return tuple(out)


def _source(src: Source, parent: dict, key: PathKey) -> str:
    """Every policy entry names where it comes from: a seed file, or `kefu`."""
    source = _text(src, parent, key, "source")
    seeds = src.path.parent / SEEDS_RELATIVE
    if source != "kefu" and seeds.is_dir() and not (seeds / source).is_file():
        raise src.error(key + ("source",), f"no seed file '{source}' in {seeds}")
    return source


def _phrases(src: Source, root: dict) -> Dict[str, Phrase]:
    key: PathKey = ("phrases",)
    phrases = _mapping(src, key, root.get("phrases") or {})
    for required in REQUIRED_PHRASES:
        if required not in phrases:
            raise src.error(key, f"missing required phrase '{required}'")
    out = {}
    for scene, item in phrases.items():
        entry = _mapping(src, key + (scene,), item)
        out[str(scene)] = Phrase(
            scene=str(scene),
            text=_text(src, entry, key + (scene,), "text"),
            source=_source(src, entry, key + (scene,)),
        )
    return out


def _quick_replies(src: Source, root: dict) -> Tuple[Phrase, ...]:
    key: PathKey = ("quick_replies",)
    entries = root.get("quick_replies") or []
    if not isinstance(entries, list):
        raise src.error(key, "must be a list of {text, source}")
    out = []
    for i, item in enumerate(entries):
        entry = _mapping(src, key + (i,), item)
        out.append(
            Phrase(
                scene=f"quick_{i + 1}",
                text=_text(src, entry, key + (i,), "text"),
                source=_source(src, entry, key + (i,)),
            )
        )
    return tuple(out)


def _strings(src: Source, parent: dict, key: PathKey, name: str) -> Tuple[str, ...]:
    value = parent.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise src.error(key + (name,), "must be a list of non-empty strings")
    return tuple(value)


def _regexes(src: Source, parent: dict, key: PathKey, name: str) -> Tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(_strings(src, parent, key, name)):
        compiled.append(_regex(src, key + (name, i), pattern))
    return tuple(compiled)


def _regex(src: Source, key: PathKey, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise src.error(key, "must be a non-empty regular expression")
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise src.error(key, f"invalid regular expression: {e}") from None
    if compiled.search(""):
        raise src.error(key, "matches the empty text, so it would match everywhere")
    return compiled


def _tone_model(src: Source, root: dict, directory: Path) -> ToneModelConfig | None:
    if "tone_model" not in root:
        return None
    key: PathKey = ("tone_model",)
    entry = _mapping(src, key, root["tone_model"])
    for name in entry:
        if name not in TONE_MODEL_KEYS:
            raise src.error(key + (name,), f"unknown key (one of {', '.join(TONE_MODEL_KEYS)})")
    ids = {r.id for r in _rules(src, root)}
    families = _mapping(src, key + ("families",), _field(src, entry, key, "families"))
    for family, rule_id in families.items():
        if rule_id not in ids:
            raise src.error(key + ("families", family), f"no rule '{rule_id}' in {RULES_FILE}")
    training = []
    for name in _strings(src, entry, key, "training"):
        path = (directory / name).resolve()
        if not path.is_file():
            raise src.error(key + ("training",), f"no file {name} in the policy folder")
        training.append(path)
    if not training:
        raise src.error(key + ("training",), "needs at least one file of labelled replies")
    ngrams = _field(src, entry, key, "char_ngrams")
    if not (
        isinstance(ngrams, list)
        and len(ngrams) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in ngrams)
        and 1 <= ngrams[0] <= ngrams[1] <= 6
    ):
        raise src.error(key + ("char_ngrams",), "must be [shortest, longest], from 1 to 6")
    sublinear = _field(src, entry, key, "sublinear_tf")
    if not isinstance(sublinear, bool):
        raise src.error(key + ("sublinear_tf",), "must be true or false")
    return ToneModelConfig(
        threshold=_number(src, entry, key, "threshold", 0.05, 0.99),
        training=tuple(training),
        families={str(f): str(r) for f, r in families.items()},
        char_ngrams=(ngrams[0], ngrams[1]),
        C=_number(src, entry, key, "C", 0.001, 1000),
        sublinear_tf=sublinear,
    )


def _rules(src: Source, root: dict) -> Tuple[Rule, ...]:
    rules: List[Rule] = []
    seen: Dict[str, PathKey] = {}
    for kind in RULE_KINDS:
        entries = root.get(kind) or []
        if not isinstance(entries, list):
            raise src.error((kind,), "must be a list of rules")
        for i, item in enumerate(entries):
            key: PathKey = (kind, i)
            entry = _mapping(src, key, item)
            rule_id = _text(src, entry, key, "id")
            if rule_id in seen:
                raise src.error(key + ("id",), f"duplicate rule id '{rule_id}'")
            seen[rule_id] = key
            words = _strings(src, entry, key, "words")
            patterns = _regexes(src, entry, key, "patterns")
            if not words and not patterns:
                raise src.error(key, "a rule needs `words` or `patterns`")
            fix = entry.get("fix")
            if fix is not None and not isinstance(fix, str):
                raise src.error(key + ("fix",), "must be a string")
            rules.append(
                Rule(
                    id=rule_id,
                    kind=kind,
                    words=words,
                    patterns=patterns,
                    unless=_regexes(src, entry, key, "unless"),
                    reason=_text(src, entry, key, "reason"),
                    rewrite=_text(src, entry, key, "rewrite"),
                    fix=fix,
                    source=_source(src, entry, key),
                    line=src.line(key),
                )
            )
    return tuple(rules)


# --- escalation.yml and service.yml --------------------------------------------


def _number(
    src: Source, parent: dict, key: PathKey, name: str, low: float, high: float, default=None
) -> float:
    value = parent.get(name, default)
    if value is None:
        raise src.error(key, f"missing required key '{name}'")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise src.error(key + (name,), f"must be a number from {low:g} to {high:g}")
    return float(value)


def _escalation(src: Source, root: dict, phrases: Dict[str, Phrase]) -> Escalation:
    key: PathKey = ("reasons",)
    entries = _mapping(src, key, _field(src, root, (), "reasons"))
    for code in entries:
        if code not in REASON_CODES:
            known = ", ".join(REASON_CODES)
            raise src.error(key + (code,), f"unknown reason code (one of {known})")
    reasons: Dict[str, Reason] = {}
    claimed: Dict[str, str] = {}
    for code in REASON_CODES:
        if code not in entries:
            raise src.error(key, f"missing reason '{code}'")
        where = key + (code,)
        entry = _mapping(src, where, entries[code])
        _source(src, entry, where)
        phrase = _text(src, entry, where, "phrase")
        if phrase not in phrases:
            raise src.error(where + ("phrase",), f"no phrase '{phrase}' in {PHRASING_FILE}")
        intents = _strings(src, entry, where, "intents")
        for intent in intents:
            if intent in claimed:
                raise src.error(where + ("intents",), f"'{intent}' is already {claimed[intent]}")
            claimed[intent] = code
        reasons[code] = Reason(
            code=code,
            priority=int(_number(src, entry, where, "priority", 0, 1000)),
            intents=intents,
            phrase=phrase,
            retain_first=bool(entry.get("retain_first", False)),
        )
    failure = _mapping(src, ("bot_failure",), _field(src, root, (), "bot_failure"))
    return Escalation(
        reasons=reasons,
        fallbacks_in_a_row=int(_number(src, failure, ("bot_failure",), "fallbacks_in_a_row", 1, 9)),
        form_failures=int(_number(src, failure, ("bot_failure",), "form_failures", 1, 9)),
        tone=_tone(src, _mapping(src, ("tone",), _field(src, root, (), "tone"))),
        hours=_hours(src, _mapping(src, ("working_hours",), root.get("working_hours"))),
        minutes_per_conversation=_number(
            src, root.get("queue") or {}, ("queue",), "minutes_per_conversation", 0.1, 240, 3
        ),
        agent_online_seconds=_number(
            src, root.get("queue") or {}, ("queue",), "agent_online_seconds", 5, 3600, 90
        ),
        intent_min_confidence=_number(src, root, (), "intent_min_confidence", 0, 1, 0.0),
        story=_story_words(src, root, reasons),
        assignment=_assignment(src, root),
        reassign_after_s=_number(src, root, (), "reassign_after_s", 5, 86400, 120),
        first_response_s=_first_response(src, root),
    )


def _story_words(src: Source, root: dict, reasons: Dict[str, Reason]) -> Optional[StoryWords]:
    if root.get("story_words") is None:
        return None
    key: PathKey = ("story_words",)
    entry = _mapping(src, key, root.get("story_words"))
    always = _strings(src, entry, key, "always")
    unknown = [code for code in always if code not in reasons]
    if unknown:
        raise src.error(key + ("always",), f"unknown reason code(s): {', '.join(unknown)}")
    intents = _strings(src, entry, key, "intents")
    escalating = [i for i in intents for r in reasons.values() if i in r.intents]
    if not intents or escalating:
        raise src.error(key + ("intents",), f"needs non-escalation intents: {escalating}")
    return StoryWords(
        intents=intents,
        confidence=_number(src, entry, key, "confidence", 0, 1, 0.5),
        always=always,
    )


ASSIGNMENT_MODES = ("auto", "manual")


def _assignment(src: Source, root: dict) -> str:
    mode = root.get("assignment", "auto")
    if mode not in ASSIGNMENT_MODES:
        raise src.error(("assignment",), "must be auto or manual")
    return str(mode)


def _first_response(src: Source, root: dict) -> float:
    sla = _mapping(src, ("sla",), root.get("sla") or {"source": "kefu"})
    _source(src, sla, ("sla",))
    return _number(src, sla, ("sla",), "first_response_s", 5, 86400, 60)


def _tone(src: Source, tone: dict) -> Tone:
    key: PathKey = ("tone",)
    _source(src, tone, key)
    weights = _mapping(src, key + ("weights",), _field(src, tone, key, "weights"))
    for name in weights:
        if name not in TONE_WEIGHTS:
            known = ", ".join(TONE_WEIGHTS)
            raise src.error(key + ("weights", name), f"unknown weight (one of {known})")
    return Tone(
        insult_words=tuple(w.lower() for w in _strings(src, tone, key, "insult_words")),
        anger_words=_strings(src, tone, key, "anger_words"),
        repeat_patterns=_regexes(src, tone, key, "repeat_patterns"),
        weights={n: _number(src, weights, key + ("weights",), n, 0, 10, 0) for n in TONE_WEIGHTS},
        decay=_number(src, tone, key, "decay", 0, 1),
        anger_threshold=_number(src, tone, key, "anger_threshold", 0.1, 100),
        min_tense_turns=int(_number(src, tone, key, "min_tense_turns", 1, 20)),
    )


def _hours(src: Source, hours: dict) -> WorkingHours:
    key: PathKey = ("working_hours",)
    _source(src, hours, key)
    zone = _text(src, hours, key, "timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise src.error(key + ("timezone",), f"unknown time zone '{zone}'") from None
    days = hours.get("weekdays", [1, 2, 3, 4, 5, 6, 7])
    if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
        raise src.error(key + ("weekdays",), "must be a list of ISO weekdays 1-7 (1 = Monday)")
    start = _clock(src, key + ("open",), _field(src, hours, key, "open"))
    end = _clock(src, key + ("close",), _field(src, hours, key, "close"))
    if end <= start:
        raise src.error(key + ("close",), "must be later than open")
    return WorkingHours(timezone=zone, open=start, close=end, weekdays=tuple(days))


IDLE_CHANNELS = ("web", "widget", "wechat", "wecom")


def _channels(src: Source, parent: dict, key: PathKey, name: str) -> Tuple[str, ...]:
    found = _strings(src, parent, key, name)
    unknown = [c for c in found if c not in IDLE_CHANNELS]
    if unknown:
        raise src.error(key + (name,), f"unknown channel {unknown} (one of {IDLE_CHANNELS})")
    return found


def _service(src: Source, root: dict) -> Service:
    idle = _mapping(src, ("idle",), _field(src, root, (), "idle"))
    complaints = _mapping(src, ("complaints",), _field(src, root, (), "complaints"))
    returns = _mapping(src, ("returns",), _field(src, root, (), "returns"))
    retention = _mapping(src, ("retention",), root.get("retention") or {})
    waiting = _mapping(src, ("waiting",), root.get("waiting") or {"source": "kefu"})
    for name, section in (
        ("idle", idle),
        ("complaints", complaints),
        ("returns", returns),
        ("waiting", waiting),
    ):
        _source(src, section, (name,))
    exceptions = []
    for i, item in enumerate(returns.get("exceptions") or []):
        key: PathKey = ("returns", "exceptions", i)
        entry = _mapping(src, key, item)
        exceptions.append(
            ReturnException(
                id=_text(src, entry, key, "id"),
                keywords=_strings(src, entry, key, "keywords"),
                reason=_text(src, entry, key, "reason"),
            )
        )
    return Service(
        idle_after_s=_number(src, idle, ("idle",), "after_seconds", 1, 86400),
        idle_prompts=int(_number(src, idle, ("idle",), "prompts", 0, 10)),
        hold_on_factor=_number(src, idle, ("idle",), "hold_on_factor", 1, 100, 3),
        idle_quiet_channels=_channels(src, idle, ("idle",), "quiet_channels"),
        follow_up_hours=int(_number(src, complaints, ("complaints",), "follow_up_hours", 1, 720)),
        return_window_days=int(_number(src, returns, ("returns",), "window_days", 0, 365)),
        return_exceptions=tuple(exceptions),
        retention_days=int(
            _number(src, retention, ("retention",), "transcripts_days", 1, 3650, 180)
        ),
        announce_wait_after_s=_number(src, waiting, ("waiting",), "announce_after_s", 0.1, 30, 1.5),
        ack_every_s=_number(src, waiting, ("waiting",), "ack_every_s", 1, 3600, 30),
        switch_min_confidence=_number(
            src, root.get("forms") or {}, ("forms",), "switch_min_confidence", 0, 1, 0.75
        ),
    )


def _faq(src: Source, root: dict) -> Dict[str, FaqTopic]:
    _source(src, root, ())
    topics = _mapping(src, ("topics",), _field(src, root, (), "topics"))
    out: Dict[str, FaqTopic] = {}
    owner: Dict[str, str] = {}
    for topic_id, item in topics.items():
        key: PathKey = ("topics", topic_id)
        if not isinstance(topic_id, str) or not _TOPIC_ID.match(topic_id):
            raise src.error(key, "a topic id is lower-case letters, digits and _")
        entry = _mapping(src, key, item)
        for name in entry:
            if name not in ("answer", "source", "examples") + FAQ_VARIANTS:
                raise src.error(
                    key + (name,),
                    "unknown key (answer, examples, source, with_order, with_return, with_ticket)",
                )
        examples = _strings(src, entry, key, "examples")
        if len(examples) < FAQ_MIN_EXAMPLES:
            raise src.error(key + ("examples",), f"needs at least {FAQ_MIN_EXAMPLES} examples")
        for i, example in enumerate(examples):
            if example in owner:
                raise src.error(key + ("examples", i), f"'{example}' is also in {owner[example]}")
            owner[example] = topic_id
        out[topic_id] = FaqTopic(
            id=topic_id,
            answer=_text(src, entry, key, "answer"),
            variants={v: _text(src, entry, key, v) for v in FAQ_VARIANTS if v in entry},
            examples=examples,
            source=_source(src, entry, key),
            line=src.line(key),
        )
    missing = [t for t in FAQ_TOPICS if t not in out]
    if missing:
        raise src.error(("topics",), f"missing topic(s): {', '.join(missing)}")
    return out


def _risk(src: Source, root: dict) -> Risk:
    _source(src, root, ())
    hypothetical = _mapping(src, ("hypothetical",), _field(src, root, (), "hypothetical"))
    entries = _mapping(src, ("reasons",), _field(src, root, (), "reasons"))
    reasons: Dict[str, RiskLexicon] = {}
    for code, item in entries.items():
        key: PathKey = ("reasons", code)
        if code not in RISK_CODES:
            known = ", ".join(RISK_CODES)
            raise src.error(key, f"unknown reason code (one of {known}; anger is read from tone)")
        entry = _mapping(src, key, item)
        _source(src, entry, key)
        weak = []
        for i, cue in enumerate(entry.get("weak") or []):
            where = key + ("weak", i)
            cue = _mapping(src, where, cue)
            weak.append(
                WeakCue(
                    id=_text(src, cue, where, "id"),
                    patterns=_regexes(src, cue, where, "patterns"),
                    context=_regexes(src, cue, where, "context"),
                )
            )
            if not weak[-1].patterns or not weak[-1].context:
                raise src.error(where, "a weak cue needs `patterns` and `context`")
        lexicon = RiskLexicon(
            code=str(code),
            strong=_regexes(src, entry, key, "strong"),
            certain=_regexes(src, entry, key, "certain"),
            weak=tuple(weak),
            targeted=_regexes(src, entry, key, "targeted"),
            targets=_regexes(src, entry, key, "targets"),
            unless=_regexes(src, entry, key, "unless"),
            hypothetical=bool(entry.get("hypothetical", code == "safety")),
            grounds=_regexes(src, entry, key, "grounds"),
        )
        if not (lexicon.strong or lexicon.certain or lexicon.weak or lexicon.targeted):
            raise src.error(key, "needs `strong`, `certain`, `weak` or `targeted` patterns")
        if bool(lexicon.targeted) != bool(lexicon.targets):
            raise src.error(key, "`targeted` and `targets` go together")
        reasons[str(code)] = lexicon
    settled = []
    for i, group in enumerate(root.get("settled") or []):
        where = ("settled", i)
        group = _mapping(src, where, group)
        codes = _strings(src, group, where, "reasons")
        unknown = [c for c in codes if c not in reasons]
        if not codes or unknown:
            raise src.error(where + ("reasons",), f"needs reason codes of `reasons`: {unknown}")
        settled.append(
            Settled(
                id=_text(src, group, where, "id"),
                reasons=codes,
                patterns=_regexes(src, group, where, "patterns"),
            )
        )
        if not settled[-1].patterns:
            raise src.error(where, "needs `patterns`")
    return Risk(
        separators=str(root.get("separators") or ""),
        masks=str(root.get("masks") or ""),
        before=_regex(src, ("hypothetical", "before"), hypothetical.get("before")),
        after=_regex(src, ("hypothetical", "after"), hypothetical.get("after")),
        clause=_regex(src, ("hypothetical", "clause"), hypothetical.get("clause")),
        reasons=reasons,
        settled=tuple(settled),
        asides=_asides(src, root, reasons),
    )


def _asides(src: Source, root: dict, reasons: Dict[str, RiskLexicon]) -> Asides:
    def codes(where: PathKey, parent: dict) -> Tuple[str, ...]:
        found = _strings(src, parent, where, "reasons")
        unknown = [c for c in found if c not in reasons]
        if not found or unknown:
            raise src.error(where + ("reasons",), f"needs reason codes of `reasons`: {unknown}")
        return found

    quoted: Tuple[str, ...] = ()
    quotes: Tuple[str, ...] = ()
    if "quoted" in root:
        entry = _mapping(src, ("quoted",), root["quoted"])
        quoted = codes(("quoted",), entry)
        quotes = _strings(src, entry, ("quoted",), "pairs")
        if not quotes or any(len(q) != 2 for q in quotes):
            raise src.error(("quoted", "pairs"), "each pair is two marks, opening and closing")
    others: Tuple[str, ...] = ()
    subjects: Tuple[re.Pattern[str], ...] = ()
    links: Tuple[re.Pattern[str], ...] = ()
    if "others" in root:
        entry = _mapping(src, ("others",), root["others"])
        others = codes(("others",), entry)
        subjects = _regexes(src, entry, ("others",), "subjects")
        links = _regexes(src, entry, ("others",), "links")
        if not subjects or not links:
            raise src.error(("others",), "needs `subjects` and `links`")
    buying: Tuple[str, ...] = ()
    plans: Tuple[re.Pattern[str], ...] = ()
    if "buying_for" in root:
        entry = _mapping(src, ("buying_for",), root["buying_for"])
        buying = codes(("buying_for",), entry)
        plans = _regexes(src, entry, ("buying_for",), "plans")
        if not plans or not links:
            raise src.error(("buying_for",), "needs `plans`, and `others` for its `links`")
    return Asides(quoted, quotes, others, subjects, links, buying, plans)


__all__ = [
    "Asides",
    "Brand",
    "Escalation",
    "Reason",
    "Risk",
    "FaqTopic",
    "RiskLexicon",
    "Settled",
    "StoryWords",
    "WeakCue",
    "Service",
    "Tone",
    "WorkingHours",
    "Greeting",
    "Phrase",
    "Policy",
    "Rule",
    "PolicyError",
    "load_policy",
    "policy_dir",
]

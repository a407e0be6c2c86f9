"""Load and validate the operator's policy files under policy/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Dict, List, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kefu.policy.yaml_source import PathKey, PolicyError, Source

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "policy"
PHRASING_FILE = "phrasing.yml"
RULES_FILE = "rules.yml"
RULE_KINDS = ("forbidden", "tones", "rewrites", "honorifics")
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
class Policy:
    brand: Brand
    greetings: Tuple[Greeting, ...]
    phrases: Dict[str, Phrase]
    rules: Tuple[Rule, ...]
    directory: Path

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
    return Policy(
        brand=_brand(phrasing, root),
        greetings=_greetings(phrasing, root),
        phrases=_phrases(phrasing, root),
        rules=_rules(rules, _mapping(rules, ())),
        directory=directory,
    )


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


def _strings(src: Source, parent: dict, key: PathKey, name: str) -> Tuple[str, ...]:
    value = parent.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise src.error(key + (name,), "must be a list of non-empty strings")
    return tuple(value)


def _regexes(src: Source, parent: dict, key: PathKey, name: str) -> Tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(_strings(src, parent, key, name)):
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise src.error(key + (name, i), f"invalid regular expression: {e}") from None
    return tuple(compiled)


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


__all__ = [
    "Brand",
    "Greeting",
    "Phrase",
    "Policy",
    "Rule",
    "PolicyError",
    "load_policy",
    "policy_dir",
]

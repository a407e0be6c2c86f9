"""Judgement on visitors' words: hand-over recall, precision and reason, on labelled
single messages and conversations (`make eval`).

Every message goes through the trained model's NLU (intent, tone, the sentences'
own intents), then through the very decision the dialogue policy makes
(`kefu.domain.escalation.decide`, with the risks the RiskScanner reads from policy/risk.yml).
Conversations are judged turn by turn the same way, the facts accumulating as in
the tracker, until the first hand-over.

Splits (tests/judgement/): `dev` is what the lexicons and thresholds were tuned
on; `sealed` was written separately and nothing was ever tuned on it.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from kefu.domain import escalation, risk, tone
from kefu.domain.policy.loader import Policy
from kefu.paths import ROOT

JUDGEMENT = ROOT / "tests" / "judgement"
SPLITS = ("dev", "sealed")
ESCALATION_CODES = (
    "safety",
    "legal_media",
    "abuse",
    "compensation",
    "supervisor",
    "customer_request",
    "anger",
)
# The bars the issue sets for held-out real visitor messages.
BARS = {"recall": 0.95, "right_reason": 0.90, "needless_rate": 0.03, "intent_accuracy": 0.85}


@dataclass
class Judged:
    text: str
    gold: str
    predicted: str  # a reason code, or "none"
    gold_intent: Optional[str] = None
    intent: Optional[str] = None
    tags: Sequence[str] = ()
    evidence: List[Dict[str, Any]] = field(default_factory=list)


def load_split(split: str, kind: str, root: Path = JUDGEMENT) -> List[Dict[str, Any]]:
    """Every `<kind>*.yml` of a split (messages.yml, messages_2.yml, ...), in name order."""
    import yaml

    items: List[Dict[str, Any]] = []
    for path in sorted((root / split).glob(f"{kind}*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        items += list(data.get(kind) or [])
    return items


@functools.lru_cache(maxsize=None)
def sentence_confidence(config: Path = ROOT / "config.yml") -> float:
    """The RiskScanner's `sentence_confidence`, as config.yml sets it (or its default)."""
    import yaml

    from kefu.rasa.parsing import risk_scanner_defaults

    default = float(risk_scanner_defaults()["sentence_confidence"])
    for step in (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("pipeline") or []:
        if str(step.get("name", "")).endswith("RiskScanner"):
            return float(step.get("sentence_confidence", default))
    return default


def reparse(parse: Dict[str, Any], policy: Policy, judge: risk.MessageJudge) -> Dict[str, Any]:
    """The parse as the current policy files read it: tone, risk and the revised intent
    (lexicons and thresholds can be tuned without retraining)."""
    text = parse.get("original_text") or parse.get("text") or ""
    original = parse.get("intent_classifier") or parse.get("intent") or {}
    reading, chosen = judge.judge(
        text, original, parse.get("intent_ranking") or [], parse.get("sentence_intents") or []
    )
    return {
        **parse,
        "tone": tone.score(parse.get("text") or "", policy.escalation.tone).as_dict(),
        "risk": reading.as_dict(),
        "intent": chosen or original,
    }


def judge_message(parse: Dict[str, Any], policy: Policy) -> str:
    facts = escalation.Facts(turns=[escalation.turn_of(parse)])
    decision = escalation.decide(facts, policy.escalation)
    return decision.code if decision and not decision.retain else "none"


def judge_conversation(parses: Sequence[Dict[str, Any]], policy: Policy) -> Tuple[str, int]:
    """The first hand-over's reason and visitor turn (1-based), or ("none", 0)."""
    facts = escalation.Facts()
    for turn, parse in enumerate(parses, start=1):
        facts.turns.append(escalation.turn_of(parse))
        decision = escalation.decide(facts, policy.escalation)
        if decision is None:
            continue
        if decision.retain:
            facts.supervisor_retained = True
            continue
        return decision.code, turn
    return "none", 0


def intent_label(parse: Dict[str, Any]) -> str:
    name = str((parse.get("intent") or {}).get("name") or "")
    return "faq" if name.startswith("faq") else name


def message_scores(judged: Sequence[Judged]) -> Dict[str, Any]:
    escalations = [j for j in judged if j.gold != "none"]
    others = [j for j in judged if j.gold == "none"]
    caught = [j for j in escalations if j.predicted != "none"]
    flagged = [j for j in judged if j.predicted != "none"]
    by_reason: Dict[str, Dict[str, Any]] = {}
    for code in ESCALATION_CODES:
        gold = [j for j in judged if j.gold == code]
        predicted = [j for j in judged if j.predicted == code]
        right = [j for j in gold if j.predicted == code]
        if gold or predicted:
            by_reason[code] = {
                "support": len(gold),
                "handed_over": sum(j.predicted != "none" for j in gold),
                "recall": _ratio(len(right), len(gold)),
                "precision": _ratio(len(right), len(predicted)),
            }
    tags: Dict[str, Counter] = defaultdict(Counter)
    for j in escalations:
        for tag in j.tags:
            tags[tag]["n"] += 1
            tags[tag]["caught"] += j.predicted != "none"
    with_intent = [j for j in judged if j.gold_intent]
    return {
        "messages": len(judged),
        "escalations": len(escalations),
        "others": len(others),
        "recall": _ratio(len(caught), len(escalations)),
        "precision": _ratio(sum(j.gold != "none" for j in flagged), len(flagged)),
        "right_reason": _ratio(sum(j.predicted == j.gold for j in escalations), len(escalations)),
        "right_reason_of_caught": _ratio(sum(j.predicted == j.gold for j in caught), len(caught)),
        "needless_rate": _ratio(sum(j.predicted != "none" for j in others), len(others)),
        "intent_accuracy": _ratio(
            sum(j.intent == j.gold_intent for j in with_intent), len(with_intent)
        ),
        "by_reason": by_reason,
        "recall_by_tag": {t: _ratio(c["caught"], c["n"]) for t, c in sorted(tags.items())},
        "misses": [_row(j) for j in escalations if j.predicted != j.gold],
        "needless": [_row(j) for j in others if j.predicted != "none"],
        "wrong_intent": [
            {"text": j.text, "gold": j.gold_intent, "predicted": j.intent}
            for j in with_intent
            if j.intent != j.gold_intent
        ],
    }


def conversation_scores(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    escalations = [r for r in rows if r["gold"] != "none"]
    others = [r for r in rows if r["gold"] == "none"]
    in_time = [
        r
        for r in escalations
        if r["predicted"] == r["gold"] and 0 < r["turn"] <= int(r.get("by_turn") or 99)
    ]
    return {
        "conversations": len(rows),
        "escalations": len(escalations),
        "recall": _ratio(sum(r["predicted"] != "none" for r in escalations), len(escalations)),
        "right_reason_in_time": _ratio(len(in_time), len(escalations)),
        "needless_rate": _ratio(sum(r["predicted"] != "none" for r in others), len(others)),
        "wrong": [
            r for r in rows if r not in in_time and not (r["gold"] == r["predicted"] == "none")
        ],
    }


def _row(j: Judged) -> Dict[str, Any]:
    return {
        "text": j.text,
        "gold": j.gold,
        "predicted": j.predicted,
        "evidence": [(e["reason"], e["match"]) for e in j.evidence],
    }


def _ratio(a: int, b: int) -> Optional[float]:
    return round(a / b, 4) if b else None


def evaluate_split(
    split: str, parse_many: Any, policy: Policy, root: Path = JUDGEMENT
) -> Dict[str, Any]:
    """Scores of one split; `parse_many(texts)` returns the NLU parse of each text."""
    judge = risk.MessageJudge.for_policy(policy, sentence_confidence())
    messages = load_split(split, "messages", root)
    parses = [reparse(p, policy, judge) for p in parse_many([m["text"] for m in messages])]
    judged = [
        Judged(
            text=m["text"],
            gold=str(m.get("reason") or "none"),
            predicted=judge_message(p, policy),
            gold_intent=m.get("intent"),
            intent=intent_label(p),
            tags=tuple(m.get("tags") or ()),
            evidence=(p.get("risk") or {}).get("evidence") or [],
        )
        for m, p in zip(messages, parses, strict=True)
    ]
    conversations = load_split(split, "conversations", root)
    turns = [t for c in conversations for t in c["turns"]]
    turn_parses = iter(reparse(p, policy, judge) for p in parse_many(turns))
    rows = []
    for c in conversations:
        mine = [next(turn_parses) for _ in c["turns"]]
        reason, turn = judge_conversation(mine, policy)
        expect = c.get("expect") or {}
        rows.append(
            {
                "id": c.get("id"),
                "turns": c["turns"],
                "gold": str(expect.get("reason") or "none"),
                "by_turn": expect.get("by_turn"),
                "predicted": reason,
                "turn": turn,
            }
        )
    return {
        "split": split,
        "single_messages": message_scores(judged),
        "conversations": conversation_scores(rows),
    }


def summary_markdown(results: Sequence[Dict[str, Any]]) -> str:
    md = [
        "# Judgement: hand-overs on labelled visitor messages and conversations",
        "",
        "`dev` is what policy/risk.yml and the thresholds were tuned on; `sealed` was "
        "written separately (tests/judgement/sealed/) and nothing was ever tuned on it. "
        "Each message is a first message in a new chat; conversations are judged turn "
        "by turn until the first hand-over.",
        "",
        "| split | messages | recall | precision | right reason | needless hand-overs | "
        "intent right | conversations | conv. right reason in time | conv. needless |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, c = r["single_messages"], r["conversations"]
        md.append(
            f"| {r['split']} | {m['messages']} ({m['escalations']} escalations) | "
            f"{_f(m['recall'])} | {_f(m['precision'])} | {_f(m['right_reason'])} | "
            f"{_f(m['needless_rate'])} | {_f(m['intent_accuracy'])} | {c['conversations']} | "
            f"{_f(c['right_reason_in_time'])} | {_f(c['needless_rate'])} |"
        )
    for r in results:
        m = r["single_messages"]
        md += [
            "",
            f"## {r['split']}: by reason",
            "",
            "| reason | support | handed over | recall (right reason) | precision |",
            "|---|---|---|---|---|",
        ]
        for code, s in m["by_reason"].items():
            md.append(
                f"| {code} | {s['support']} | {s['handed_over']} | {_f(s['recall'])} | "
                f"{_f(s['precision'])} |"
            )
        md += [
            "",
            "Recall by tag: " + ", ".join(f"{t} {_f(v)}" for t, v in m["recall_by_tag"].items()),
        ]
        if r["split"] == "dev":
            md += ["", "### dev: misses and needless hand-overs", ""]
            md += [f"- {x['text']} (gold {x['gold']}, got {x['predicted']})" for x in m["misses"]]
            md += [
                f"- needless: {x['text']} ({x['predicted']}: {x['evidence']})"
                for x in m["needless"]
            ]
    return "\n".join(md) + "\n"


def _f(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def run(model: Path, out: Path, policy: Policy) -> Tuple[List[Dict[str, Any]], int]:
    from kefu.rasa.parsing import ModelParser

    parser = ModelParser(model)
    results = [evaluate_split(split, parser.parse_many, policy) for split in SPLITS]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (out / "summary.md").write_text(summary_markdown(results), encoding="utf-8")
    sealed = next((r for r in results if r["split"] == "sealed"), None)
    failed = 0
    if sealed and sealed["single_messages"]["messages"]:
        m = sealed["single_messages"]
        failed = int(
            (m["recall"] or 0) < BARS["recall"]
            or (m["right_reason"] or 0) < BARS["right_reason"]
            or (m["needless_rate"] or 0) > BARS["needless_rate"]
        )
    return results, failed

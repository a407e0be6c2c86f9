"""Settle overlapping entities from the regex extractor and DIET."""

from __future__ import annotations

import re
from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from kefu.domain import order_ids
from kefu.rasa.nlu.annotator import MessageAnnotator

REGEX_EXTRACTOR = "RegexEntityExtractor"
SELF = "EntityReconciler"
# Entities whose format a pattern defines exactly: only the pattern may produce them.
PATTERN_ENTITIES = frozenset({"order_id", "phone"})

# Words just before a number that say what the number is.
_PHONE_CUE = re.compile(r"(手机|电话|号码|联系|致电|打给|回电|tel|phone|call)", re.I)
_ORDER_CUE = re.compile(r"(订单|单号|编号|order|单子|这个单)", re.I)
_CUE_WINDOW = 8


def _overlaps(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityReconciler(MessageAnnotator):
    """One entity per span.

    - order_id and phone come from the regex extractor only; DIET guesses of them
      are dropped, and so is any DIET entity overlapping a pattern match.
    - An 11-digit mobile-like number matches both patterns. The words before it
      decide (手机/电话 → phone, 订单/单号 → order_id); with no cue it is a phone,
      and a form asking for an order id can still take it from the text.
    """

    def annotate(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        entities = with_grouped_order_ids(message.get(ENTITIES) or [], text)
        if entities:
            message.set(ENTITIES, reconcile(entities, text), add_to_output=True)


def with_grouped_order_ids(entities: List[Dict[str, Any]], text: str) -> List[Dict[str, Any]]:
    """Order ids typed in groups (2023-1125-0012-3456, JD 20231118001) that the pattern
    cannot see, as pattern entities with the id as their value; every order id's value
    is the normalised id."""
    out = []
    for e in entities:
        if e.get("entity") == "order_id" and e.get("extractor") == REGEX_EXTRACTOR:
            e = {**e, "value": order_ids.find(str(e.get("value") or "")) or e.get("value")}
        out.append(e)
    # Only a pattern's match counts as known: DIET's guess of the same span is dropped
    # by `reconcile`, so it must not stop the pattern-made entity from being added.
    known = {
        (e["start"], e["end"])
        for e in out
        if e.get("entity") == "order_id" and e.get("extractor") == REGEX_EXTRACTOR
    }
    for value, start, end in order_ids.find_all(text):
        if (start, end) not in known:
            out.append(
                {
                    "entity": "order_id",
                    "start": start,
                    "end": end,
                    "value": value,
                    "extractor": SELF,
                }
            )
    return out


def reconcile(entities: List[Dict[str, Any]], text: str) -> List[Dict[str, Any]]:
    pattern_hits = [e for e in entities if e.get("extractor") in (REGEX_EXTRACTOR, SELF)]
    learned = [
        e
        for e in entities
        if e.get("extractor") not in (REGEX_EXTRACTOR, SELF)
        and e.get("entity") not in PATTERN_ENTITIES
        and not any(_overlaps(e, p) for p in pattern_hits)
    ]

    kept: List[Dict[str, Any]] = []
    for hit in pattern_hits:
        rivals = [k for k in kept if _overlaps(k, hit)]
        if not rivals:
            kept.append(hit)
            continue
        rival = rivals[0]
        if _prefer(hit, rival, text) is hit:
            kept.remove(rival)
            kept.append(hit)
    kept.sort(key=lambda e: e["start"])
    return sorted(kept + learned, key=lambda e: e["start"])


def _prefer(a: Dict[str, Any], b: Dict[str, Any], text: str) -> Dict[str, Any]:
    """Pick one of two overlapping pattern matches."""
    if a["entity"] == b["entity"]:
        return a if a["end"] - a["start"] >= b["end"] - b["start"] else b
    start = min(a["start"], b["start"])
    before = text[max(0, start - _CUE_WINDOW) : start]
    wanted = "phone"
    if _ORDER_CUE.search(before) and not _PHONE_CUE.search(before):
        wanted = "order_id"
    return a if a["entity"] == wanted else b

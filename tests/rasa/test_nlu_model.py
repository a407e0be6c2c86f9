"""The trained model against the held-out split and the issue's bars."""

from __future__ import annotations

import asyncio

import pytest

from kefu.tools.evaluation import (
    BARRED_ENTITIES,
    ENTITY_BAR,
    INTENT_BAR,
    evaluate_held_out,
    predict,
)


@pytest.fixture(scope="module")
def scores(model_path):
    return evaluate_held_out(model_path)


def test_intent_macro_f1_meets_the_bar(scores):
    assert scores.macro_f1 >= INTENT_BAR, scores.errors


@pytest.mark.parametrize("entity", BARRED_ENTITIES)
def test_pattern_entity_f1_meets_the_bar(scores, entity):
    assert scores.entities[entity]["f1"] >= ENTITY_BAR


def test_parse_keeps_original_text_script_and_synonyms(model_path):
    [(intent, _spans, parse)] = asyncio.run(
        predict(model_path, ["我想退掉這個，訂單號JD20231118001"])
    )
    assert intent == "request_return"
    assert parse["script"] == "traditional"
    assert parse["original_text"] == "我想退掉這個，訂單號JD20231118001"
    values = {(e["entity"], e["value"]) for e in parse["entities"]}
    assert ("order_id", "JD20231118001") in values
    assert ("return_type", "退货") in values  # 退掉 → synonym

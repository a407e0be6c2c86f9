"""Suggestions and the satisfaction question, stored for real (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from actions import records
from actions.closing import (
    ActionAskSatisfaction,
    ActionRecordSuggestion,
    ActionRecordSurvey,
    ValidateSurveyForm,
    score_of,
)

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'kefu.db'}", None
    else:
        schema = f"kefu_test_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{POSTGRES}?search_path={schema}"  # asyncpg passes it as a server setting

        async def cleanup():
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()

    monkeypatch.setenv("KEFU_DATABASE_URL", url)
    records.store.cache_clear()
    yield records.store()
    await records.store().close()
    records.store.cache_clear()
    if cleanup:
        await cleanup()


@pytest.mark.parametrize(
    "text, score",
    [
        ("5", 5),
        ("5分", 5),
        ("打4分吧", 4),
        ("五星", 5),
        ("三颗星", 3),
        ("非常满意", 5),
        ("满意", 4),
        ("一般般", 3),
        ("不满意", 2),
        ("非常不满意", 1),
        ("很差", 1),
        ("滿意", 4),
        ("👍", None),
        ("10分", None),
        ("还可以吧", None),
    ],
)
def test_score_of(text, score):
    assert score_of(text) == score


async def test_a_score_is_kept_and_anything_else_is_a_comment(dispatcher, make_tracker, domain):
    form = ValidateSurveyForm()
    assert await form.validate_satisfaction(
        "5分", dispatcher, make_tracker(), domain.as_dict()
    ) == {"satisfaction": "5"}
    assert await form.validate_satisfaction(
        "客服挺好的", dispatcher, make_tracker(), domain.as_dict()
    ) == {"satisfaction": "comment", "satisfaction_comment": "客服挺好的"}
    assert dispatcher.messages == []  # one question: no re-asking


async def test_the_question_is_the_policy_phrase(dispatcher, make_tracker, domain):
    await ActionAskSatisfaction().run(dispatcher, make_tracker(), domain.as_dict())
    assert dispatcher.messages[0]["response"] == "phrase_ask_satisfaction"


async def test_survey_answer_is_stored_with_the_conversation(
    database, dispatcher, make_tracker, domain
):
    tracker = make_tracker(slots={"satisfaction": "4"})
    events = await ActionRecordSurvey().run(dispatcher, tracker, domain.as_dict())
    [record] = await database.find(kind="survey", conversation_id=tracker.sender_id)
    assert record.data == {"score": 4} and record.number.startswith("Q")
    assert dispatcher.messages[0]["response"] == "phrase_survey_thanks"
    assert {e["name"] for e in events} == {"satisfaction", "satisfaction_comment"}


async def test_a_comment_is_stored_without_a_score(database, dispatcher, make_tracker, domain):
    tracker = make_tracker(slots={"satisfaction": "comment", "satisfaction_comment": "还行吧"})
    await ActionRecordSurvey().run(dispatcher, tracker, domain.as_dict())
    [record] = await database.find(kind="survey")
    assert record.data == {"score": None, "comment": "还行吧"}


async def test_suggestion_is_recorded(database, dispatcher, make_tracker, domain):
    tracker = make_tracker(text="建议你们周末也发货", intent="suggest")
    assert await ActionRecordSuggestion().run(dispatcher, tracker, domain.as_dict()) == []
    [record] = await database.find(kind="suggestion", conversation_id=tracker.sender_id)
    assert record.data == {"text": "建议你们周末也发货"}


async def test_a_store_outage_still_thanks_the_visitor(
    monkeypatch, dispatcher, make_tracker, domain, caplog
):
    monkeypatch.setenv("KEFU_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    records.store.cache_clear()
    try:
        await ActionRecordSurvey().run(
            dispatcher, make_tracker(slots={"satisfaction": "5"}), domain.as_dict()
        )
    finally:
        records.store.cache_clear()
    assert dispatcher.messages[0]["response"] == "phrase_survey_thanks"
    assert "survey not stored" in caplog.text

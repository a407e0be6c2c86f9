"""The review API (/api/review…) and the agents' correction flag, in-process on a desk
with its own SQLite store and a tracker store written here (no Rasa needed)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kefu.desk import review as desk_review
from kefu.desk.app import init_app
from kefu.desk.config import DeskConfig
from kefu.desk.keys import DESK
from tests.conftest import always_open

ROOT = Path(__file__).resolve().parents[2]
EVENTS = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
    "action_name VARCHAR(255), data TEXT)"
)


def tracker_event(db, sender, text, intent, confidence, at):
    ranking = [{"name": intent, "confidence": confidence}]
    if intent == "nlu_fallback":
        ranking.append({"name": "insult", "confidence": 0.19})
    data = {
        "event": "user",
        "timestamp": at.timestamp(),
        "text": text,
        "parse_data": {
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": ranking,
        },
    }
    db.execute(
        "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
        "VALUES (?, ?, ?, ?, ?)",
        (sender, "user", at.timestamp(), intent, json.dumps(data, ensure_ascii=False)),
    )
    db.commit()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A copy of the project's training data for the page's labelling to write to."""
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(ROOT / "domain.yml", home / "domain.yml")
    for folder in ("data", "policy", "tests/nlu"):
        shutil.copytree(ROOT / folder, home / folder)
    monkeypatch.setattr(desk_review, "ROOT", home)
    return home


@pytest.fixture
def tracker(tmp_path, monkeypatch):
    path = tmp_path / "tracker.db"
    db = sqlite3.connect(path)
    db.execute(EVENTS)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {path}\n")
    monkeypatch.setenv("KEFU_RASA_ENDPOINTS", str(endpoints))
    yield db
    db.close()


@pytest.fixture
async def desk(aiohttp_client, tmp_path, policy, home, tracker):
    config = DeskConfig(
        rasa_url="http://127.0.0.1:9",  # never called here
        action_server_url="",
        database_url=f"sqlite:///{tmp_path / 'desk.db'}",
    )
    return await aiohttp_client(init_app(config, always_open(policy), timers=False))


async def login(client):
    response = await client.post("/api/agent/login", json={"username": "demo", "password": "demo"})
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def a_chat(desk, tracker, texts):
    store = desk.app[DESK].store
    conversation = await store.create_conversation(f"c{len(texts)}", "hash")
    said = []
    for sender, text in texts:
        message = await store.add_message(conversation.id, sender, text)
        said.append(message)
        if sender == "visitor":
            intent = "nlu_fallback" if "zqx" in text else "greet"
            tracker_event(
                tracker,
                conversation.id,
                text,
                intent,
                0.25 if "zqx" in text else 0.95,
                message.created_at + timedelta(milliseconds=300),
            )
    return conversation, said


async def test_the_review_list_needs_a_supervisor_and_shows_the_conversation(desk, tracker):
    conversation, said = await a_chat(
        desk,
        tracker,
        [
            ("visitor", "你好"),
            ("bot", "您好，请问有什么可以帮您？"),
            ("visitor", "zqx 呜噜"),
            ("bot", "抱歉"),
        ],
    )
    assert (await desk.get("/api/review")).status == 401
    headers = await login(desk)
    # The inbox and labelling are for supervisors; an agent may only flag.
    created = await desk.post(
        "/api/supervisor/agents",
        json={"username": "xiaowang", "password": "xiaowang-pass", "role": "agent"},
        headers=headers,
    )
    assert created.status == 201
    response = await desk.post(
        "/api/agent/login", json={"username": "xiaowang", "password": "xiaowang-pass"}
    )
    agent = {"Authorization": f"Bearer {(await response.json())['token']}"}
    assert (await desk.get("/api/review", headers=agent)).status == 403
    refused = await desk.post(
        "/api/review/label", json={"text": "x", "intent": "greet"}, headers=agent
    )
    assert refused.status == 403
    response = await desk.get("/api/review", headers=headers)
    assert response.status == 200
    body = await response.json()
    [item] = body["items"]
    assert (item["text"], item["count"], item["predicted"]) == ("zqx 呜噜", 1, "insult")
    assert item["reasons"] == ["fallback"] and item["conversation_ids"] == [conversation.id]
    [occurrence] = item["occurrences"]
    assert occurrence["seq"] == said[2].seq
    context = occurrence["context"]
    assert [m["text"] for m in context] == [
        "你好",
        "您好，请问有什么可以帮您？",
        "zqx 呜噜",
        "抱歉",
    ]
    assert [m["this"] for m in context] == [False, False, True, False]
    assert (await (await desk.get("/api/review?reason=corrected", headers=headers)).json())[
        "items"
    ] == []
    for bad in ("reason=nope", "since=yesterday"):
        refused = await desk.get(f"/api/review?{bad}", headers=headers)
        assert refused.status == 422 and "message" in await refused.json()


async def test_an_agent_flags_what_the_bot_got_wrong(desk, tracker):
    conversation, said = await a_chat(desk, tracker, [("visitor", "你好"), ("bot", "您好")])
    headers = await login(desk)
    url = f"/api/agent/conversations/{conversation.id}/messages/{said[0].seq}/correction"
    assert (await desk.post(url, json={"intent": "complain"})).status == 401
    response = await desk.post(url, json={"intent": "complain"}, headers=headers)
    assert response.status == 200, await response.text()
    assert await response.json() == {
        "conversation_id": conversation.id,
        "seq": said[0].seq,
        "text": "你好",
        "intent": "complain",
        "agent": "demo",
    }
    listed = await (await desk.get("/api/review?reason=corrected", headers=headers)).json()
    [item] = listed["items"]
    assert item["intended"] == ["complain"] and item["predicted"] == "greet"
    assert item["reasons"] == ["corrected"]

    bot = f"/api/agent/conversations/{conversation.id}/messages/{said[1].seq}/correction"
    cases = [
        (bot, {"intent": "complain"}, 422),
        (url, {"intent": "no_such_intent"}, 422),
        (url, {}, 422),
        (url, {"intent": 5}, 422),
        (url.replace(f"/{said[0].seq}/", "/99/"), {"intent": "complain"}, 404),
        (url.replace(f"/{said[0].seq}/", "/abc/"), {"intent": "complain"}, 422),
        (url.replace(conversation.id, "nope"), {"intent": "complain"}, 404),
    ]
    for path, body, status in cases:
        response = await desk.post(path, json=body, headers=headers)
        assert response.status == status, (path, body, await response.text())
        assert "message" in await response.json()
    faq = await desk.post(url, json={"intent": "faq/invoice"}, headers=headers)
    assert faq.status == 200


async def test_labelling_from_the_page_writes_the_training_data(desk, home):
    headers = await login(desk)
    intents = await (await desk.get("/api/review/intents", headers=headers)).json()
    assert {"greet", "query_order", "faq/invoice"} <= set(intents["intents"])
    before = (home / "data/nlu/out_of_scope.yml").read_text("utf-8")
    response = await desk.post(
        "/api/review/label",
        json={"text": "zqx 呜噜呜噜", "intent": "out_of_scope"},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    written = await response.json()
    assert written["file"] == "data/nlu/out_of_scope.yml" and written["line"] > 1
    after = (home / "data/nlu/out_of_scope.yml").read_text("utf-8")
    assert after != before and "    - zqx 呜噜呜噜\n" in after
    again = await desk.post(
        "/api/review/label",
        json={"text": "ZQX 呜噜呜噜！", "intent": "out_of_scope"},
        headers=headers,
    )
    assert again.status == 409 and "duplicate" in (await again.json())["message"]
    held = await desk.post(
        "/api/review/label", json={"text": "您好您好", "intent": "greet"}, headers=headers
    )
    assert held.status == 409 and "held out" in (await held.json())["message"]
    for body in ({"text": "x"}, {"text": "", "intent": "greet"}, {"text": "好", "intent": "nope"}):
        refused = await desk.post("/api/review/label", json=body, headers=headers)
        assert refused.status in (409, 422)
    assert (
        await desk.post("/api/review/label", json={"text": "x", "intent": "greet"})
    ).status == 401


async def test_the_page_is_served_with_the_sites_headers(desk):
    response = await desk.get("/review")
    assert response.status == 200
    assert "识别复盘" in await response.text()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("review.js", "review.css", "review-flag.js"):
        assert (await desk.get(f"/static/{asset}")).status == 200

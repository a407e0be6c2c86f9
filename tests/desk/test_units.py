"""The desk's units one by one, on a real SQLite store: what an agent logs in with, what
the desk says (and how a mode changes), the call-back dialogue, the idle timers."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import aiohttp
import pytest

from kefu.desk.accounts import AgentAccounts
from kefu.desk.callback import CallbackDialogue
from kefu.desk.config import DeskConfig
from kefu.desk.hub import Hub
from kefu.desk.rasa_client import RasaClient
from kefu.desk.speaker import NotAllowed, Speaker
from kefu.desk.timers import IdleTimers
from kefu.store.conversations import open_conversation_store, utcnow
from tests.conftest import always_open, never_open
from tests.desk.test_hub import Page, until
from tests.processes import free_port


@pytest.fixture
async def store(tmp_path):
    s = open_conversation_store(f"sqlite:///{tmp_path / 'desk.db'}")
    yield s
    await s.close()


@pytest.fixture
async def speaker(store, policy):
    """Rasa is a closed port here: the tracker updates fail politely and are logged."""
    async with aiohttp.ClientSession() as session:
        rasa = RasaClient(session, f"http://127.0.0.1:{free_port()}", "t", 2.0)
        speaker = Speaker(always_open(policy), store, Hub(), rasa)
        yield speaker
        await speaker.hub.close()


async def test_accounts_log_in_with_the_right_password_only(store):
    config = DeskConfig(agents=(("alice", "correct horse"),))
    accounts = AgentAccounts(config, store)
    await accounts.ensure()
    await accounts.ensure()  # idempotent: the same account, not a second one
    assert [a.username for a in await store.agents()] == ["alice"]
    assert await accounts.login("alice", "wrong") is None
    assert await accounts.login("bob", "correct horse") is None
    token, expires = await accounts.login("alice", "correct horse")
    assert expires > utcnow() and await accounts.agent_for(token) == "alice"
    assert await accounts.agent_for("") is None and await accounts.agent_for("forged") is None


async def test_the_speaker_says_policy_phrases_live_and_changes_modes_by_transition(
    store, speaker, policy
):
    conversation = await store.create_conversation("c1", "h")
    page = Page()
    speaker.hub.subscribe(page, "c1")
    said = await speaker.say(conversation, "idle_prompt")
    assert said.text == policy.phrases["idle_prompt"].text and said.seq == 1
    # A phrase missing its value falls back to the safe phrase, never a template.
    missing = speaker.render(conversation, "callback_booked")
    assert missing == policy.phrases["safe_fallback"].text
    await speaker.set_mode(conversation, ("bot",), status="queued", reason="customer_request")
    assert conversation.status == "queued"
    with pytest.raises(NotAllowed):
        await speaker.set_mode(conversation, ("bot",), status="closed")  # not bot any more
    await until(lambda: [e["type"] for e in page.received] == ["message", "mode"])
    await speaker.tell_rasa(conversation, [{"event": "bot", "text": "x"}])  # logged, no raise


async def test_the_call_back_dialogue_takes_a_phone_then_a_time_then_acknowledges(
    store, speaker, policy
):
    dialogue = CallbackDialogue(speaker.policy, speaker)
    assert dialogue.ask_phone_scene(utcnow()) == "callback_ask_phone"
    closed = CallbackDialogue(never_open(policy), speaker)
    assert closed.ask_phone_scene(utcnow()) == "callback_ask_phone_after_hours"
    conversation = await store.create_conversation("c2", "h")
    [invalid] = await dialogue.answer(conversation, "我的电话是123")
    assert invalid.text == policy.phrases["callback_phone_invalid"].text
    [ask_time] = await dialogue.answer(conversation, "138-0013-8000")
    assert ask_time.text == policy.phrases["callback_ask_time"].text
    assert (await dialogue.ask_again(conversation)).text == ask_time.text
    [booked] = await dialogue.answer(conversation, "明天上午")
    assert "138****8000" in booked.text and "明天上午" in booked.text
    assert await dialogue.ask_again(conversation) is None  # nothing left to ask
    [ack] = await dialogue.answer(conversation, "对了，是白色那款")
    assert "138****8000" in ack.text
    assert await dialogue.answer(conversation, "还有一件事") == []  # one ack per interval


async def test_idle_timers_prompt_in_other_words_then_close_quietly_after_thanks(store, speaker):
    policy = dataclasses.replace(
        speaker.policy, service=dataclasses.replace(speaker.policy.service, idle_prompts=2)
    )
    timers = IdleTimers(policy, store, speaker)
    conversation = await store.create_conversation("c3", "h")
    await timers.arm(conversation)
    assert await timers.tick() == 0  # not due yet
    said = []
    for _ in range(3):
        await store.update("c3", idle_deadline=utcnow() - timedelta(seconds=1))
        await timers.tick()
        said = [m.text for m in await store.messages("c3")]
    assert len(said) == 3 and len(set(said)) == 3  # prompt, another prompt, the close
    assert (await store.get("c3")).status == "closed"
    thanked = await store.create_conversation("c4", "h")
    await timers.arm(thanked, closing=True)
    await store.update("c4", idle_deadline=utcnow() - timedelta(seconds=1))
    await timers.tick()
    assert await store.messages("c4") == []  # closed without a word after a goodbye
    assert (await store.get("c4")).status == "closed"
    # WeChat: no "还在线吗" (each message counts against the platform's quota), a quiet close
    wechat = await store.create_conversation("c5", "h", channel="wechat", channel_user="o***1")
    await timers.arm(wechat)
    await store.update("c5", idle_deadline=utcnow() - timedelta(seconds=1))
    await timers.tick()
    assert await store.messages("c5") == []
    assert (await store.get("c5")).status == "closed"

"""The WeChat Official Account channel, end to end: the fake WeChat calls the desk's
callback URL (plaintext and safe mode), the real Rasa answers, and what the desk sends
later goes through the fake customer-service API, which checks every call."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from kefu.desk.keys import CHANNELS, DESK
from tests.fakes.wechat import WeChatAes, event_message, sha1_sorted, text_message

pytestmark = pytest.mark.slow
ACCOUNT = "gh_kefu_test"


async def call(client, caller, xml, safe=True):
    query, body = caller.callback(xml, safe)
    response = await client.post(
        "/channels/wechat", params=query, data=body.encode(), headers={"Content-Type": "text/xml"}
    )
    return response.status, await response.text()


async def counts(client):
    """(conversations, messages) in the desk's store."""
    db = client.server.app[DESK].store.db
    conversations = (await db.fetch("SELECT COUNT(*) AS n FROM conversations"))[0]["n"]
    messages = (await db.fetch("SELECT COUNT(*) AS n FROM messages"))[0]["n"]
    return int(conversations), int(messages)


async def transcript(client, openid):
    app = client.server.app
    cid = await app[CHANNELS].store.conversation_of("wechat", openid)
    return cid, [(m.sender, m.text) for m in await app[DESK].store.messages(cid)]


async def bot_texts(client, caller, wechat_api, openid, status_body, safe=True):
    """What the user got for one callback: the passive reply, or (slow bot) the API's."""
    status, body = status_body
    assert status == 200, body
    if body != "success":
        return [caller.read_reply(body, safe)["Content"]]
    hub = client.server.app[CHANNELS]
    await until(lambda: all(t.done() for t in hub._tasks))  # sent through the API instead
    return wechat_api.texts_to(openid)


async def until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_url_check_echoes_echostr_and_refuses_a_forged_signature(make_wechat_desk, caller):
    desk = await make_wechat_desk()
    query = caller.url_check("echo-8c1f")
    response = await desk.get("/channels/wechat", params=query)
    assert response.status == 200 and await response.text() == "echo-8c1f"
    for forged in ({**query, "signature": "0" * 40}, {**query, "nonce": "1"}, {}):
        response = await desk.get("/channels/wechat", params=forged)
        assert response.status == 403
        assert "echo" not in await response.text()


@pytest.mark.parametrize("safe", [True, False], ids=["safe-mode", "plaintext"])
async def test_subscribe_and_chat_with_the_bot(make_wechat_desk, caller, wechat_api, safe):
    desk = await make_wechat_desk(safe=safe, deadline=4.5)
    openid = f"oKefu_{'safe' if safe else 'plain'}_user_0001"
    greeting = await bot_texts(
        desk,
        caller,
        wechat_api,
        openid,
        await call(desk, caller, event_message(openid, ACCOUNT, "subscribe"), safe),
        safe,
    )
    assert any("请问有什么可以帮您" in t for t in greeting)
    reply = await call(
        desk, caller, text_message(openid, ACCOUNT, "帮我查一下订单2023112500123456", 1001), safe
    )
    if reply[1] != "success":
        fields = caller.read_reply(reply[1], safe)
        assert (fields["ToUserName"], fields["FromUserName"]) == (openid, ACCOUNT)
        assert fields["MsgType"] == "text"
    answers = await bot_texts(desk, caller, wechat_api, openid, reply, safe)
    assert any("顺丰速运" in t for t in answers)
    _, lines = await transcript(desk, openid)
    assert ("visitor", "帮我查一下订单2023112500123456") in lines
    assert wechat_api.bad_calls == []


async def test_a_slow_bot_answers_success_then_through_the_api(
    make_wechat_desk, caller, wechat_api
):
    # No deadline at all: the bot's answer needs a round trip to Rasa, which cannot come
    # back within one turn of the event loop (50 ms was not enough on a warm, quiet machine).
    desk = await make_wechat_desk(deadline=0)
    openid = "oKefu_slow_bot_user_0002"
    started = time.monotonic()
    status, body = await call(desk, caller, text_message(openid, ACCOUNT, "你好", 2001))
    # WeChat waits 5 s for an answer.
    assert (status, body) == (200, "success") and time.monotonic() - started < 4.5
    hub = desk.server.app[CHANNELS]
    # The turn and its sending run after the answer: wait for the bot's words to be stored
    # and sent (on a busy machine the turn may not have started when the answer came).
    deadline = time.monotonic() + 60
    while True:
        _, lines = await transcript(desk, openid)
        said = [text for sender, text in lines if sender == "bot"]
        sent = wechat_api.texts_to(openid)
        if said and len(sent) >= len(said) and all(t.done() for t in hub._tasks):
            break
        assert time.monotonic() < deadline, f"bot said {said}, the API got {sent}"
        await asyncio.sleep(0.2)
    assert sent == said  # everything, once, in order
    assert wechat_api.token_fetches == 1 and wechat_api.bad_calls == []


async def test_a_retried_msgid_is_answered_once(make_wechat_desk, caller, wechat_api):
    desk = await make_wechat_desk(deadline=4.5)
    openid = "oKefu_retry_user_0003"
    xml = text_message(openid, ACCOUNT, "在吗", 3001)
    # WeChat retries a callback it had no answer to: three copies, two at once.
    first, second = await asyncio.gather(call(desk, caller, xml), call(desk, caller, xml))
    third = await call(desk, caller, xml)
    bodies = [first[1], second[1], third[1]]
    assert all(status == 200 for status, _ in (first, second, third))
    assert sorted(b == "success" for b in bodies).count(False) <= 1
    await asyncio.sleep(1)
    _, lines = await transcript(desk, openid)
    assert [line for line in lines if line[0] == "visitor"] == [("visitor", "在吗")]


async def test_forged_or_malformed_callbacks_store_nothing(make_wechat_desk, caller):
    desk = await make_wechat_desk()
    before = await counts(desk)
    xml = text_message("oKefu_forger_0004", ACCOUNT, "你好", 4001)
    query, body = caller.callback(xml, safe=True)
    cases = [
        ({**query, "signature": "0" * 40}, body, 403),
        ({**query, "msg_signature": "0" * 40}, body, 403),
        ({k: v for k, v in query.items() if k != "msg_signature"}, body, 403),
        (query, body.replace("<Encrypt>", "<Encrypt>AAAA"), 403),  # signed content changed
    ]
    # Sealed for another AppID, correctly signed: refused, not read.
    other = WeChatAes(caller.aes_key, "wxsomeoneelse000").encrypt(xml)
    other_query = {
        **query,
        "msg_signature": sha1_sorted(caller.token, query["timestamp"], query["nonce"], other),
    }
    cases.append((other_query, f"<xml><Encrypt><![CDATA[{other}]]></Encrypt></xml>", 403))
    # Correctly signed, but not a message.
    plain_query, _ = caller.callback(xml, safe=False)
    for garbage in ("", "not xml", "<xml><MsgType>text</MsgType></xml>", "<xml><a></xml>"):
        cases.append((plain_query, garbage, 400))
    bad = "%%%not base64%%%"
    bad_query = {
        **query,
        "msg_signature": sha1_sorted(caller.token, query["timestamp"], query["nonce"], bad),
    }
    cases.append((bad_query, f"<xml><Encrypt><![CDATA[{bad}]]></Encrypt></xml>", 400))
    for params, data, expected in cases:
        response = await desk.post("/channels/wechat", params=params, data=data.encode())
        assert response.status == expected, (params, data, await response.text())
        assert (await response.json())["error"]
    assert await counts(desk) == before


async def test_hand_over_agent_reply_through_the_api_and_the_48_hour_window(
    make_wechat_desk, caller, wechat_api
):
    desk = await make_wechat_desk(deadline=4.5)
    login = await desk.post("/api/agent/login", json={"username": "demo", "password": "demo"})
    agent = {"Authorization": f"Bearer {(await login.json())['token']}"}
    openid = "oKefu_handover_user_0005"
    await call(desk, caller, event_message(openid, ACCOUNT, "subscribe"))
    await bot_texts(
        desk,
        caller,
        wechat_api,
        openid,
        await call(desk, caller, text_message(openid, ACCOUNT, "我要转人工", 5001)),
    )
    cid, _ = await transcript(desk, openid)
    listing = await (await desk.get("/api/agent/conversations", headers=agent)).json()
    [mine] = [c for c in listing if c["conversation_id"] == cid]
    assert mine["status"] == "queued" and mine["channel"] == "wechat"
    assert mine["channel_user"] == "oKef****0005"
    assert openid not in json.dumps(listing, ensure_ascii=False)  # masked everywhere
    base = f"/api/agent/conversations/{cid}"
    assert (await desk.post(base + "/claim", headers=agent)).status == 200
    sent = await desk.post(
        base + "/messages", json={"text": "您好，我是人工客服，很高兴为您服务。"}, headers=agent
    )
    assert sent.status == 200 and (await sent.json())["delivery"] == {"ok": True}
    assert "您好，我是人工客服，很高兴为您服务。" in wechat_api.texts_to(openid)
    assert any("人工客服demo" in t for t in wechat_api.texts_to(openid))  # the joining line

    # The user's next message goes to the agent, not the bot; nothing answers passively.
    status, body = await call(desk, caller, text_message(openid, ACCOUNT, "好的谢谢", 5002))
    assert status == 200
    _, lines = await transcript(desk, openid)
    assert lines[-1] == ("visitor", "好的谢谢")

    # 48 hours later WeChat refuses: the agent is told why, in the reply and the console.
    wechat_api.window_closed.add(openid)
    late = await desk.post(
        base + "/messages", json={"text": "请问还有什么可以帮您？"}, headers=agent
    )
    delivery = (await late.json())["delivery"]
    assert delivery["ok"] is False and delivery["errcode"] == 45015
    assert "48小时" in delivery["message"]
    detail = await (await desk.get(base, headers=agent)).json()
    assert detail["delivery_failures"][-1]["errcode"] == 45015
    assert openid not in json.dumps(detail, ensure_ascii=False)
    assert wechat_api.bad_calls == []


async def test_the_access_token_is_cached_and_renewed_when_expired(
    make_wechat_desk, caller, wechat_api
):
    desk = await make_wechat_desk(deadline=0.05)
    channel = desk.server.app[CHANNELS].channels["wechat"]
    for i in range(3):
        assert (await channel.send_text(f"oKefu_token_{i}", "您好")).ok
    assert wechat_api.token_fetches == 1
    wechat_api.expire_all()  # WeChat now answers 42001 to the cached token
    assert (await channel.send_text("oKefu_token_9", "您好")).ok
    assert wechat_api.token_fetches == 2 and len(wechat_api.sent) == 4
    assert wechat_api.bad_calls == []


async def test_a_retry_on_another_replica_is_answered_once(
    make_wechat_desk, caller, wechat_api, pg_url
):
    """Two desk replicas on one PostgreSQL: WeChat's retry lands on the other one."""
    a = await make_wechat_desk(deadline=4.5, database_url=pg_url)
    b = await make_wechat_desk(deadline=4.5, database_url=pg_url)
    openid = "oKefu_replicas_user_0006"
    xml = text_message(openid, ACCOUNT, "你好", 6001)
    results = await asyncio.gather(call(a, caller, xml), call(b, caller, xml), call(a, caller, xml))
    assert all(status == 200 for status, _ in results)
    await asyncio.sleep(1)
    _, lines = await transcript(a, openid)
    assert [line for line in lines if line[0] == "visitor"] == [("visitor", "你好")]
    cids = {
        await app.server.app[CHANNELS].store.conversation_of("wechat", openid) for app in (a, b)
    }
    assert len(cids) == 1

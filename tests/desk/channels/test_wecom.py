"""WeCom customer service (微信客服) end to end: the fake WeCom calls the desk's callback
with the encrypted kf_msg_or_event, the desk pulls with sync_msg from the cursor in its
store, the real Rasa answers, replies go out with send_msg, and service_state follows
the desk's modes; the fake checks every call."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from kefu.desk.app import init_app
from kefu.desk.channels.settings import WeComSettings
from kefu.desk.config import DeskConfig
from kefu.desk.keys import CHANNELS, DESK
from tests.conftest import always_open
from tests.desk.channels.conftest import AES_KEY
from tests.fakes.wechat import sha1_sorted
from tests.fakes.wecom import FakeWeCom

pytestmark = pytest.mark.slow
CORP, SECRET, TOKEN, KF = (
    "ww0123456789abcdef",
    "wecom-kf-secret-0123",
    "kefuWeComToken",
    "wkKefuTest01",
)


@pytest.fixture
async def wecom(aiohttp_server):
    fake = FakeWeCom(CORP, SECRET, TOKEN, AES_KEY)
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def make_desk(aiohttp_client, stack, tmp_path, policy, wecom):
    async def make(servicer="", database_url=None):
        settings = WeComSettings(
            token=TOKEN,
            corp_id=CORP,
            secret=SECRET,
            aes_key=AES_KEY,
            api_base=wecom.base,
            servicer_userid=servicer,
        )
        config = DeskConfig(
            rasa_url=stack.rasa,
            rasa_token=stack.token,
            action_server_url=stack.actions,
            database_url=database_url or f"sqlite:///{tmp_path / 'desk.db'}",
            wecom=settings,
        )
        return await aiohttp_client(init_app(config, always_open(policy), timers=False))

    return make


async def until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def news(desk, wecom):
    """WeCom's callback for the account, then the desk's pull to its end."""
    query, body = wecom.callback(KF)
    response = await desk.post("/channels/wecom", params=query, data=body.encode())
    assert response.status == 200 and await response.text() == "success"
    hub = desk.server.app[CHANNELS]
    await until(lambda: all(t.done() for t in hub._tasks))


async def visitor_lines(desk, user):
    app = desk.server.app
    cid = await app[CHANNELS].store.conversation_of("wecom", user)
    lines = [(m.sender, m.text) for m in await app[DESK].store.messages(cid)] if cid else []
    return cid, lines


async def test_url_check_decrypts_echostr_and_refuses_forgeries(make_desk, wecom):
    desk = await make_desk()
    query, plain = wecom.url_check()
    response = await desk.get("/channels/wecom", params=query)
    assert response.status == 200 and await response.text() == plain
    for forged in ({**query, "msg_signature": "0" * 40}, {**query, "timestamp": "1"}, {}):
        assert (await desk.get("/channels/wecom", params=forged)).status == 403


async def test_a_customer_chats_with_the_bot(make_desk, wecom):
    desk = await make_desk()
    user = "wmKefuCustomer0001"
    wecom.customer_says(KF, user, "帮我查一下订单2023112500123456")
    await news(desk, wecom)
    texts = wecom.texts_to(user)
    assert any("请问有什么可以帮您" in t for t in texts)  # the greeting first
    assert any("顺丰速运" in t for t in texts)
    assert wecom.states[(KF, user)] == 1  # taken by the assistant (kefu)
    _, lines = await visitor_lines(desk, user)
    assert ("visitor", "帮我查一下订单2023112500123456") in lines
    assert wecom.bad_calls == []


async def test_the_cursor_survives_a_restart_nothing_lost_or_repeated(make_desk, wecom, tmp_path):
    wecom.page_size = 2  # several pages per pull
    first = await make_desk()
    user = "wmKefuCustomer0002"
    for text in ("你好", "在吗", "能开发票吗"):
        wecom.customer_says(KF, user, text)
    await news(first, wecom)
    cid, lines = await visitor_lines(first, user)
    assert [t for s, t in lines if s == "visitor"] == ["你好", "在吗", "能开发票吗"]
    await first.close()  # the desk stops (a restart)

    again = await make_desk()
    wecom.customer_says(KF, user, "谢谢")
    asked = len(wecom.cursors_asked)
    await news(again, wecom)
    assert wecom.cursors_asked[asked] == "c3"  # went on from the stored cursor
    await news(again, wecom)  # the same news twice: nothing new
    _, lines = await visitor_lines(again, user)
    assert [t for s, t in lines if s == "visitor"] == ["你好", "在吗", "能开发票吗", "谢谢"]
    assert wecom.bad_calls == []


async def test_hand_over_to_a_desk_agent_keeps_the_api_session(make_desk, wecom):
    desk = await make_desk()
    login = await desk.post("/api/agent/login", json={"username": "demo", "password": "demo"})
    agent = {"Authorization": f"Bearer {(await login.json())['token']}"}
    user = "wmKefuCustomer0003"
    wecom.customer_says(KF, user, "我要转人工")
    await news(desk, wecom)
    cid, _ = await visitor_lines(desk, user)
    listing = await (await desk.get("/api/agent/conversations", headers=agent)).json()
    [mine] = [c for c in listing if c["conversation_id"] == cid]
    assert (mine["status"], mine["channel"], mine["channel_user"]) == (
        "queued",
        "wecom",
        "wmKe****0003",
    )
    assert user not in json.dumps(listing, ensure_ascii=False)
    base = f"/api/agent/conversations/{cid}"
    assert (await desk.post(base + "/claim", headers=agent)).status == 200
    reply = await desk.post(
        base + "/messages", json={"text": "您好，我来为您处理。"}, headers=agent
    )
    assert (await reply.json())["delivery"] == {"ok": True}
    assert "您好，我来为您处理。" in wecom.texts_to(user)
    # kefu's own agents answer through the API: WeCom keeps the session with the assistant.
    assert wecom.states[(KF, user)] == 1 and wecom.bad_calls == []


async def test_with_a_servicer_the_states_follow_the_desk(make_desk, wecom):
    desk = await make_desk(servicer="zhangsan")
    login = await desk.post("/api/agent/login", json={"username": "demo", "password": "demo"})
    agent = {"Authorization": f"Bearer {(await login.json())['token']}"}
    user = "wmKefuCustomer0004"
    wecom.customer_says(KF, user, "你好")
    await news(desk, wecom)
    assert wecom.states[(KF, user)] == 1
    wecom.customer_says(KF, user, "我要转人工")
    await news(desk, wecom)
    assert wecom.states[(KF, user)] == 2  # queue
    cid, _ = await visitor_lines(desk, user)
    assert (await desk.post(f"/api/agent/conversations/{cid}/claim", headers=agent)).status == 200
    assert wecom.states[(KF, user)] == 3  # person
    # The WeCom member answers in WeCom's client: the desk's transcript has it too.
    wecom.servicer_says(KF, user, "zhangsan", "您好，我是张三，请问有什么可以帮您？")
    await news(desk, wecom)
    _, lines = await visitor_lines(desk, user)
    assert lines[-1] == ("agent", "您好，我是张三，请问有什么可以帮您？")
    assert (await desk.post(f"/api/agent/conversations/{cid}/close", headers=agent)).status == 200
    assert wecom.states[(KF, user)] == 4  # ended
    assert [t[1:] for t in wecom.transitions if t[0] == user] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert wecom.bad_calls == []


async def test_forged_or_malformed_callbacks_store_nothing(make_desk, wecom):
    desk = await make_desk()
    wecom.customer_says(KF, "wmKefuCustomer0005", "你好")
    query, body = wecom.callback(KF)
    bad = "%%%"
    cases = [
        ({**query, "msg_signature": "0" * 40}, body, 403),
        ({**query, "nonce": "1"}, body, 403),
        (query, "not xml", 400),
        (query, "<xml><ToUserName>x</ToUserName></xml>", 400),
        (
            {**query, "msg_signature": sha1_sorted(TOKEN, query["timestamp"], query["nonce"], bad)},
            f"<xml><Encrypt><![CDATA[{bad}]]></Encrypt></xml>",
            400,
        ),
    ]
    for params, data, expected in cases:
        response = await desk.post("/channels/wecom", params=params, data=data.encode())
        assert response.status == expected, (params, data)
    await asyncio.sleep(0.5)
    assert wecom.cursors_asked == []  # nothing pulled
    db = desk.server.app[DESK].store.db
    assert (await db.fetch("SELECT COUNT(*) AS n FROM messages"))[0]["n"] == 0

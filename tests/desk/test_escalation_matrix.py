"""An escalation is caught wherever the visitor is: every form at every requested slot,
the survey, after a finished flow and while a call-back is being arranged.

Generated matrix: each place × each reason code, through the desk and the real Rasa and
action server of `kefu run`, as a visitor would type it. A free-text slot never takes an
escalation as its answer: the conversation is handed over with the right reason.
"""

from __future__ import annotations

import aiohttp
import pytest

from kefu.desk.app import init_app
from kefu.desk.config import DeskConfig
from kefu.desk.keys import DESK
from tests.conftest import always_open, never_open
from tests.desk.test_desk import login, open_chat, say

pytestmark = pytest.mark.slow

ORDER = "2023112500123456"
# How to reach each place, and what Rasa's tracker shows there (form, requested slot).
PLACES = {
    "order_form.order_id": (["帮我查一下订单"], ("order_form", "order_id")),
    "complaint_form.name_answer": (["我要投诉"], ("complaint_form", "name_answer")),
    "complaint_form.complaint_what": (
        ["我要投诉", "王先生"],
        ("complaint_form", "complaint_what"),
    ),
    "complaint_form.complaint_when": (
        ["我要投诉", "王先生", "快递员把我的包裹扔在小区门口就走了"],
        ("complaint_form", "complaint_when"),
    ),
    "complaint_form.order_id": (
        ["我要投诉", "王先生", "快递员把我的包裹扔在小区门口就走了", "昨天下午"],
        ("complaint_form", "order_id"),
    ),
    "complaint_form.complaint_want": (
        ["我要投诉", "王先生", "快递员把我的包裹扔在小区门口就走了", "昨天下午", ORDER],
        ("complaint_form", "complaint_want"),
    ),
    "complaint_form.contact_phone": (
        [
            "我要投诉",
            "王先生",
            "快递员把我的包裹扔在小区门口就走了",
            "昨天下午",
            ORDER,
            "希望快递员道个歉",
        ],
        ("complaint_form", "contact_phone"),
    ),
    "return_form.return_type": (["我要申请售后"], ("return_form", "return_type")),
    "return_form.order_id": (["我要退货"], ("return_form", "order_id")),
    "return_form.return_reason": (["我要退货", "JD20231118001"], ("return_form", "return_reason")),
    "survey_form.satisfaction": (["没有别的问题了，再见"], ("survey_form", "satisfaction")),
    "after_order_lookup": ([f"帮我查一下订单{ORDER}"], (None, None)),
    "after_return_created": (
        ["我要退货", "JD20231118001", "尺码不合适"],
        (None, None),
    ),
}
# What the visitor writes, per reason (anger builds over turns, never one keyword).
LINES = {
    "safety": ["这个充电器充着充着冒烟了，还有一股焦味"],
    "legal_media": ["再不给我解决我就打12315投诉你们"],
    "abuse": ["你们这帮垃圾客服，什么玩意"],
    "compensation": ["我要求你们赔偿我的损失"],
    "supervisor": ["叫你们经理出来跟我说"],
    "customer_request": ["转人工"],
    "anger": [
        "我都问了三遍了！！！",
        "你们到底怎么回事？？？真是忍无可忍！！！",
        "受够了！！！气死我了！！！",
    ],
}


@pytest.fixture
async def desk(aiohttp_client, stack, tmp_path, policy):
    config = DeskConfig(
        rasa_url=stack.rasa,
        rasa_token=stack.token,
        action_server_url=stack.actions,
        database_url=f"sqlite:///{tmp_path / 'desk.db'}",
    )
    return await aiohttp_client(init_app(config, always_open(policy), timers=False))


async def tracker_place(stack, cid):
    url = f"{stack.rasa}/conversations/{cid}/tracker?token={stack.token}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        tracker = await response.json()
    loop = (tracker.get("active_loop") or {}).get("name")
    return loop, (tracker.get("slots") or {}).get("requested_slot") if loop else None


@pytest.mark.parametrize("reason", list(LINES))
@pytest.mark.parametrize("place", list(PLACES))
async def test_escalation_is_caught_at_every_place(desk, stack, place, reason):
    await login(desk)  # an agent online: the hand-over queues
    cid, token, _ = await open_chat(desk)
    path, expected = PLACES[place]
    for line in path:
        assert (await say(desk, cid, token, line))["mode"] == "bot", line
    assert await tracker_place(stack, cid) == expected, "the place was not reached"
    body = None
    for line in LINES[reason]:
        body = await say(desk, cid, token, line)
        if body["mode"] != "bot":
            break
    assert body["mode"] == "queued", [r["text"] for r in body["replies"]]
    conversation = await desk.app[DESK].store.get(cid)
    assert conversation.reason == reason
    # The form did not take the escalation as its answer.
    assert await tracker_place(stack, cid) == (None, None)


@pytest.mark.parametrize("reason", [r for r in LINES if r != "customer_request"])
@pytest.mark.parametrize("stage", ["phone", "time"])
async def test_escalation_while_a_call_back_is_arranged_raises_the_reason(
    aiohttp_client, stack, tmp_path, policy, reason, stage
):
    closed = never_open(policy)
    config = DeskConfig(
        rasa_url=stack.rasa,
        rasa_token=stack.token,
        action_server_url=stack.actions,
        database_url=f"sqlite:///{tmp_path / 'desk.db'}",
    )
    client = await aiohttp_client(init_app(config, closed, timers=False))
    cid, token, _ = await open_chat(client)
    assert (await say(client, cid, token, "转人工"))["mode"] == "callback"
    if stage == "time":
        await say(client, cid, token, "13800138000")
    for line in LINES[reason]:
        body = await say(client, cid, token, line)
        assert body["replies"], "a visitor arranging a call-back is never met with silence"
    conversation = await client.app[DESK].store.get(cid)
    assert conversation.status == "callback" and conversation.reason == reason

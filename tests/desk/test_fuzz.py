"""10,000 generated inputs against the running desk: never a 500, always JSON, and every
accepted message stored exactly once (`KEFU_FUZZ_EXAMPLES` changes the count)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Dict, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("KEFU_FUZZ_EXAMPLES", "10000"))
ALLOWED = {200, 201, 400, 401, 404, 405, 409, 413, 422, 429}

# Text the way strangers send it: any code point (surrogates, controls, zero-width,
# right-to-left, emoji), plus payloads that target SQL, HTML and scripts.
PAYLOADS = st.sampled_from(
    [
        "'; DROP TABLE messages; --",
        '" OR 1=1 --',
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "{{7*7}}",
        "${jndi:ldap://x}",
        "../../etc/passwd",
        "\u202e\u2066\u200b",
        "😀" * 50,
        "\x00\x01\x02",
        "\ud800",
        "好" * 2001,
        " \t\n ",
    ]
)
TEXTS = st.one_of(st.text(max_size=300), PAYLOADS, st.text(min_size=1990, max_size=2010))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
BODIES = st.one_of(
    st.builds(lambda t: json.dumps({"text": t}).encode(), TEXTS),
    st.builds(lambda v: json.dumps({"text": v}).encode(), JSON_VALUES),
    st.builds(lambda v: json.dumps(v).encode(), JSON_VALUES),
    st.binary(max_size=200),
)


def call(url: str, body: bytes, token: str, method: str = "POST") -> Tuple[int, Dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body if method == "POST" else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, json.loads(raw.decode("utf-8"))  # always JSON, or this raises


@pytest.fixture(scope="module")
def chats(stack):
    """A conversation a person has (the bot is silent, Rasa only parses) and a closed one."""

    def opened() -> Dict[str, str]:
        status, body = call(f"{stack.desk}/api/visitor/conversations", b"{}", "")
        assert status == 201
        return {"id": body["conversation_id"], "token": body["token"]}

    _, login = call(
        f"{stack.desk}/api/agent/login", b'{"username": "demo", "password": "demo"}', ""
    )
    agent, closed = opened(), opened()
    for chat in (agent, closed):
        url = f"{stack.desk}/api/visitor/conversations/{chat['id']}/messages"
        assert call(url, '{"text": "转人工"}'.encode(), chat["token"])[0] == 200
        assert (
            call(f"{stack.desk}/api/agent/conversations/{chat['id']}/claim", b"{}", login["token"])[
                0
            ]
            == 200
        )
    assert (
        call(f"{stack.desk}/api/agent/conversations/{closed['id']}/close", b"{}", login["token"])[0]
        == 200
    )
    return {"agent": agent, "closed": closed, "agent_token": login["token"]}


def new_messages(stack, chat) -> list:
    """Messages since the last call (the conversation remembers its last sequence number)."""
    url = f"{stack.desk}/api/visitor/conversations/{chat['id']}/messages?after={chat.get('seq', 0)}"
    _, body = call(url, b"", chat["token"], method="GET")
    if body["messages"]:
        chat["seq"] = body["messages"][-1]["seq"]
    return body["messages"]


@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(
    target=st.sampled_from(
        ["agent", "closed", "unknown", "wrong_token", "agent_api", "login", "open"]
    ),
    body=BODIES,
)
def test_every_input_gets_json_and_no_500_and_nothing_is_lost(stack, chats, target, body):
    chat = chats["agent"] if target in ("agent", "wrong_token", "agent_api") else chats["closed"]
    token = chat["token"]
    url = f"{stack.desk}/api/visitor/conversations/{chat['id']}/messages"
    if target == "unknown":
        url = f"{stack.desk}/api/visitor/conversations/{'x' * 32}/messages"
    elif target == "wrong_token":
        token = chats["closed"]["token"]
    elif target == "agent_api":
        url, token = f"{stack.desk}/api/agent/check", chats["agent_token"]
    elif target in ("login", "open"):
        url = (
            f"{stack.desk}/api/agent/login"
            if target == "login"
            else (f"{stack.desk}/api/visitor/conversations")
        )
        body = body.replace(b'"text"', b'"username"' if target == "login" else b'"timezone"', 1)
    if target == "agent":
        new_messages(stack, chat)
    status, answer = call(url, body, token)
    assert status in ALLOWED, (status, answer)
    assert status < 300 or isinstance(answer.get("error"), str)
    if target == "agent":
        stored = [m for m in new_messages(stack, chat) if m["sender"] == "visitor"]
        assert len(stored) == (1 if status == 200 else 0)  # accepted means stored, once


async def test_short_soak_loses_and_duplicates_nothing(stack):
    """`make soak` runs 200 visitors for 10 minutes; here 20 visitors for 30 seconds."""
    from kefu.tools.soak import soak

    result = await soak(stack.desk, visitors=20, seconds=30, pause_s=0.5)
    assert result.sent > 100 and result.stored == result.sent
    assert (result.lost, result.duplicated, result.reordered, result.silent, result.errors) == (
        0,
        0,
        0,
        0,
        0,
    )

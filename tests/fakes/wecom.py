"""A fake of WeCom's customer-service servers (微信客服) on 127.0.0.1, written from WeCom's
public documentation: access token (/cgi-bin/gettoken), sync_msg with its cursor and the
callback's token, send_msg, service_state get/trans with the documented transitions,
and the encrypted kf_msg_or_event callback it sends to the enterprise's URL. It checks
what kefu sends: the access token on every call, the payloads' shape, the cursor, that
send_msg is used only while the API may send (states 0 and 1), and that state 3 names a
servicer it knows."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from aiohttp import web

from tests.fakes.wechat import WeChatAes, sha1_sorted

ALLOWED = {0: {1, 2, 3}, 1: {2, 3}, 2: {3}, 3: {3, 4}, 4: set()}


@dataclass
class FakeWeCom:
    corp_id: str
    secret: str
    token: str  # the callback's Token
    aes_key: str
    servicers: Set[str] = field(default_factory=lambda: {"zhangsan"})
    messages: List[Dict[str, Any]] = field(default_factory=list)
    states: Dict[Tuple[str, str], int] = field(default_factory=dict)
    access_tokens: Dict[str, float] = field(default_factory=dict)
    event_tokens: Set[str] = field(default_factory=set)
    sent: List[Dict[str, Any]] = field(default_factory=list)
    refused: List[Tuple[int, Dict[str, Any]]] = field(default_factory=list)
    transitions: List[Tuple[str, int, int]] = field(default_factory=list)
    cursors_asked: List[str] = field(default_factory=list)
    bad_calls: List[str] = field(default_factory=list)
    page_size: int = 1000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/kf/sync_msg", self.sync_msg)
        app.router.add_post("/cgi-bin/kf/send_msg", self.send_msg)
        app.router.add_post("/cgi-bin/kf/service_state/get", self.state_get)
        app.router.add_post("/cgi-bin/kf/service_state/trans", self.state_trans)
        return app

    # --- what customers and servicers do --------------------------------------------
    def customer_says(self, kfid: str, user: str, text: str) -> str:
        msgid = "from_msgid_" + secrets.token_hex(8)
        if self.states.get((kfid, user), 4) == 4:
            self.states[(kfid, user)] = 0  # a new session
        self.messages.append(
            {
                "msgid": msgid,
                "open_kfid": kfid,
                "external_userid": user,
                "send_time": int(time.time()),
                "origin": 3,
                "msgtype": "text",
                "text": {"content": text},
            }
        )
        return msgid

    def servicer_says(self, kfid: str, user: str, servicer: str, text: str) -> None:
        self.messages.append(
            {
                "msgid": "servicer_" + secrets.token_hex(8),
                "open_kfid": kfid,
                "external_userid": user,
                "send_time": int(time.time()),
                "origin": 5,
                "servicer_userid": servicer,
                "msgtype": "text",
                "text": {"content": text},
            }
        )

    def callback(self, kfid: str) -> Tuple[Dict[str, str], str]:
        """(query, body) of the kf_msg_or_event callback to the enterprise's URL."""
        event_token = "ENC" + secrets.token_urlsafe(24)
        self.event_tokens.add(event_token)
        inner = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{event_token}]]></Token>"
            f"<OpenKfId><![CDATA[{kfid}]]></OpenKfId></xml>"
        )
        encrypted = WeChatAes(self.aes_key, self.corp_id).encrypt(inner)
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {
            "msg_signature": sha1_sorted(self.token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[1000002]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )
        return query, body

    def url_check(self) -> Tuple[Dict[str, str], str]:
        plain = secrets.token_hex(12)
        echostr = WeChatAes(self.aes_key, self.corp_id).encrypt(plain)
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {
            "msg_signature": sha1_sorted(self.token, timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        return query, plain

    def texts_to(self, user: str) -> List[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == user]

    # --- the API ----------------------------------------------------------------------
    async def gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            self.bad_calls.append("gettoken: corpid")
            return web.json_response({"errcode": 40013, "errmsg": "invalid corpid"})
        if request.query.get("corpsecret") != self.secret:
            self.bad_calls.append("gettoken: corpsecret")
            return web.json_response({"errcode": 40001, "errmsg": "invalid secret"})
        token = secrets.token_urlsafe(48)
        self.access_tokens[token] = time.time() + 7200
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        )

    async def _body(self, request: web.Request) -> Tuple[Optional[Dict[str, Any]], Any]:
        token = request.query.get("access_token", "")
        if token not in self.access_tokens:
            self.bad_calls.append(f"{request.path}: unknown access_token")
            return None, web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if self.access_tokens[token] < time.time():
            return None, web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.bad_calls.append(f"{request.path}: not a JSON object")
            return None, web.json_response({"errcode": 47001, "errmsg": "data format error"})
        return body, None

    async def sync_msg(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request)
        if body is None:
            return refused
        cursor = body.get("cursor") or ""
        self.cursors_asked.append(cursor)
        if body.get("token") and body["token"] not in self.event_tokens:
            self.bad_calls.append("sync_msg: a token no callback gave")
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        if not isinstance(body.get("open_kfid"), str):
            self.bad_calls.append("sync_msg: open_kfid")
            return web.json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        if cursor and not (cursor.startswith("c") and cursor[1:].isdigit()):
            self.bad_calls.append(f"sync_msg: cursor {cursor!r}")
            return web.json_response({"errcode": 95008, "errmsg": "invalid cursor"})
        start = int(cursor[1:]) if cursor else 0
        limit = min(int(body.get("limit") or 1000), 1000, self.page_size)
        mine = [m for m in self.messages if m["open_kfid"] == body["open_kfid"]]
        page = mine[start : start + limit]
        following = start + len(page)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": f"c{following}",
                "has_more": int(following < len(mine)),
                "msg_list": page,
            }
        )

    async def send_msg(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request)
        if body is None:
            return refused
        text = body.get("text")
        if (
            not isinstance(body.get("touser"), str)
            or not isinstance(body.get("open_kfid"), str)
            or body.get("msgtype") != "text"
            or not isinstance(text, dict)
            or not isinstance(text.get("content"), str)
            or not text["content"].strip()
            or len(text["content"].encode()) > 2048
        ):
            self.bad_calls.append(f"send_msg: payload {body!r}")
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        state = self.states.get((body["open_kfid"], body["touser"]), 4)
        if state not in (0, 1):
            self.refused.append((95018, body))
            return web.json_response({"errcode": 95018, "errmsg": "send msg not allowed"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": secrets.token_hex(8)})

    async def state_get(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request)
        if body is None:
            return refused
        key = (body.get("open_kfid"), body.get("external_userid"))
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "service_state": self.states.get(key, 4),  # type: ignore[arg-type]
                "servicer_userid": "",
            }
        )

    async def state_trans(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request)
        if body is None:
            return refused
        key = (body.get("open_kfid"), body.get("external_userid"))
        current, target = self.states.get(key, 4), body.get("service_state")  # type: ignore[arg-type]
        if target not in ALLOWED.get(current, set()):
            self.bad_calls.append(f"service_state {current} -> {target} is not allowed")
            return web.json_response({"errcode": 95016, "errmsg": "invalid state change"})
        if target == 3 and body.get("servicer_userid") not in self.servicers:
            self.bad_calls.append("service_state 3 without a known servicer")
            return web.json_response({"errcode": 95014, "errmsg": "invalid servicer"})
        self.states[key] = target  # type: ignore[index]
        self.transitions.append((str(body.get("external_userid")), current, target))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": secrets.token_hex(6)})

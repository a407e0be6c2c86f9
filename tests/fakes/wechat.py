"""A fake of WeChat's servers on 127.0.0.1, written from WeChat's public documentation
(Official Account: access token, customer-service messages; the callback protocol).

It plays both of WeChat's parts:
- the API kefu calls (`FakeWeChatApi`): GET /cgi-bin/token checks grant_type, appid and
  secret; POST /cgi-bin/message/custom/send checks the access_token on every call (unknown
  40001, expired 42001) and the payload's shape, and refuses a user whose 48-hour window
  has closed (45015);
- the platform that calls kefu's callback URL (`WeChatCaller`): signs the URL check and
  messages, in plaintext and in safe mode (AES-256-CBC with the EncodingAESKey, PKCS#7 to
  32 bytes, the AppID at the end), and reads passive replies, checking their signature.

Its crypto is its own (only the `cryptography` primitives are shared with kefu), so a
mistake in kefu's is not mirrored here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN_LIFETIME_S = 7200


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class WeChatAes:
    """The documented message encryption, written independently of kefu's."""

    def __init__(self, encoding_aes_key: str, receiver_id: str) -> None:
        self.key = base64.b64decode(encoding_aes_key + "=")
        assert len(self.key) == 32
        self.receiver_id = receiver_id.encode()

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, text: str) -> str:
        body = text.encode()
        plain = os.urandom(16) + struct.pack(">I", len(body)) + body + self.receiver_id
        n = 32 - (len(plain) % 32)
        plain += bytes([n] * n)
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, text: str) -> Tuple[str, str]:
        """(message, receiver id)"""
        dec = self._cipher().decryptor()
        plain = dec.update(base64.b64decode(text)) + dec.finalize()
        plain = plain[: -plain[-1]]
        size = struct.unpack(">I", plain[16:20])[0]
        return plain[20 : 20 + size].decode(), plain[20 + size :].decode()


def xml_fields(raw: str) -> Dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(raw)}


def text_message(openid: str, to: str, content: str, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_message(openid: str, to: str, event: str, created: Optional[int] = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
    )


@dataclass
class FakeWeChatApi:
    appid: str
    secret: str
    tokens: Dict[str, float] = field(default_factory=dict)  # access_token -> expires at
    token_fetches: int = 0
    sent: List[Dict[str, Any]] = field(default_factory=list)
    refused: List[Tuple[int, Dict[str, Any]]] = field(default_factory=list)
    window_closed: Set[str] = field(default_factory=set)  # openids silent for 48 h
    bad_calls: List[str] = field(default_factory=list)  # what kefu got wrong

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)
        return app

    def expire_all(self) -> None:
        """Every token issued so far is now expired (the platform answers 42001)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            self.bad_calls.append("token: grant_type")
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.appid:
            self.bad_calls.append("token: appid")
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.secret:
            self.bad_calls.append("token: secret")
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = secrets.token_urlsafe(48)
        self.tokens[token] = time.time() + TOKEN_LIFETIME_S
        self.token_fetches += 1
        return web.json_response({"access_token": token, "expires_in": TOKEN_LIFETIME_S})

    def _check_token(self, request: web.Request) -> Optional[web.Response]:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            self.bad_calls.append("call with an unknown access_token")
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self.tokens[token] < time.time():
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        return None

    async def custom_send(self, request: web.Request) -> web.Response:
        if (refused := self._check_token(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            self.bad_calls.append("custom/send: not JSON")
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        text = body.get("text") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("touser"), str)
            or body.get("msgtype") != "text"
            or not isinstance(text, dict)
            or not isinstance(text.get("content"), str)
            or not text["content"].strip()
        ):
            self.bad_calls.append(f"custom/send: payload {body!r}")
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        if body["touser"] in self.window_closed:
            self.refused.append((45015, body))
            return web.json_response({"errcode": 45015, "errmsg": "response out of time limit"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def texts_to(self, openid: str) -> List[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == openid]


@dataclass
class WeChatCaller:
    """WeChat calling the account's server URL, as it signs and encrypts its callbacks."""

    token: str
    appid: str
    account: str = "gh_kefu_test"  # the Official Account's own id (ToUserName)
    aes_key: str = ""

    def url_check(self, echostr: str = "") -> Dict[str, str]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        return {
            "signature": sha1_sorted(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr or secrets.token_hex(8),
        }

    def callback(self, xml: str, safe: bool) -> Tuple[Dict[str, str], str]:
        """(query, body) of a POST to the server URL."""
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        openid = xml_fields(xml).get("FromUserName", "")
        query = {
            "signature": sha1_sorted(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        if not safe:
            return query, xml
        encrypted = WeChatAes(self.aes_key, self.appid).encrypt(xml)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sha1_sorted(self.token, timestamp, nonce, encrypted)
        body = (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )
        return query, body

    def read_reply(self, body: str, safe: bool) -> Dict[str, str]:
        """A passive reply's fields, after checking its signature and receiver in safe mode."""
        fields = xml_fields(body)
        if not safe:
            return fields
        expected = sha1_sorted(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
        assert fields["MsgSignature"] == expected, "the reply's MsgSignature is wrong"
        message, receiver = WeChatAes(self.aes_key, self.appid).decrypt(fields["Encrypt"])
        assert receiver == self.appid, "the reply is sealed for another AppID"
        return xml_fields(message)


# --- trying the channel by hand (README: WeChat, "Testing locally") ----------------------


def _env(name: str, default: str = "") -> str:
    import os

    return os.environ.get(name, default)


def serve_api(port: int) -> None:
    """The fake API on 127.0.0.1:<port>, printing every message kefu sends through it."""
    api = FakeWeChatApi(_env("KEFU_WECHAT_APPID"), _env("KEFU_WECHAT_APP_SECRET"))
    printers: List[Any] = []

    async def show(app: web.Application) -> None:
        import asyncio

        seen = 0

        async def loop() -> None:
            nonlocal seen
            while True:
                for m in api.sent[seen:]:
                    print(f"custom/send -> {m['touser']}: {m['text']['content']}", flush=True)
                seen = len(api.sent)
                await asyncio.sleep(0.2)

        printers.append(asyncio.create_task(loop()))

    app = api.app()
    app.on_startup.append(show)
    print(f"fake WeChat API on http://127.0.0.1:{port} (appid {api.appid})", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def say(desk: str, openid: str, text: Optional[str], msg_id: int) -> str:
    """One callback to the desk as WeChat sends it (safe mode when KEFU_WECHAT_AES_KEY is
    set); the passive reply's text, or "success"."""
    import urllib.parse
    import urllib.request

    caller = WeChatCaller(
        _env("KEFU_WECHAT_TOKEN"), _env("KEFU_WECHAT_APPID"), aes_key=_env("KEFU_WECHAT_AES_KEY")
    )
    safe = bool(caller.aes_key)
    account = caller.account
    xml = (
        text_message(openid, account, text, msg_id)
        if text is not None
        else event_message(openid, account, "subscribe")
    )
    query, body = caller.callback(xml, safe)
    url = desk.rstrip("/") + "/channels/wechat?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = response.read().decode()
    return answer if answer == "success" else caller.read_reply(answer, safe)["Content"]


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.wechat",
        description="The fake WeChat: its API, and messages to the desk's callback URL. "
        "Reads KEFU_WECHAT_TOKEN, KEFU_WECHAT_APPID, KEFU_WECHAT_APP_SECRET, KEFU_WECHAT_AES_KEY.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="serve the fake API (point KEFU_WECHAT_API_BASE at it)")
    api.add_argument("--port", type=int, default=9100)
    talk = sub.add_parser("say", help="send a text (or --subscribe) to the desk as WeChat does")
    talk.add_argument("text", nargs="?")
    talk.add_argument("--desk", default="http://127.0.0.1:8080")
    talk.add_argument("--openid", default="oLocalTestUser0001")
    talk.add_argument("--subscribe", action="store_true")
    talk.add_argument("--msg-id", type=int, default=int(time.time() * 1000))
    args = parser.parse_args(argv)
    if args.command == "api":
        serve_api(args.port)
        return 0
    if not args.subscribe and not args.text:
        parser.error("say: a text, or --subscribe")
    started = time.monotonic()
    reply = say(args.desk, args.openid, None if args.subscribe else args.text, args.msg_id)
    print(f"{reply}\n({time.monotonic() - started:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

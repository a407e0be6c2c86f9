"""WeChat Official Account (公众号) customer service, as WeChat documents its callbacks.

GET /channels/wechat: the URL check (`signature` over token, timestamp and nonce; the
`echostr` echoed). POST /channels/wechat: a message, in plaintext or, with
`encrypt_type=aes`, in safe mode (`msg_signature`, AES with the EncodingAESKey). Text
messages and the subscribe event go into the desk. WeChat waits 5 seconds for the
answer: when the bot answers within the deadline the reply is passive (the response
itself); otherwise the response is `success` and the reply goes through the
customer-service API (/cgi-bin/message/custom/send), like everything the desk says later
(an agent's replies, a queue position). WeChat retries a callback it got no answer to:
a MsgId seen before (on any replica) is answered with `success` and nothing else.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Dict, Optional, Tuple

import aiohttp
from aiohttp import web

from kefu.desk.channels.api import ApiClient, PlatformError
from kefu.desk.channels.base import Channel, ChannelHub, Delivery
from kefu.desk.channels.callbacks import configured, not_configured, url_check
from kefu.desk.channels.crypto import (
    CryptoError,
    MessageCrypto,
    SignatureError,
    check_signature,
)
from kefu.desk.channels.messages import MalformedMessage, build_xml, parse_xml
from kefu.desk.channels.settings import WeChatSettings
from kefu.desk.inputs import error

logger = logging.getLogger(__name__)
SUCCESS = "success"  # WeChat's "received, nothing to reply passively"
# What a message that is not text stands for in the transcript (the bot answers it too).
PLACEHOLDERS = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "shortvideo": "[小视频]",
    "location": "[位置]",
    "link": "[链接]",
    "file": "[文件]",
}
# The customer-service API's refusals, as the agent reads them.
REFUSALS = {
    45015: "用户超过48小时没有给公众号发消息，微信不再允许回复（45015）。"
    "请等用户再次来信后再回复。",
    45047: "用户未回复前最多可连续发送5条客服消息（45047）。请等用户回复后再发送。",
    40003: "这位用户已取消关注或不属于本公众号（40003），消息无法送达。",
    43004: "用户已取消关注公众号（43004），消息无法送达。",
}


class WeChatChannel(Channel):
    name = "wechat"

    def __init__(
        self, hub: ChannelHub, settings: WeChatSettings, session: aiohttp.ClientSession
    ) -> None:
        super().__init__(hub)
        self.settings = settings
        self.crypto = (
            MessageCrypto(settings.token, settings.aes_key, settings.appid)
            if settings.aes_key
            else None
        )
        self.api = ApiClient(
            session,
            hub.store,
            self.name,
            settings.api_base,
            self._fetch_token,
            settings.api_timeout_s,
        )

    async def _fetch_token(self, api: ApiClient) -> Tuple[str, int]:
        body = await api.request(
            "GET",
            "/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self.settings.appid,
                "secret": self.settings.app_secret,
            },
        )
        if not body.get("access_token"):
            raise PlatformError(f"/cgi-bin/token: {body.get('errcode')} {body.get('errmsg')}")
        return str(body["access_token"]), int(body.get("expires_in") or 7200)

    async def send_text(self, external_id: str, text: str) -> Delivery:
        try:
            body = await self.api.call(
                "/cgi-bin/message/custom/send",
                {"touser": external_id, "msgtype": "text", "text": {"content": text}},
            )
        except PlatformError as e:
            return Delivery(False, -1, f"无法连接微信服务器，消息未送达：{e}")
        code = int(body.get("errcode") or 0)
        if code == 0:
            return Delivery(True)
        detail = REFUSALS.get(code) or f"微信拒绝了这条消息（{code}：{body.get('errmsg', '')}）。"
        return Delivery(False, code, detail)

    # --- the callback -----------------------------------------------------------------
    def verify_url(self, query: Dict[str, str]) -> str:
        """The echostr to echo, after checking the signature (SignatureError if forged)."""
        s = self.settings
        echostr = query.get("echostr", "")
        if query.get("msg_signature") and self.crypto is not None:
            # The encrypted form of the check (as WeCom does it): decrypt the echostr.
            self.crypto.check(
                query["msg_signature"], query.get("timestamp", ""), query.get("nonce", ""), echostr
            )
            return self.crypto.decrypt(echostr)
        parts = (s.token, query.get("timestamp", ""), query.get("nonce", ""))
        check_signature(query.get("signature", ""), parts)
        return echostr

    def read(self, query: Dict[str, str], raw: bytes) -> Tuple[Dict[str, str], bool]:
        """The message's fields and whether it came encrypted. SignatureError for a
        forged request, MalformedMessage or CryptoError for a body that cannot be read."""
        s = self.settings
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if not encrypted or "signature" in query:
            check_signature(query.get("signature", ""), (s.token, timestamp, nonce))
        outer = parse_xml(raw)
        if not encrypted:
            return outer, False
        if self.crypto is None:
            raise MalformedMessage("safe mode is not configured (KEFU_WECHAT_AES_KEY)")
        if not outer.get("Encrypt"):
            raise MalformedMessage("no <Encrypt> in a safe-mode message")
        self.crypto.check(query.get("msg_signature", ""), timestamp, nonce, outer["Encrypt"])
        return parse_xml(self.crypto.decrypt(outer["Encrypt"])), True

    def reply(self, message: Dict[str, str], text: str, encrypted: bool) -> str:
        """A passive text reply, encrypted and signed in safe mode."""
        plain = build_xml(
            {
                "ToUserName": message["FromUserName"],
                "FromUserName": message.get("ToUserName", ""),
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": text,
            }
        )
        if not encrypted or self.crypto is None:
            return plain
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        sealed = self.crypto.encrypt(plain)
        return build_xml(
            {
                "Encrypt": sealed,
                "MsgSignature": self.crypto.sign(timestamp, nonce, sealed),
                "TimeStamp": int(timestamp),
                "Nonce": nonce,
            }
        )


def inbound(message: Dict[str, str]) -> Tuple[Optional[str], Optional[str], bool]:
    """(text for the desk, de-duplication key, whether the desk hears it at all)."""
    kind = message.get("MsgType", "")
    user, created = message.get("FromUserName", ""), message.get("CreateTime", "")
    if kind == "event":
        event = message.get("Event", "").lower()
        # Events carry no MsgId: WeChat's advice is FromUserName + CreateTime.
        key = f"event:{user}:{created}:{event}"
        return None, key, event == "subscribe"
    key = message.get("MsgId") or f"{user}:{created}:{kind}"
    if kind == "text":
        return message.get("Content", ""), key, True
    if kind == "voice" and message.get("Recognition"):
        return message["Recognition"], key, True
    return PLACEHOLDERS.get(kind, "[消息]"), key, True


OFF = "未配置微信公众号渠道（KEFU_WECHAT_TOKEN）。"
callback_get = url_check("wechat", WeChatChannel, OFF)


def _channel(request: web.Request) -> Optional[WeChatChannel]:
    return configured(request, "wechat", WeChatChannel)


def _not_configured() -> web.Response:
    return not_configured(OFF)


async def callback_post(request: web.Request) -> web.StreamResponse:
    channel = _channel(request)
    if channel is None:
        return _not_configured()
    raw = await request.read()
    try:
        message, encrypted = channel.read(dict(request.query), raw)
    except SignatureError:
        return error(403, "bad_signature", "签名校验失败。")
    except CryptoError as e:
        if e.status == 403:
            return error(403, "wrong_account", "消息不属于本公众号。")
        return error(400, "bad_message", "消息无法解密。")
    except MalformedMessage:
        return error(400, "bad_message", "消息格式不正确。")
    if not message.get("FromUserName") or not message.get("MsgType"):
        return error(400, "bad_message", "消息缺少 FromUserName 或 MsgType。")
    text, key, heard = inbound(message)
    if not heard or key is None:
        return web.Response(text=SUCCESS, content_type="text/plain")
    hub = channel.hub
    if await hub.seen_before(channel.name, key):
        logger.info(
            "wechat: a retry of %s answered once already", message.get("MsgId") or "an event"
        )
        return web.Response(text=SUCCESS, content_type="text/plain")
    turn = hub.receive(channel.name, message["FromUserName"], text, passive=True)
    replies = await turn.settle(channel.settings.reply_deadline_s, hub.push)
    if not replies:  # too slow (sent through the API instead) or nothing to say
        return web.Response(text=SUCCESS, content_type="text/plain")
    body = channel.reply(message, "\n\n".join(m.text for m in replies), encrypted)
    return web.Response(text=body, content_type="application/xml")

"""WeCom customer service (微信客服), as WeCom documents it.

GET /channels/wecom: the URL check (`msg_signature` over token, timestamp, nonce and
the encrypted `echostr`; the decrypted echostr is the answer). POST /channels/wecom: the
encrypted event `kf_msg_or_event` says a customer-service account has news; kefu then
pulls it with /cgi-bin/kf/sync_msg from the cursor kept in the store (moved on only
after a batch is handled, and each msgid handled once, so a restart loses and repeats
nothing), hands the customers' messages to the desk, and sends what the desk says with
/cgi-bin/kf/send_msg. The session's `service_state` follows the desk's modes (see
`STATES`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional, Tuple

import aiohttp
from aiohttp import web

from kefu.desk.channels.api import ApiClient, PlatformError
from kefu.desk.channels.base import Channel, ChannelHub, Delivery
from kefu.desk.channels.callbacks import configured, not_configured, url_check
from kefu.desk.channels.crypto import CryptoError, MessageCrypto, SignatureError
from kefu.desk.channels.messages import MalformedMessage, parse_xml
from kefu.desk.channels.settings import WeComSettings
from kefu.desk.inputs import error
from kefu.store.conversations import Conversation

logger = logging.getLogger(__name__)
# WeCom's session states: 0 new, 1 with the assistant (the API may send), 2 in the
# queue pool, 3 with a WeCom member (servicer), 4 ended. WeCom lets the API send only in
# 0 and 1, so while kefu's own agents answer, the session stays 1 ("bot"); with
# KEFU_WECOM_SERVICER_USERID set, a hand-over goes to WeCom's queue (2) and to that
# member (3), who answers in WeCom's client: those messages come back into the desk.
NEW, ASSISTANT, QUEUE, PERSON, ENDED = 0, 1, 2, 3, 4
STATES = {"bot": ASSISTANT, "queued": QUEUE, "callback": QUEUE, "agent": PERSON, "closed": ENDED}
# The changes WeCom's API allows (its documented state table); others are left to WeCom
# (an assistant's session that the desk closes ends by itself after 48 hours).
ALLOWED = {
    NEW: {ASSISTANT, QUEUE, PERSON},
    ASSISTANT: {QUEUE, PERSON},
    QUEUE: {PERSON},
    PERSON: {PERSON, ENDED},
    ENDED: set(),
}
PLACEHOLDERS = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "file": "[文件]",
    "location": "[位置]",
    "link": "[链接]",
    "business_card": "[名片]",
    "miniprogram": "[小程序]",
}
ORIGIN_CUSTOMER, ORIGIN_SERVICER = 3, 5
REFUSALS = {
    95018: "会话已不在智能助手接待状态，企业微信不允许再由接口发送（95018）。请在企业微信中回复。",
    95001: "发送次数已达上限：用户未回复前最多发送5条（95001）。请等用户回复后再发送。",
    95016: "会话状态不允许这一变更（95016）。",
}


class WeComChannel(Channel):
    name = "wecom"

    def __init__(
        self, hub: ChannelHub, settings: WeComSettings, session: aiohttp.ClientSession
    ) -> None:
        super().__init__(hub)
        self.settings = settings
        self.crypto = MessageCrypto(settings.token, settings.aes_key, settings.corp_id)
        self.api = ApiClient(
            session,
            hub.store,
            self.name,
            settings.api_base,
            self._fetch_token,
            settings.api_timeout_s,
        )
        self._syncing: Dict[str, asyncio.Lock] = {}

    async def _fetch_token(self, api: ApiClient) -> Tuple[str, int]:
        body = await api.request(
            "GET",
            "/cgi-bin/gettoken",
            params={"corpid": self.settings.corp_id, "corpsecret": self.settings.secret},
        )
        if body.get("errcode") or not body.get("access_token"):
            raise PlatformError(f"/cgi-bin/gettoken: {body.get('errcode')} {body.get('errmsg')}")
        return str(body["access_token"]), int(body.get("expires_in") or 7200)

    # --- the callback -----------------------------------------------------------------
    def verify_url(self, query: Dict[str, str]) -> str:
        echostr = query.get("echostr", "")
        self.crypto.check(
            query.get("msg_signature", ""),
            query.get("timestamp", ""),
            query.get("nonce", ""),
            echostr,
        )
        return self.crypto.decrypt(echostr)

    def read(self, query: Dict[str, str], raw: bytes) -> Dict[str, str]:
        outer = parse_xml(raw)
        encrypted = outer.get("Encrypt")
        if not encrypted:
            raise MalformedMessage("no <Encrypt>")
        self.crypto.check(
            query.get("msg_signature", ""),
            query.get("timestamp", ""),
            query.get("nonce", ""),
            encrypted,
        )
        return parse_xml(self.crypto.decrypt(encrypted))

    # --- pulling messages -------------------------------------------------------------
    def sync_soon(self, open_kfid: str, token: str) -> None:
        self.hub.background(self.sync(open_kfid, token))

    async def sync(self, open_kfid: str, token: str = "") -> int:
        """Pulls everything after the stored cursor, batch by batch; returns how many
        customer messages went to the desk. One pull at a time per account here; across
        replicas the cursor moves by compare-and-set and each msgid is handled once."""
        lock = self._syncing.setdefault(open_kfid, asyncio.Lock())
        handled = 0
        async with lock:
            name = f"cursor:{open_kfid}"
            for _ in range(100):  # at most 100 000 messages per callback
                cursor = await self.hub.store.get_value(self.name, name)
                payload: Dict[str, Any] = {
                    "cursor": cursor or "",
                    "limit": 1000,
                    "open_kfid": open_kfid,
                }
                if token:
                    payload["token"] = token
                body = await self.api.call("/cgi-bin/kf/sync_msg", payload)
                if body.get("errcode"):
                    logger.error("wecom sync_msg: %s %s", body.get("errcode"), body.get("errmsg"))
                    break
                for item in body.get("msg_list") or []:
                    handled += await self._handle(item)
                following = str(body.get("next_cursor") or "")
                if following and not await self.hub.store.replace_value(
                    self.name, name, cursor, following
                ):
                    break  # another replica moved the cursor on: it carries on from there
                if not body.get("has_more") or not following:
                    break
        return handled

    async def _handle(self, item: Dict[str, Any]) -> int:
        msgid = str(item.get("msgid") or "")
        user = str(item.get("external_userid") or "")
        kfid = str(item.get("open_kfid") or "")
        if not msgid or not user or (self.settings.open_kfid and kfid != self.settings.open_kfid):
            return 0
        if await self.hub.seen_before(self.name, msgid):
            return 0
        kind, origin = item.get("msgtype"), item.get("origin")
        if kind == "text":
            text = str((item.get("text") or {}).get("content") or "")
        elif kind == "event":
            return 0  # entering the session, a failed send: nothing for the desk
        else:
            text = PLACEHOLDERS.get(str(kind), "[消息]")
        await self.hub.store.set_value(self.name, f"kfid:{user}", kfid)
        if origin == ORIGIN_SERVICER:
            # A WeCom member answered in WeCom's client: into the desk's transcript.
            await self._mirror_servicer(user, text, str(item.get("servicer_userid") or ""))
            return 0
        if origin != ORIGIN_CUSTOMER:
            return 0
        await self._take(kfid, user)
        turn = self.hub.receive(self.name, user, text)
        assert turn.task is not None
        await asyncio.wait({turn.task})  # one customer's messages in order
        return 1

    async def _mirror_servicer(self, user: str, text: str, servicer: str) -> None:
        desk = self.hub.desk
        conversation_id = await self.hub.store.conversation_of(self.name, user)
        conversation = await desk.store.get(conversation_id) if conversation_id else None
        if conversation is None:
            return
        message = await desk.store.add_message(conversation.id, "agent", text)
        await desk.hub.publish(
            conversation.id, {"type": "message", **message.as_dict(), "servicer": servicer}
        )

    # --- session state ---------------------------------------------------------------
    async def _state(self, user: str) -> Optional[int]:
        value = await self.hub.store.get_value(self.name, f"state:{user}")
        return int(value) if value is not None else None

    async def _take(self, kfid: str, user: str) -> None:
        """A customer wrote: kefu's assistant takes a new (or ended) session."""
        known = await self._state(user)
        if known in (ASSISTANT, QUEUE, PERSON):
            return
        body = await self.api.call(
            "/cgi-bin/kf/service_state/get", {"open_kfid": kfid, "external_userid": user}
        )
        state = body.get("service_state")
        if state == NEW:
            await self._trans(kfid, user, ASSISTANT)
        elif isinstance(state, int):
            await self.hub.store.set_value(self.name, f"state:{user}", str(state))

    async def _trans(self, kfid: str, user: str, state: int) -> bool:
        payload: Dict[str, Any] = {
            "open_kfid": kfid,
            "external_userid": user,
            "service_state": state,
        }
        if state == PERSON:
            payload["servicer_userid"] = self.settings.servicer_userid
        body = await self.api.call("/cgi-bin/kf/service_state/trans", payload)
        if body.get("errcode"):
            logger.warning(
                "wecom service_state %s for %s: %s %s",
                state,
                user,
                body.get("errcode"),
                body.get("errmsg"),
            )
            return False
        await self.hub.store.set_value(self.name, f"state:{user}", str(state))
        return True

    async def mode_changed(self, external_id: str, conversation: Conversation) -> None:
        target = STATES.get(conversation.status, ASSISTANT)
        if target in (QUEUE, PERSON) and not self.settings.servicer_userid:
            target = ASSISTANT  # kefu's own agents answer: WeCom must let the API send
        kfid = await self.hub.store.get_value(self.name, f"kfid:{external_id}")
        current = await self._state(external_id)
        if not kfid or current == target:
            return
        if current is not None and target not in ALLOWED.get(current, set()):
            return
        await self._trans(kfid, external_id, target)

    # --- sending ------------------------------------------------------------------------
    async def send_text(self, external_id: str, text: str) -> Delivery:
        kfid = await self.hub.store.get_value(self.name, f"kfid:{external_id}")
        if not kfid:
            return Delivery(False, -1, "不知道这位客户所在的客服账号，消息未发送。")
        try:
            body = await self.api.call(
                "/cgi-bin/kf/send_msg",
                {
                    "touser": external_id,
                    "open_kfid": kfid,
                    "msgtype": "text",
                    "text": {"content": text},
                },
            )
        except PlatformError as e:
            return Delivery(False, -1, f"无法连接企业微信服务器，消息未送达：{e}")
        code = int(body.get("errcode") or 0)
        if code == 0:
            return Delivery(True)
        detail = (
            REFUSALS.get(code) or f"企业微信拒绝了这条消息（{code}：{body.get('errmsg', '')}）。"
        )
        return Delivery(False, code, detail)


OFF = "未配置微信客服渠道（KEFU_WECOM_TOKEN）。"
callback_get = url_check("wecom", WeComChannel, OFF)


def _channel(request: web.Request) -> Optional[WeComChannel]:
    return configured(request, "wecom", WeComChannel)


def _not_configured() -> web.Response:
    return not_configured(OFF)


async def callback_post(request: web.Request) -> web.StreamResponse:
    channel = _channel(request)
    if channel is None:
        return _not_configured()
    try:
        event = channel.read(dict(request.query), await request.read())
    except SignatureError:
        return error(403, "bad_signature", "签名校验失败。")
    except CryptoError as e:
        if e.status == 403:
            return error(403, "wrong_corp", "消息不属于本企业。")
        return error(400, "bad_message", "消息无法解密。")
    except MalformedMessage:
        return error(400, "bad_message", "消息格式不正确。")
    if event.get("Event") == "kf_msg_or_event":
        kfid = event.get("OpenKfId", "")
        if not kfid:
            return error(400, "bad_message", "事件缺少 OpenKfId。")
        # Answered at once; the messages are pulled in the background (sync_msg).
        channel.sync_soon(kfid, event.get("Token", ""))
    return web.Response(text="success", content_type="text/plain")

"""The channels' settings, from environment variables (a channel is on when its token is set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from kefu.desk.channels.crypto import aes_key

WECHAT_API = "https://api.weixin.qq.com"
WECOM_API = "https://qyapi.weixin.qq.com"


class ChannelConfigError(ValueError):
    """A channel setting that cannot work; the desk refuses to start with it."""


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ChannelConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 60:
        raise ChannelConfigError(f"{name} must be between 0 and 60 seconds")
    return value


def _check_aes(name: str, value: str) -> None:
    if value:
        try:
            aes_key(value)
        except ValueError as e:
            raise ChannelConfigError(f"{name}: {e}") from None


@dataclass(frozen=True)
class WeChatSettings:
    """A WeChat Official Account (公众号) in developer mode."""

    token: str
    appid: str
    app_secret: str
    aes_key: str = ""  # the EncodingAESKey: safe mode (encrypted callbacks) when set
    api_base: str = WECHAT_API
    # WeChat gives up on a callback after 5 s: a passive reply only when the bot answers
    # within this; otherwise "success" and the reply through the customer-service API.
    reply_deadline_s: float = 4.0
    api_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Optional["WeChatSettings"]:
        token = env.get("KEFU_WECHAT_TOKEN", "")
        if not token:
            return None
        appid, secret = env.get("KEFU_WECHAT_APPID", ""), env.get("KEFU_WECHAT_APP_SECRET", "")
        if not appid or not secret:
            raise ChannelConfigError(
                "KEFU_WECHAT_TOKEN is set: set KEFU_WECHAT_APPID and KEFU_WECHAT_APP_SECRET too"
            )
        aes = env.get("KEFU_WECHAT_AES_KEY", "")
        _check_aes("KEFU_WECHAT_AES_KEY", aes)
        return cls(
            token=token,
            appid=appid,
            app_secret=secret,
            aes_key=aes,
            api_base=(env.get("KEFU_WECHAT_API_BASE") or WECHAT_API).rstrip("/"),
            reply_deadline_s=_seconds(env, "KEFU_WECHAT_REPLY_DEADLINE_S", cls.reply_deadline_s),
        )


@dataclass(frozen=True)
class WeComSettings:
    """WeCom customer service (微信客服) through a WeCom self-built app's callback."""

    token: str
    corp_id: str
    secret: str
    aes_key: str  # WeCom's callbacks are always encrypted
    api_base: str = WECOM_API
    open_kfid: str = ""  # only this customer-service account ("" = every one)
    # The WeCom member shown as the servicer while a desk agent has the chat (service
    # state 3 needs one); empty: the session stays with the API ("智能助手") meanwhile.
    servicer_userid: str = ""
    api_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Optional["WeComSettings"]:
        token = env.get("KEFU_WECOM_TOKEN", "")
        if not token:
            return None
        corp, secret = env.get("KEFU_WECOM_CORP_ID", ""), env.get("KEFU_WECOM_SECRET", "")
        aes = env.get("KEFU_WECOM_AES_KEY", "")
        if not corp or not secret or not aes:
            raise ChannelConfigError(
                "KEFU_WECOM_TOKEN is set: set KEFU_WECOM_CORP_ID, KEFU_WECOM_SECRET and "
                "KEFU_WECOM_AES_KEY too"
            )
        _check_aes("KEFU_WECOM_AES_KEY", aes)
        return cls(
            token=token,
            corp_id=corp,
            secret=secret,
            aes_key=aes,
            api_base=(env.get("KEFU_WECOM_API_BASE") or WECOM_API).rstrip("/"),
            open_kfid=env.get("KEFU_WECOM_OPEN_KFID", ""),
            servicer_userid=env.get("KEFU_WECOM_SERVICER_USERID", ""),
        )

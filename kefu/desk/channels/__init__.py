"""The channels visitors write from besides the desk's own page: the website widget,
WeChat Official Accounts, WeCom customer service (one module each, one interface in base)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from kefu.desk.channels.base import CHANNELS, Channel, ChannelHub, Delivery, mask_user_id
from kefu.store.channels import ChannelStore

if TYPE_CHECKING:
    from kefu.desk.service import Desk

__all__ = ["CHANNELS", "Channel", "ChannelHub", "Delivery", "build_channels", "mask_user_id"]


def build_channels(desk: "Desk", store: ChannelStore, session: aiohttp.ClientSession) -> ChannelHub:
    """The configured channels, wired to the desk (its Speaker sends through them)."""
    from kefu.desk.channels.wechat import WeChatChannel
    from kefu.desk.channels.wecom import WeComChannel

    hub = ChannelHub(desk, store)
    if desk.config.wechat is not None:
        hub.add(WeChatChannel(hub, desk.config.wechat, session))
    if desk.config.wecom is not None:
        hub.add(WeComChannel(hub, desk.config.wecom, session))
    desk.speaker.outbound = hub
    return hub

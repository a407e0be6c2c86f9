"""Typed application state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from kefu.desk.config import DeskConfig
from kefu.desk.inputs import RateLimiter

if TYPE_CHECKING:
    from kefu.desk.channels import ChannelHub
    from kefu.desk.readiness import Readiness
    from kefu.desk.service import Desk

CONFIG = web.AppKey("config", DeskConfig)
DESK: web.AppKey[Desk] = web.AppKey("desk")
LIMITER = web.AppKey("limiter", RateLimiter)
CHANNELS: web.AppKey[ChannelHub] = web.AppKey("channels")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")

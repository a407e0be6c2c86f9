"""A desk with the WeChat channel on, against the real Rasa of `kefu run`, and the fake
WeChat servers on 127.0.0.1."""

from __future__ import annotations

import base64

import pytest

from kefu.desk.app import init_app
from kefu.desk.channels.settings import WeChatSettings
from kefu.desk.config import DeskConfig
from tests.conftest import always_open
from tests.fakes.wechat import FakeWeChatApi, WeChatCaller

APPID = "wx1234567890abcdef"
SECRET = "kefu-test-app-secret-0123456789ab"
TOKEN = "kefuWeChatToken2024"
AES_KEY = base64.b64encode(bytes(range(7, 39))).decode().rstrip("=")
assert len(AES_KEY) == 43


@pytest.fixture
async def wechat_api(aiohttp_server):
    api = FakeWeChatApi(APPID, SECRET)
    server = await aiohttp_server(api.app())
    api.base = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    return api


@pytest.fixture
def caller():
    return WeChatCaller(TOKEN, APPID, aes_key=AES_KEY)


@pytest.fixture
def wechat_settings(wechat_api):
    def make(safe=True, deadline=4.0):
        return WeChatSettings(
            token=TOKEN,
            appid=APPID,
            app_secret=SECRET,
            aes_key=AES_KEY if safe else "",
            api_base=wechat_api.base,
            reply_deadline_s=deadline,
        )

    return make


@pytest.fixture
def make_wechat_desk(aiohttp_client, stack, tmp_path, policy, wechat_settings):
    async def make(safe=True, deadline=4.0, database_url=None, **settings):
        config = DeskConfig(
            rasa_url=stack.rasa,
            rasa_token=stack.token,
            action_server_url=stack.actions,
            database_url=database_url or f"sqlite:///{tmp_path / 'desk.db'}",
            wechat=wechat_settings(safe, deadline),
            **settings,
        )
        return await aiohttp_client(init_app(config, always_open(policy), timers=False))

    return make

"""Agent accounts: the configured agents, logins, and who a console token belongs to."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Optional, Tuple

from kefu.desk.auth import hash_password, new_token, token_hash, verify_password
from kefu.desk.config import DeskConfig
from kefu.store.conversations import ConversationStore, utcnow


class AgentAccounts:
    def __init__(self, config: DeskConfig, store: ConversationStore) -> None:
        self.config, self.store = config, store

    async def ensure(self) -> None:
        for username, password in self.config.agents:
            agent = await self.store.agent(username)
            if agent is None or not await _verify(password, agent.password_hash):
                hashed = await asyncio.to_thread(hash_password, password)
                await self.store.upsert_agent(username, hashed, username)

    async def login(self, username: str, password: str) -> Optional[Tuple[str, datetime]]:
        agent = await self.store.agent(username)
        if agent is None or not await _verify(password, agent.password_hash):
            return None
        token = new_token()
        expires = utcnow() + timedelta(seconds=self.config.agent_token_ttl_s)
        await self.store.add_session(token_hash(token), username, expires)
        await self.store.touch_agent(username)
        return token, expires

    async def agent_for(self, token: str) -> Optional[str]:
        if not token:
            return None
        username = await self.store.session_user(token_hash(token))
        if username:
            await self.store.touch_agent(username)
        return username


async def _verify(password: str, stored: str) -> bool:
    """scrypt takes tens of milliseconds of CPU: off the event loop."""
    return await asyncio.to_thread(verify_password, password, stored)

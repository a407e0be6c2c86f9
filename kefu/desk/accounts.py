"""Agent accounts: the configured agents, accounts a supervisor creates, logins, roles,
statuses, and whose token a console holds.

Roles are `agent` and `supervisor`; the embedded default `demo` / `demo` and the names in
KEFU_SUPERVISORS are supervisors. Passwords are scrypt hashes in the desk's store, the
configured ones (KEFU_AGENTS) and the created ones alike. A status is what the agent set
(`online`, `away`, `offline`); an agent whose console has not been seen for the policy's
`agent_online_seconds` counts as offline, whatever was set.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import List, Optional, Tuple

from kefu.desk.auth import hash_password, new_token, token_hash, verify_password
from kefu.desk.config import DeskConfig
from kefu.store.conversations import (
    AGENT_STATUSES,
    DEFAULT_CAPACITY,
    ROLES,
    Agent,
    ConversationStore,
    utcnow,
)

MIN_PASSWORD = 8
MAX_CAPACITY = 50

__all__ = ["AGENT_STATUSES", "ROLES", "AccountError", "AgentAccounts"]


class AccountError(ValueError):
    """A request to create an account that cannot be honoured: `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AgentAccounts:
    def __init__(self, config: DeskConfig, store: ConversationStore) -> None:
        self.config, self.store = config, store

    def configured_role(self, username: str) -> str:
        return "supervisor" if username in self.config.supervisors else "agent"

    async def ensure(self) -> None:
        for username, password in self.config.agents:
            agent = await self.store.agent(username)
            role = self.configured_role(username)
            if (
                agent is None
                or agent.role != role
                or not await _verify(password, agent.password_hash)
            ):
                hashed = await asyncio.to_thread(hash_password, password)
                await self.store.upsert_agent(username, hashed, username, role)

    async def create(
        self, username: object, password: object, role: object, capacity: object
    ) -> Agent:
        """A new account, as a supervisor asks: AccountError says what is wrong with it."""
        if (
            not isinstance(username, str)
            or not (1 <= len(username) <= 64)
            or any(c.isspace() or c in ":,/\\" or not c.isprintable() for c in username)
        ):
            raise AccountError("invalid_username", "用户名应为1到64个字符，不含空格、冒号和逗号。")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 256:
            raise AccountError("weak_password", f"密码至少需要{MIN_PASSWORD}个字符。")
        if role not in ROLES:
            raise AccountError("invalid_role", "角色应为 agent 或 supervisor。")
        if capacity is None:
            capacity = DEFAULT_CAPACITY
        if (
            not isinstance(capacity, int)
            or isinstance(capacity, bool)
            or not 1 <= capacity <= MAX_CAPACITY
        ):
            raise AccountError("invalid_capacity", f"接待上限应为1到{MAX_CAPACITY}的整数。")
        hashed = await asyncio.to_thread(hash_password, password)
        if not await self.store.create_agent(username, hashed, str(role), capacity):
            raise AccountError("exists", "这个用户名已经存在。")
        created = await self.store.agent(username)
        assert created is not None
        return created

    async def login(self, username: str, password: str) -> Optional[Tuple[str, datetime]]:
        agent = await self.store.agent(username)
        if agent is None or not await _verify(password, agent.password_hash):
            return None
        token = new_token()
        expires = utcnow() + timedelta(seconds=self.config.agent_token_ttl_s)
        await self.store.add_session(token_hash(token), username, expires)
        await self.store.touch_agent(username)
        await self.store.present(username)
        return token, expires

    async def logout(self, username: str, token: str) -> None:
        await self.store.set_agent_status(username, "offline")
        await self.store.end_sessions(username, token_hash(token))

    async def agent_for(self, token: str) -> Optional[str]:
        account = await self.account_for(token)
        return account.username if account else None

    async def account_for(self, token: str) -> Optional[Agent]:
        """The account a console's token belongs to; seeing it keeps the agent online."""
        if not token:
            return None
        username = await self.store.session_user(token_hash(token))
        if not username:
            return None
        await self.store.touch_agent(username)
        return await self.store.agent(username)

    async def set_status(self, username: str, status: str) -> None:
        await self.store.set_agent_status(username, status)

    async def roster(self, online_since: datetime) -> List[dict]:
        return await self.store.roster(online_since)


async def _verify(password: str, stored: str) -> bool:
    """scrypt takes tens of milliseconds of CPU: off the event loop."""
    return await asyncio.to_thread(verify_password, password, stored)

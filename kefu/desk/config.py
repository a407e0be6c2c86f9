"""The desk's settings, from environment variables with safe embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from kefu.desk.channels.settings import ChannelConfigError, WeChatSettings, WeComSettings
from kefu.desk.proxies import parse_networks

DEFAULT_AGENT = ("demo", "demo")


class ConfigError(RuntimeError):
    """A setting that cannot be used; the desk refuses to start with it."""


@dataclass(frozen=True)
class DeskConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    rasa_timeout_s: float = 10.0  # well under Rasa's own 300 s action timeout
    action_server_url: str = "http://127.0.0.1:5055"  # probed: "" turns the probe off
    database_url: Optional[str] = None  # None: the embedded SQLite file
    production: bool = False
    agents: Tuple[Tuple[str, str], ...] = (DEFAULT_AGENT,)
    # Which of the configured agents are supervisors (the embedded demo account is one).
    supervisors: Tuple[str, ...] = (DEFAULT_AGENT[0],)
    allowed_origins: Tuple[str, ...] = ()  # empty: same host as the request
    max_text: int = 2000
    max_body: int = 64 * 1024
    rate_per_minute: int = 30
    agent_token_ttl_s: int = 8 * 3600
    tick_s: float = 5.0  # how often idle timers and retention are checked
    # Proxies whose X-Forwarded-For is believed (addresses or CIDRs); nobody else's.
    trusted_proxies: Tuple[str, ...] = ()
    wechat: Optional[WeChatSettings] = None  # KEFU_WECHAT_*: the Official Account channel
    wecom: Optional[WeComSettings] = None  # KEFU_WECOM_*: WeCom customer service

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "DeskConfig":
        def num(name: str, default: float) -> float:
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, not {raw!r}") from None

        agents = cls.agents
        if env.get("KEFU_AGENTS"):  # "alice:secret,bob:other"
            pairs = [item.split(":", 1) for item in env["KEFU_AGENTS"].split(",") if item]
            if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
                raise ConfigError("KEFU_AGENTS must look like 'name:password,name2:password2'")
            agents = tuple((p[0], p[1]) for p in pairs)
        supervisors = cls.supervisors
        if env.get("KEFU_SUPERVISORS") is not None:  # "alice,bob"
            supervisors = tuple(n.strip() for n in env["KEFU_SUPERVISORS"].split(",") if n.strip())
        origins = tuple(
            o.strip() for o in env.get("KEFU_ALLOWED_ORIGINS", "").split(",") if o.strip()
        )
        config = cls(
            host=env.get("KEFU_DESK_HOST", cls.host),
            port=int(num("KEFU_DESK_PORT", cls.port)),
            rasa_url=env.get("KEFU_RASA_URL", cls.rasa_url).rstrip("/"),
            rasa_token=env.get("KEFU_RASA_TOKEN", ""),
            rasa_timeout_s=num("KEFU_RASA_TIMEOUT_S", cls.rasa_timeout_s),
            action_server_url=env.get("KEFU_ACTION_SERVER_URL", cls.action_server_url),
            database_url=env.get("KEFU_DATABASE_URL") or None,
            production=env.get("KEFU_ENV", "").lower() == "production",
            agents=agents,
            supervisors=supervisors,
            allowed_origins=origins,
            max_text=int(num("KEFU_MAX_TEXT", cls.max_text)),
            rate_per_minute=int(num("KEFU_RATE_PER_MINUTE", cls.rate_per_minute)),
            agent_token_ttl_s=int(num("KEFU_AGENT_TOKEN_TTL_S", cls.agent_token_ttl_s)),
            tick_s=num("KEFU_DESK_TICK_S", cls.tick_s),
            trusted_proxies=tuple(
                p.strip() for p in env.get("KEFU_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            **cls._channels(env),
        )
        config.check()
        return config

    @staticmethod
    def _channels(env: Mapping[str, str]) -> dict:
        try:
            return {"wechat": WeChatSettings.from_env(env), "wecom": WeComSettings.from_env(env)}
        except ChannelConfigError as e:
            raise ConfigError(str(e)) from None

    def check(self) -> None:
        """Production refuses the embedded defaults that are unsafe on the internet."""
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as e:
            raise ConfigError(f"KEFU_TRUSTED_PROXIES: {e}") from None
        if not self.production:
            return
        if any(password == DEFAULT_AGENT[1] or len(password) < 8 for _, password in self.agents):
            raise ConfigError(
                "KEFU_ENV=production: an agent still has the default or a short password; "
                "set KEFU_AGENTS=name:password (8+ characters)"
            )
        if not self.rasa_token:
            raise ConfigError("KEFU_ENV=production: set KEFU_RASA_TOKEN (Rasa's HTTP API token)")
        if not self.database_url:
            raise ConfigError("KEFU_ENV=production: set KEFU_DATABASE_URL (PostgreSQL)")

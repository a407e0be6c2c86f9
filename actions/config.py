"""The action server's settings: one place, read on first use, never at import."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import yaml

from kefu.domain.policy import load_policy
from kefu.domain.policy.loader import Policy
from kefu.paths import ROOT

_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class OrderBackend:
    url: str
    timeout_s: float  # per lookup; well under Rasa's action timeout
    estimate_s: int  # what the visitor is told to expect before a lookup


def _expand(value: Any) -> Any:
    """${VAR} as Rasa expands it in endpoints.yml, failing clearly when unset."""
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise RuntimeError(f"endpoints.yml uses ${{{name}}} but it is not set")
        return os.environ[name]

    return _ENV_VAR.sub(sub, value)


def _endpoints() -> Dict[str, Any]:
    path = Path(os.environ.get("KEFU_ENDPOINTS") or ROOT / "endpoints.yml")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@functools.lru_cache(maxsize=1)
def policy() -> Policy:
    """policy/*.yml, read once per action-server process on first use."""
    return load_policy()


@functools.lru_cache(maxsize=None)
def order_backend() -> OrderBackend:
    section = _endpoints().get("order_backend") or {}
    url = os.environ.get("KEFU_ORDER_BACKEND_URL") or _expand(section.get("url"))
    if not url:
        raise RuntimeError("endpoints.yml has no order_backend.url")
    return OrderBackend(
        url=str(url).rstrip("/"),
        timeout_s=float(os.environ.get("KEFU_ORDER_TIMEOUT_S") or section.get("timeout", 5)),
        estimate_s=int(section.get("estimate", 60)),
    )

"""The evaluations' Rasa calls: a trained model's NLU parses, and Rasa's NLU data reader.

The tools (kefu.tools) score what comes back; only this module talks to Rasa for them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence


@functools.lru_cache(maxsize=2)
def load_agent(model: str) -> Any:
    """A trained model's Agent, loaded once per process (a load takes tens of seconds)."""
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not one debug line per parsed message
    return Agent.load(model)


class ModelParser:
    """A trained model loaded once; parses texts as `rasa run` would (NLU only)."""

    def __init__(self, model: Path) -> None:
        self.agent = load_agent(str(Path(model).resolve()))

    async def parse_all(self, texts: Iterable[str]) -> List[Dict[str, Any]]:
        return [await self.agent.parse_message(text) for text in texts]

    def parse_many(self, texts: Sequence[str]) -> List[Dict[str, Any]]:
        """For synchronous callers (outside any running event loop)."""
        return asyncio.run(self.parse_all(texts))


def nlu_examples(path: Path) -> List[Dict[str, Any]]:
    """The intent examples of a Rasa NLU file: text, intent and entity spans."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        {
            "text": message.get("text"),
            "intent": message.get("intent"),
            "entities": list(message.get("entities") or []),
        }
        for message in data.intent_examples
    ]


def risk_scanner_defaults() -> Dict[str, Any]:
    from kefu.rasa.nlu.risk_scanner import RiskScanner

    return dict(RiskScanner.get_default_config())

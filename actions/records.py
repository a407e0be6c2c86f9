"""The action server's handle on the records store (created on first use)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Dict, Optional

from kefu.store import Record, RecordStore, StoreError, open_store

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def store() -> RecordStore:
    """One store per action-server process; KEFU_DATABASE_URL chooses it."""
    return open_store()


async def keep(kind: str, conversation_id: str, data: Dict[str, Any]) -> Optional[Record]:
    """Store a record; on a store outage log the loss and carry on with the visitor."""
    try:
        return await store().add(kind, conversation_id, data)
    except StoreError as e:
        logger.error("%s not stored: %s", kind, e)
        return None


async def append_to(number: str, key: str, value: Any) -> bool:
    """Add to a stored record (an addition to a complaint ticket); False on an outage."""
    try:
        return await store().append(number, key, value)
    except StoreError as e:
        logger.error("%s not updated: %s", number, e)
        return False

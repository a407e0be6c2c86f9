"""The action server's handle on the records store (created on first use)."""

from __future__ import annotations

import functools

from kefu.store import RecordStore, open_store


@functools.lru_cache(maxsize=1)
def store() -> RecordStore:
    """One store per action-server process; KEFU_DATABASE_URL chooses it."""
    return open_store()

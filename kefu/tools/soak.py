"""`make soak`: concurrent visitors through the desk for a while, then a check against the
store that nothing was lost, duplicated or reordered.

Each visitor opens a chat, has one conversation from the flows (kefu/tools/visitors.py,
a pause between turns), and opens the next chat, until time is up. A 429 is retried
after a pause, as a page would; any other failure is counted. Afterwards every
conversation's stored visitor messages must equal exactly what its visitor sent, in
order. Bounded in count and time, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import aiohttp

from kefu.paths import ROOT
from kefu.tools.visitors import conversation, think_time

TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass
class Visitor:
    conversation_id: str = ""
    token: str = ""
    sent: List[str] = field(default_factory=list)
    replies: int = 0
    silent_in_bot_mode: int = 0
    errors: List[str] = field(default_factory=list)


@dataclass
class SoakResult:
    visitors: int
    seconds: float
    chats: int = 0
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    silent: int = 0
    retried_429: int = 0
    errors: int = 0
    modes: Dict[str, int] = field(default_factory=dict)  # each conversation's last mode
    replies_by_mode: Dict[str, int] = field(default_factory=dict)  # per accepted message

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.silent or self.errors)


async def one_visitor(
    session: aiohttp.ClientSession,
    desk: str,
    deadline: float,
    rng: random.Random,
    result: SoakResult,
    pause_s: float,
) -> List[Visitor]:
    """One seat: chat after chat until the deadline."""
    chats: List[Visitor] = []
    while time.monotonic() < deadline:
        chats.append(await one_chat(session, desk, deadline, rng, result, pause_s))
        if not chats[-1].conversation_id:
            break
    return chats


async def one_chat(
    session: aiohttp.ClientSession,
    desk: str,
    deadline: float,
    rng: random.Random,
    result: SoakResult,
    pause_s: float,
) -> Visitor:
    v = Visitor()
    try:
        async with session.post(f"{desk}/api/visitor/conversations", json={}, timeout=TIMEOUT) as r:
            body = await r.json()
            v.conversation_id, v.token = body["conversation_id"], body["token"]
    except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as e:
        v.errors.append(f"open: {e!r}")
        return v
    url = f"{desk}/api/visitor/conversations/{v.conversation_id}/messages"
    headers = {"Authorization": f"Bearer {v.token}"}
    for text in conversation(rng):
        if time.monotonic() >= deadline:
            break
        while True:
            try:
                async with session.post(
                    url, json={"text": text}, headers=headers, timeout=TIMEOUT
                ) as r:
                    status, body = r.status, await r.json()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                v.errors.append(f"send: {e!r}")
                v.sent.append(text)  # it may have been stored: the store check decides
                break
            if status == 429:
                result.retried_429 += 1
                await asyncio.sleep(2)
                continue
            if status != 200:
                v.errors.append(f"send: HTTP {status} {body}")
            else:
                v.sent.append(text)
                result.accepted += 1
                v.replies += len(body.get("replies") or [])
                mode = str(body.get("mode"))
                result.replies_by_mode[mode] = result.replies_by_mode.get(mode, 0) + 1
                if body.get("mode") == "bot" and not body.get("replies"):
                    v.silent_in_bot_mode += 1
            break
        await asyncio.sleep(think_time(rng, pause_s))
    return v


async def check(session: aiohttp.ClientSession, desk: str, v: Visitor, result: SoakResult) -> None:
    url = f"{desk}/api/visitor/conversations/{v.conversation_id}/messages?after=0"
    async with session.get(
        url, headers={"Authorization": f"Bearer {v.token}"}, timeout=TIMEOUT
    ) as r:
        body = await r.json()
    stored = [m["text"] for m in body["messages"] if m["sender"] == "visitor"]
    seqs = [m["seq"] for m in body["messages"]]
    result.modes[body["mode"]] = result.modes.get(body["mode"], 0) + 1
    result.stored += len(stored)
    if seqs != list(range(1, len(seqs) + 1)):
        result.reordered += 1
    if stored != v.sent:
        # Count the difference by multiset, so one error is not counted many times.
        from collections import Counter

        sent, kept = Counter(v.sent), Counter(stored)
        result.lost += sum((sent - kept).values())
        result.duplicated += sum((kept - sent).values())
        if not (sent - kept) and not (kept - sent):
            result.reordered += 1


async def soak(
    desk: str, visitors: int, seconds: float, pause_s: float = 1.0, seed: int = 7
) -> SoakResult:
    result = SoakResult(visitors, seconds)
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=visitors + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds
        crowd = await asyncio.gather(
            *(
                one_visitor(session, desk, deadline, random.Random(rng.random()), result, pause_s)
                for _ in range(visitors)
            )
        )
        for v in (chat for seat in crowd for chat in seat):
            result.chats += 1
            result.sent += len(v.sent)
            result.silent += v.silent_in_bot_mode
            result.errors += len(v.errors)
            if v.conversation_id:
                await check(session, desk, v, result)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kefu.tools.soak")
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument(
        "--pause", type=float, default=5.0, help="mean seconds a visitor takes between turns"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "soak.json")
    args = parser.parse_args(argv)
    from kefu.stack.runner import MODEL, embedded_services

    if not MODEL.exists():
        print("soak: no model, run `make train` first", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "KEFU_RASA_TOKEN": token,
        "KEFU_RATE_PER_MINUTE": "100000",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    services = embedded_services(token)
    for service in services:
        service.quiet = True
        service.start(env)
    try:
        deadline = time.monotonic() + 300
        while not all(s.healthy() for s in services):
            if time.monotonic() > deadline or not all(s.alive() for s in services):
                print("soak: the stack did not start", file=sys.stderr)
                return 1
            time.sleep(1)
        print(
            f"soak: {args.visitors} visitors for {args.seconds:.0f} s through the desk, "
            f"about {args.pause:g} s between turns…",
            flush=True,
        )
        result = asyncio.run(
            soak("http://127.0.0.1:8080", args.visitors, args.seconds, pause_s=args.pause)
        )
    finally:
        for service in reversed(services):
            service.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({**result.__dict__, "ok": result.ok}, indent=2, ensure_ascii=False)
    )
    print(json.dumps({**result.__dict__, "ok": result.ok}, ensure_ascii=False))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

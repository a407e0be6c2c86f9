"""One way for the tests to start a process, wait until it is ready, and stop it; free ports."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_offset(bases: Sequence[int], low: int = 10000, high: int = 24000) -> int:
    """An offset (a multiple of 10) at which every base port is free on loopback. Below
    Linux's ephemeral range (32768 and up), so no outgoing connection holds one; random
    per call, so two stacks of one test run do not pick the same."""
    rng = random.SystemRandom()
    for _ in range(200):
        offset = rng.randrange(low, high, 10)
        if not any(port_open(base + offset) for base in bases):
            return offset
    raise RuntimeError(f"no free offset for ports {list(bases)}")


@dataclasses.dataclass
class Started:
    what: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Sends `sig` to the process group and waits; kills it if it does not end."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"{self.what} did not stop within {timeout:.0f}s") from None
            except ProcessLookupError:
                pass
        return int(self.process.returncode)


def printed(marker: str) -> Callable[[Started], bool]:
    return lambda started: marker in started.output()


def answers(url: str) -> Callable[[Started], bool]:
    def ready(_: Started) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    return ready


def start(
    what: str,
    argv: List[str],
    log: Path,
    ready: Callable[[Started], bool],
    env: Optional[Dict[str, str]] = None,
    timeout: float = 300,
) -> Started:
    """Starts `argv` in its own process group (so stopping it stops its children), output
    to `log`, and waits until `ready` says so; fails the test with the log's tail if the
    process exits or the time runs out."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Started(what, process, log)
    deadline = time.monotonic() + timeout
    while not ready(started):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            pytest.fail(f"{what} did not start:\n" + started.output()[-3000:])
        time.sleep(0.5)
    return started

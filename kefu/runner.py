"""Start the whole embedded stack, print its URLs, stop it all on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "kefu.tar.gz"
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Service:
    name: str
    argv: List[str]
    health_url: str
    public_url: str
    env: Dict[str, str] = field(default_factory=dict)
    quiet: bool = False  # discard its output (benchmarks)
    process: subprocess.Popen | None = None

    def start(self, base_env: Dict[str, str]) -> None:
        # Own process group, so stopping it also stops anything it forked.
        output = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**base_env, **self.env},
            start_new_session=True,
            stdout=output,
            stderr=output,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def embedded_services(rasa_token: str) -> List[Service]:
    bin_dir = Path(sys.executable).parent
    return [
        Service(
            name="demo orders",
            argv=[
                sys.executable,
                "-m",
                "kefu.orders.demo_backend",
                "--host",
                HOST,
                "--port",
                "8090",
            ],
            health_url=f"http://{HOST}:8090/healthz",
            public_url=f"http://{HOST}:8090",
        ),
        Service(
            name="action server",
            argv=[sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", "5055"],
            health_url=f"http://{HOST}:5055/health",
            public_url=f"http://{HOST}:5055",
            env={"SANIC_HOST": HOST},
        ),
        Service(
            name="rasa",
            argv=[
                str(bin_dir / "rasa"),
                "run",
                "--model",
                str(MODEL),
                "--interface",
                HOST,
                "--port",
                "5005",
                "--enable-api",
                "--auth-token",
                rasa_token,
                "--credentials",
                "credentials.yml",
                "--endpoints",
                "endpoints.yml",
            ],
            health_url=f"http://{HOST}:5005/",
            public_url=f"http://{HOST}:5005",
        ),
        Service(
            name="desk",
            argv=[sys.executable, "-m", "kefu.desk", "--host", HOST, "--port", "8080"],
            health_url=f"http://{HOST}:8080/healthz",
            public_url=f"http://{HOST}:8080/  (agents: /agent, demo / demo)",
        ),
    ]


def run(services: List[Service] | None = None) -> int:
    if not MODEL.exists():
        print(f"No model at {MODEL.relative_to(ROOT)}: run `make train` first.", file=sys.stderr)
        return 2
    (ROOT / "var").mkdir(exist_ok=True)  # the embedded SQLite stores live here
    token = os.environ.get("KEFU_RASA_TOKEN") or secrets.token_urlsafe(24)
    env = {**os.environ, "KEFU_RASA_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    services = services if services is not None else embedded_services(token)

    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in services:
            service.start(env)
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = list(services)
        while pending and not stopping:
            for service in list(pending):
                if not service.alive():
                    print(f"kefu: {service.name} exited during start-up.", file=sys.stderr)
                    return 1
                if service.healthy():
                    pending.remove(service)
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                print(f"kefu: {names} not ready after {START_TIMEOUT_S:.0f}s.", file=sys.stderr)
                return 1
            time.sleep(0.5)
        if not stopping:
            print("\nkefu is running:")
            for service in services:
                print(f"  {service.name:<15} {service.public_url}")
            print("Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            for service in services:
                if not service.alive():
                    print(f"kefu: {service.name} stopped unexpectedly.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        for service in reversed(services):
            service.stop()
        print("kefu: stopped.", flush=True)

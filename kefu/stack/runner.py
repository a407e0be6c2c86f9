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
from typing import Dict, List

from kefu.paths import ROOT

MODEL = ROOT / "models" / "kefu.tar.gz"
HOST = "127.0.0.1"
START_TIMEOUT_S = 300.0  # a loaded 2-core box; KEFU_START_TIMEOUT_S overrides
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


def orders_service(port: int = 8090, name: str = "demo orders") -> Service:
    return Service(
        name=name,
        argv=[
            sys.executable,
            "-m",
            "kefu.stack.demo_orders",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        health_url=f"http://{HOST}:{port}/healthz",
        public_url=f"http://{HOST}:{port}",
    )


def actions_service(
    port: int = 5055, name: str = "action server", env: Dict[str, str] | None = None
) -> Service:
    return Service(
        name=name,
        argv=[sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)],
        health_url=f"http://{HOST}:{port}/health",
        public_url=f"http://{HOST}:{port}",
        env={**(env or {}), "SANIC_HOST": HOST},
    )


# One TensorFlow thread per pool: the models are small, a message is one short graph
# call, and on two cores TF's thread hand-offs cost more than they bring (saturation
# run: 44-46 msg/s with TF's defaults, 48-55 with one thread). Set either to override.
TF_THREADS = ("TF_INTER_OP_PARALLELISM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS")


def tf_thread_env() -> Dict[str, str]:
    return {name: os.environ.get(name, "1") for name in TF_THREADS}


def rasa_service(
    rasa_token: str,
    port: int = 5005,
    name: str = "rasa",
    endpoints: str = "endpoints.yml",
    env: Dict[str, str] | None = None,
) -> Service:
    return Service(
        name=name,
        # kefu's launcher: Rasa's CLI with the action deadline and the runtime fixes.
        argv=[
            sys.executable,
            "-m",
            "kefu.rasa",
            "run",
            "--model",
            str(MODEL),
            "--interface",
            HOST,
            "--port",
            str(port),
            "--enable-api",
            "--auth-token",
            rasa_token,
            "--credentials",
            "credentials.yml",
            "--endpoints",
            endpoints,
        ],
        health_url=f"http://{HOST}:{port}/",
        public_url=f"http://{HOST}:{port}",
        env={**tf_thread_env(), **(env or {})},
    )


def desk_service(
    port: int = 8080,
    name: str = "desk",
    env: Dict[str, str] | None = None,
    public_url: str | None = None,
) -> Service:
    return Service(
        name=name,
        argv=[sys.executable, "-m", "kefu.desk", "--host", HOST, "--port", str(port)],
        # Ready, not merely alive: Rasa's model loaded, an action server and the store up,
        # so the URLs are printed only when a visitor's message would be answered.
        health_url=f"http://{HOST}:{port}/readyz",
        public_url=public_url or f"http://{HOST}:{port}",
        env=dict(env or {}),
    )


def embedded_endpoints(offset: int) -> str:
    """endpoints.yml, or for shifted ports a copy under var/ with the shifted action and
    order URLs (Rasa's ${VAR} has no default, so the shipped file names the usual ports)."""
    if offset == 0:
        return "endpoints.yml"
    text = (ROOT / "endpoints.yml").read_text(encoding="utf-8")
    for port in (5055, 8090):
        text = text.replace(f"http://{HOST}:{port}", f"http://{HOST}:{port + offset}")
    path = ROOT / "var" / f"endpoints.offset-{offset}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def embedded_services(rasa_token: str, offset: int = 0) -> List[Service]:
    """Rasa 5005, actions 5055, desk 8080, demo orders 8090, shifted by `offset`
    (KEFU_PORT_OFFSET) so a second stack (the tests') can run beside the first."""
    rasa, actions, desk, orders = (port + offset for port in (5005, 5055, 8080, 8090))
    order_env = {"KEFU_ORDER_BACKEND_URL": f"http://{HOST}:{orders}"} if offset else {}
    desk_env = {
        "KEFU_RASA_URL": f"http://{HOST}:{rasa}",
        "KEFU_ACTION_SERVER_URL": f"http://{HOST}:{actions}",
    }
    return [
        orders_service(orders),
        actions_service(actions, env=order_env),
        rasa_service(rasa_token, rasa, endpoints=embedded_endpoints(offset)),
        desk_service(
            desk,
            env=desk_env,
            public_url=f"http://{HOST}:{desk}/  (agents: /agent, demo / demo)",
        ),
    ]


# Scale-out on this machine: the local PostgreSQL and Redis unless told otherwise.
SCALED_DEFAULTS = {
    "KEFU_PG_HOST": "127.0.0.1",
    "KEFU_PG_DB": "test",
    "KEFU_PG_USER": "postgres",
    "KEFU_PG_PASSWORD": "",
    "KEFU_REDIS_HOST": "127.0.0.1",
    "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0",
    # Connections: (Rasa replicas x (pool + overflow)) + desks x KEFU_DB_POOL must stay
    # under PostgreSQL's max_connections (100 by default): 2 x (5 + 5) + 2 x 10 = 40.
    "SQL_POOL_SIZE": "5",
    "SQL_MAX_OVERFLOW": "5",
    "KEFU_DB_POOL": "10",
}
FRONT_PORT = 8080


def scaled_services(rasa_token: str, replicas: int = 2, offset: int = 0) -> List[Service]:
    """2 Rasa servers, 2 action servers and 2 desks, on PostgreSQL and Redis, behind a front.

    Ports: Rasa 5005+i, actions 5055+i, desks 8081+i, front 8080, demo orders 8090, all
    shifted by `offset` (KEFU_PORT_OFFSET) so a second stack can run beside the first.
    """
    env = {k: os.environ.get(k, v) for k, v in SCALED_DEFAULTS.items()}
    pg = (
        f"postgresql://{env['KEFU_PG_USER']}"
        + (f":{env['KEFU_PG_PASSWORD']}" if env["KEFU_PG_PASSWORD"] else "")
        + f"@{env['KEFU_PG_HOST']}:5432/{env['KEFU_PG_DB']}"
    )
    env["KEFU_DATABASE_URL"] = os.environ.get("KEFU_DATABASE_URL", pg)
    orders = 8090 + offset
    env["KEFU_ORDER_BACKEND_URL"] = f"http://{HOST}:{orders}"
    rasa = [5005 + offset + i for i in range(replicas)]
    actions = [5055 + offset + i for i in range(replicas)]
    desk_ports = [FRONT_PORT + offset + 1 + i for i in range(replicas)]
    front = FRONT_PORT + offset
    services = [orders_service(orders)]
    services += [actions_service(port, f"actions-{i + 1}", env) for i, port in enumerate(actions)]
    services += [
        rasa_service(
            rasa_token,
            port,
            f"rasa-{i + 1}",
            "endpoints.scaled.yml",
            {**env, "KEFU_ACTION_URL": f"http://{HOST}:{actions[i]}/webhook"},
        )
        for i, port in enumerate(rasa)
    ]
    desk_env = {
        **env,
        "KEFU_RASA_ENDPOINTS": "endpoints.scaled.yml",  # the review page reads its trackers
        "KEFU_RASA_URL": ",".join(f"http://{HOST}:{p}" for p in rasa),
        "KEFU_ACTION_SERVER_URL": ",".join(f"http://{HOST}:{p}" for p in actions),
        # The front is a proxy on loopback: the desks believe its X-Forwarded-For.
        "KEFU_TRUSTED_PROXIES": os.environ.get("KEFU_TRUSTED_PROXIES") or HOST,
    }
    services += [desk_service(port, f"desk-{i + 1}", desk_env) for i, port in enumerate(desk_ports)]
    services.append(
        Service(
            name="front",
            argv=[
                sys.executable,
                "-m",
                "kefu.stack.front",
                "--host",
                HOST,
                "--port",
                str(front),
                *(f"http://{HOST}:{p}" for p in desk_ports),
            ],
            health_url=f"http://{HOST}:{front}/healthz",
            public_url=f"http://{HOST}:{front}/  (agents: /agent, demo / demo)",
        )
    )
    return services


def run(services: List[Service] | None = None, supervise: bool = False) -> int:
    """Start, wait until healthy, print, then watch. `supervise` restarts a service that
    dies (scale-out: a replica going away must not stop the others)."""
    if not MODEL.exists():
        print(f"No model at {MODEL.relative_to(ROOT)}: run `make train` first.", file=sys.stderr)
        return 2
    (ROOT / "var").mkdir(exist_ok=True)  # the embedded SQLite stores live here
    token = os.environ.get("KEFU_RASA_TOKEN") or secrets.token_urlsafe(24)
    env = {**os.environ, "KEFU_RASA_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    if services is None:
        offset = int(os.environ.get("KEFU_PORT_OFFSET") or 0)
        services = (
            scaled_services(token, offset=offset) if supervise else embedded_services(token, offset)
        )

    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in services:
            service.start(env)
        start_timeout = float(os.environ.get("KEFU_START_TIMEOUT_S") or START_TIMEOUT_S)
        deadline = time.monotonic() + start_timeout
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
                print(f"kefu: {names} not ready after {start_timeout:.0f}s.", file=sys.stderr)
                return 1
            time.sleep(0.5)
        if not stopping:
            print("\nkefu is running:")
            for service in services:
                pid = f"  (pid {service.process.pid})" if supervise and service.process else ""
                print(f"  {service.name:<15} {service.public_url}{pid}")
            print("Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            for service in services:
                if service.alive():
                    continue
                if not supervise:
                    print(f"kefu: {service.name} stopped unexpectedly.", file=sys.stderr)
                    return 1
                service.start(env)
                pid = str(service.process.pid) if service.process else "?"
                print(f"kefu: {service.name} stopped; restarted (pid {pid}).", flush=True)
            time.sleep(0.5)
        return 0
    finally:
        for service in reversed(services):
            service.stop()
        print("kefu: stopped.", flush=True)

"""`kefu doctor [--json]`: what this machine has, and what is wrong, in one place.

Python and Rasa versions, each runtime fix (verified against this Rasa, and installed in a
trial here as kefu's launcher would), the model and its inputs, the policy files, the
ports, the store, PostgreSQL and Redis for the scaled mode, Chromium for the page tests.
Exit status 1 when something `make run` or `make test` needs is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from kefu.paths import MODELS_DIR, POLICY_DIR, ROOT

MODEL = MODELS_DIR / "kefu.tar.gz"
# As the Makefile's MODEL_INPUTS: what `make train` retrains on.
MODEL_INPUT_FILES = (
    "config.yml",
    "domain.yml",
    "policy/faq.yml",
    "policy/shorthand.yml",
    "kefu/domain/script.py",
    "kefu/rasa/escalation_policy.py",
    "kefu/rasa/ted_policy.py",
    "kefu/domain/char_linear.py",
)
MODEL_INPUT_DIRS = ("data", "kefu/rasa/nlu")
PORTS = {
    "rasa": (5005, "/"),
    "actions": (5055, "/health"),
    "desk": (8080, "/healthz"),
    "orders": (8090, "/healthz"),
}
TIMEOUT_S = 3.0


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" (the scaled mode or the page tests) | "fail"
    detail: str


def model_inputs(root: Path = ROOT) -> List[Path]:
    paths = [root / name for name in MODEL_INPUT_FILES]
    for folder in MODEL_INPUT_DIRS:
        paths += [p for p in (root / folder).rglob("*") if p.suffix in (".yml", ".txt", ".py")]
    return [p for p in paths if p.is_file()]


def check_model(model: Path = MODEL, root: Path = ROOT) -> Check:
    if not model.exists():
        return Check("model", "fail", f"{model.relative_to(root)} is missing: run `make train`")
    built = model.stat().st_mtime
    newer = sorted(
        str(p.relative_to(root)) for p in model_inputs(root) if p.stat().st_mtime > built
    )
    if newer:
        more = f" and {len(newer) - 3} more" if len(newer) > 3 else ""
        return Check(
            "model", "fail", "older than " + ", ".join(newer[:3]) + more + ": run `make train`"
        )
    return Check("model", "ok", f"{model.relative_to(root)} is up to date with its inputs")


def check_policy(folder: Path = POLICY_DIR) -> Check:
    from kefu.domain.policy import PolicyError, load_policy

    try:
        policy = load_policy(folder)
    except PolicyError as e:
        return Check("policy", "fail", str(e))
    return Check("policy", "ok", f"{folder.name}/ valid ({len(policy.faq)} FAQ topics)")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def check_ports(offset: int = 0) -> List[Check]:
    out = []
    for name, (base, health) in PORTS.items():
        port = base + offset
        if not port_open(port):
            out.append(Check(f"port {port}", "ok", f"free for {name}"))
        elif _http_ok(f"http://127.0.0.1:{port}{health}"):
            out.append(Check(f"port {port}", "ok", f"{name} is answering (kefu is running)"))
        else:
            out.append(
                Check(
                    f"port {port}",
                    "fail",
                    f"taken by something that is not kefu's {name}: `make run` "
                    "cannot start; stop it or set KEFU_PORT_OFFSET",
                )
            )
    return out


async def _postgres(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=TIMEOUT_S)
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


def check_store(url: Optional[str] = None) -> Check:
    from kefu.store import store_url

    url = url or store_url()
    if url.startswith("sqlite:///"):
        folder = Path(url[len("sqlite:///") :]).parent
        folder = folder if folder.is_absolute() else ROOT / folder
        probe = folder if folder.exists() else folder.parent
        if os.access(probe, os.W_OK):
            return Check("store", "ok", f"SQLite in {folder} (writable)")
        return Check("store", "fail", f"SQLite folder {folder} is not writable")
    try:
        asyncio.run(asyncio.wait_for(_postgres(url), TIMEOUT_S * 2))
    except Exception as e:  # noqa: BLE001 - any failure is the answer here
        return Check("store", "fail", f"PostgreSQL store unreachable: {type(e).__name__}: {e}")
    return Check("store", "ok", "PostgreSQL store answers")


def check_postgres() -> Check:
    host = os.environ.get("KEFU_PG_HOST", "127.0.0.1")
    url = (
        f"postgresql://{os.environ.get('KEFU_PG_USER', 'postgres')}@{host}:5432/"
        + os.environ.get("KEFU_PG_DB", "test")
    )
    try:
        asyncio.run(asyncio.wait_for(_postgres(url), TIMEOUT_S * 2))
    except Exception as e:  # noqa: BLE001
        return Check(
            "postgresql",
            "warn",
            f"{host}:5432 not usable ({type(e).__name__}): "
            "`make run-scaled` and the store tests need it",
        )
    return Check("postgresql", "ok", f"{host}:5432 answers (scaled mode, store tests)")


def check_redis() -> Check:
    host = os.environ.get("KEFU_REDIS_HOST", "127.0.0.1")
    try:
        with socket.create_connection((host, 6379), timeout=TIMEOUT_S) as s:
            s.sendall(b"PING\r\n")
            answer = s.recv(64)
    except OSError as e:
        return Check("redis", "warn", f"{host}:6379 unreachable ({e}): `make run-scaled` needs it")
    if not answer.startswith(b"+PONG"):
        return Check("redis", "warn", f"{host}:6379 answered {answer[:20]!r}, not PONG")
    return Check("redis", "ok", f"{host}:6379 answers PONG (scaled mode)")


def check_chromium() -> Check:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        return Check(
            "chromium",
            "warn",
            "chromium or chromedriver missing: the page tests "
            "need them (`make setup` installs Debian's packages)",
        )
    try:
        version = subprocess.run(
            [browser, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return Check("chromium", "warn", f"{browser} does not run: {e}")
    return Check("chromium", "ok", f"{version} with {driver}")


def runtime_fixes() -> Dict[str, Any]:
    """Each fix verified against this Rasa, and installed in a trial (then undone) when
    KEFU_RUNTIME_FIXES selects it, as kefu's launcher does at start-up."""
    from kefu.rasa import fixes

    try:
        chosen = fixes.selected()
        error = ""
    except fixes.RuntimeFixError as e:
        chosen, error = [], str(e)
    entries = []
    for fix in fixes.FIXES.values():
        problems = fix.problems()
        installed = False
        if fix.name in chosen and not problems:
            try:
                fix.install()
                installed = fix.installed
            except fixes.RuntimeFixError as e:
                problems = [str(e)]
            finally:
                fix.uninstall()
        entries.append(
            {
                "name": fix.name,
                "installed": installed,
                "verified": not problems,
                "selected": fix.name in chosen,
                "summary": fix.summary,
                **({"problems": problems} if problems else {}),
            }
        )
    return {
        "rasa_version": fixes.rasa_version(),
        "supported": fixes.SUPPORTED_RASA,
        "selection": os.environ.get(fixes.ENV, "all"),
        "error": error,
        "fixes": entries,
    }


def diagnose(offset: Optional[int] = None) -> Dict[str, Any]:
    offset = int(os.environ.get("KEFU_PORT_OFFSET") or 0) if offset is None else offset
    python = platform.python_version()
    checks = [
        Check(
            "python",
            "ok" if sys.version_info[:2] == (3, 10) else "fail",
            f"Python {python} at {sys.executable}",
        )
    ]
    try:
        fixes_report = runtime_fixes()
    except ImportError as e:
        fixes_report = {"rasa_version": None, "error": f"Rasa not importable: {e}", "fixes": []}
    rasa_version = fixes_report["rasa_version"]
    checks.append(
        Check(
            "rasa",
            "ok" if rasa_version == "3.6.21" else "fail",
            f"Rasa {rasa_version}" if rasa_version else fixes_report["error"],
        )
    )
    bad = [f for f in fixes_report["fixes"] if f["selected"] and not f["verified"]]
    if fixes_report.get("error") or bad:
        checks.append(
            Check(
                "runtime fixes",
                "fail",
                fixes_report.get("error")
                or "; ".join(p for f in bad for p in f.get("problems", []))
                + " (set KEFU_RUNTIME_FIXES)",
            )
        )
    else:
        n = sum(f["installed"] for f in fixes_report["fixes"])
        checks.append(
            Check(
                "runtime fixes",
                "ok",
                f"{n} of {len(fixes_report['fixes'])} "
                f"verified and installable (KEFU_RUNTIME_FIXES="
                f"{fixes_report.get('selection', 'all')})",
            )
        )
    checks += [
        check_model(),
        check_policy(),
        *check_ports(offset),
        check_store(),
        check_postgres(),
        check_redis(),
        check_chromium(),
    ]
    return {
        "ok": all(c.status != "fail" for c in checks),
        "python": python,
        "rasa_version": rasa_version,
        "runtime_fixes": [
            {
                k: f[k]
                for k in ("name", "installed", "verified", "selected", "summary", "problems")
                if k in f
            }
            for f in fixes_report["fixes"]
        ],
        "checks": [asdict(c) for c in checks],
    }


def main(argv: Sequence[str] = (), as_json: bool = False) -> int:
    report = diagnose()
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for check in report["checks"]:
            print(f"{marks[check['status']]}  {check['name']:<14} {check['detail']}")
        for fix in report["runtime_fixes"]:
            state = "installed" if fix["installed"] else ("off" if not fix["selected"] else "NOT")
            print(f"      fix {fix['name']:<18} verified={fix['verified']!s:<5} {state}")
        print("kefu doctor: " + ("all good" if report["ok"] else "something needs fixing (FAIL)"))
    return 0 if report["ok"] else 1

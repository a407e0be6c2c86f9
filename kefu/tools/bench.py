"""`make bench`: kefu through its desk, kefu's Rasa, and plain Rasa, on the same model.

Two Rasa servers load models/kefu.tar.gz on loopback. One uses kefu's endpoints
(guarded NLG: placeholders, phrasing check, script mirroring) and has the desk in
front of it; the other is plain Rasa with its templated NLG. Simulated visitors send
the same conversations to one path at a time, in alternating phases (desk, plain,
kefu, kefu, plain, desk): two TensorFlow processes served at once on two cores starve
each other unevenly (a control run with two identical servers showed a 3x p50 gap),
while alternation spreads drift over all paths. The ratios are the figures to read.
Also measured: cold training time, model load time, resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import aiohttp

from kefu.paths import ROOT
from kefu.stack.runner import START_TIMEOUT_S, Service, tf_thread_env
from kefu.tools.visitors import conversation, crowd, think_time

MODEL = ROOT / "models" / "kefu.tar.gz"
HOST = "127.0.0.1"
ACTIONS_PORT = 5155
SERVERS = {"kefu": 5105, "plain": 5106}
DESK_PORT = 5180
PATHS = ("desk", "kefu", "plain")  # what a visitor talks to
DESK_DB = ROOT / "var" / "bench-desk.db"  # a fresh store per run, removed afterwards
BENCH_TOKEN = "kefu-bench-token"
REQUEST_TIMEOUT_S = 30

THINK_S = 4.0  # mean pause between a reply and the visitor's next message (±50%)
SATURATION_VISITORS = 50  # closed loop, no pause: what one Rasa process sustains
# Each saturation phase is a fixed window in which every seat starts chat after chat, so
# the rate is a steady state, not diluted by the last few long conversations finishing.
SATURATION_S = 30.0


@dataclass
class Process(Service):
    """A stack service (see kefu.stack.runner) that also reports start-up time and memory."""

    started: float = 0.0
    ready_after: float = 0.0

    def start(self, base_env: Dict[str, str]) -> None:
        self.started = time.monotonic()
        super().start(base_env)

    def rss_mb(self) -> float:
        """Resident memory of the process and its children, in MB."""
        if self.process is None:
            return 0.0
        total = 0
        pids = [self.process.pid]
        while pids:
            pid = pids.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(
                    next(
                        line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")
                    )
                )
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pids += [int(c) for c in children]
            except (OSError, StopIteration, ValueError):
                continue
        return total / 1024


@dataclass
class Run:
    latencies: Dict[str, List[float]] = field(default_factory=lambda: {k: [] for k in PATHS})
    errors: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in PATHS})
    wall: Dict[str, float] = field(default_factory=dict)
    left_bot: int = 0  # desk replies whose mode was not "bot" (they skip Rasa)


class BenchError(RuntimeError):
    """A bench run that cannot go on; printed as one line, never as a traceback."""


def start_timeout_s() -> float:
    # The same budget as `kefu run`: a loaded 2-core box loads a model slowly.
    return float(os.environ.get("KEFU_START_TIMEOUT_S") or START_TIMEOUT_S)


async def wait_ready(session: aiohttp.ClientSession, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise BenchError(f"{process.name} exited during start-up")
        try:
            async with session.get(process.health_url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    process.ready_after = time.monotonic() - process.started
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.25)
    raise BenchError(
        f"{process.name} not ready after {timeout:.0f}s"
        " (a busy machine? KEFU_START_TIMEOUT_S raises the limit)"
    )


async def visitor(
    session: aiohttp.ClientSession,
    run: Run,
    turns: Sequence[str],
    name: str,
    progress,  # type: ignore[no-untyped-def]
    think_s: float = 0.0,
    rng: random.Random | None = None,
    deadline: float | None = None,
) -> None:
    """One visitor's conversation; only the replies to its messages are timed.

    With a think time, visitors also arrive spread over one think time, not all in
    the same millisecond.
    """
    rng = rng or random.Random()
    if think_s:
        await asyncio.sleep(rng.uniform(0, 1.5 * think_s))
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    headers: Dict[str, str] = {}
    if name == "desk":
        # Opening the chat (the greeting) is not timed: the REST paths have no opening.
        try:
            async with session.post(
                f"http://{HOST}:{DESK_PORT}/api/visitor/conversations", json={}, timeout=timeout
            ) as response:
                opened = await response.json()
            url = f"http://{HOST}:{DESK_PORT}/api/visitor/conversations/{opened['conversation_id']}/messages"
            headers = {"Authorization": f"Bearer {opened['token']}"}
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError):
            run.errors[name] += len(turns)
            progress.update(len(turns))
            return
    else:
        url = f"http://{HOST}:{SERVERS[name]}/webhooks/rest/webhook"
    sender = f"bench-{uuid.uuid4().hex}"
    for n, text in enumerate(turns):
        if deadline is not None and time.perf_counter() >= deadline:
            return
        if think_s and n:
            await asyncio.sleep(think_time(rng, think_s))  # reading and typing: not timed
        body = {"text": text} if name == "desk" else {"sender": sender, "message": text}
        start = time.perf_counter()
        try:
            async with session.post(url, json=body, headers=headers, timeout=timeout) as response:
                raw = await response.read()
                ok = response.status == 200
            if ok and name == "desk" and json.loads(raw).get("mode") != "bot":
                run.left_bot += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            ok = False
        if deadline is not None and time.perf_counter() > deadline:
            return  # finished after the window closed: not counted either way
        if ok:
            run.latencies[name].append(time.perf_counter() - start)
        else:
            run.errors[name] += 1
        progress.update(1)


PHASES = ("desk", "plain", "kefu", "kefu", "plain", "desk")
PACED_PHASES = ("desk", "plain", "kefu")


async def load(
    session: aiohttp.ClientSession,
    concurrency: int,
    progress,  # type: ignore[no-untyped-def]
    think_s: float,
    phases: Sequence[str],
) -> Run:
    """Each phase: `concurrency` visitors on one path; the same visitors on every path."""
    run = Run()
    scripts = crowd(concurrency, seed=concurrency)
    for name in phases:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                visitor(session, run, s, name, progress, think_s, random.Random(i))
                for i, s in enumerate(scripts)
            )
        )
        run.wall[name] = run.wall.get(name, 0.0) + time.perf_counter() - start
    return run


async def saturate(
    session: aiohttp.ClientSession,
    concurrency: int,
    seconds: float,
    phases: Sequence[str],
    progress,  # type: ignore[no-untyped-def]
) -> Run:
    """Each phase: `concurrency` seats, no pause, for `seconds`; messages that complete
    inside the window count, and the rate is messages / window."""
    from tqdm import tqdm

    run = Run()
    quiet = tqdm(disable=True)  # the bar below counts seconds, not messages
    for name in phases:
        deadline = time.perf_counter() + seconds

        async def seat(i: int, name: str = name, deadline: float = deadline) -> None:
            rng = random.Random(i)
            while time.perf_counter() < deadline:
                turns = conversation(rng)
                await visitor(session, run, turns, name, quiet, deadline=deadline)

        async def tick(deadline: float = deadline) -> None:
            while time.perf_counter() < deadline:
                await asyncio.sleep(1.0)
                progress.update(1)

        await asyncio.gather(tick(), *(seat(i) for i in range(concurrency)))
        run.wall[name] = run.wall.get(name, 0.0) + seconds
    return run


def pct(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cold_train_seconds() -> float:
    """Full `rasa train` with an empty cache, into a throwaway folder."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "RASA_CACHE_DIRECTORY": str(Path(tmp) / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        start = time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "rasa"),
                "train",
                "--out",
                tmp,
                "--fixed-model-name",
                "bench",
                "--quiet",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.monotonic() - start


def write_endpoints(folder: Path) -> Dict[str, Path]:
    # The project's action endpoint for both: only the NLG and kefu's runtime differ.
    action = (
        f'action_endpoint:\n  url: "http://{HOST}:{ACTIONS_PORT}/webhook"\n'
        "  enable_selective_domain: true\n"
    )
    kefu = folder / "endpoints.kefu.yml"
    kefu.write_text(action + "nlg:\n  type: kefu.rasa.nlg.GuardedNaturalLanguageGenerator\n")
    plain = folder / "endpoints.plain.yml"
    plain.write_text(action)
    return {"kefu": kefu, "plain": plain}


LABELS = {"desk": "through the desk", "kefu": "kefu's Rasa (REST)", "plain": "plain Rasa (REST)"}


def histogram(run: Run, concurrency: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = max(pct(v, 0.99) for v in run.latencies.values()) * 1000
    bins = [top * i / 40 for i in range(41)]
    for name, colour in (("plain", "#999999"), ("kefu", "#d9480f"), ("desk", "#1c7ed6")):
        ax.hist(
            [x * 1000 for x in run.latencies[name]],
            bins=bins,
            alpha=0.6,
            label=f"{LABELS[name]} (p50 {pct(run.latencies[name], 0.5) * 1000:.0f} ms)",
            color=colour,
        )
    ax.set_xlabel("reply latency (ms), loopback")
    ax.set_ylabel("messages")
    ax.set_title(f"desk, kefu's Rasa and plain Rasa, same model, {concurrency} visitors")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class Measurement:
    results: List[tuple]  # (visitors, Run) with think time
    saturation: Run
    load_s: Dict[str, float]
    rss_mb: Dict[str, float]


async def measure(endpoints: Dict[str, Path], levels: Sequence[int], out: Path) -> Measurement:
    from tqdm import tqdm

    rasa = str(Path(sys.executable).parent / "rasa")
    # Both Rasa servers run as `kefu run` starts Rasa (one TensorFlow thread per pool).
    env = {**os.environ, **tf_thread_env(), "TF_CPP_MIN_LOG_LEVEL": "3", "SANIC_HOST": HOST}
    actions = [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(ACTIONS_PORT)]
    processes = [
        Process("actions", actions, f"http://{HOST}:{ACTIONS_PORT}/health", "", quiet=True)
    ]
    for name, port in SERVERS.items():
        # kefu's Rasa through kefu's launcher (runtime fixes, TED's cache); plain Rasa
        # through Rasa's own CLI, with the cache of the model's TED subclass turned off.
        launcher = [sys.executable, "-m", "kefu.rasa"] if name == "kefu" else [rasa]
        argv = [
            *launcher,
            "run",
            "--model",
            str(MODEL),
            "--interface",
            HOST,
            "--port",
            str(port),
            "--endpoints",
            str(endpoints[name]),
            "--credentials",
            str(ROOT / "credentials.yml"),
            "--enable-api",  # the desk opens chats through it (trigger_intent)
            "--auth-token",
            BENCH_TOKEN,
        ]
        plain_env = {"KEFU_TED_CACHE": "0"} if name == "plain" else {}
        processes.append(
            Process(name, argv, f"http://{HOST}:{port}/", "", env=plain_env, quiet=True)
        )
    desk_env = {
        "KEFU_RASA_URL": f"http://{HOST}:{SERVERS['kefu']}",
        "KEFU_RASA_TOKEN": BENCH_TOKEN,
        "KEFU_ACTION_SERVER_URL": f"http://{HOST}:{ACTIONS_PORT}",
        "KEFU_DATABASE_URL": f"sqlite:///{DESK_DB}",
        "KEFU_RATE_PER_MINUTE": "1000000",  # one IP sends every visitor's messages
    }
    processes.append(
        Process(
            "desk",
            [sys.executable, "-m", "kefu.desk", "--host", HOST, "--port", str(DESK_PORT)],
            f"http://{HOST}:{DESK_PORT}/healthz",
            "",
            env=desk_env,
            quiet=True,
        )
    )
    results = []
    try:
        async with aiohttp.ClientSession() as session:
            for process in processes:
                process.start(env)
            await asyncio.gather(*(wait_ready(session, p, start_timeout_s()) for p in processes))
            # Warm-up: a dozen conversations on each path, so TensorFlow has traced its
            # graphs before any phase is timed.
            quiet, scratch = tqdm(disable=True), Run()
            for name in PATHS:
                for script in crowd(12, seed=0):
                    await visitor(session, scratch, script, name, quiet)
            paced = sum(len(c) for level in levels for c in crowd(level, seed=level))
            total = paced * len(PACED_PHASES)
            with tqdm(total=total, desc="bench paced", unit="msg") as progress:
                for level in levels:
                    progress.set_postfix_str(f"{level} visitors, {THINK_S:g} s think time")
                    run = await load(session, level, progress, THINK_S, PACED_PHASES)
                    results.append((level, run))
            window = int(SATURATION_S * len(PHASES))
            with tqdm(total=window, desc="bench saturation", unit="s") as progress:
                progress.set_postfix_str(f"{SATURATION_VISITORS} visitors, no pause")
                saturation = await saturate(
                    session, SATURATION_VISITORS, SATURATION_S, PHASES, progress
                )
            return Measurement(
                results=results,
                saturation=saturation,
                load_s={p.name: p.ready_after for p in processes},
                rss_mb={p.name: p.rss_mb() for p in processes},
            )
    finally:
        for process in processes:
            process.stop()


def path_stats(run: Run) -> Dict[str, Dict[str, float]]:
    return {
        name: {
            "p50_ms": pct(v, 0.5) * 1000,
            "p95_ms": pct(v, 0.95) * 1000,
            "p99_ms": pct(v, 0.99) * 1000,
            "messages": len(v),
            "errors": run.errors[name],
            "messages_per_s": len(v) / run.wall[name],
        }
        for name, v in run.latencies.items()
    }


def table_row(label: str, run: Run, stats: Dict[str, Dict[str, float]]) -> str:
    d, k, p = stats["desk"], stats["kefu"], stats["plain"]
    return (
        f"| {label} | {d['p50_ms']:.0f} / {d['p95_ms']:.0f} / {d['p99_ms']:.0f} | "
        f"{k['p50_ms']:.0f} / {k['p95_ms']:.0f} / {k['p99_ms']:.0f} | "
        f"{p['p50_ms']:.0f} / {p['p95_ms']:.0f} / {p['p99_ms']:.0f} | "
        f"**{d['p50_ms'] / p['p50_ms']:.2f}×** | {k['p50_ms'] / p['p50_ms']:.2f}× | "
        f"{d['messages_per_s']:.1f} / {k['messages_per_s']:.1f} / {p['messages_per_s']:.1f} | "
        f"{d['errors']:.0f} / {k['errors']:.0f} / {p['errors']:.0f} | {run.left_bot} |"
    )


HEADER = (
    "| {first} | desk p50 / p95 / p99 ms | kefu REST p50 / p95 / p99 ms | "
    "plain REST p50 / p95 / p99 ms | desk ÷ plain p50 | kefu ÷ plain p50 | "
    "msg/s desk / kefu / plain | errors desk / kefu / plain | desk replies not in bot mode |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def goals(
    levels: Dict[int, Dict[str, Any]], saturation: Dict[str, Any]
) -> List[Tuple[str, str, bool]]:
    """The issue's goals, each with the figure measured in this run."""
    out: List[Tuple[str, str, bool]] = []
    ratios = [levels[n]["desk_over_plain_p50"] for n in sorted(levels)]
    if ratios:
        out.append(
            (
                "desk overhead ≤ 1.2× plain Rasa at p50",
                " / ".join(f"{r:.2f}×" for r in ratios) + " (paced levels)",
                max(ratios) <= 1.2,
            )
        )
    if 50 in levels:
        p99 = levels[50]["desk"]["p99_ms"]
        out.append(("p99 ≤ 250 ms with 50 visitors (desk)", f"{p99:.0f} ms", p99 <= 250))
    # The desk adds no queueing of its own: at 50 seats with no think time, its latency
    # against the Rasa behind it (kefu's REST), measured in the same run.
    desk, behind = saturation["desk"], saturation["kefu"]
    p50 = desk["p50_ms"] / behind["p50_ms"]
    p99 = desk["p99_ms"] / behind["p99_ms"]
    out.append(
        (
            f"desk ≤ 1.2× (p50) and ≤ 1.5× (p99) kefu's Rasa REST, {SATURATION_VISITORS} "
            "visitors, no think time",
            f"p50 {p50:.2f}× ({desk['p50_ms']:.0f} / {behind['p50_ms']:.0f} ms), "
            f"p99 {p99:.2f}× ({desk['p99_ms']:.0f} / {behind['p99_ms']:.0f} ms)",
            p50 <= 1.2 and p99 <= 1.5,
        )
    )
    rate = min(saturation["kefu"]["messages_per_s"], saturation["desk"]["messages_per_s"])
    out.append(
        (
            "≥ 60 msg/s sustained with one Rasa process",
            f"kefu REST {saturation['kefu']['messages_per_s']:.1f}, desk "
            f"{saturation['desk']['messages_per_s']:.1f} (plain "
            f"{saturation['plain']['messages_per_s']:.1f})",
            rate >= 60,
        )
    )
    return out


def report(m: Measurement, train_s: float | None, out: Path) -> str:
    rows: List[str] = []
    levels: Dict[int, Dict[str, Any]] = {}
    for level, run in m.results:
        histogram(run, level, out / f"latency_{level}.png")
        stats = path_stats(run)
        levels[level] = {
            **stats,
            "desk_over_plain_p50": stats["desk"]["p50_ms"] / stats["plain"]["p50_ms"],
            "kefu_over_plain_p50": stats["kefu"]["p50_ms"] / stats["plain"]["p50_ms"],
            "left_bot": run.left_bot,
        }
        rows.append(table_row(str(level), run, stats))
    saturation: Dict[str, Any] = path_stats(m.saturation)
    saturation["left_bot"] = m.saturation.left_bot
    checked = goals(levels, saturation)
    summary = {
        "think_time_s": THINK_S,
        "levels": levels,
        "saturation": {
            "visitors": SATURATION_VISITORS,
            "seconds_per_phase": SATURATION_S,
            **saturation,
        },
        "goals": [{"goal": g, "measured": v, "met": ok} for g, v, ok in checked],
        "cold_train_s": train_s,
        "model_load_s": m.load_s,
        "rss_mb": m.rss_mb,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    md = [
        "# The desk, kefu's Rasa and plain Rasa on the same model",
        "",
        "Two Rasa servers load `models/kefu.tar.gz` and share one action server, on 127.0.0.1. "
        "`kefu` uses kefu's NLG (placeholders, phrasing guard, script mirroring) and kefu's "
        "runtime fixes, and has the desk in front of it (`desk`: the visitor API, SQLite "
        "store, Rasa's REST webhook behind it); `plain` is Rasa as shipped, templated NLG. "
        "Each simulated visitor runs a 6–10 turn conversation drawn from the flows "
        "(`kefu/tools/visitors.py`: each turn typed one of several ways), one Rasa process each, "
        "on this 2-core machine. Latency is per reply.",
        "",
        f"**Paced visitors**: {THINK_S:g} s (±50%) to read a reply and type the next "
        "message; the same visitors on one path at a time (desk, plain, kefu).",
        "",
        HEADER.format(first="visitors"),
        *rows,
        "",
        f"**Saturation**: {SATURATION_VISITORS} seats with no pause at all, each starting "
        f"chat after chat, {SATURATION_S:g} s per phase, phases desk, plain, kefu, kefu, "
        "plain, desk; msg/s counts the replies completed inside the windows, which is what "
        "one Rasa process sustains, and the latency is queueing. (On the desk path each "
        "chat also opens with a greeting that Rasa answers and the table does not count.)",
        "",
        HEADER.format(first="visitors"),
        table_row(str(SATURATION_VISITORS), m.saturation, path_stats(m.saturation)),
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *[f"| {g} | {v} | {'yes' if ok else '**no**'} |" for g, v, ok in checked],
        "",
        "| process | ready after (s) | resident memory (MB) |",
        "|---|---|---|",
        *[f"| {name} | {m.load_s[name]:.1f} | {m.rss_mb[name]:.0f} |" for name in m.load_s],
        "",
        f"Full `rasa train` with an empty cache: {train_s:.0f} s." if train_s else "",
        "",
        "Histograms: " + ", ".join(f"`latency_{level}.png`" for level, _ in m.results),
        "",
    ]
    text = "\n".join(md)
    (out / "summary.md").write_text(text, encoding="utf-8")
    return text


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kefu.tools.bench")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    parser.add_argument(
        "--levels", default="10,50,200", help="concurrent visitors, comma-separated"
    )
    parser.add_argument("--no-train", action="store_true", help="skip the cold training run")
    args = parser.parse_args(argv)
    if not MODEL.exists():
        print("bench: no model, run `make train` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    train_s = None
    if not args.no_train:
        print("bench: timing a full training run with an empty cache…", flush=True)
        train_s = cold_train_seconds()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        DESK_DB.parent.mkdir(exist_ok=True)
        try:
            measurement = asyncio.run(measure(write_endpoints(Path(tmp)), levels, args.out))
        except BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{DESK_DB}{suffix}").unlink(missing_ok=True)
    print(report(measurement, train_s, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`rasa interactive` with kefu's components and the guarded NLG, driven through a
pseudo-terminal as a developer would: type, accept what the bot proposes, Export & Quit."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml

from tests.processes import answers, free_port, start

pytestmark = [pytest.mark.slow, pytest.mark.servers]  # starts kefu's processes
ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).parent / "rasa")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")


class Terminal:
    """A program on a pseudo-terminal, read until it has been quiet for a moment."""

    def __init__(self, argv, env, log: Path, cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the program
            os.chdir(cwd)
            os.environ.update(env, TERM="xterm", COLUMNS="160", LINES="50")
            os.execv(argv[0], argv)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.log = log.open("w", encoding="utf-8")
        self.screen = ""

    def read(self, idle: float = 2.0, limit: float = 600) -> bool:
        start = last = time.monotonic()
        got = ""
        while time.monotonic() - start < limit:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:
                    return False
                if not chunk:
                    return False
                self.log.write(chunk)
                got += chunk
                if "\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is: answer
                    os.write(self.fd, b"\x1b[1;1R")  # as a terminal does, so it never waits
                last = time.monotonic()
            elif got and time.monotonic() - last > idle:
                break
        self.screen += ANSI.sub("", got).replace("\r", "\n")
        return bool(got)

    def prompt(self) -> str:
        lines = [line.strip() for line in self.screen.split("\n") if line.strip().startswith("?")]
        return lines[-1] if lines else ""

    def send(self, keys: str) -> None:
        self.log.write(f"\n<<< {keys!r}\n")
        os.write(self.fd, keys.encode())

    def close(self) -> int:
        try:
            os.kill(self.pid, 2)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(self.pid, 0)
        self.log.close()
        return status


def test_interactive_learning_with_kefus_pipeline_and_guarded_nlg(model_path, tmp_path):
    actions_port = free_port()
    actions = start(
        "action server",
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(actions_port)],
        tmp_path / "actions.log",
        answers(f"http://127.0.0.1:{actions_port}/health"),
        {"SANIC_HOST": "127.0.0.1"},
    )
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
        "nlg:\n  type: kefu.rasa.nlg.GuardedNaturalLanguageGenerator\n",
        encoding="utf-8",
    )
    out = tmp_path / "export"
    argv = [RASA, "interactive", "--model", str(model_path), "--endpoints", str(endpoints)]
    argv += ["-p", str(free_port()), "--skip-visualization", "--conversation-id", "interactive"]
    # Only the export prompts are answered with paths, all under tmp_path; nothing else
    # presses Enter on them, so no export can land in the project's files.
    terminal = Terminal(argv, {}, tmp_path / "interactive.log", ROOT)
    before = {p: p.read_bytes() for p in (ROOT / "domain.yml", *sorted(ROOT.glob("data/**/*.yml")))}
    inputs = ["你好", "能开发票吗"]
    try:
        for _ in range(150):
            if not terminal.read():
                break
            prompt = terminal.prompt()
            if prompt.endswith("Your input ->"):
                terminal.send(inputs.pop(0) + "\r" if inputs else "\x03")
            elif prompt.startswith("? Do you want to stop?") and "(Use arrow keys)" in prompt:
                terminal.send("\x1b[B" * 4)  # Export & Quit
                time.sleep(0.5)
                terminal.send("\r")
            elif prompt.startswith("? Export stories to") and prompt.endswith("data/stories.yml"):
                terminal.send(f"\x15{out / 'stories.yml'}\r")
            elif prompt.startswith("? Export NLU data to") and prompt.endswith("data/nlu.yml"):
                terminal.send(f"\x15{out / 'nlu.yml'}\r")
            elif prompt.startswith("? Export domain file to") and prompt.endswith(" domain.yml"):
                terminal.send(f"\x15{out / 'domain.yml'}\r")
            elif prompt.endswith("(Y/n)"):
                terminal.send("\r")  # what the bot proposes is right
            elif "Killing Sanic server" in terminal.screen[-2000:]:
                break
    finally:
        terminal.close()
        actions.stop()
    assert {p: p.read_bytes() for p in before} == before
    assert not (ROOT / "data" / "nlu.yml").exists() and not (ROOT / "data" / "stories.yml").exists()
    screen = terminal.screen
    assert "intent: greet" in screen and "utter_greet" in screen
    # The guarded NLG filled the greeting's {salutation}, {brand} and {bot_name} from the
    # policy, and answered the shop question from policy/faq.yml.
    assert re.search(r"[早中下晚]上好|您好", screen) and "{brand}" not in screen
    assert "utter_faq" in screen and "电子普通发票" in screen.replace(" ", "").replace("\n", "")
    story = yaml.safe_load((out / "stories.yml").read_text(encoding="utf-8"))
    steps = story["stories"][0]["steps"]
    assert {"intent": "faq/invoice"} in steps and {"action": "utter_faq"} in steps

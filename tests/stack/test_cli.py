"""`kefu phrasing check` (a contract) and `kefu phrasing lint`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kefu.domain.phrasing.lint import lint
from kefu.domain.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
KEFU = str(Path(sys.executable).parent / "kefu")


def run(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEFU, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_check_reads_json_and_plain_lines_and_answers_each():
    stdin = '{"text": "什么？"}\n请问有什么可以帮您？\n{"text": 5}\n\n{not json\n應該可以吧\n'
    result = run("phrasing", "check", stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(v["text"], v["ok"]) for v in lines] == [
        ("什么？", False),
        ("请问有什么可以帮您？", True),
        ('{"text": 5}', True),  # not a {"text": string} object: taken as plain text
        ("", True),
        ("{not json", True),
        ("應該可以吧", False),
    ]
    for verdict in lines:
        assert set(verdict) == {"text", "ok", "violations"}
    violation = lines[0]["violations"][0]
    assert violation["rule"] == "bare_what" and violation["span"] == [0, 2]
    assert {"reason", "rewrite"} <= set(violation)


def test_check_with_no_input_writes_nothing_and_succeeds():
    result = run("phrasing", "check")
    assert result.returncode == 0 and result.stdout == ""


def test_lint_passes_on_the_project():
    result = run("phrasing", "lint")
    assert result.returncode == 0, result.stdout


def test_lint_reports_file_line_and_rule(tmp_path, policy):
    shutil.copy(ROOT / "domain.yml", tmp_path / "domain.yml")
    domain = (tmp_path / "domain.yml").read_text(encoding="utf-8")
    domain = domain.replace('"好的，不着急，您慢慢找，我在这里等您。"', '"喂，你等一下"')
    (tmp_path / "domain.yml").write_text(domain, encoding="utf-8")
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "bad.py").write_text(
        "def run(dispatcher):\n"
        '    dispatcher.utter_message(text="好的")\n'
        '    return "这个不知道"\n',
        encoding="utf-8",
    )
    findings = [str(f) for f in lint(tmp_path, policy)]
    line = next(i for i, t in enumerate(domain.splitlines(), 1) if "喂，你等一下" in t)
    assert any(f.startswith(f"domain.yml:{line}: utter_hold_on: wei") for f in findings)
    assert any(f.startswith(f"domain.yml:{line}: utter_hold_on: you_plain") for f in findings)
    assert any(f.startswith("actions/bad.py:2: utter_message: raw text") for f in findings)
    assert any(f.startswith("actions/bad.py:3: string: dont_know") for f in findings)


def test_a_broken_policy_is_a_clear_error_not_a_traceback(tmp_path):
    shutil.copytree(ROOT / "policy", tmp_path / "policy")
    rules = tmp_path / "policy" / "rules.yml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace('"绝对不可能"', '"绝对(不可能"'), encoding="utf-8"
    )
    result = run(
        "phrasing", "check", stdin="你好\n", env={"KEFU_POLICY_DIR": str(tmp_path / "policy")}
    )
    assert result.returncode == 2
    assert "rules.yml:" in result.stderr and "invalid regular expression" in result.stderr
    assert "Traceback" not in result.stderr


def test_lint_checks_the_agents_quick_replies(tmp_path):
    """`quick_replies` in phrasing.yml are what agents send: the lint checks them too."""
    shutil.copytree(ROOT / "policy", tmp_path / "policy")
    phrasing = tmp_path / "policy" / "phrasing.yml"
    text = phrasing.read_text(encoding="utf-8")
    assert '  - text: "请问还有其他可以帮您的吗？"' in text
    phrasing.write_text(
        text.replace('  - text: "请问还有其他可以帮您的吗？"', '  - text: "这个我不知道"'),
        encoding="utf-8",
    )
    findings = [str(f) for f in lint(ROOT, load_policy(tmp_path / "policy"))]
    assert any("quick_replies[5]: dont_know" in f for f in findings), findings

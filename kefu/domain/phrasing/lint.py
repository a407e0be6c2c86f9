"""`kefu phrasing lint`: every text the bot can send, checked before it is sent."""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

from kefu.domain.phrasing.checker import Checker
from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.phrasing.guard import Guard
from kefu.domain.policy.loader import Policy
from kefu.domain.policy.yaml_source import Source

CJK = re.compile(r"[\u4e00-\u9fff]")
# Stand-ins for action-supplied {placeholders}, so the text reads as a visitor sees it.
SAMPLE_VALUE = "2023112500123456"
MIN_SENTENCE = 4  # CJK characters


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    where: str
    text: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.where}: {self.problem}: {self.text}"


def render(text: str, guard: Guard) -> str:
    values = guard.variables(ReplyContext())
    names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    return text.format(**{n: values.get(n, SAMPLE_VALUE) for n in names})


def _check(
    checker: Checker, path: str, line: int | None, where: str, text: str
) -> Iterator[Finding]:
    for v in checker.check(text):
        yield Finding(path, line, where, text, f"{v.rule} ({v.reason}; “{v.match}” → {v.rewrite})")


def lint_domain(domain_file: Path, guard: Guard, root: Path) -> Iterator[Finding]:
    source = Source.read(domain_file)
    rel = str(domain_file.relative_to(root))
    for name, variants in ((source.data or {}).get("responses") or {}).items():
        for i, variant in enumerate(variants or []):
            text = (variant or {}).get("text")
            if isinstance(text, str):
                line = source.line(("responses", name, i, "text"))
                yield from _check(guard.checker, rel, line, name, render(text, guard))


def lint_phrases(policy: Policy, guard: Guard, root: Path) -> Iterator[Finding]:
    path = policy.directory / "phrasing.yml"
    source = Source.read(path)
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    for scene, phrase in policy.phrases.items():
        line = source.line(("phrases", scene, "text"))
        yield from _check(guard.checker, rel, line, f"phrase_{scene}", render(phrase.text, guard))


def lint_quick_replies(policy: Policy, guard: Guard, root: Path) -> Iterator[Finding]:
    """The agents' quick replies (`quick_replies` in phrasing.yml): sent as they are."""
    path = policy.directory / "phrasing.yml"
    source = Source.read(path)
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    for i, phrase in enumerate(policy.quick_replies):
        line = source.line(("quick_replies", i, "text"))
        yield from _check(guard.checker, rel, line, f"quick_replies[{i}]", phrase.text)


def lint_faq(policy: Policy, guard: Guard, root: Path) -> Iterator[Finding]:
    """Every FAQ answer and its variants, numbers filled from the policy."""
    from kefu.domain import faq

    path = policy.directory / "faq.yml"
    source = Source.read(path)
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    values = {**guard.variables(ReplyContext()), **faq.policy_values(policy)}
    for topic in policy.faq.values():
        for variant, text in (("answer", topic.answer), *topic.variants.items()):
            line = source.line(("topics", topic.id, variant))
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
            filled = text.format(**{n: values.get(n, SAMPLE_VALUE) for n in names})
            yield from _check(guard.checker, rel, line, f"faq/{topic.id}.{variant}", filled)


def lint_actions(actions_dir: Path, guard: Guard, root: Path) -> Iterator[Finding]:
    # Strings in code are fragments (labels, words to look for), not replies: the listed
    # rules apply; the tone model judges whole replies and would read them as curt.
    fragments = Checker(guard.checker.rules)
    for path in sorted(actions_dir.rglob("*.py")):
        rel = str(path.relative_to(root))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        docstrings = {
            id(body[0].value)
            for holder in ast.walk(tree)
            if isinstance(holder, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and (body := holder.body)
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "utter_message":
                if any(k.arg == "text" for k in node.keywords):
                    yield Finding(
                        rel,
                        node.lineno,
                        "utter_message",
                        "text=…",
                        "raw text: name a response or policy phrase instead "
                        "(response=...), so the guard and this lint see it",
                    )
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # Replies live in domain.yml and policy/; a short string here is a
                # word the code looks for (没有, 退货), not something it says.
                if len(CJK.findall(node.value)) >= MIN_SENTENCE:
                    yield from _check(fragments, rel, node.lineno, "string", node.value)


def lint(root: Path, policy: Policy) -> List[Finding]:
    guard = Guard(policy)
    findings = list(lint_domain(root / "domain.yml", guard, root))
    findings += lint_phrases(policy, guard, root)
    findings += lint_quick_replies(policy, guard, root)
    findings += lint_faq(policy, guard, root)
    findings += lint_actions(root / "actions", guard, root)
    return findings

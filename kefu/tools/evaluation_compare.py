"""What changed since the last committed evaluation (`make eval`, its last step).

`make eval` rewrites reports/; the committed reports (`git show HEAD:reports/...`) are
the previous run. This compares the two: per-intent F1 and support on the held-out
split, the hand-over judgement, the FAQ topics and the phrasing checker, each figure with
its change, a regression marked where a figure moved the wrong way. It reads only the
aggregate figures of the summaries, never their lists of messages. It also draws the
biggest confusions of the held-out split (reports/nlu/biggest_confusions.png) beside
Rasa's full confusion matrix.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from kefu.paths import ROOT

REGRESSION = "▼ regression"
IMPROVED = "▲"
# A figure measured on a different number of items (a dev split that grew) is not
# compared: its change says nothing about the model.
RESIZED = "split resized"
TOLERANCE = 0.0005  # rounding noise of the reports (4 decimals)
Reader = Callable[[str], Optional[str]]


def committed(root: Path = ROOT, revision: str = "HEAD") -> Reader:
    """A reader of reports as the last commit has them (None: not committed)."""

    def read(relative: str) -> Optional[str]:
        try:
            result = subprocess.run(
                ["git", "show", f"{revision}:{relative}"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout if result.returncode == 0 else None

    return read


def working(root: Path = ROOT) -> Reader:
    def read(relative: str) -> Optional[str]:
        path = root / relative
        return path.read_text(encoding="utf-8") if path.exists() else None

    return read


def _json(reader: Reader, relative: str) -> Any:
    text = reader(relative)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class Figure:
    section: str
    name: str
    before: Optional[float]
    after: Optional[float]
    higher_is_better: bool = True
    support: Optional[Tuple[Optional[int], Optional[int]]] = None

    @property
    def change(self) -> Optional[float]:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def mark(self) -> str:
        if self.after is None:
            return "gone"
        if self.before is None:
            return "new"
        if self.support is not None and None not in self.support:
            if self.support[0] != self.support[1]:
                return RESIZED
        change = self.change or 0.0
        if abs(change) <= TOLERANCE:
            return ""
        better = change > 0 if self.higher_is_better else change < 0
        return IMPROVED if better else REGRESSION

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "section": self.section,
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "change": None if self.change is None else round(self.change, 4),
            "regression": self.mark == REGRESSION,
        }
        if self.support is not None:
            out["support_before"], out["support_after"] = self.support
        return out


def _get(data: Any, *path: Any) -> Optional[float]:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return float(data) if isinstance(data, (int, float)) and not isinstance(data, bool) else None


def _splits(data: Any) -> Dict[str, Any]:
    """The judgement summary is a list of splits; index it by name."""
    if isinstance(data, list):
        return {str(s.get("split")): s for s in data if isinstance(s, dict)}
    return data if isinstance(data, dict) else {}


INTENT_ROWS = ("micro avg", "macro avg", "weighted avg", "accuracy")


def nlu_figures(before: Reader, after: Reader) -> List[Figure]:
    old = _json(before, "reports/nlu/intent_report.json") or {}
    new = _json(after, "reports/nlu/intent_report.json") or {}
    figures = []
    for intent in sorted(set(old) | set(new)):
        if intent in INTENT_ROWS:
            continue
        figures.append(
            Figure(
                "intent F1",
                intent,
                _get(old, intent, "f1-score"),
                _get(new, intent, "f1-score"),
                support=(_int(_get(old, intent, "support")), _int(_get(new, intent, "support"))),
            )
        )
    old_s = _json(before, "reports/nlu/summary.json") or {}
    new_s = _json(after, "reports/nlu/summary.json") or {}
    for key in ("intent_macro_f1", "intent_accuracy"):
        figures.append(Figure("NLU", key, _get(old_s, key), _get(new_s, key)))
    for entity in sorted(set(old_s.get("entities") or {}) | set(new_s.get("entities") or {})):
        figures.append(
            Figure(
                "NLU",
                f"entity F1 {entity}",
                _get(old_s, "entities", entity, "f1"),
                _get(new_s, "entities", entity, "f1"),
            )
        )
    return figures


def _int(value: Optional[float]) -> Optional[int]:
    return None if value is None else int(value)


def _sizes(old: Any, new: Any, part: str, key: str) -> Tuple[Optional[int], Optional[int]]:
    """How many items a figure was measured on, before and after."""
    return (_int(_get(old, part, key)), _int(_get(new, part, key)))


SIZE_OF = {"single_messages": "messages", "conversations": "conversations"}
JUDGEMENT = (
    (("single_messages", "recall"), "messages: recall", True),
    (("single_messages", "precision"), "messages: precision", True),
    (("single_messages", "right_reason"), "messages: right reason", True),
    (("single_messages", "needless_rate"), "messages: needless hand-overs", False),
    (("single_messages", "intent_accuracy"), "messages: intent accuracy", True),
    (("conversations", "recall"), "conversations: recall", True),
    (("conversations", "right_reason_in_time"), "conversations: right reason in time", True),
    (("conversations", "needless_rate"), "conversations: needless hand-overs", False),
)
FAQ = (
    (("on_topic_rate",), "on topic", True),
    (("out_of_scope_right",), "out of scope answered as such", True),
    (("opened_a_form",), "questions that opened a form", False),
)


def escalation_figures(before: Reader, after: Reader) -> List[Figure]:
    old = _splits(_json(before, "reports/judgement/summary.json"))
    new = _splits(_json(after, "reports/judgement/summary.json"))
    figures = []
    for split in sorted(set(old) | set(new)):
        for path, name, higher in JUDGEMENT:
            figures.append(
                Figure(
                    f"hand-over judgement ({split})",
                    name,
                    _get(old.get(split), *path),
                    _get(new.get(split), *path),
                    higher,
                    _sizes(old.get(split), new.get(split), path[0], SIZE_OF[path[0]]),
                )
            )
    old_f = _json(before, "reports/faq/summary.json") or {}
    new_f = _json(after, "reports/faq/summary.json") or {}
    for split in sorted(set(old_f) | set(new_f)):
        for key, name, higher in FAQ:
            figures.append(
                Figure(
                    f"FAQ topics ({split})",
                    name,
                    _get(old_f.get(split), *key),
                    _get(new_f.get(split), *key),
                    higher,
                    _sizes(old_f, new_f, split, "questions"),
                )
            )
    return figures


def checker_figures(before: Reader, after: Reader) -> List[Figure]:
    old = _json(before, "reports/phrasing/summary.json") or {}
    new = _json(after, "reports/phrasing/summary.json") or {}
    figures = [
        Figure(
            "phrasing checker (labelled)",
            "recall",
            _get(old, "recall"),
            _get(new, "recall"),
            support=(_int(_get(old, "labelled_texts")), _int(_get(new, "labelled_texts"))),
        ),
        Figure(
            "phrasing checker (labelled)",
            "false-positive rate",
            _get(old, "false_positive_rate"),
            _get(new, "false_positive_rate"),
            False,
            (_int(_get(old, "labelled_texts")), _int(_get(new, "labelled_texts"))),
        ),
    ]
    splits = set(old.get("replies") or {}) | set(new.get("replies") or {})
    for split in sorted(splits):
        section = f"phrasing checker ({split} replies)"
        for key, name, higher in (
            ("recall", "recall", True),
            ("false_positive_rate", "false-positive rate", False),
            ("rewrites_passing", "rewrites that pass", True),
        ):
            figures.append(
                Figure(
                    section,
                    name,
                    _get(old, "replies", split, key),
                    _get(new, "replies", split, key),
                    higher,
                    _sizes(old.get("replies"), new.get("replies"), split, "replies"),
                )
            )
    return figures


def _num(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value > 1.5 else f"{value:.3f}"


def _change(figure: Figure) -> str:
    change = figure.change
    if change is None:
        return "–"
    if abs(change) <= TOLERANCE:
        return "0"
    return (
        f"{change:+.0f}"
        if max(abs(figure.before or 0), abs(figure.after or 0)) > 1.5
        else f"{change:+.3f}"
    )


def markdown(figures: Sequence[Figure], baseline: str) -> str:
    regressions = [f for f in figures if f.mark == REGRESSION]
    lines = [
        "# What changed since the last committed evaluation",
        "",
        f"Compared with {baseline}. {len(regressions)} regression(s) "
        f"({REGRESSION}: a figure moved the wrong way by more than rounding; {IMPROVED}: better; "
        f"{RESIZED}: measured on a different number of items, not compared).",
        "",
    ]
    if regressions:
        lines += ["Regressions:", ""]
        lines += [
            f"- {f.section}: {f.name} {_num(f.before)} → {_num(f.after)} ({_change(f)})"
            for f in regressions
        ]
        lines.append("")
    intents = [f for f in figures if f.section == "intent F1"]
    if intents:
        lines += [
            "## Intents on the held-out split",
            "",
            "| intent | F1 | change | support | change | |",
            "|---|---|---|---|---|---|",
        ]
        for f in sorted(intents, key=lambda f: (f.mark != REGRESSION, f.name)):
            old_n, new_n = f.support or (None, None)
            moved = "–" if old_n is None or new_n is None else f"{new_n - old_n:+d}"
            lines.append(
                f"| `{f.name}` | {_num(f.after)} | {_change(f)} | "
                f"{'–' if new_n is None else new_n} | {moved} | {f.mark} |"
            )
        lines.append("")
    sections: Dict[str, List[Figure]] = {}
    for f in figures:
        if f.section != "intent F1":
            sections.setdefault(f.section, []).append(f)
    for section, rows in sections.items():
        lines += [
            f"## {section[0].upper()}{section[1:]}",
            "",
            "| figure | before | now | change | |",
        ]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {f.name} | {_num(f.before)} | {_num(f.after)} | {_change(f)} | {f.mark} |"
            for f in rows
        ]
        lines.append("")
    lines += [
        "The confusion matrix: `reports/nlu/intent_confusion_matrix.png`; the biggest "
        "confusions alone: `reports/nlu/biggest_confusions.png`.",
        "",
    ]
    return "\n".join(lines)


def biggest_confusions(summary: Dict[str, Any], top: int = 12) -> List[Tuple[str, str, int]]:
    """(gold, predicted, count) of the held-out split's misclassified messages, as kefu
    scores them (the final intent, so a fallback counts), most first."""
    counts: Dict[Tuple[str, str], int] = {}
    for error in summary.get("errors") or []:
        if isinstance(error, dict) and error.get("gold") and error.get("predicted"):
            pair = (str(error["gold"]), str(error["predicted"]))
            counts[pair] = counts.get(pair, 0) + 1
    pairs = [(gold, predicted, n) for (gold, predicted), n in counts.items()]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:top]


def plot_confusions(pairs: Sequence[Tuple[str, str, int]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 1.2 + 0.45 * max(1, len(pairs))
    fig, ax = plt.subplots(figsize=(8, height))
    if pairs:
        labels = [f"{gold} → {predicted}" for gold, predicted, _ in pairs][::-1]
        counts = [count for _, _, count in pairs][::-1]
        bars = ax.barh(labels, counts, color="#c0504d")
        ax.bar_label(bars, padding=3)
        ax.set_xlabel("held-out messages (gold → predicted; nlu_fallback: asked to rephrase)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.text(0.5, 0.5, "no confusions on the held-out split", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("Biggest intent confusions (tests/nlu/test_nlu.yml)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    out: Path = ROOT / "reports",
    before: Optional[Reader] = None,
    after: Optional[Reader] = None,
    baseline: str = "the reports of the last commit (git show HEAD:reports/...)",
) -> Tuple[List[Figure], str]:
    before = before or committed()
    after = after or working(out.parent)
    figures = nlu_figures(before, after) + escalation_figures(before, after)
    figures += checker_figures(before, after)
    figures = [f for f in figures if f.before is not None or f.after is not None]
    if before("reports/nlu/summary.json") is None:
        baseline = "nothing: no committed report yet (every figure is new)"
    text = markdown(figures, baseline)
    (out / "changes.md").write_text(text, encoding="utf-8")
    (out / "changes.json").write_text(
        json.dumps([f.as_dict() for f in figures], ensure_ascii=False, indent=2), encoding="utf-8"
    )
    summary = _json(after, "reports/nlu/summary.json") or {}
    plot_confusions(biggest_confusions(summary), out / "nlu" / "biggest_confusions.png")
    return figures, text

"""Grouped cross-validation of the tone model (`python -m kefu.tools.evaluation tone-cv`).

A reply is flagged as the checker flags it: a listed rule matches, or the tone model's
chance of a violation reaches the threshold. For each fold the model is refitted on the
other training replies (with the policy's own phrases and FAQ answers, always known
good) and judges the held-out ones. Two ways to fold:

- by file: each file of `tone_model.training` held out in turn. A file is a batch
  written at one time, for one purpose, so this is the nearest to replies nobody
  trained on (a file of only `ok` replies gives a false-positive rate and no recall);
- within: 5 folds stratified by file and label, repeated with other shuffles.

The report gives recall on violations and the false-positive rate on `ok` replies at
several thresholds, and the lowest threshold whose false-positive rate stays within
`--fpr` in both, which is how `threshold` in policy/rules.yml is chosen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
Fold = Tuple[str, np.ndarray, np.ndarray]  # name, training rows, held-out rows


@dataclass
class Replies:
    texts: List[str]
    labels: List[str]  # "ok" or the family
    files: np.ndarray  # the training file each reply comes from
    ruled: np.ndarray  # a listed rule flags it
    known_good: List[str]

    @property
    def violating(self) -> np.ndarray:
        return np.array([label != "ok" for label in self.labels])


def load_replies(policy: Any) -> Replies:
    from kefu.domain.phrasing.checker import Checker
    from kefu.domain.phrasing.tone_model import load_examples

    texts: List[str] = []
    labels: List[str] = []
    files: List[str] = []
    for path in policy.tone_model.training:
        more, their_labels = load_examples([path])
        texts += more
        labels += their_labels
        files += [path.stem] * len(more)
    known = Checker.for_policy(policy).compliant
    rules = Checker(policy.rules)
    ruled = np.array([bool(rules.check(t)) for t in texts])
    return Replies(texts, labels, np.array(files), ruled, list(known))


def by_file(replies: Replies) -> Iterator[Fold]:
    for name in sorted(set(replies.files)):
        held = replies.files == name
        yield name, np.where(~held)[0], np.where(held)[0]


def within(replies: Replies, k: int = 5, seed: int = 0) -> Iterator[Fold]:
    from sklearn.model_selection import StratifiedKFold

    strata = [f"{f}:{v}" for f, v in zip(replies.files, replies.violating, strict=True)]
    split = StratifiedKFold(k, shuffle=True, random_state=seed).split(strata, strata)
    for i, (train, held) in enumerate(split):
        yield f"{seed}.{i}", train, held


def out_of_fold(config: Any, replies: Replies, folds: Iterator[Fold]) -> np.ndarray:
    """Each reply's chance of a violation by the model that did not see it."""
    from kefu.domain.phrasing.tone_model import OK, ToneModel

    scores = np.full(len(replies.texts), np.nan)
    for _, train, held in folds:
        texts = [replies.texts[i] for i in train] + replies.known_good
        labels = [replies.labels[i] for i in train] + [OK] * len(replies.known_good)
        model = ToneModel.fit(texts, labels, config)
        scores[held] = [model.score(replies.texts[i]) for i in held]
    return scores


def rates(replies: Replies, scores: np.ndarray, threshold: float, rows: Any = None) -> Dict:
    """Recall on violations and false-positive rate on ok replies (None when none)."""
    rows = np.ones(len(scores), bool) if rows is None else rows
    flagged = replies.ruled | (scores >= threshold)
    bad, ok = replies.violating & rows, ~replies.violating & rows
    return {
        "recall": round(float(flagged[bad].mean()), 4) if bad.any() else None,
        "false_positive_rate": round(float(flagged[ok].mean()), 4) if ok.any() else None,
    }


def lowest_threshold(replies: Replies, runs: Sequence[np.ndarray], fpr: float) -> float:
    """The lowest threshold (0.01 steps) whose false-positive rate is within `fpr` in every run."""
    for threshold in np.arange(0.05, 1.0, 0.01):
        rows = [rates(replies, s, threshold)["false_positive_rate"] for s in runs]
        if all(r <= fpr for r in rows):
            return round(float(threshold), 2)
    return 0.99


def run(out: Path, policy: Any = None, repeats: int = 3, fpr: float = 0.02) -> Dict[str, Any]:
    from kefu.domain.policy import load_policy

    policy = policy or load_policy()
    config = policy.tone_model
    replies = load_replies(policy)
    runs = {"by file": out_of_fold(config, replies, by_file(replies))}
    for seed in range(repeats):
        runs[f"within, shuffle {seed}"] = out_of_fold(config, replies, within(replies, seed=seed))
    chosen = lowest_threshold(replies, list(runs.values()), fpr)
    thresholds = sorted({*THRESHOLDS, config.threshold, chosen})
    files = sorted(set(replies.files))
    summary = {
        "replies": len(replies.texts),
        "violating": int(replies.violating.sum()),
        "rules_alone": rates(replies, np.zeros(len(replies.texts)), 2.0),
        "settings": {
            "char_ngrams": list(config.char_ngrams),
            "sublinear_tf": config.sublinear_tf,
            "C": config.C,
            "threshold": config.threshold,
        },
        "fpr_target": fpr,
        "lowest_threshold_within_target": chosen,
        "runs": {
            name: {
                "by_threshold": {str(t): rates(replies, s, t) for t in thresholds},
                "by_file": {
                    f: rates(replies, s, config.threshold, replies.files == f) for f in files
                },
            }
            for name, s in runs.items()
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
    (out / "summary.md").write_text(_markdown(summary, thresholds, files), encoding="utf-8")
    return summary


def _cell(r: Dict) -> str:
    recall, fpr = r["recall"], r["false_positive_rate"]
    return " / ".join("–" if v is None else f"{v:.3f}" for v in (recall, fpr))


def _markdown(summary: Dict[str, Any], thresholds: Sequence[float], files: Sequence[str]) -> str:
    s = summary["settings"]
    runs = summary["runs"]
    md = [
        "# Tone model, grouped cross-validation",
        "",
        f"{summary['replies']} training replies ({summary['violating']} violating); "
        f"settings: char {s['char_ngrams']}-grams, sublinear tf-idf {s['sublinear_tf']}, "
        f"C {s['C']:g}, threshold {s['threshold']:g}. Rules alone (recall / FPR): "
        f"{_cell(summary['rules_alone'])}. Lowest threshold with FPR ≤ "
        f"{summary['fpr_target']} in every run: {summary['lowest_threshold_within_target']}.",
        "",
        "Recall / false-positive rate, rules and model together:",
        "",
        "| threshold | " + " | ".join(runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for t in thresholds:
        md.append(
            f"| {t:g} | "
            + " | ".join(_cell(r["by_threshold"][str(t)]) for r in runs.values())
            + " |"
        )
    md += [
        "",
        f"By file at threshold {s['threshold']:g} (held-out file in the by-file run):",
        "",
        "| file | " + " | ".join(runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for f in files:
        md.append(f"| {f} | " + " | ".join(_cell(r["by_file"][f]) for r in runs.values()) + " |")
    return "\n".join(md) + "\n"

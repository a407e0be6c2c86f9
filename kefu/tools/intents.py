"""`kefu intent add` and `kefu intent check`: a new intent in minutes, and whether it
stands apart from its neighbours before you commit to it.

`add` writes, as text (comments and order kept), everything `make train && make test`
need for the intent: its name in domain.yml, the examples in data/nlu/<topic>.yml (every
fifth held out into tests/nlu/test_nlu.yml), the response (checked by the phrasing lint),
the rule and a test story in tests/stories/test_added_intents.yml. A shop question
(`--faq`) becomes a topic of policy/faq.yml instead (its held-out questions in
tests/faq/dev_questions_<topic>.yml). Anything refused leaves every file as it was.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

import yaml

from kefu.paths import ROOT
from kefu.tools.nludata import (
    CONTRACT_INTENTS,
    FAQ_PREFIX,
    INTENT_NAME,
    DataError,
    TrainingData,
    annotate,
    clean_example,
    entity_spans,
    faq_item,
    fold,
)

MIN_EXAMPLES = 40  # tests/rasa/test_training_data.py: every intent has at least 40
HOLD_OUT_EVERY = 5  # every fifth example is held out for make eval and the test story
RASA_INTENTS = frozenset({"restart", "back", "out_of_scope", "session_start", "nlu_fallback"})
STORIES_FILE = "tests/stories/test_added_intents.yml"
TOPIC_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def lang(text: str) -> str:
    """tests/faq/'s `lang` of a question."""
    from kefu.domain.script import detect_script

    return "traditional" if detect_script(text) == "traditional" else "simplified"


def yaml_quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


@dataclass
class Edits:
    """Files changed so far, with their original text to put back on a refusal."""

    root: Path
    originals: Dict[Path, Optional[str]] = field(default_factory=dict)

    def touch(self, path: Path) -> None:
        if path not in self.originals:
            self.originals[path] = path.read_text(encoding="utf-8") if path.exists() else None

    def append(self, path: Path, text: str, header: str = "") -> None:
        self.touch(path)
        current = path.read_text(encoding="utf-8") if path.exists() else header
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current.rstrip("\n") + "\n" + text, encoding="utf-8")

    def insert_after_block(self, path: Path, key: str, text: str) -> None:
        """Insert `text` at the end of the top-level block `key:` (after its last line)."""
        self.touch(path)
        lines = path.read_text(encoding="utf-8").split("\n")
        start = next((i for i, line in enumerate(lines) if line.rstrip() == f"{key}:"), None)
        if start is None:
            raise DataError(f"{path.name} has no {key}: block")
        end = start + 1
        last = start
        while end < len(lines) and (not lines[end] or lines[end][0].isspace()):
            if lines[end].strip() and not lines[end].lstrip().startswith("#"):
                last = end
            end += 1
        lines[last + 1 : last + 1] = text.rstrip("\n").split("\n")
        path.write_text("\n".join(lines), encoding="utf-8")

    def undo(self) -> None:
        for path, text in self.originals.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text, encoding="utf-8")

    def changed(self) -> List[str]:
        return [str(p.relative_to(self.root)) for p in self.originals]


def read_examples(path: Path) -> List[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(clean_example(line))
        except DataError as e:
            raise DataError(f"{path.name}:{number}: {e}") from None
    return out


def split(examples: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(training, held out): every fifth example is held out."""
    train = [t for i, t in enumerate(examples) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
    held = [t for i, t in enumerate(examples) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    return train, held


def check_new_examples(data: TrainingData, examples: Sequence[str], path: Path) -> None:
    seen: Dict[str, int] = {}
    known = data.examples()
    held = data.held_out()
    for i, text in enumerate(examples):
        key = fold(text)
        if key in seen:
            raise DataError(f"{path.name}: duplicate: {text!r} (also example {seen[key] + 1})")
        if key in held:
            raise DataError(f"{path.name}: held out: {text!r} is in tests/nlu/test_nlu.yml")
        if key in known:
            raise DataError(
                f"{path.name}: duplicate: {text!r} is already an example of {known[key]}"
            )
        seen[key] = i


# --- add -----------------------------------------------------------------------------


def add_command(args: argparse.Namespace, stdout: IO[str]) -> int:
    if args.faq is not None and args.flow is not None:
        raise DataError("a shop question (--faq) does not open a flow (--flow): choose one")
    if args.faq is None and args.flow is None and args.answer is None:
        raise DataError("say how it is answered: --answer TEXT, --faq TOPIC_ID or --flow")
    examples = read_examples(Path(args.examples))
    if args.faq is not None:
        lines = add_faq_topic(ROOT, args.name, args.faq, examples, args.answer)
    else:
        lines = add_intent(ROOT, args.name, args.topic, examples, args.answer, args.flow)
    for line in lines:
        stdout.write(line + "\n")
    return 0


def check_name(data: TrainingData, name: str) -> None:
    if not INTENT_NAME.match(name):
        raise DataError(f"bad intent name {name!r}: lower-case letters, digits and _, 2-64 long")
    if name in CONTRACT_INTENTS or name in RASA_INTENTS:
        raise DataError(f"{name} is a contract intent (README, Intents): choose another name")
    if name in data.domain_intents():
        raise DataError(f"{name} is already an intent of domain.yml")
    domain = yaml.safe_load(data.domain_file.read_text(encoding="utf-8")) or {}
    if f"utter_{name}" in (domain.get("responses") or {}):
        raise DataError(f"domain.yml already has a response utter_{name}")


def forms(data: TrainingData) -> Dict[str, List[str]]:
    domain = yaml.safe_load(data.domain_file.read_text(encoding="utf-8")) or {}
    return {
        name: list((form or {}).get("required_slots") or [])
        for name, form in (domain.get("forms") or {}).items()
    }


def add_intent(
    root: Path,
    name: str,
    topic: Optional[str],
    examples: Sequence[str],
    answer: Optional[str],
    flow: Optional[str],
) -> List[str]:
    data = TrainingData(root)
    check_name(data, name)
    if not topic:
        raise DataError(
            f"--topic is needed: the file data/nlu/<topic>.yml ({', '.join(data.topics())})"
        )
    form = None
    if flow is not None:
        known = {f: slots for f, slots in forms(data).items() if f != "survey_form"}
        form = flow or "order_form"
        if form not in known:
            raise DataError(f"--flow {form}: not a form of domain.yml ({', '.join(known)})")
    check_new_examples(data, examples, Path("examples"))
    train, held = split(examples)
    if len(train) < MIN_EXAMPLES:
        need = MIN_EXAMPLES + -(-MIN_EXAMPLES // (HOLD_OUT_EVERY - 1))
        raise DataError(
            f"{len(examples)} examples: at least {need} are needed "
            f"({MIN_EXAMPLES} to train on, every {HOLD_OUT_EVERY}th held out)"
        )
    story_text = next((t for t in held if not entity_spans(t)), None) or held[0]
    edits = Edits(root)
    try:
        edits.touch(data.domain_file)
        data.add_domain_intent(name)
        edits.touch(data.nlu_dir / f"{topic}.yml")
        data.add_block(topic, name, [annotate(t) for t in train])
        edits.append(
            data.held_out_file,
            f"- intent: {name}\n  examples: |\n" + "".join(f"    - {annotate(t)}\n" for t in held),
        )
        steps: List[str] = []
        if answer is not None:
            edits.insert_after_block(
                data.domain_file,
                "responses",
                f"  utter_{name}:\n    - text: {yaml_quoted(answer)}",
            )
            steps.append(f"action: utter_{name}")
        if form is not None:
            steps += [f"action: {form}", f"active_loop: {form}"]
        rule_name = f"{name} opens {form}" if form else f"answer {name}"
        edits.append(
            root / "data" / "rules" / f"{topic}.yml",
            f"\n- rule: {rule_name} (kefu intent add)\n  steps:\n  - intent: {name}\n"
            + "".join(f"  - {s}\n" for s in steps),
            header='version: "3.1"\nrules:\n',
        )
        story_steps = list(steps)
        if form is not None:
            first = forms(data)[form][0] if forms(data)[form] else None
            if first:
                story_steps.append(f"slot_was_set:\n    - requested_slot: {first}")
        edits.append(
            root / STORIES_FILE,
            f"\n- story: {rule_name} (kefu intent add)\n  steps:\n"
            f"  - user: |\n      {annotate(story_text)}\n    intent: {name}\n"
            + "".join(f"  - {s}\n" for s in story_steps),
            header='version: "3.1"\n# Test stories written by `kefu intent add`.\nstories:\n',
        )
        if answer is not None:
            lint_or_refuse(root, [f"utter_{name}"])
    except BaseException:
        edits.undo()
        raise
    how = f"answered by utter_{name}" if answer is not None else ""
    if form:
        how = (how + ", then " if how else "") + f"opens {form}"
    return [
        f"added intent {name} ({how}): {len(train)} examples to data/nlu/{topic}.yml, "
        f"{len(held)} held out in tests/nlu/test_nlu.yml",
        *(f"  {path}" for path in edits.changed()),
        "next: kefu intent check " + name + ", then make train && make test",
    ]


def add_faq_topic(
    root: Path, name: str, topic_id: str, examples: Sequence[str], answer: Optional[str]
) -> List[str]:
    data = TrainingData(root)
    topic = (topic_id or name).removeprefix(FAQ_PREFIX)
    if topic_id and name.removeprefix(FAQ_PREFIX) != topic:
        raise DataError(f"the intent of a shop question is faq/{topic}: name it {topic}")
    if not TOPIC_ID.match(topic):
        raise DataError(f"bad FAQ topic id {topic!r}: lower-case letters, digits and _")
    existing = [b for b in data.blocks() if b.intent == FAQ_PREFIX + topic]
    if existing and answer is not None:
        raise DataError(f"faq/{topic} exists: its answer is edited in policy/faq.yml, not here")
    if not existing and answer is None:
        raise DataError(f"faq/{topic} is a new topic: give its answer with --answer")
    check_new_examples(data, examples, Path("examples"))
    train, held = split(examples)
    if not existing and len(train) < 10:
        raise DataError(f"{len(examples)} examples: a new FAQ topic needs at least 13")
    edits = Edits(root)
    try:
        if existing:
            block = existing[0]
            edits.touch(block.path)
            lines = block.path.read_text(encoding="utf-8").split("\n")
            assert block.last_item is not None
            lines[block.last_item + 1 : block.last_item + 1] = [
                f"{block.item_indent}- {faq_item(t)}" for t in train
            ]
            block.path.write_text("\n".join(lines), encoding="utf-8")
        else:
            assert answer is not None
            entry = (
                f"\n  {topic}:\n    answer: {yaml_quoted(answer)}\n"
                "    source: kefu\n    examples:\n"
                + "".join(f"      - {faq_item(t)}\n" for t in train)
            )
            edits.insert_after_block(data.faq_file, "topics", entry)
        questions = "".join(
            f"  - text: {yaml_quoted(t)}\n    topic: {topic}\n    lang: {lang(t)}\n    tags: []\n"
            for t in held
        )
        edits.append(
            root / "tests" / "faq" / f"dev_questions_{topic}.yml",
            questions,
            header=f"# Held out by `kefu intent add` from faq/{topic}'s examples.\nquestions:\n",
        )
        edits.append(
            root / STORIES_FILE,
            f"\n- story: shop question faq/{topic} (kefu intent add)\n  steps:\n"
            f"  - user: |\n      {held[0] if held else train[0]}\n    intent: faq/{topic}\n"
            "  - action: utter_faq\n",
            header='version: "3.1"\n# Test stories written by `kefu intent add`.\nstories:\n',
        )
        lint_or_refuse(root, [f"faq/{topic}."])
    except BaseException:
        edits.undo()
        raise
    verb = "added examples to" if existing else "added"
    return [
        f"{verb} FAQ topic faq/{topic}: {len(train)} examples to policy/faq.yml, "
        f"{len(held)} held out in tests/faq/dev_questions_{topic}.yml",
        *(f"  {path}" for path in edits.changed()),
        f"next: kefu intent check faq/{topic}, then make train && make test",
    ]


def lint_or_refuse(root: Path, wheres: Sequence[str]) -> None:
    """The phrasing lint on the new texts (and the policy loader on the files)."""
    from kefu.domain.phrasing.lint import lint
    from kefu.domain.policy import load_policy

    policy = load_policy(root / "policy")
    findings = [f for f in lint(root, policy) if any(f.where.startswith(w) for w in wheres)]
    if findings:
        raise DataError(f"phrasing lint: {findings[0]}")


# --- check ---------------------------------------------------------------------------


@dataclass
class CheckReport:
    name: str
    examples: int
    total: int
    folds: int
    recall: float
    precision: float
    f1: float
    nearest: List[Tuple[str, float]]
    taken_for: List[Tuple[str, int, str]]  # the intent's examples predicted as another
    mistaken: List[Tuple[str, int, str]]  # other intents' examples predicted as it

    @property
    def verdict(self) -> str:
        if self.f1 >= 0.9:
            return "separable"
        if self.f1 >= 0.75:
            return "close: add examples that set it apart from " + self.neighbour
        return "not separable: merge it into " + self.neighbour + " or reword the examples"

    @property
    def neighbour(self) -> str:
        confused = Counter({k: n for k, n, _ in self.taken_for + self.mistaken})
        if confused:
            return confused.most_common(1)[0][0]
        return self.nearest[0][0] if self.nearest else "its neighbours"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "intent": self.name,
            "examples": self.examples,
            "folds": self.folds,
            "recall": round(self.recall, 3),
            "precision": round(self.precision, 3),
            "f1": round(self.f1, 3),
            "nearest": [{"intent": i, "similarity": round(s, 3)} for i, s in self.nearest],
            "taken_for": [{"intent": i, "count": n, "example": e} for i, n, e in self.taken_for],
            "mistaken_for_it": [
                {"intent": i, "count": n, "example": e} for i, n, e in self.mistaken
            ],
            "verdict": self.verdict,
        }

    def lines(self) -> List[str]:
        def listing(rows: Sequence[Tuple[str, int, str]]) -> str:
            return ", ".join(f"{i} {n} (“{e}”)" for i, n, e in rows) or "none"

        return [
            f"{self.name}: {self.examples} examples; {self.folds}-fold cross-validation over "
            f"{self.total} examples of every intent",
            f"  recall {self.recall:.2f}  precision {self.precision:.2f}  F1 {self.f1:.2f}"
            f"  → {self.verdict}",
            "  nearest intents (cosine of mean n-gram vectors): "
            + ", ".join(f"{i} {s:.2f}" for i, s in self.nearest),
            f"  its examples taken for: {listing(self.taken_for)}",
            f"  taken for it: {listing(self.mistaken)}",
            "  (model: kefu/domain/char_linear.py, a class-balanced logistic regression on "
            "character 1-3-grams of the simplified text, C=1: the LinearIntentClassifier's model, "
            "without DIET)",
        ]


def corpus(data: TrainingData, name: str) -> Tuple[List[str], List[str]]:
    """Every training example with its label; FAQ topics are one intent `faq` unless
    a topic is checked."""
    texts, labels = [], []
    for block in data.blocks():
        label = block.intent
        if label.startswith(FAQ_PREFIX) and not name.startswith(FAQ_PREFIX):
            label = "faq"
        for text in block.examples:
            texts.append(text)
            labels.append(label)
    return texts, labels


def check_intent(
    root: Path, name: str, candidates: Sequence[str] = (), folds: int = 5
) -> CheckReport:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from kefu.domain.char_linear import CharLinearModel, vectoriser
    from kefu.domain.script import to_simplified

    data = TrainingData(root)
    texts, labels = corpus(data, name)
    known = {fold(t) for t in texts}
    texts += [t for t in candidates if fold(t) not in known]
    labels += [name] * (len(texts) - len(labels))
    support = labels.count(name)
    if support == 0:
        raise DataError(f"no examples of {name}: give --examples FILE for a new intent")
    if support < folds:
        raise DataError(f"{name} has {support} examples: at least {folds} for {folds} folds")
    if not 2 <= folds <= 10:
        raise DataError("--folds is between 2 and 10")
    simple = [to_simplified(t).lower() for t in texts]
    y = np.array(labels)
    predicted = np.empty(len(y), dtype=object)
    # Classes with fewer examples than folds are kept whole in the training side.
    counts = Counter(labels)
    rare = np.array([counts[label] < folds for label in labels])
    index = np.arange(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_idx, test_idx in splitter.split(index[~rare], y[~rare]):
        train = np.concatenate([index[~rare][train_idx], index[rare]])
        test = index[~rare][test_idx]
        model = CharLinearModel.fit(
            [simple[i] for i in train], list(y[train]), (1, 3), 1.0, "balanced", 1000
        )
        probabilities = model.probabilities([simple[i] for i in test])
        predicted[test] = [model.classes[k] for k in probabilities.argmax(axis=1)]
    scored = ~rare
    tp = int(((predicted == name) & (y == name) & scored).sum())
    fn = int(((predicted != name) & (y == name) & scored).sum())
    fp = int(((predicted == name) & (y != name) & scored).sum())
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def confusion(mask: Any, by: Any) -> List[Tuple[str, int, str]]:
        rows: Dict[str, List[str]] = {}
        for i in np.flatnonzero(mask & scored):
            rows.setdefault(str(by[i]), []).append(texts[i])
        ranked = sorted(rows.items(), key=lambda kv: -len(kv[1]))
        return [(k, len(v), v[0]) for k, v in ranked[:5]]

    vec = vectoriser((1, 3), sublinear_tf=True)
    matrix = vec.fit_transform(simple)
    centroids = {}
    for label in sorted(set(labels)):
        rows = matrix[np.flatnonzero(y == label)]
        centroid = np.asarray(rows.mean(axis=0)).ravel()
        centroids[label] = centroid / (np.linalg.norm(centroid) or 1.0)
    mine = centroids[name]
    nearest = sorted(
        ((label, float(mine @ c)) for label, c in centroids.items() if label != name),
        key=lambda p: -p[1],
    )[:5]
    return CheckReport(
        name,
        support,
        len(texts),
        folds,
        recall,
        precision,
        f1,
        nearest,
        confusion((y == name) & (predicted != name), predicted),
        confusion((y != name) & (predicted == name), y),
    )


def check_command(args: argparse.Namespace, stdout: IO[str]) -> int:
    candidates = read_examples(Path(args.examples)) if args.examples else []
    report = check_intent(ROOT, args.name, candidates, args.folds)
    if args.json:
        stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
    else:
        stdout.write("\n".join(report.lines()) + "\n")
    return 0

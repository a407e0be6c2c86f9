"""The training data's contract: intent names, volume, and a clean held-out split."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml

from kefu.domain.script import detect_script
from kefu.tools.evaluation import HELD_OUT, load_examples

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_INTENTS = {
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inform",
    "query_order",
    "hold_on",
    "urge",
    "complain",
    "request_return",
    "suggest",
    "praise",
    "ask_human",
    "ask_supervisor",
    "demand_compensation",
    "threaten",
    "insult",
    "report_safety",
    "out_of_scope",
}


def training_examples():
    return [
        e for path in sorted((ROOT / "data" / "nlu").rglob("*.yml")) for e in load_examples(path)
    ]


def test_domain_declares_every_contract_intent(domain):
    assert CONTRACT_INTENTS <= set(domain.intents)


def test_every_intent_has_at_least_40_varied_examples():
    examples = training_examples()
    counts = Counter(e.intent for e in examples)
    assert {i: n for i, n in counts.items() if n < 40} == {}
    assert CONTRACT_INTENTS <= set(counts)
    # No copy-paste padding: the texts of one intent are distinct.
    for intent in counts:
        texts = [e.text for e in examples if e.intent == intent]
        assert len(texts) == len(set(texts)), intent


def test_training_data_reads_like_real_chat():
    texts = [e.text for e in training_examples()]
    traditional = sum(detect_script(t) == "traditional" for t in texts)
    english = sum(bool(re.search("[A-Za-z]{2,}", t)) for t in texts)
    emoji = sum(bool(re.search("[\U0001f300-\U0001faff\u2600-\u27bf]", t)) for t in texts)
    assert traditional >= 40 and english >= 40 and emoji >= 8, (traditional, english, emoji)


def test_held_out_split_never_enters_training():
    train = {e.text for e in training_examples()}
    held_out = [e.text for e in load_examples(HELD_OUT)]
    assert [t for t in held_out if t in train] == []
    assert len(held_out) >= 10 * len(CONTRACT_INTENTS)


def test_sealed_splits_never_enter_training():
    """The judgement and FAQ splits nothing is tuned on stay out of data/nlu/ (the chats
    generated from dev splits included) and out of policy/faq.yml."""
    train = {" ".join(e.text.split()) for e in training_examples()}
    faq = yaml.safe_load((ROOT / "policy" / "faq.yml").read_text(encoding="utf-8"))
    train |= {" ".join(str(q).split()) for t in faq["topics"].values() for q in t["examples"]}
    sealed = [
        m["text"]
        for path in sorted((ROOT / "tests" / "judgement" / "sealed").glob("messages*.yml"))
        for m in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    ]
    sealed += [
        q["text"]
        for q in yaml.safe_load(
            (ROOT / "tests" / "faq" / "sealed_questions.yml").read_text(encoding="utf-8")
        )["questions"]
    ]
    assert len(sealed) > 300
    assert [t for t in sealed if " ".join(t.split()) in train] == []


def test_held_out_covers_every_intent():
    declared = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"]
    # Shop questions (faq/<topic>) have their own held-out set: tests/faq/sealed_questions.yml.
    assert {e.intent for e in load_examples(HELD_OUT)} == set(declared) - {"faq"}


def test_project_dictionary_is_valid_jieba_format():
    for line in (ROOT / "data" / "dicts" / "kefu.txt").read_text(encoding="utf-8").splitlines():
        word, freq, *tag = line.split()
        assert word and freq.isdigit() and len(tag) <= 1, line


def test_config_uses_kefu_components():
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    assert names[:2] == [
        "kefu.rasa.nlu.script_normalizer.ScriptNormalizer",
        "kefu.rasa.nlu.jieba_tokenizer.KefuJiebaTokenizer",
    ]
    for required in (
        "DIETClassifier",
        "RegexEntityExtractor",
        "EntitySynonymMapper",
        "FallbackClassifier",
        "RegexFeaturizer",
    ):
        assert required in names

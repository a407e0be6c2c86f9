"""The custom graph components, exercised as Rasa runs them."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.rasa.nlu.entity_reconciler import EntityReconciler, reconcile
from kefu.rasa.nlu.jieba_tokenizer import KefuJiebaTokenizer
from kefu.rasa.nlu.script_normalizer import ScriptNormalizer


@pytest.fixture
def context(tmp_path):
    storage = LocalModelStorage(tmp_path)
    return storage, Resource("component"), ExecutionContext(graph_schema=None)


def tokenizer(cls, context):
    storage, resource, execution = context
    config = {**cls.get_default_config(), "dictionary_path": None}
    return cls.create(config, storage, resource, execution)


MIXED = "我要 return 这个 order 好吗"


def test_plain_jieba_emits_whitespace_tokens(context):
    """The pitfall (RasaHQ/rasa#7910) this project's tokenizer exists for."""
    tokens = tokenizer(JiebaTokenizer, context).tokenize(Message({TEXT: MIXED}), TEXT)
    assert any(not t.text.strip() for t in tokens)


def test_kefu_tokenizer_drops_whitespace_tokens(context):
    tokens = tokenizer(KefuJiebaTokenizer, context).tokenize(Message({TEXT: MIXED}), TEXT)
    assert [t.text for t in tokens] == ["我要", "return", "这个", "order", "好", "吗"]
    for token in tokens:
        assert MIXED[token.start : token.end] == token.text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("叫我陈女士", ["叫", "我", "陈", "女士"]),
        ("姓李", ["姓", "李"]),
        ("我是赵先生", ["我", "是", "赵", "先生"]),
    ],
)
def test_kefu_tokenizer_splits_names_from_titles(context, text, expected):
    tokens = tokenizer(KefuJiebaTokenizer, context).tokenize(Message({TEXT: text}), TEXT)
    assert [t.text for t in tokens] == expected


def test_normalizer_records_script_and_original(context):
    storage, resource, execution = context
    normalizer = ScriptNormalizer.create({}, storage, resource, execution)
    [message] = normalizer.process([Message({TEXT: "我要轉人工"})])
    assert message.get(TEXT) == "我要转人工"
    assert message.get("script") == "traditional"
    assert message.get("original_text") == "我要轉人工"
    assert message.as_dict(only_output_properties=True)["script"] == "traditional"


def test_normalizer_rewrites_training_data(context):
    storage, resource, execution = context
    normalizer = ScriptNormalizer.create({}, storage, resource, execution)
    data = TrainingData([Message({TEXT: "謝謝", "intent": "thank"})])
    normalizer.process_training_data(data)
    assert data.training_examples[0].get(TEXT) == "谢谢"


def regex(entity, start, end, text):
    return {
        "entity": entity,
        "start": start,
        "end": end,
        "value": text[start:end],
        "extractor": "RegexEntityExtractor",
    }


def diet(entity, start, end, text):
    return {
        "entity": entity,
        "start": start,
        "end": end,
        "value": text[start:end],
        "extractor": "DIETClassifier",
    }


def test_mobile_number_after_phone_cue_is_a_phone():
    text = "我的手机号13800138000"
    both = [regex("order_id", 5, 16, text), regex("phone", 5, 16, text)]
    assert [e["entity"] for e in reconcile(both, text)] == ["phone"]


def test_mobile_like_number_after_order_cue_is_an_order_id():
    text = "订单号13800138000"
    both = [regex("phone", 3, 14, text), regex("order_id", 3, 14, text)]
    assert [e["entity"] for e in reconcile(both, text)] == ["order_id"]


def test_pattern_entities_come_only_from_the_regex_extractor():
    text = "单号2023112500123456，我姓王"
    entities = [
        diet("order_id", 2, 10, text),  # a partial DIET guess
        regex("order_id", 2, 18, text),
        diet("name", 21, 22, text),
    ]
    result = reconcile(entities, text)
    assert [(e["entity"], e["value"], e["extractor"]) for e in result] == [
        ("order_id", "2023112500123456", "RegexEntityExtractor"),
        ("name", "王", "DIETClassifier"),
    ]


def test_an_id_typed_in_groups_survives_diet_guessing_the_same_span(context):
    """DIET, trained on annotated real chats, tags 2023 1125 0012 3456 itself; its guess
    is dropped, and the id the pattern code reads from the text must take its place."""
    storage, resource, execution = context
    component = EntityReconciler.create({}, storage, resource, execution)
    text = "帮我查一下订单 2023 1125 0012 3456"
    message = Message({TEXT: text, "entities": [diet("order_id", 8, 27, text)]})
    [message] = component.process([message])
    assert [(e["entity"], e["value"]) for e in message.get("entities")] == [
        ("order_id", "2023112500123456")
    ]


def test_reconciler_component_sets_entities(context):
    storage, resource, execution = context
    component = EntityReconciler.create({}, storage, resource, execution)
    text = "电话13912345678"
    message = Message(
        {TEXT: text, "entities": [regex("order_id", 2, 13, text), regex("phone", 2, 13, text)]}
    )
    [message] = component.process([message])
    assert [e["entity"] for e in message.get("entities")] == ["phone"]


def test_normalizer_rewrites_annotated_entity_values(context):
    storage, resource, execution = context
    normalizer = ScriptNormalizer.create({}, storage, resource, execution)
    example = Message(
        {
            TEXT: "我要退貨",
            "intent": "request_return",
            "entities": [{"entity": "return_type", "start": 2, "end": 4, "value": "退貨"}],
        }
    )
    normalizer.process_training_data(TrainingData([example]))
    assert example.get("entities")[0]["value"] == "退货"


def test_benchmark_scores_the_classifier_not_the_fallback():
    from kefu.tools.evaluation import classifier_intent

    parse = {
        "intent": {"name": "nlu_fallback", "confidence": 0.45},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.45},
            {"name": "video.QUERY", "confidence": 0.41},
        ],
    }
    assert classifier_intent(parse) == "video.QUERY"
    assert classifier_intent({"intent": {"name": "greet"}}) == "greet"


LINEAR_TRAINING = {
    "request_return": ["我要退货", "想退个货", "这个能退吗", "申请退款", "退貨怎麼弄"],
    "query_order": ["我的快递到哪了", "查一下订单", "物流怎么不动了", "什么时候发货", "訂單到哪了"],
    "greet": ["你好", "在吗", "您好", "hello", "在不在"],
}


def linear_classifier(context, tokenize, config=None):
    from kefu.rasa.nlu.linear_intent_classifier import LinearIntentClassifier

    storage, resource, execution = context
    examples = [
        Message({TEXT: text, "intent": intent})
        for intent, texts in LINEAR_TRAINING.items()
        for text in texts
    ]
    tokenize.process_training_data(TrainingData(examples))
    full = {**LinearIntentClassifier.get_default_config(), **(config or {})}
    classifier = LinearIntentClassifier.create(full, storage, resource, execution)
    classifier.train(TrainingData(examples))
    return classifier, full


def parse(tokenize, classifier, text, ranking=None):
    message = Message({TEXT: text})
    if ranking is not None:
        message.set("intent_ranking", ranking)
    tokenize.process([message])
    classifier.process([message])
    return message


def test_linear_classifier_learns_and_reloads_without_pickle(context):
    from kefu.rasa.nlu.linear_intent_classifier import LinearIntentClassifier

    tokenize = tokenizer(KefuJiebaTokenizer, context)
    classifier, config = linear_classifier(context, tokenize)
    first = parse(tokenize, classifier, "我想退货可以吗")
    assert first.get("intent")["name"] == "request_return"
    assert parse(tokenize, classifier, "我的訂單到哪了").get("intent")["name"] == "query_order"
    ranking = first.get("intent_ranking")
    assert abs(sum(r["confidence"] for r in ranking) - 0.8) < 1e-4  # DIET's 0.2 absent here
    storage, resource, execution = context
    loaded = LinearIntentClassifier.load(config, storage, resource, execution)
    again = parse(tokenize, loaded, "我想退货可以吗").get("intent_ranking")
    assert [r["name"] for r in again] == [r["name"] for r in ranking]
    assert [r["confidence"] for r in again] == pytest.approx([r["confidence"] for r in ranking])
    with storage.read_from(resource) as directory:
        names = sorted(p.name for p in directory.iterdir())
    assert names == ["linear_intent_classifier.json", "linear_intent_classifier.npz"]


def test_linear_classifier_blends_with_the_ranking_before_it(context):
    tokenize = tokenizer(KefuJiebaTokenizer, context)
    classifier, _ = linear_classifier(context, tokenize, {"weight": 0.5})
    alone = {
        r["name"]: r["confidence"]
        for r in parse(tokenize, classifier, "在吗").get("intent_ranking")
    }
    diet = [{"name": "query_order", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}]
    blended = parse(tokenize, classifier, "在吗", diet)
    scores = {r["name"]: r["confidence"] for r in blended.get("intent_ranking")}
    assert scores["query_order"] == pytest.approx(alone["query_order"] + 0.45)
    assert scores["greet"] == pytest.approx(alone["greet"] + 0.05)
    assert blended.get("intent")["name"] == max(scores, key=scores.get)


def test_linear_classifier_rejects_a_weight_outside_0_1(context):
    from kefu.rasa.nlu.linear_intent_classifier import LinearIntentClassifier

    storage, resource, execution = context
    config = {**LinearIntentClassifier.get_default_config(), "weight": 1.5}
    with pytest.raises(ValueError, match="weight"):
        LinearIntentClassifier.create(config, storage, resource, execution)


def test_an_untrained_linear_classifier_leaves_messages_alone(context):
    from kefu.rasa.nlu.linear_intent_classifier import LinearIntentClassifier

    storage, resource, execution = context
    config = LinearIntentClassifier.get_default_config()
    classifier = LinearIntentClassifier.load(config, storage, resource, execution)
    message = Message({TEXT: "你好", "intent": {"name": "greet", "confidence": 0.9}})
    classifier.process([message])
    assert message.get("intent") == {"name": "greet", "confidence": 0.9}

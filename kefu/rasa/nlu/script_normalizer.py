"""Normalise traditional Chinese to simplified before tokenising."""

from __future__ import annotations

from typing import Any, Dict

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.domain.policy import load_policy
from kefu.domain.script import detect_script, expand_shorthand, normalise
from kefu.rasa.nlu.annotator import MessageAnnotator

SCRIPT = "script"
ORIGINAL_TEXT = "original_text"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ScriptNormalizer(MessageAnnotator):
    """Rewrites the message text in simplified characters.

    The original text and the script the visitor writes in are added to the parse
    result (`original_text`, `script`), so replies can mirror the visitor's script.
    Pinyin initials of policy/shorthand.yml are written out (tk → 退款), with the
    same length, for the classifiers only: `original_text` keeps what was typed.
    """

    def __init__(self, shorthand: Dict[str, str] | None = None) -> None:
        self.shorthand = shorthand or {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> ScriptNormalizer:
        return cls(load_policy().shorthand)

    def _normalise(self, message: Message, add_to_output: bool) -> None:
        text = message.get(TEXT)
        if not text:
            return
        message.set(SCRIPT, detect_script(text), add_to_output=add_to_output)
        message.set(ORIGINAL_TEXT, text, add_to_output=add_to_output)
        message.set(TEXT, expand_shorthand(normalise(text), self.shorthand))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalise(example, add_to_output=False)
            # Annotated values too, or the synonym mapper learns 退货 → 退貨.
            for entity in example.get(ENTITIES) or []:
                if isinstance(entity.get("value"), str):
                    entity["value"] = normalise(entity["value"])
        return training_data

    def annotate(self, message: Message) -> None:
        self._normalise(message, add_to_output=True)

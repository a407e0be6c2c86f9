"""Normalise traditional Chinese to simplified before tokenising."""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.domain.script import detect_script, normalise
from kefu.rasa.nlu.annotator import MessageAnnotator

SCRIPT = "script"
ORIGINAL_TEXT = "original_text"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ScriptNormalizer(MessageAnnotator):
    """Rewrites the message text in simplified characters.

    The original text and the script the visitor writes in are added to the parse
    result (`original_text`, `script`), so replies can mirror the visitor's script.
    """

    def _normalise(self, message: Message, add_to_output: bool) -> None:
        text = message.get(TEXT)
        if not text:
            return
        message.set(SCRIPT, detect_script(text), add_to_output=add_to_output)
        message.set(ORIGINAL_TEXT, text, add_to_output=add_to_output)
        message.set(TEXT, normalise(text))

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

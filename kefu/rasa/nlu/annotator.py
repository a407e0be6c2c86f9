"""The shape every kefu message component shares: built from its config, annotating
each message on its own."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message


class MessageAnnotator(GraphComponent):
    """A stateless graph component: `from_config` builds it, `annotate` does its work.

    Subclasses read the operator's policy in `from_config`, so a policy change takes
    effect when the model loads, without retraining.
    """

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> MessageAnnotator:
        return cls()

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MessageAnnotator:
        return cls.from_config(config)

    def annotate(self, message: Message) -> None:
        raise NotImplementedError

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self.annotate(message)
        return messages

"""Feeds the operator's FAQ (policy/faq.yml) to Rasa as the retrieval intent `faq`.

Named under `importers:` in config.yml beside Rasa's own RasaFileImporter, so
training, `rasa data validate`, `rasa test` and `rasa interactive` all see the FAQ
topics as `faq/<topic>` examples with the responses `utter_faq/<topic>`, and the
file an operator edits stays the only place the questions and answers live.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Union

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.domain.policy import load_policy

RETRIEVAL_INTENT = "faq"


def faq_training_data(policy: Any) -> TrainingData:
    examples = [
        Message.build(text=text, intent=f"{RETRIEVAL_INTENT}/{topic.id}")
        for topic in policy.faq.values()
        for text in topic.examples
    ]
    responses = {
        f"utter_{RETRIEVAL_INTENT}/{topic.id}": [{"text": topic.answer}]
        for topic in policy.faq.values()
    }
    return TrainingData(training_examples=examples, responses=responses)


class FaqImporter(TrainingDataImporter):
    def __init__(
        self,
        config_file: Optional[Text] = None,
        domain_path: Optional[Text] = None,
        training_data_paths: Optional[Union[List[Text], Text]] = None,
        **kwargs: Any,
    ) -> None:
        self._data: Optional[TrainingData] = None

    def _training_data(self) -> TrainingData:
        if self._data is None:
            self._data = faq_training_data(load_policy())
        return self._data

    def get_domain(self) -> Domain:
        # domain.yml declares the intent; Rasa adds the responses from the NLU data.
        return Domain.empty()

    def get_stories(self, exclusion_percentage: Optional[int] = None) -> StoryGraph:
        return StoryGraph([])

    def get_conversation_tests(self) -> StoryGraph:
        return StoryGraph([])

    def get_config(self) -> Dict:
        return {}

    def get_config_file_for_auto_config(self) -> Optional[Text]:
        return None

    def get_nlu_data(self, language: Optional[Text] = "en") -> TrainingData:
        return self._training_data()

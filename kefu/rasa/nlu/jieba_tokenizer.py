"""Jieba tokenizer that never emits whitespace tokens."""

from __future__ import annotations

import glob
import re
from typing import Iterator, List, Tuple

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class KefuJiebaTokenizer(JiebaTokenizer):
    """Rasa's JiebaTokenizer, minus whitespace tokens.

    jieba returns a token for every run of spaces in mixed Chinese/English text
    ("我要 return"). The featurizers drop those, so sequence lengths stop matching
    and DIET training fails (RasaHQ/rasa#7910).
    """

    @staticmethod
    def _load_custom_dictionary(path: str) -> None:
        """Like Rasa's, but closes the files (jieba leaves a path it opens open)."""
        import jieba

        for dictionary in sorted(glob.glob(f"{path}/*")):
            with open(dictionary, "rb") as handle:
                jieba.load_userdict(handle)

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        import jieba

        text = message.get(attribute)
        tokens = [
            Token(piece, start)
            for word, offset, _end in jieba.tokenize(text)
            if word.strip()
            for piece, start in split_name_token(word, offset)
        ]
        return self._apply_token_pattern(tokens)


# jieba glues a surname to what surrounds it (姓李, 陈女士, 刘先生); a name entity
# must start and end on a token boundary, so those tokens are split.
_NAME_GLUE = re.compile(r"^(?P<head>我姓|贵姓|姓)?(?P<core>.+?)(?P<tail>先生|女士|小姐)?$")


def split_name_token(word: str, offset: int) -> Iterator[Tuple[str, int]]:
    match = _NAME_GLUE.match(word)
    if not match or not (match.group("head") or match.group("tail")):
        yield word, offset
        return
    for part in ("head", "core", "tail"):
        piece = match.group(part)
        if piece:
            yield piece, offset + match.start(part)

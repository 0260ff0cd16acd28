"""Whitespace tokens, with every Chinese character a token of its own.

Rasa 3.6's WhitespaceTokenizer leaves a Chinese sentence as one token, so a word-level
featurizer sees each whole sentence as one unseen "word". Worse, its emoji regex spans
U+24C2..U+1F251, all of CJK: a token made only of Chinese characters counts as an emoji
and is dropped, so "能分期吗 pls" reaches the classifier as "pls" (a text with nothing
left is kept whole, which is why all-Chinese messages worked). Splitting ideographs lets the
word featurizer's 1-2 grams act as character n-grams for Chinese while English keeps
its words; "能分期吗 pls" becomes 能 / 分 / 期 / 吗 / pls. Measured against the plain
tokenizer in config.yml's header. Runs in the Rasa venv only (it imports rasa).
"""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message

IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
PIECE = re.compile(f"[{IDEOGRAPH}]|[^{IDEOGRAPH}]+")
HAS_IDEOGRAPH = re.compile(f"[{IDEOGRAPH}]")


def split_ideographs(text: str) -> list[tuple[str, int]]:
    """(piece, offset in ``text``): each ideograph alone, other runs kept whole."""
    return [(m.group(), m.start()) for m in PIECE.finditer(text)]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class CJKWhitespaceTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer, then each token split at every CJK ideograph."""

    def remove_emoji(self, text: str) -> str:
        """Keep Chinese words (Rasa's emoji regex would drop them)."""
        return text if HAS_IDEOGRAPH.search(text) else super().remove_emoji(text)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        tokens = []
        for token in super().tokenize(message, attribute):
            for piece, offset in split_ideographs(token.text):
                tokens.append(Token(piece, token.start + offset))
        return tokens

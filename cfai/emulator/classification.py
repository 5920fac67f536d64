"""Sentiment classification with VADER, shaped like `@cf/huggingface/distilbert-sst-2-int8`'s output."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from cfai.emulator.envelope import InputError
from cfai.emulator.textgen import first_tokens

# VADER's compound score is in [-1, 1]; a steep logistic gives distilbert-like confident scores.
_STEEPNESS = 8.0
MAX_TOKENS = 512


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def warm_up() -> None:
    """Load the lexicon now (about 0.1 s) rather than on the first request."""
    _analyzer()


def classify(text: str, max_tokens: int = MAX_TOKENS) -> list[dict[str, Any]]:
    """`[{"label": "NEGATIVE", "score": p}, {"label": "POSITIVE", "score": 1 - p}]`, scores summing to 1.

    Only the first `max_tokens` tokens are read, as distilbert reads at most 512: VADER's time grows with
    the square of the text's length (a 150 KB text took 36 s), and a longer text would change nothing
    on the real model either.
    """
    compound = _analyzer().polarity_scores(first_tokens(text, max_tokens))["compound"]
    positive = 1.0 / (1.0 + math.exp(-_STEEPNESS * compound))
    return [{"label": "NEGATIVE", "score": 1.0 - positive}, {"label": "POSITIVE", "score": positive}]


def parse_classification(body: dict[str, Any]) -> str:
    if "text" not in body:
        raise InputError("required properties at '/' are 'text'")
    text = body["text"]
    if not isinstance(text, str):
        raise InputError("Type mismatch of '/text', 'string' expected")
    if not text:
        raise InputError("'/text' must not be empty (minLength 1)")
    return text

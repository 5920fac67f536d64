"""Deterministic text embeddings: unit vectors seeded by the text's words, so shared words mean closeness.

Each word maps to a fixed random direction (seeded by a hash of the word); a text's vector is the sum of
its words' directions plus a small text-specific component, normalised to length 1. Identical texts get
identical vectors; texts sharing words get a higher cosine similarity than unrelated ones.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from functools import lru_cache
from typing import Any

import numpy as np

from cfai.emulator.envelope import InputError

MAX_TEXTS = 100
MAX_WORDS = 512
_WORDS = re.compile(r"\w+")


def _seed(kind: str, value: str, dims: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{kind}:{dims}:{value}".encode()).digest()[:8], "big")


@lru_cache(maxsize=2048)  # bounded: at most ~16 MB of word vectors
def _word_vector(word: str, dims: int) -> np.ndarray:
    return np.random.default_rng(_seed("w", word, dims)).standard_normal(dims)


def embed(text: str, dims: int, max_words: int = MAX_WORDS) -> list[float]:
    """Only the first `max_words` words count, as the real models read a bounded window (512 tokens for
    the bge family); the text-specific part still depends on the whole text."""
    vec = 0.3 * np.random.default_rng(_seed("t", text, dims)).standard_normal(dims)
    for match in itertools.islice(_WORDS.finditer(text.lower()), max_words):
        vec += _word_vector(match.group(), dims)
    norm = float(np.linalg.norm(vec))
    return (vec / norm).tolist() if norm else [1.0] + [0.0] * (dims - 1)


def parse_texts(value: Any, field: str = "text") -> list[str]:
    """A string or a list of 1..100 strings."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        texts = value
    else:
        raise InputError(f"Type mismatch of '/{field}', 'string' or 'array of strings' expected")
    if not texts:
        raise InputError(f"'/{field}' must contain at least 1 item")
    if len(texts) > MAX_TEXTS:
        raise InputError(f"'/{field}' must contain at most {MAX_TEXTS} items, got {len(texts)}")
    if any(not t for t in texts):
        raise InputError(f"'/{field}' items must not be empty (minLength 1)")
    return texts

"""Simulated summarization (extractive: the first sentences) and translation (clearly marked, not real)."""

from __future__ import annotations

import re
from typing import Any

from cfai.emulator.envelope import InputError
from cfai.emulator.textgen import count_tokens, tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SUMMARY_SENTENCES = 3


def _string(body: dict[str, Any], key: str, *, required: bool = True, default: str = "") -> str:
    if key not in body or body[key] is None:
        if required:
            raise InputError(f"required properties at '/' are '{key}'")
        return default
    if not isinstance(body[key], str):
        raise InputError(f"Type mismatch of '/{key}', 'string' expected")
    if required and not body[key]:
        raise InputError(f"'/{key}' must not be empty (minLength 1)")
    return body[key]


def summarize(body: dict[str, Any]) -> dict[str, str]:
    text = _string(body, "input_text")
    max_length = body.get("max_length", 1024)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError("Type mismatch of '/max_length', positive 'integer' expected")
    summary = ""
    for sentence in _SENTENCE_END.split(text.strip())[:SUMMARY_SENTENCES]:
        candidate = f"{summary} {sentence}".strip()
        if count_tokens(candidate) > max_length:
            break
        summary = candidate
    if not summary:  # the first sentence alone is too long: cut it at max_length tokens
        summary = "".join(tokenize(text.strip())[:max_length]).strip()
    return {"summary": summary}


def translate(body: dict[str, Any]) -> dict[str, str]:
    text = _string(body, "text")
    target = _string(body, "target_lang")
    _string(body, "source_lang", required=False, default="en")
    return {"translated_text": f"[{target}] {text}"}

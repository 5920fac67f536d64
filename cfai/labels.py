"""Mapping the user's labels (`1/0`, `pos/neg`, `Positive`, ...) onto the labels a model answers with.

A mapping is a dict from each user label to a model label, to some other string (the user label kept as
is: it can never match a prediction, so it counts as a miss), or to None (left out of the evaluation).
`guess_mapping` fills it in; the page lets the user change any entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"

# Normalised spellings of each polarity, for user labels and model labels alike.
SYNONYMS: dict[str, frozenset[str]] = {
    POSITIVE: frozenset({"positive", "pos", "p", "+", "good", "yes", "true", "t", "y", "label_1", "label1"}),
    NEGATIVE: frozenset({"negative", "neg", "n", "-", "bad", "no", "false", "f", "label_0", "label0"}),
    NEUTRAL: frozenset({"neutral", "neu", "mixed", "none"}),
}
_NUMERIC_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")


def normalise(label: str) -> str:
    """Lower case, trimmed, inner spaces and dashes as underscores ('Label 1' == 'label_1')."""
    text = str(label).strip().lower()
    if text in {"+", "-"}:
        return text
    return re.sub(r"[\s\-]+", "_", text).strip("_.")


def polarity(label: str) -> str | None:
    """positive / negative / neutral when the label is a known spelling of one, else None."""
    key = normalise(label)
    for name, spellings in SYNONYMS.items():
        if key in spellings:
            return name
    return None


def guess_mapping(user_labels: Iterable[str], model_labels: Iterable[str]) -> dict[str, str | None]:
    """Best guess for each user label; unrecognised ones are kept as they are (they count as misses).

    In order: the same label ignoring case and spacing; the same polarity (pos -> POSITIVE); a prefix
    ('neg' -> 'NEGATIVE'); numbers on a positive/negative model split at their midpoint (0/1, -1/1, 1..5:
    below -> negative, above -> positive, the middle kept as is).
    """
    users = list(dict.fromkeys(str(u) for u in user_labels))
    models = list(dict.fromkeys(str(m) for m in model_labels))
    by_norm = {normalise(m): m for m in models}
    by_polarity = {p: m for m in models if (p := polarity(m))}
    numbers = _numeric_values(users)

    mapping: dict[str, str | None] = {}
    for user in users:
        key = normalise(user)
        guess = by_norm.get(key) or by_polarity.get(polarity(user) or "")
        if guess is None and len(key) >= 2:
            prefixed = [m for m in models if normalise(m).startswith(key) or key.startswith(normalise(m))]
            guess = prefixed[0] if len(prefixed) == 1 else None
        if guess is None and numbers is not None and {POSITIVE, NEGATIVE} <= by_polarity.keys():
            guess = _numeric_guess(numbers[user], numbers, by_polarity)
        mapping[user] = guess if guess is not None else user
    return mapping


def _numeric_values(labels: list[str]) -> dict[str, float] | None:
    if len(labels) < 2 or not all(_NUMERIC_RE.match(label.strip()) for label in labels):
        return None
    return {label: float(label) for label in labels}


def _numeric_guess(value: float, numbers: dict[str, float], by_polarity: dict[str, str]) -> str | None:
    middle = (min(numbers.values()) + max(numbers.values())) / 2
    if value < middle:
        return by_polarity[NEGATIVE]
    if value > middle:
        return by_polarity[POSITIVE]
    return None


def apply_mapping(expected: pd.Series, mapping: Mapping[str, str | None]) -> pd.Series:
    """Mapped expected labels; <NA> where the row has no label or its label is left out (mapped to None).
    A label missing from the mapping is kept as is."""
    labels = expected.astype("string")
    present = labels.dropna().unique()
    lookup = {label: mapping.get(label, label) for label in present}  # a stored None stays None
    return labels.map(lookup, na_action="ignore").astype("string")


def model_labels_from_scores(score_lists: Iterable[Any]) -> list[str]:
    """Every label the model answered with (from the full scores, not just winners), with known negatives
    before positives, so charts and matrices read the same way each time. Each item is a `{label: score}`
    dict, a list of `{"label", "score"}` entries, or None (a failed row)."""
    seen: dict[str, None] = {}
    for scores in score_lists:
        if isinstance(scores, Mapping):
            labels = [scores["label"]] if "label" in scores and "score" in scores else list(scores)
        else:
            labels = [e.get("label") for e in scores or () if isinstance(e, Mapping)]
        for label in labels:
            if label is not None:
                seen.setdefault(str(label))
    order = {NEGATIVE: 0, NEUTRAL: 1, POSITIVE: 2}
    return sorted(seen, key=lambda label: (order.get(polarity(label) or "", 3), label))

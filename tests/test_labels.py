"""Guessing and applying the mapping from a user's labels to a model's labels."""

from __future__ import annotations

import pandas as pd
import pytest

from cfai.labels import apply_mapping, guess_mapping, model_labels_from_scores, normalise, polarity

SST2 = ["NEGATIVE", "POSITIVE"]


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        (["1", "0"], {"1": "POSITIVE", "0": "NEGATIVE"}),
        (["pos", "neg"], {"pos": "POSITIVE", "neg": "NEGATIVE"}),
        (["positive", "negative"], {"positive": "POSITIVE", "negative": "NEGATIVE"}),
        (["Positive ", "NEGATIVE"], {"Positive ": "POSITIVE", "NEGATIVE": "NEGATIVE"}),
        (["+", "-"], {"+": "POSITIVE", "-": "NEGATIVE"}),
        (["good", "bad"], {"good": "POSITIVE", "bad": "NEGATIVE"}),
        (["-1", "1"], {"-1": "NEGATIVE", "1": "POSITIVE"}),
        (["1", "2"], {"1": "NEGATIVE", "2": "POSITIVE"}),  # 1 = negative, 2 = positive (Yelp polarity)
        (["posi", "nega"], {"posi": "POSITIVE", "nega": "NEGATIVE"}),  # prefixes
    ],
)
def test_common_label_schemes_are_guessed(users, expected):
    assert guess_mapping(users, SST2) == expected


def test_star_ratings_split_at_the_middle_and_keep_the_middle_as_is():
    mapping = guess_mapping(["1", "2", "3", "4", "5"], SST2)
    assert mapping == {"1": "NEGATIVE", "2": "NEGATIVE", "3": "3", "4": "POSITIVE", "5": "POSITIVE"}


def test_unknown_labels_are_kept_as_is():
    assert guess_mapping(["pos", "neg", "neutral", "spam"], SST2) == {
        "pos": "POSITIVE", "neg": "NEGATIVE", "neutral": "neutral", "spam": "spam",
    }


def test_generic_model_labels():
    assert guess_mapping(["0", "1"], ["LABEL_0", "LABEL_1"]) == {"0": "LABEL_0", "1": "LABEL_1"}
    assert guess_mapping(["label 1", "Label-0"], ["LABEL_0", "LABEL_1"]) == {"label 1": "LABEL_1", "Label-0": "LABEL_0"}


def test_numbers_are_not_guessed_without_a_polarity_pair():
    assert guess_mapping(["0", "1"], ["sports", "politics"]) == {"0": "0", "1": "1"}


def test_normalise_and_polarity():
    assert normalise("  Label 1 ") == "label_1" and normalise("-") == "-"
    assert polarity("POS") == "positive" and polarity("Neg.") == "negative" and polarity("meh") is None


def test_apply_mapping_maps_keeps_and_leaves_out():
    expected = pd.Series(["pos", "neg", None, "neutral", "spam", "pos"], dtype="string")
    mapped = apply_mapping(expected, {"pos": "POSITIVE", "neg": "NEGATIVE", "neutral": None})
    assert mapped.tolist() == ["POSITIVE", "NEGATIVE", pd.NA, pd.NA, "spam", "POSITIVE"]
    assert str(mapped.dtype) == "string"


def test_model_labels_come_from_full_score_lists_in_a_stable_order():
    scores = [[{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}], None, []]
    assert model_labels_from_scores(scores) == ["NEGATIVE", "POSITIVE"]
    assert model_labels_from_scores([[{"label": "b"}, {"label": "a"}]]) == ["a", "b"]
    assert model_labels_from_scores([{"POSITIVE": 0.7, "NEGATIVE": 0.3}, None]) == ["NEGATIVE", "POSITIVE"]

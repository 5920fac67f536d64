"""Metrics checked against values worked out by hand (see the table in `frame`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cfai.evaluation import (
    ABSTAIN,
    confident_mistakes,
    correctness,
    coverage_curve,
    evaluate,
    per_label_metrics,
)

LABELS = ["NEGATIVE", "POSITIVE"]
NA = pd.NA


@pytest.fixture
def frame() -> pd.DataFrame:
    #  row expected  predicted  score   note
    #  1   POS       POS        0.90    right
    #  2   POS       NEG        0.80    wrong
    #  3   NEG       NEG        0.70    right
    #  4   NEG       POS        0.95    wrong
    #  5   POS       POS        0.60    right
    #  6   NEG       NEG        0.99    right
    #  7   POS       -          -       failed: not scored
    #  8   -         POS        0.90    unlabelled: not scored
    #  9   POS       NEG        0.55    wrong
    p, n = "POSITIVE", "NEGATIVE"
    return pd.DataFrame({
        "row": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "text": [f"text {i}" for i in range(1, 10)],
        "expected": pd.array([p, p, n, n, p, n, p, NA, p], dtype="string"),
        "predicted": pd.array([p, n, n, p, p, n, NA, p, n], dtype="string"),
        "score": [0.9, 0.8, 0.7, 0.95, 0.6, 0.99, np.nan, 0.9, 0.55],
    })


def test_counts_accuracy_and_per_label_figures(frame):
    ev = evaluate(frame, labels=LABELS)
    assert (ev.n_rows, ev.n_failed, ev.n_unlabelled, ev.n_scored, ev.n_answered, ev.n_correct) == (9, 1, 1, 7, 7, 4)
    assert ev.accuracy == pytest.approx(4 / 7) and ev.coverage == 1 and ev.n_abstained == 0
    by_label = ev.per_label.set_index("label")
    # POSITIVE: TP 2 (rows 1, 5), predicted 3 (1, 4, 5), support 4 (1, 2, 5, 9)
    assert by_label.loc["POSITIVE", "precision"] == pytest.approx(2 / 3)
    assert by_label.loc["POSITIVE", "recall"] == pytest.approx(1 / 2)
    assert by_label.loc["POSITIVE", "f1"] == pytest.approx(4 / 7)
    # NEGATIVE: TP 2 (rows 3, 6), predicted 4 (2, 3, 6, 9), support 3 (3, 4, 6)
    assert by_label.loc["NEGATIVE", "precision"] == pytest.approx(1 / 2)
    assert by_label.loc["NEGATIVE", "recall"] == pytest.approx(2 / 3)
    assert by_label.loc["NEGATIVE", "f1"] == pytest.approx(4 / 7)
    assert by_label["support"].tolist() == [3, 4]
    assert ev.macro_f1 == pytest.approx(4 / 7)


def test_confusion_matrix_rows_are_expected_columns_predicted(frame):
    cm = evaluate(frame, labels=LABELS).confusion
    assert cm.index.tolist() == LABELS and cm.columns.tolist() == LABELS
    assert cm.loc["NEGATIVE"].tolist() == [2, 1]  # rows 3, 6 right; row 4 called positive
    assert cm.loc["POSITIVE"].tolist() == [2, 2]  # rows 2, 9 called negative; rows 1, 5 right
    assert int(cm.to_numpy().sum()) == 7


def test_threshold_moves_low_confidence_rows_to_abstain(frame):
    ev = evaluate(frame, threshold=0.75, labels=LABELS)
    # answered: rows 1, 2, 4, 6 (score >= 0.75); abstained: 3, 5, 9
    assert (ev.n_answered, ev.n_correct, ev.n_abstained) == (4, 2, 3)
    assert ev.accuracy == pytest.approx(0.5) and ev.coverage == pytest.approx(4 / 7)
    assert ev.confusion.columns.tolist() == [*LABELS, ABSTAIN]
    assert ev.confusion.loc["NEGATIVE"].tolist() == [1, 1, 1]
    assert ev.confusion.loc["POSITIVE"].tolist() == [1, 1, 2]
    by_label = ev.per_label.set_index("label")
    assert by_label["precision"].tolist() == [0.5, 0.5] and by_label["recall"].tolist() == [0.5, 0.5]


def test_coverage_curve_matches_hand_values(frame):
    curve = coverage_curve(frame, [0.0, 0.6, 0.75, 0.9, 0.96, 1.0])
    assert curve["answered"].tolist() == [7, 6, 4, 3, 1, 0]
    assert curve["coverage"].tolist() == pytest.approx([1, 6 / 7, 4 / 7, 3 / 7, 1 / 7, 0])
    assert curve["accuracy"].iloc[:5].tolist() == pytest.approx([4 / 7, 4 / 6, 0.5, 2 / 3, 1.0])
    assert math.isnan(curve["accuracy"].iloc[5])


def test_coverage_curve_agrees_with_evaluate_on_random_data():
    rng = np.random.default_rng(7)
    n = 500
    expected = rng.choice(LABELS, n)
    predicted = np.where(rng.random(n) < 0.8, expected, rng.choice(LABELS, n))
    frame = pd.DataFrame({"expected": expected, "predicted": predicted, "score": rng.random(n).round(2)})
    curve = coverage_curve(frame).set_index("threshold")
    for t in (0.0, 0.25, 0.5, 0.73, 0.99):
        ev = evaluate(frame, threshold=t)
        assert curve.loc[t, "answered"] == ev.n_answered
        assert curve.loc[t, "accuracy"] == pytest.approx(ev.accuracy)


def test_f1_rules_for_never_predicted_and_absent_labels():
    frame = pd.DataFrame({"expected": ["POSITIVE", "POSITIVE"], "predicted": ["POSITIVE", "NEGATIVE"],
                          "score": [0.9, 0.9]})
    table = per_label_metrics(frame["expected"], frame["predicted"], ["NEGATIVE", "POSITIVE", "NEUTRAL"])
    neg, pos, neu = (table.iloc[i] for i in range(3))
    assert neg["precision"] == 0 and math.isnan(neg["recall"]) and neg["f1"] == 0  # predicted, never expected
    assert pos["precision"] == 1 and pos["recall"] == 0.5 and pos["f1"] == pytest.approx(2 / 3)
    assert math.isnan(neu["precision"]) and math.isnan(neu["f1"])  # neither: undefined
    # macro F1 averages the labels that occur (NEUTRAL does not): (0 + 2/3) / 2
    assert evaluate(frame, labels=["NEGATIVE", "POSITIVE", "NEUTRAL"]).macro_f1 == pytest.approx(1 / 3)


def test_labels_kept_as_is_get_their_own_row():
    frame = pd.DataFrame({"expected": ["neutral", "POSITIVE"], "predicted": ["POSITIVE", "POSITIVE"],
                          "score": [0.6, 0.9]})
    ev = evaluate(frame, labels=LABELS)
    assert ev.confusion.index.tolist() == ["NEGATIVE", "POSITIVE", "neutral"]
    assert ev.confusion.loc["neutral", "POSITIVE"] == 1 and ev.accuracy == 0.5


def test_nothing_scored_gives_none_not_errors():
    frame = pd.DataFrame({"expected": pd.array([NA, "POSITIVE"], dtype="string"),
                          "predicted": pd.array(["POSITIVE", NA], dtype="string"), "score": [0.9, np.nan]})
    ev = evaluate(frame, labels=LABELS)
    assert ev.accuracy is None and ev.coverage is None and ev.macro_f1 is None
    assert int(ev.confusion.to_numpy().sum()) == 0
    assert coverage_curve(frame)["answered"].eq(0).all()


def test_most_confident_mistakes_first(frame):
    mistakes = confident_mistakes(frame, n=2)
    assert mistakes["row"].tolist() == [4, 2]
    assert mistakes.columns.tolist() == ["row", "text", "expected", "predicted", "score"]
    assert confident_mistakes(frame)["row"].tolist() == [4, 2, 9]


def test_correctness_is_na_where_not_scored(frame):
    values = correctness(frame["expected"], frame["predicted"])
    assert values.tolist() == [True, False, True, False, True, True, NA, NA, False]


def test_five_thousand_rows_evaluate_fast():
    import time

    rng = np.random.default_rng(1)
    n = 5000
    expected = rng.choice(LABELS, n)
    frame = pd.DataFrame({"expected": expected, "predicted": rng.choice(LABELS, n), "score": rng.random(n)})
    start = time.perf_counter()
    evaluate(frame, threshold=0.5)
    coverage_curve(frame)
    confident_mistakes(frame)
    assert time.perf_counter() - start < 1.0

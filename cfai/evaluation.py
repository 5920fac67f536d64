"""Scoring a classifier on labelled rows: accuracy, per-label precision/recall/F1, the confusion matrix,
a confidence threshold with an abstain bucket, the accuracy/coverage trade-off, and the worst mistakes.

Input is a DataFrame with `expected` (already mapped to model labels; <NA> = not scored), `predicted`
(<NA> = the request failed or has not run) and `score` (the winning label's confidence). A row is *scored*
when it has both; it is *answered* when its score is at or above the threshold, else it *abstains*.
Accuracy and the per-label figures are over answered rows; coverage is answered / scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cfai.labels import apply_mapping

ABSTAIN = "(abstain)"
THRESHOLD_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


@dataclass
class Evaluation:
    threshold: float
    n_rows: int  # every row in the batch
    n_failed: int  # labelled rows without a prediction (error, or not run yet): not scored
    n_unlabelled: int  # rows without an expected label (none given, or left out by the mapping)
    n_scored: int  # rows with an expected label and a prediction
    n_answered: int  # scored rows at or above the threshold
    n_correct: int  # answered rows where prediction == expected
    accuracy: float | None  # n_correct / n_answered
    coverage: float | None  # n_answered / n_scored
    macro_f1: float | None
    per_label: pd.DataFrame  # label, precision, recall, f1, support (answered rows; NaN = undefined)
    confusion: pd.DataFrame  # index: expected label, columns: predicted label (+ ABSTAIN); counts

    @property
    def n_abstained(self) -> int:
        return self.n_scored - self.n_answered


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    mask = frame["expected"].notna() & frame["predicted"].notna()
    scored = frame.loc[mask, ["expected", "predicted", "score"]].copy()
    scored["expected"] = scored["expected"].astype(str)
    scored["predicted"] = scored["predicted"].astype(str)
    scored["score"] = pd.to_numeric(scored["score"], errors="coerce").fillna(0.0).astype(float)
    return scored


def label_order(frame: pd.DataFrame, labels: Sequence[str] | None = None) -> list[str]:
    """The given labels first (the model's, in a stable order), then any other label seen."""
    ordered = list(dict.fromkeys(labels or []))
    for column in ("predicted", "expected"):
        for value in sorted(frame[column].dropna().astype(str).unique()):
            if value not in ordered:
                ordered.append(value)
    return ordered


def confusion_matrix(
    expected: pd.Series, predicted: pd.Series, labels: Sequence[str], abstain: pd.Series | None = None
) -> pd.DataFrame:
    """Counts with expected labels as rows and predicted labels as columns; with `abstain` (a boolean
    mask) those rows go to an ABSTAIN column instead of their predicted one."""
    predicted = predicted.astype(object)
    columns = list(labels)
    if abstain is not None:
        predicted = predicted.where(~abstain.to_numpy(), ABSTAIN)
        columns.append(ABSTAIN)
    table = pd.crosstab(
        pd.Categorical(expected, categories=list(labels)),
        pd.Categorical(predicted, categories=columns),
        dropna=False,
    )
    table.index.name, table.columns.name = "expected", "predicted"
    return table.reindex(index=list(labels), columns=columns, fill_value=0).astype(int)


def per_label_metrics(expected: pd.Series, predicted: pd.Series, labels: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per label. Undefined values (nothing predicted as the label, or
    no rows of it) are NaN, except that F1 is 0 when precision or recall is 0."""
    exp = expected.to_numpy(dtype=object)
    pred = predicted.to_numpy(dtype=object)
    rows = []
    for label in labels:
        true_pos = int(np.sum((exp == label) & (pred == label)))
        predicted_n = int(np.sum(pred == label))
        support = int(np.sum(exp == label))
        precision = true_pos / predicted_n if predicted_n else np.nan
        recall = true_pos / support if support else np.nan
        if precision == 0 or recall == 0:
            f1 = 0.0
        elif np.isnan(precision) or np.isnan(recall):
            f1 = np.nan
        else:
            f1 = 2 * precision * recall / (precision + recall)
        rows.append({"label": label, "precision": precision, "recall": recall, "f1": f1,
                     "support": support, "predicted": predicted_n})
    return pd.DataFrame(rows, columns=["label", "precision", "recall", "f1", "support", "predicted"])


def evaluate(frame: pd.DataFrame, threshold: float = 0.0, labels: Sequence[str] | None = None) -> Evaluation:
    labels = label_order(frame, labels)
    scored = _scored(frame)
    answered_mask = scored["score"] >= threshold
    answered = scored.loc[answered_mask]
    n_scored, n_answered = len(scored), len(answered)
    n_correct = int((answered["expected"] == answered["predicted"]).sum())
    per_label = per_label_metrics(answered["expected"], answered["predicted"], labels)
    present = per_label[(per_label["support"] > 0) | (per_label["predicted"] > 0)]
    return Evaluation(
        threshold=threshold,
        n_rows=len(frame),
        n_failed=int((frame["expected"].notna() & frame["predicted"].isna()).sum()),
        n_unlabelled=int(frame["expected"].isna().sum()),
        n_scored=n_scored,
        n_answered=n_answered,
        n_correct=n_correct,
        accuracy=n_correct / n_answered if n_answered else None,
        coverage=n_answered / n_scored if n_scored else None,
        macro_f1=float(present["f1"].fillna(0.0).mean()) if len(present) else None,
        per_label=per_label,
        confusion=confusion_matrix(
            scored["expected"], scored["predicted"], labels,
            abstain=~answered_mask if threshold > 0 else None,
        ),
    )


def coverage_curve(frame: pd.DataFrame, thresholds: Sequence[float] | np.ndarray = THRESHOLD_GRID) -> pd.DataFrame:
    """For each threshold: coverage (share of scored rows answered) and accuracy on those answered.
    Vectorised: sort scores once, then a cumulative count of correct answers and a binary search."""
    scored = _scored(frame)
    thresholds = np.asarray(thresholds, dtype=float)
    scores = scored["score"].to_numpy()
    correct = (scored["expected"] == scored["predicted"]).to_numpy()
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_correct = scores[order], correct[order]
    # Correct answers among rows whose score is >= t: total minus those strictly below t.
    below = np.searchsorted(sorted_scores, thresholds, side="left")
    correct_below = np.concatenate([[0], np.cumsum(sorted_correct)])[below]
    answered = len(scores) - below
    correct_answered = int(correct.sum()) - correct_below
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(answered > 0, correct_answered / np.maximum(answered, 1), np.nan)
        coverage = answered / len(scores) if len(scores) else np.full(len(thresholds), np.nan)
    return pd.DataFrame({"threshold": thresholds, "coverage": coverage, "accuracy": accuracy, "answered": answered})


def confident_mistakes(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The scored rows the model got wrong, most confident first (ties: original order)."""
    mask = frame["expected"].notna() & frame["predicted"].notna()
    wrong = frame.loc[mask & (frame["expected"].astype(str) != frame["predicted"].astype(str))]
    columns = [c for c in ("row", "text", "expected", "predicted", "score") if c in frame.columns]
    return wrong.sort_values("score", ascending=False, kind="stable").head(n)[columns].reset_index(drop=True)


def correctness(expected: pd.Series, predicted: pd.Series) -> pd.Series:
    """True/False where both labels are present, <NA> otherwise (not scored)."""
    both = expected.notna() & predicted.notna()
    values = pd.Series(pd.NA, index=expected.index, dtype="boolean")
    values[both] = expected[both].astype(str) == predicted[both].astype(str)
    return values


def with_scoring_columns(results: pd.DataFrame, mapping: Mapping[str, str | None]) -> pd.DataFrame:
    """The results table plus `expected_as` (the expected label mapped to the model's) and `correct`.
    Evaluation functions read `expected_as` as `expected` (see `scoring_input`)."""
    out = results.copy()
    out["expected_as"] = apply_mapping(out["expected"], mapping)
    out["correct"] = correctness(out["expected_as"], out["predicted"])
    return out


def scoring_input(scored: pd.DataFrame) -> pd.DataFrame:
    """What evaluate / coverage_curve / confident_mistakes expect: mapped labels in `expected`, the user's
    own label kept as `expected_original` for display."""
    out = scored.rename(columns={"expected": "expected_original"})
    return out.rename(columns={"expected_as": "expected"})

"""Altair charts for the classification page. Each builder takes small, already aggregated data (scores
of one text, a confusion matrix, a 101-point coverage curve), so nothing large is embedded in the page."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from cfai.classify import LabelScore
from cfai.evaluation import ABSTAIN

WINNER_COLOR, OTHER_COLOR = "#4c78a8", "#bab0ac"
ACCURACY_COLOR, COVERAGE_COLOR = "#54a24b", "#4c78a8"


def _title(text: str, subtitle: str = "") -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=[subtitle] if subtitle else [], anchor="start")


def scores_chart(scores: Sequence[LabelScore]) -> alt.Chart:
    """Horizontal bars, highest score on top, the winning label highlighted and each score written out."""
    frame = pd.DataFrame({"label": [s.label for s in scores], "score": [s.score for s in scores]})
    frame["winner"] = frame.index == 0  # `scores` is sorted, highest first
    order = frame["label"].tolist()
    base = alt.Chart(frame).encode(
        y=alt.Y("label:N", sort=order, title=None),
        x=alt.X("score:Q", scale=alt.Scale(domain=[0, 1]), title="score", axis=alt.Axis(format=".0%")),
        tooltip=[alt.Tooltip("label:N"), alt.Tooltip("score:Q", format=".4f")],
    )
    bars = base.mark_bar().encode(
        color=alt.condition("datum.winner", alt.value(WINNER_COLOR), alt.value(OTHER_COLOR)),
    )
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("score:Q", format=".1%"))
    # A step, not a fixed height: a fixed height on a discrete axis collapses the bands in Streamlit 1.67.
    return (bars + text).properties(height=alt.Step(34), title=_title("Scores by label"))


def confusion_long(confusion: pd.DataFrame) -> pd.DataFrame:
    """The matrix as tidy rows (expected, predicted, count, share of the expected row)."""
    long = confusion.stack().rename("count").reset_index()
    long.columns = ["expected", "predicted", "count"]
    totals = long.groupby("expected", sort=False)["count"].transform("sum")
    long["row_share"] = (long["count"] / totals.where(totals > 0)).fillna(0.0)
    return long


def confusion_heatmap(confusion: pd.DataFrame) -> alt.Chart:
    """Cells coloured by the share of their expected row (so a rare label reads as well as a common one),
    each labelled with its count; the abstain column is grey-blue so it is not mistaken for a label."""
    long = confusion_long(confusion)
    rows, columns = confusion.index.tolist(), confusion.columns.tolist()
    base = alt.Chart(long).encode(
        x=alt.X("predicted:N", sort=columns, title="predicted", axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("expected:N", sort=rows, title="expected"),
        tooltip=[
            "expected:N", "predicted:N", alt.Tooltip("count:Q", format=","),
            alt.Tooltip("row_share:Q", title="share of expected row", format=".1%"),
        ],
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("row_share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(title="share of row", format=".0%")),
        opacity=alt.condition(f"datum.predicted == '{ABSTAIN}'", alt.value(0.6), alt.value(1.0)),
    )
    counts = base.mark_text(fontSize=14).encode(
        text=alt.Text("count:Q", format=","),
        color=alt.condition("datum.row_share > 0.5", alt.value("white"), alt.value("black")),
    )
    return (cells + counts).properties(
        width=alt.Step(90), height=alt.Step(56),  # steps: fixed sizes collapse discrete axes (see above)
        title=_title("Confusion matrix", "rows: expected label, columns: predicted; colour = share of the row"),
    )


def coverage_chart(curve: pd.DataFrame, threshold: float) -> alt.Chart:
    """Accuracy and coverage against the confidence threshold, with a rule at the chosen threshold."""
    long = curve.melt(id_vars=["threshold"], value_vars=["accuracy", "coverage"], var_name="measure",
                      value_name="value").dropna(subset=["value"])
    lines = alt.Chart(long).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("threshold:Q", title="confidence threshold (answers below it abstain)",
                scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        color=alt.Color("measure:N", scale=alt.Scale(domain=["accuracy", "coverage"],
                                                    range=[ACCURACY_COLOR, COVERAGE_COLOR]), title=None),
        tooltip=[alt.Tooltip("threshold:Q", format=".2f"), "measure:N", alt.Tooltip("value:Q", format=".1%")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(strokeDash=[4, 3], color="#e45756").encode(
        x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="chosen threshold", format=".2f")],
    )
    return (lines + rule).properties(
        height=260,
        title=_title("Accuracy vs coverage", "accuracy on the answered rows; coverage = share of rows answered"),
    )

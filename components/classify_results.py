"""A finished classify batch: the summary and failures (with Retry), the batch's cost, the label mapping and
headline scores, then one open tab at a time (the rows, or the evaluation: confusion matrix, per-label
scores, threshold trade-off, confident mistakes), and the exports.

Everything derived from the results is computed once per results version (and mapping, threshold or price)
through `components.classify_state.memo`, so a rerun with 100,000 rows only redraws.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from cfai.classify import BatchJob, export_csv, export_json, export_meta
from cfai.client import Client
from cfai.cost import BatchCost, batch_cost
from cfai.evaluation import (
    ABSTAIN,
    Evaluation,
    confident_mistakes,
    coverage_curve,
    evaluate,
    scoring_input,
    with_scoring_columns,
)
from cfai.failures import FailureSummary, summarize_failures
from cfai.format import MISSING, format_count, format_percent, format_score
from cfai.labels import guess_mapping, model_labels_from_scores
from cfai.pricing import ModelPrice
from cfai.safe_markdown import escape_markdown, inline_code
from components.classify_batch import HEADERS_KEY
from components.classify_charts import confusion_heatmap, coverage_chart
from components.classify_state import memo, seed
from components.cost_view import batch_cost_line, price_override_editor

KEEP_AS_IS, LEAVE_OUT = "(keep as is: always a miss)", "(leave out)"
MAX_MAPPED_LABELS = 12
RESULT_TABS = ("Rows", "Evaluation")
TABLE_VIEWS = ("All rows", "Failed only", "Wrong only")  # fixed: changing options would reset the widget
PriceFor = Callable[[str], ModelPrice | None]


def column_config(row_note: str) -> dict[str, Any]:
    """One naming for every table of results (the rows, the mistakes): the user's label and the model label
    it maps to are both shown, each clearly named."""
    return {
        "row": st.column_config.NumberColumn("file row", format="%d", help=row_note or None),
        "text": st.column_config.TextColumn("text", width="large"),
        "predicted": st.column_config.TextColumn("predicted", help="The model's winning label."),
        "score": st.column_config.NumberColumn("score", format="%.3f", help="The winning label's score."),
        "expected": st.column_config.TextColumn("your label", help="The expected label as your file has it."),
        "expected_as": st.column_config.TextColumn(
            "as model label", help="Your label mapped to the model's labels (see Label mapping); this is what "
                                   "the prediction is compared with. Empty: left out of the evaluation."),
        "correct": st.column_config.CheckboxColumn("correct"),
        "latency_ms": st.column_config.NumberColumn("latency", format="%.1f ms"),
        "cache_status": st.column_config.TextColumn("cache", help="cf-aig-cache-status; empty on the direct route."),
        "error": st.column_config.TextColumn("error"),
    }


def results_section(client: Client, job: BatchJob, price_for: PriceFor) -> None:
    version = (id(job), job.version)
    progress = job.progress()
    results = job.frame()
    summary = f"**{progress.total:,} rows**: {progress.ok:,} classified, {progress.failed:,} failed"
    if progress.pending:
        summary += f", {progress.pending:,} not run" + (" (stopped)" if progress.stopped else "")
    st.markdown(summary + f" · from {escape_markdown(job.source)} · model {inline_code(job.settings.model)}"
                f" · route {job.settings.route}")
    failed_notice(memo("failures", version, lambda: summarize_failures(results[["status", "error", "error_kind"]])))
    unfinished = progress.failed + progress.pending
    if unfinished and st.button(f"Retry {unfinished:,} failed / not-run rows", key="classify_retry",
                                icon=":material/replay:"):
        job.start(client, headers_for=st.session_state.get(HEADERS_KEY))
        st.rerun()

    price, cost = cost_section(results, job, version, price_for)
    labelled = bool(memo("labelled", version, lambda: results["expected"].notna().any()))
    model_labels = memo("model_labels", version, lambda: model_labels_from_scores(results["scores"]))
    mapping = label_mapping_editor(results, model_labels, version) if labelled else {}
    mapping_key = tuple(sorted(mapping.items(), key=lambda kv: kv[0]))
    scored = memo("scored", (version, mapping_key), lambda: with_scoring_columns(results, mapping))
    evaluation_input = memo("scoring_input", (version, mapping_key), lambda: scoring_input(scored))
    ev = None
    threshold = 0.0
    if mapping:
        st.subheader("Evaluation")
        seed("classify_threshold", 0.0)
        threshold = st.slider("Confidence threshold", 0.0, 1.0, step=0.01, key="classify_threshold",
                              help="Answers with a lower score abstain: they are not counted in accuracy, and "
                                   "coverage drops.")
        ev = memo("evaluation", (version, mapping_key, threshold),
                  lambda: evaluate(evaluation_input, threshold=threshold, labels=model_labels))
        headline_metrics(ev)

    rows_tab, evaluation_tab = st.tabs(RESULT_TABS, key="classify_results_tab", on_change="rerun")
    if rows_tab.open:
        with rows_tab:
            results_table(scored, version, mapping_key, has_expected=bool(mapping), row_note=job.row_note)
    if evaluation_tab.open:
        with evaluation_tab:
            if ev is None:
                st.info("Pick an expected-label column (or paste text<TAB>label lines) to score the model: "
                        "accuracy, a confusion matrix and the most confident mistakes.", icon=":material/info:")
            else:
                evaluation_details(ev, evaluation_input, version, mapping_key, threshold, job.row_note)
    export_buttons(scored, job, mapping, ev, price, cost)


def failed_notice(summary: FailureSummary | None) -> None:
    """The most common error of the failed rows and what to do about it (`cfai.failures`, the one
    definition); the rows table has each row's own error. Server text is shown as text, never as Markdown."""
    if summary is None:
        return
    text = escape_markdown(summary.headline())
    if summary.hint:
        text += f"\n\n{escape_markdown(summary.hint)}"
    text += "\n\nFailed rows stay in the table with their error; the Retry button sends them again."
    (st.error if summary.all_failed else st.warning)(text, icon=":material/error:")


def cost_section(results: pd.DataFrame, job: BatchJob, version: tuple,
                 price_for: PriceFor) -> tuple[ModelPrice | None, BatchCost]:
    """The batch's cost and cost per 1,000 texts at the model's list price, or at a custom price."""
    model = job.settings.model
    listed = price_for(model)
    with st.expander("Price used for the cost", icon=":material/payments:"):
        price = price_override_editor(model, listed, key="classify_price")
    price_key = tuple(sorted(price.to_dict().items(), key=lambda kv: kv[0])) if price is not None else None
    cost: BatchCost = memo("batch_cost", (version, repr(price_key)), lambda: batch_cost(results, price))
    batch_cost_line(cost)
    return price, cost


def headline_metrics(ev: Evaluation) -> None:
    if ev.n_scored == 0:
        st.info("No labelled row has a prediction yet.", icon=":material/info:")
        return
    cols = st.columns(4)
    cols[0].metric("Accuracy", format_percent(ev.accuracy, 1),
                   help=f"{ev.n_correct:,} right of {ev.n_answered:,} answered rows.")
    cols[1].metric("Coverage", format_percent(ev.coverage, 1),
                   help=f"{ev.n_answered:,} of {ev.n_scored:,} scored rows answered; {ev.n_abstained:,} abstained.")
    cols[2].metric("Macro F1", format_score(ev.macro_f1))
    cols[3].metric("Scored rows", format_count(ev.n_scored))
    notes = []
    if ev.n_failed:
        notes.append(f"{ev.n_failed:,} labelled row(s) have no prediction (failed or not run) and are not "
                     "counted: retry them above.")
    if ev.n_unlabelled:
        notes.append(f"{ev.n_unlabelled:,} row(s) have no expected label (or it is left out) and are not counted.")
    if notes:
        st.caption(" ".join(notes))


def results_table(scored: pd.DataFrame, version: tuple, mapping_key: tuple, has_expected: bool,
                  row_note: str) -> None:
    columns = ["row", "text", "predicted", "score"]
    if has_expected:
        columns += ["expected", "expected_as", "correct"]
    columns += ["latency_ms", "cache_status", "error"]
    views = TABLE_VIEWS if has_expected else TABLE_VIEWS[:2]
    if st.session_state.get("classify_show") not in views:
        st.session_state["classify_show"] = views[0]
    shown = st.radio("Show", views, key="classify_show", horizontal=True, label_visibility="collapsed")

    def view() -> pd.DataFrame:
        if shown == "Failed only":
            return scored.loc[scored["status"] == "error", columns]
        if shown == "Wrong only":
            return scored.loc[scored["correct"].eq(False).fillna(False).astype(bool), columns]
        return scored[columns]

    table = memo("table_view", (version, mapping_key, shown, has_expected), view)
    st.dataframe(table, hide_index=True, width="stretch", height=320, key="classify_results",
                 column_config=column_config(row_note), placeholder=MISSING, lazy=True)
    st.caption(f"{len(table):,} row(s) shown. {row_note}")


def label_mapping_editor(results: pd.DataFrame, model_labels: list[str], version: tuple) -> dict[str, str | None]:
    """One selectbox per user label, pre-set by guess_mapping. Returns user label -> model label / kept
    label / None (left out)."""
    counts = memo("label_counts", version, lambda: results["expected"].dropna().value_counts())
    user_labels = counts.index.astype(str).tolist()
    guess = guess_mapping(user_labels, model_labels)
    mapping: dict[str, str | None] = dict(guess)
    st.subheader("Label mapping")
    if not model_labels:
        st.info("No predictions yet: the mapping is set once rows are classified.", icon=":material/info:")
        return mapping
    st.caption(f"Your labels on the left, the model's ({escape_markdown(', '.join(model_labels))}) on the right; "
               "guessed, change any of them.")
    if len(user_labels) > MAX_MAPPED_LABELS:
        st.warning(f"{len(user_labels)} different expected labels: is that the right column? The "
                   f"{MAX_MAPPED_LABELS} most frequent can be mapped here; the rest are kept as is.",
                   icon=":material/warning:")
    options = [*model_labels, KEEP_AS_IS, LEAVE_OUT]
    signature = "|".join(model_labels)
    cols = st.columns(min(4, len(user_labels[:MAX_MAPPED_LABELS])) or 1)
    for i, user in enumerate(user_labels[:MAX_MAPPED_LABELS]):
        guessed = guess[user]
        default = guessed if guessed in model_labels else (LEAVE_OUT if guessed is None else KEEP_AS_IS)
        key = f"classify_map_{signature}_{user}"
        seed(key, default)
        choice = cols[i % len(cols)].selectbox(f"'{user}' ({counts[user]:,} rows) →", options, key=key)
        mapping[user] = None if choice == LEAVE_OUT else (user if choice == KEEP_AS_IS else choice)
    return mapping


def mistakes_view(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The most confident mistakes with the main table's columns: the user's label and the mapped one."""
    mistakes = confident_mistakes(frame, n=n)
    if "expected_original" in frame.columns and len(mistakes):
        originals = frame.set_index("row")["expected_original"]
        mistakes.insert(mistakes.columns.get_loc("expected"), "expected_original",
                        originals.reindex(mistakes["row"]).to_numpy())
    return mistakes.rename(columns={"expected": "expected_as", "expected_original": "expected"})


def evaluation_details(ev: Evaluation, frame: pd.DataFrame, version: tuple, mapping_key: tuple, threshold: float,
                       row_note: str) -> None:
    if ev.n_scored == 0:
        st.info("No labelled row has a prediction yet.", icon=":material/info:")
        return
    left, right = st.columns(2)
    with left:
        st.altair_chart(confusion_heatmap(ev.confusion), width="content")
        per_label = ev.per_label.drop(columns=["predicted"])
        st.dataframe(per_label, hide_index=True, width="stretch", key="classify_per_label", placeholder=MISSING,
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                    for c in ("precision", "recall", "f1")})
        st.caption(f"Per label, over the answered rows; {MISSING} where undefined (nothing predicted or expected).")
    with right:
        curve = memo("coverage_curve", (version, mapping_key), lambda: coverage_curve(frame))
        st.altair_chart(coverage_chart(curve, threshold), width="stretch")
        if threshold > 0:
            st.caption(f"At {threshold:.2f}: {ev.n_abstained:,} row(s) in the {ABSTAIN} column.")
    mistakes = memo("mistakes", (version, mapping_key), lambda: mistakes_view(frame))
    st.markdown("**Most confident mistakes**")
    if mistakes.empty:
        st.caption("None: every answered row is right.")
    else:
        st.dataframe(mistakes, hide_index=True, width="stretch", key="classify_mistakes", placeholder=MISSING,
                     column_config=column_config(row_note))


def evaluation_meta(ev: Evaluation | None, threshold: float) -> dict[str, Any]:
    if ev is None:
        return {}
    return {"threshold": threshold, "accuracy": ev.accuracy, "coverage": ev.coverage, "macro_f1": ev.macro_f1,
            "scored_rows": ev.n_scored}


def export_buttons(scored: pd.DataFrame, job: BatchJob, mapping: Mapping[str, str | None], ev: Evaluation | None,
                   price: ModelPrice | None, cost: BatchCost) -> None:
    """Export CSV / JSON. The files are made when a button is clicked (100,000 rows take seconds), not on
    every rerun."""
    threshold = float(st.session_state.get("classify_threshold", 0.0)) if ev is not None else 0.0

    def meta() -> dict[str, Any]:
        return export_meta(job, mapping=mapping, price=price, cost=cost.to_dict(),
                           evaluation=evaluation_meta(ev, threshold),
                           exported_at=datetime.now(UTC).isoformat(timespec="seconds"))

    stem = f"classification-{time.strftime('%Y%m%d-%H%M%S')}"
    row = st.container(horizontal=True)
    row.download_button("Export CSV", lambda: export_csv(scored, price), file_name=f"{stem}.csv", mime="text/csv",
                        key="classify_export_csv", icon=":material/download:", on_click="ignore")
    row.download_button("Export JSON", lambda: export_json(scored, meta()), file_name=f"{stem}.json",
                        mime="application/json", key="classify_export_json", icon=":material/download:",
                        on_click="ignore")

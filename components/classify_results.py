"""A finished classify batch: the summary and failures (with Retry), the result table, the label mapping,
the evaluation (accuracy, per-label scores, confusion matrix, threshold trade-off, confident mistakes) and
the exports."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from cfai.classify import BatchJob, export_csv, export_json
from cfai.client import Client
from cfai.errors import hint_for_kind
from cfai.evaluation import (
    ABSTAIN,
    confident_mistakes,
    coverage_curve,
    evaluate,
    scoring_input,
    with_scoring_columns,
)
from cfai.format import format_percent, format_score
from cfai.labels import guess_mapping, model_labels_from_scores
from components.classify_batch import HEADERS_KEY
from components.classify_charts import confusion_heatmap, coverage_chart

KEEP_AS_IS, LEAVE_OUT = "(keep as is: always a miss)", "(leave out)"
MAX_MAPPED_LABELS = 12


def results_section(client: Client, job: BatchJob) -> None:
    progress = job.progress()
    results = job.frame()
    summary = f"**{progress.total:,} rows**: {progress.ok:,} classified, {progress.failed:,} failed"
    if progress.pending:
        summary += f", {progress.pending:,} not run" + (" (stopped)" if progress.stopped else "")
    st.markdown(summary + f" · model `{job.settings.model}` · route {job.settings.route}")
    failed_notice(results, all_failed=progress.ok == 0)
    unfinished = progress.failed + progress.pending
    if unfinished and st.button(f"Retry {unfinished:,} failed / not-run rows", key="classify_retry",
                                icon=":material/replay:"):
        job.start(client, headers_for=st.session_state.get(HEADERS_KEY))
        st.rerun()

    mapping = label_mapping_editor(results) if results["expected"].notna().any() else {}
    scored = with_scoring_columns(results, mapping)
    results_table(scored, has_expected=bool(mapping))
    if mapping:
        evaluation_section(scoring_input(scored), model_labels_from_scores(results["scores"]))
    export_buttons(scored, job, mapping)


def failed_notice(results: pd.DataFrame, all_failed: bool) -> None:
    """The most common error of the failed rows and what to do about it (the table has each row's error)."""
    failed = results[results["status"] == "error"]
    if failed.empty:
        return
    reason = failed["error"].dropna().mode()
    reason_text = str(reason.iloc[0]) if not reason.empty else "unknown error"
    kinds = failed.loc[failed["error"] == reason_text, "error_kind"].dropna()
    hint = hint_for_kind(str(kinds.iloc[0])) if not kinds.empty else None
    text = f"**{len(failed):,} row(s) failed**, e.g. {reason_text}" + (f"\n\n{hint}" if hint else "")
    text += "\n\nFailed rows stay in the table with their error; the Retry button sends them again."
    (st.error if all_failed else st.warning)(text, icon=":material/error:")


def results_table(scored: pd.DataFrame, has_expected: bool) -> None:
    columns = ["row", "text", "predicted", "score"]
    if has_expected:
        columns += ["expected", "correct"]
    columns += ["latency_ms", "cache_status", "error"]
    failed = scored["status"] == "error"
    wrong = scored["correct"].eq(False).fillna(False).astype(bool)
    views = {"All rows": None, "Failed only": failed}  # fixed labels: changing options reset a widget
    if has_expected:
        views["Wrong only"] = wrong
    shown = st.radio("Show", list(views), key="classify_show", horizontal=True, label_visibility="collapsed")
    mask = views.get(shown)
    st.dataframe(
        scored.loc[mask, columns] if mask is not None else scored[columns], hide_index=True, width="stretch", height=320, key="classify_results",
        column_config={
            "row": st.column_config.NumberColumn("row", help="Row in your file (the header is row 1) or line."),
            "text": st.column_config.TextColumn("text", width="large"),
            "score": st.column_config.NumberColumn("score", format="%.3f"),
            "latency_ms": st.column_config.NumberColumn("latency", format="%.0f ms"),
            "cache_status": st.column_config.TextColumn("cache"),
            "correct": st.column_config.CheckboxColumn("correct"),
        },
    )


def label_mapping_editor(results: pd.DataFrame) -> dict[str, str | None]:
    """One selectbox per user label, pre-set by guess_mapping. Returns user label -> model label / kept
    label / None (left out)."""
    model_labels = model_labels_from_scores(results["scores"])
    counts = results["expected"].dropna().value_counts()
    user_labels = counts.index.astype(str).tolist()
    guess = guess_mapping(user_labels, model_labels)
    mapping: dict[str, str | None] = dict(guess)
    st.subheader("Label mapping")
    if not model_labels:
        st.info("No predictions yet: the mapping is set once rows are classified.", icon=":material/info:")
        return mapping
    st.caption(f"Your labels on the left, the model's ({', '.join(model_labels)}) on the right; guessed, change "
               "any of them.")
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
        choice = cols[i % len(cols)].selectbox(
            f"'{user}' ({counts[user]:,} rows) →", options, index=options.index(default),
            key=f"classify_map_{signature}_{user}",
        )
        mapping[user] = None if choice == LEAVE_OUT else (user if choice == KEEP_AS_IS else choice)
    return mapping


def evaluation_section(frame: pd.DataFrame, model_labels: list[str]) -> None:
    st.subheader("Evaluation")
    threshold = st.slider("Confidence threshold", 0.0, 1.0, 0.0, 0.01, key="classify_threshold",
                          help="Answers with a lower score abstain: they are not counted in accuracy, and "
                               "coverage drops.")
    ev = evaluate(frame, threshold=threshold, labels=model_labels)
    if ev.n_scored == 0:
        st.info("No labelled row has a prediction yet.", icon=":material/info:")
        return
    cols = st.columns(4)
    cols[0].metric("Accuracy", format_percent(ev.accuracy, 1),
                   help=f"{ev.n_correct:,} right of {ev.n_answered:,} answered rows.")
    cols[1].metric("Coverage", format_percent(ev.coverage, 1),
                   help=f"{ev.n_answered:,} of {ev.n_scored:,} scored rows answered; {ev.n_abstained:,} abstained.")
    cols[2].metric("Macro F1", format_score(ev.macro_f1))
    cols[3].metric("Scored rows", f"{ev.n_scored:,}")
    notes = []
    if ev.n_failed:
        notes.append(f"{ev.n_failed:,} labelled row(s) have no prediction (failed or not run) and are not "
                     "counted: retry them above.")
    if ev.n_unlabelled:
        notes.append(f"{ev.n_unlabelled:,} row(s) have no expected label (or it is left out) and are not counted.")
    if notes:
        st.caption(" ".join(notes))

    left, right = st.columns(2)
    with left:
        st.altair_chart(confusion_heatmap(ev.confusion), width="content")
        per_label = ev.per_label.drop(columns=["predicted"])
        st.dataframe(per_label, hide_index=True, width="stretch", key="classify_per_label",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                    for c in ("precision", "recall", "f1")})
        st.caption("Per label, over the answered rows; empty where undefined (nothing predicted or expected).")
    with right:
        st.altair_chart(coverage_chart(coverage_curve(frame), threshold), width="stretch")
        if threshold > 0:
            st.caption(f"At {threshold:.2f}: {ev.n_abstained:,} row(s) in the {ABSTAIN} column.")
    mistakes = confident_mistakes(frame, n=10)  # `expected` here is already mapped to the model's labels
    st.markdown("**Most confident mistakes**")
    if mistakes.empty:
        st.caption("None: every answered row is right.")
    else:
        st.dataframe(mistakes, hide_index=True, width="stretch", key="classify_mistakes",
                     column_config={"score": st.column_config.NumberColumn("score", format="%.3f"),
                                    "text": st.column_config.TextColumn("text", width="large")})


def export_buttons(scored: pd.DataFrame, job: BatchJob, mapping: dict[str, str | None]) -> None:
    threshold = float(st.session_state.get("classify_threshold", 0.0))
    meta: dict = {
        "model": job.settings.model, "route": job.settings.route, "source": job.source,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"), "label_mapping": mapping,
    }
    if mapping:
        ev = evaluate(scoring_input(scored), threshold=threshold)
        meta.update(threshold=threshold, accuracy=ev.accuracy, coverage=ev.coverage, macro_f1=ev.macro_f1,
                    scored_rows=ev.n_scored)
    stem = f"classification-{time.strftime('%Y%m%d-%H%M%S')}"
    row = st.container(horizontal=True)
    row.download_button("Export CSV", export_csv(scored), file_name=f"{stem}.csv", mime="text/csv",
                            key="classify_export_csv", icon=":material/download:")
    row.download_button("Export JSON", export_json(scored, meta), file_name=f"{stem}.json",
                            mime="application/json", key="classify_export_json", icon=":material/download:")

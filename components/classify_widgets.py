"""The pieces of the classification page: one text, the batch input, the running batch, the results and
their evaluation. Logic lives in cfai (ingest, classify, labels, evaluation); this module reads widgets,
keeps state in st.session_state, and renders."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from cfai.classify import (
    MAX_CONCURRENCY,
    BatchJob,
    BatchSettings,
    Classification,
    HeadersFor,
    classify_text,
    export_csv,
    export_json,
    fault_injector,
)
from cfai.client import Client, GatewayOptions, Route
from cfai.errors import hint_for_kind
from cfai.evaluation import (
    ABSTAIN,
    confident_mistakes,
    coverage_curve,
    evaluate,
    scoring_input,
    with_scoring_columns,
)
from cfai.faults import INSTANT_FAULT_KINDS
from cfai.ingest import (
    DELIMITER_NAMES,
    LONG_TEXT_CHARS,
    Batch,
    IngestError,
    Table,
    batch_from_lines,
    batch_from_table,
    guess_label_column,
    guess_text_column,
    looks_numeric,
    parse_table,
)
from cfai.labels import guess_mapping, model_labels_from_scores
from components.classify_charts import confusion_heatmap, coverage_chart, scores_chart

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"
JOB_KEY = "classify_job"
SOURCE_UPLOAD, SOURCE_PASTE = "Upload CSV/TSV", "Paste lines"
NO_LABEL = "(no expected labels)"
KEEP_AS_IS, LEAVE_OUT = "(keep as is: always a miss)", "(leave out)"
MAX_MAPPED_LABELS = 12
POLL_SECONDS = 0.5
DEFAULT_TEXT = "The staff were friendly, but the room was noisy and the breakfast was cold."


def _fmt_ms(ms: float | None) -> str:
    return "–" if ms is None or pd.isna(ms) else f"{ms:,.0f} ms"


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


# --- one text ----------------------------------------------------------------------------------------------
def single_text_panel(client: Client, model: str, route: Route, gateway: GatewayOptions, *,
                      disabled: bool = False) -> None:
    text = st.text_area("Text to classify", value=DEFAULT_TEXT, key="classify_text", height=100)
    if len(text) > LONG_TEXT_CHARS:
        st.warning(f"This text is {len(text):,} characters long (over {LONG_TEXT_CHARS:,}): the model may "
                   "truncate or refuse it.", icon=":material/warning:")
    if st.button("Classify", key="classify_one", type="primary", disabled=disabled or not text.strip() or not model):
        with st.spinner("Classifying..."):
            st.session_state["classify_single"] = classify_text(client, model, text.strip(), route=route,
                                                                gateway=gateway)
    answer: Classification | None = st.session_state.get("classify_single")
    if answer is not None:
        show_classification(answer)


def show_classification(answer: Classification) -> None:
    if answer.error:
        st.error(f"{answer.error}\n\n{answer.error_hint or ''}", icon=":material/error:")
        return
    top = answer.top
    cols = st.columns(4)
    cols[0].metric("Label", top.label)
    cols[1].metric("Confidence", f"{top.score:.1%}")
    cols[2].metric("Latency", _fmt_ms(answer.latency_ms), help="Until the last byte of the response.")
    cols[3].metric("Cache", answer.cache_status or "–",
                   help="cf-aig-cache-status from AI Gateway; '–' on the direct route.")
    st.altair_chart(scores_chart(answer.scores), width="stretch")


# --- batch input ---------------------------------------------------------------------------------------------
def batch_input() -> Batch | None:
    """The batch the user has given (file or pasted lines), with its problems shown; None if none yet."""
    source = st.radio("Input", (SOURCE_UPLOAD, SOURCE_PASTE), key="classify_source", horizontal=True)
    if source == SOURCE_PASTE:
        return _pasted_batch()
    return _file_batch()


def _pasted_batch() -> Batch | None:
    text = st.text_area(
        "One text per line", key="classify_lines", height=180,
        placeholder="I loved it\nNot worth the money\n...",
        help="Empty lines are skipped. Two columns copied from a spreadsheet (text, then label, separated "
             "by a tab) give expected labels too.",
    )
    if not text.strip():
        return None
    batch = batch_from_lines(text)
    _show_batch_messages(batch)
    return batch


def _file_batch() -> Batch | None:
    upload = st.file_uploader("CSV or TSV file", type=["csv", "tsv", "txt", "tab"], key="classify_upload",
                              help="A header row, one text column and optionally an expected-label column. "
                                   "Encoding and delimiter are detected.")
    row = st.container(horizontal=True)
    if row.button("Use the sample", key="classify_use_sample", icon=":material/science:",
                      help="40 labelled reviews (pos/neg) written for this demo, some of them tricky."):
        st.session_state["classify_sample"] = True
    row.download_button("Download the sample", SAMPLE_PATH.read_bytes(), file_name=SAMPLE_PATH.name,
                            mime="text/csv", key="classify_sample_download", icon=":material/download:")
    if upload is not None:
        name, data = upload.name, upload.getvalue()
    elif st.session_state.get("classify_sample"):
        name, data = SAMPLE_PATH.name, SAMPLE_PATH.read_bytes()
        st.caption(f"Using the sample file `samples/{SAMPLE_PATH.name}`.")
    else:
        return None

    with st.expander("Reading options", icon=":material/tune:"):
        delimiter_choice = st.selectbox("Delimiter", ["auto", *DELIMITER_NAMES], key="classify_delimiter",
                                        format_func=lambda d: DELIMITER_NAMES.get(d, d))
        header_choice = st.radio("First row is a header", ("auto", "yes", "no"), key="classify_header",
                                 horizontal=True)
    delimiter = None if delimiter_choice == "auto" else delimiter_choice
    has_header = {"auto": None, "yes": True, "no": False}[header_choice]
    try:
        table = _parsed(name, data, delimiter, has_header)
    except IngestError as e:
        st.error(f"{name}: {e}", icon=":material/error:")
        return None

    st.caption(
        f"**{name}**: {len(table.frame):,} rows read as {table.encoding}, {table.delimiter_name}-separated, "
        f"{'with' if table.has_header else 'without'} a header row"
        + (f"; {table.blank_rows} blank row(s) skipped" if table.blank_rows else "") + "."
    )
    st.dataframe(table.frame.head(8), hide_index=True, width="stretch")
    if not table.columns or table.frame.empty:
        # Say why: an unclosed quote or ragged rows leave nothing, and only the notes and issues tell.
        reason = "No readable data rows after the header." if table.issues else "No data rows after the header."
        st.error(_as_markdown([reason, *table.messages()]), icon=":material/error:")
        return None
    # Column choices belong to one file read one way: new file or options, fresh guesses.
    file_key = hashlib.sha1(data + f"{delimiter}|{has_header}".encode()).hexdigest()[:12]
    text_guess = guess_text_column(table)
    label_guess = guess_label_column(table, text_guess)
    cols = st.columns(2)
    text_column = cols[0].selectbox("Text column", table.columns, index=table.columns.index(text_guess),
                                    key=f"classify_text_col_{file_key}")
    label_options = [NO_LABEL, *[c for c in table.columns if c != text_column]]
    label_index = label_options.index(label_guess) if label_guess in label_options else 0
    label_column = cols[1].selectbox("Expected-label column (optional)", label_options, index=label_index,
                                     key=f"classify_label_col_{file_key}")
    if looks_numeric(table.frame[text_column]):
        st.warning(f"Column '{text_column}' looks numeric: is it the text? Most of its values are numbers; "
                   "pick the column that holds the texts to classify.", icon=":material/warning:")
    try:
        batch = batch_from_table(table, text_column, None if label_column == NO_LABEL else label_column,
                                 source=name)
    except IngestError as e:
        st.error(str(e), icon=":material/error:")
        return None
    _show_batch_messages(batch)
    return batch


def _parsed(name: str, data: bytes, delimiter: str | None, has_header: bool | None) -> Table:
    """Parse once per file and options; reruns reuse it (a 5,000-row file takes a moment to read)."""
    key = (name, hashlib.sha1(data).hexdigest(), delimiter, has_header)
    cached = st.session_state.get("_classify_parsed")
    if cached is not None and cached[0] == key:
        return cached[1]
    table = parse_table(data, filename=name, delimiter=delimiter, has_header=has_header)
    st.session_state["_classify_parsed"] = (key, table)
    return table


def _as_markdown(messages: list[str]) -> str:
    """Sentences as paragraphs, '  - ' lines as one list under the sentence before them."""
    text = ""
    for line in messages:
        is_item = line.startswith("  - ")
        text += ("\n" if is_item else "\n\n") + (f"- {line[4:]}" if is_item else line)
    return text.strip()


def _show_batch_messages(batch: Batch) -> None:
    messages = batch.messages()
    if batch.issues:
        st.warning(_as_markdown(messages), icon=":material/warning:")
    elif messages:
        st.info(_as_markdown(messages), icon=":material/info:")
    if len(batch) == 0:
        st.error("There is no text to classify.", icon=":material/error:")


# --- running ------------------------------------------------------------------------------------------------
def batch_settings(model: str, route: Route, gateway: GatewayOptions, is_local: bool) -> tuple[BatchSettings, HeadersFor | None]:
    cols = st.columns(2)
    concurrency = cols[0].slider("Requests in parallel", 1, MAX_CONCURRENCY, 8, key="classify_concurrency",
                                 help="More is faster until the account's rate limit answers 429.")
    rpm = cols[1].number_input(
        "Max requests per minute (0 = no cap)", min_value=0, max_value=100_000, step=100,
        value=0 if is_local else 1800, key="classify_rpm",
        help="Workers AI allows 2,000 text-classification requests per minute; stay under it for big batches.",
    )
    headers_for = None
    if is_local:
        with st.expander("Emulator demo: inject faults", icon=":material/bug_report:"):
            every = st.number_input("Inject a fault into every Nth request (0 = off)", min_value=0,
                                    max_value=1000, value=0, key="classify_fault_every",
                                    help="Only the emulator honours this; the retry of such a row succeeds.")
            kind = st.selectbox("Fault", INSTANT_FAULT_KINDS, key="classify_fault_kind")
            if every:
                headers_for = fault_injector(int(every), kind)
    settings = BatchSettings(model=model, route=route, gateway=gateway if route == "gateway" else None,
                             concurrency=int(concurrency), max_per_minute=int(rpm) or None)
    return settings, headers_for


def start_batch(client: Client, batch: Batch, settings: BatchSettings, headers_for: HeadersFor | None) -> None:
    current: BatchJob | None = st.session_state.get(JOB_KEY)
    if current is not None and current.running:
        st.warning("A batch is still running: stop it first.", icon=":material/warning:")
        return
    job = BatchJob.from_frame(batch.frame, settings, source=batch.source)
    st.session_state[JOB_KEY] = job
    st.session_state["classify_job_headers"] = headers_for
    job.start(client, headers_for=headers_for)


def batch_progress(job: BatchJob) -> None:
    """Progress bar, counts and Stop while the batch runs. Polls in a fragment, so only this part reruns;
    when the batch ends the whole page reruns to show the results."""

    @st.fragment(run_every=POLL_SECONDS if job.running else None)
    def panel() -> None:
        progress = job.progress()
        speed = f" · {progress.rows_per_second:,.0f} rows/s" if progress.rows_per_second else ""
        st.progress(progress.fraction,
                    text=f"{progress.run_done:,} / {progress.run_total:,} rows · {progress.failed:,} failed"
                         f"{speed} · {progress.elapsed_s:,.1f} s")
        if progress.running:
            if progress.stopped:
                st.caption("Stopping: waiting for the requests in flight...")
            elif st.button("Stop", key="classify_stop", icon=":material/stop:"):
                job.stop()
                st.caption("Stopping: waiting for the requests in flight...")
        elif st.session_state.get("_classify_polling"):
            st.session_state["_classify_polling"] = False
            st.rerun()  # the batch ended while only this fragment was rerunning: redraw the page
        st.session_state["_classify_polling"] = progress.running

    panel()


# --- results ------------------------------------------------------------------------------------------------
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
        job.start(client, headers_for=st.session_state.get("classify_job_headers"))
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
    cols[0].metric("Accuracy", _fmt_pct(ev.accuracy),
                   help=f"{ev.n_correct:,} right of {ev.n_answered:,} answered rows.")
    cols[1].metric("Coverage", _fmt_pct(ev.coverage),
                   help=f"{ev.n_answered:,} of {ev.n_scored:,} scored rows answered; {ev.n_abstained:,} abstained.")
    cols[2].metric("Macro F1", "–" if ev.macro_f1 is None else f"{ev.macro_f1:.3f}")
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

"""Running a classify batch: its settings (parallelism, a rate cap, emulator faults), starting it, and its
progress with Stop."""

from __future__ import annotations

import streamlit as st

from cfai.classify import MAX_CONCURRENCY, BatchJob, BatchSettings, HeadersFor, fault_injector
from cfai.client import Client, GatewayOptions, Route
from cfai.faults import INSTANT_FAULT_KINDS
from cfai.format import format_rate
from cfai.ingest import Batch
from components.classify_state import seed
from components.polling import poll_while_running

JOB_KEY = "classify_job"
HEADERS_KEY = "classify_job_headers"


def batch_settings(model: str, route: Route, gateway: GatewayOptions, is_local: bool) -> tuple[BatchSettings, HeadersFor | None]:
    seed("classify_concurrency", 8)
    seed("classify_rpm", 0 if is_local else 1800)
    seed("classify_fault_every", 0)
    cols = st.columns(2)
    concurrency = cols[0].slider("Requests in parallel", 1, MAX_CONCURRENCY, key="classify_concurrency",
                                 help="More is faster until the account's rate limit answers 429.")
    rpm = cols[1].number_input(
        "Max requests per minute (0 = no cap)", min_value=0, max_value=100_000, step=100, key="classify_rpm",
        help="Workers AI allows 2,000 text-classification requests per minute; stay under it for big batches.",
    )
    headers_for = None
    if is_local:
        with st.expander("Emulator demo: inject faults", icon=":material/bug_report:"):
            every = st.number_input("Inject a fault into every Nth request (0 = off)", min_value=0,
                                    max_value=1000, key="classify_fault_every",
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
    job = BatchJob.from_frame(batch.frame, settings, source=batch.source, row_note=batch.row_note)
    st.session_state[JOB_KEY] = job
    st.session_state[HEADERS_KEY] = headers_for
    job.start(client, headers_for=headers_for)


def clear_results() -> None:
    """Take a finished batch's results off the page (its input was replaced by one that cannot be used).
    A running batch is left alone: it is stopped with its own Stop button."""
    job: BatchJob | None = st.session_state.get(JOB_KEY)
    if job is not None and not job.running:
        st.session_state.pop(JOB_KEY, None)
        st.session_state.pop(HEADERS_KEY, None)


def batch_progress(job: BatchJob) -> None:
    """Progress bar, counts and Stop while the batch runs (polled with components.polling); when the batch
    ends the whole page reruns to show the results."""

    def panel() -> None:
        progress = job.progress()
        speed = f" · {format_rate(progress.rows_per_second, 'rows/s')}" if progress.rows_per_second else ""
        st.progress(progress.fraction,
                    text=f"{progress.run_done:,} / {progress.run_total:,} rows · {progress.failed:,} failed"
                         f"{speed} · {progress.elapsed_s:,.1f} s")
        if progress.running:
            if progress.stopped:
                st.caption("Stopping: waiting for the requests in flight...")
            elif st.button("Stop", key="classify_stop", icon=":material/stop:"):
                job.stop()
                st.caption("Stopping: waiting for the requests in flight...")

    poll_while_running(lambda: job.running, panel, key="classify")

"""A load sweep on a page: the form (`sweep_panel`) and the report of a stored or finished sweep
(`sweep_report`).

- `sweep_panel(client, base_plan, store, key)`: loads (concurrencies or rates), the size of each step, an
  estimate, Run / Cancel. The sweep runs in the background (`cfai.live_sweep.LiveSweep`, a cfai.jobs job),
  is stored as one run as it goes, and its progress is polled by components/polling.py; when it ends its
  report is drawn.
- `sweep_report(records, sweep, key)`: per route, latency (p50/p95, first token or byte) and achieved
  throughput against offered load, the knee, where errors and 429s start, steps the client could not generate
  on schedule flagged with their numbers withheld, the step table, and each step openable as a normal run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from cfai.client import Client
from cfai.config import ConfigError
from cfai.format import MISSING
from cfai.live_sweep import DEFAULT_LATENCY_GUESS_MS, LiveSweep, estimate
from cfai.plan import MAX_CONCURRENCY, Plan
from cfai.store import Store
from cfai.sweep import (
    MAX_STEPS,
    SweepPlan,
    analyze,
    latency_curve_frame,
    parse_loads,
    records_of_step,
    step_table,
    throughput_frame,
)
from cfai.sweep_report import markers_frame, route_headlines, step_labels
from components import sweep_charts
from components.polling import poll_while_running
from components.run_report import run_report
from components.run_store import run_for_display, unsaved_run_panel

LOAD_KINDS = {"concurrency": "Concurrency (closed loop)", "rate": "Rate (open loop)"}
SIZE_KINDS = {"count": "Requests per route", "duration": "Seconds per step"}
DEFAULT_LOADS = {"concurrency": "1, 2, 4, 8, 16, 32", "rate": "2, 5, 10, 20, 50"}
STEP_TABLE_COLUMNS = {
    "step": "step", "load": "load", "route": "route", "requests": "requests", "ok": "ok", "errors": "errors",
    "rate_limited": "429s", "p50_ms": "p50 (ms)", "p95_ms": "p95 (ms)", "ttft_p50_ms": "first byte p50 (ms)",
    "achieved_rps": "achieved req/s", "offered_rps": "offered req/s", "start_lag_p99_ms": "start lag p99 (ms)",
    "flag": "flag",
}


# --- the form --------------------------------------------------------------------------------------------------
def sweep_form(base_plan: Plan, key: str) -> tuple[SweepPlan | None, list[str], float]:
    """The sweep's widgets. Returns the sweep (None when the loads do not parse), its problems in words, and
    the latency guess for the estimate."""
    c1, c2 = st.columns([1, 2])
    kind = c1.radio("Load", list(LOAD_KINDS), format_func=LOAD_KINDS.get, key=f"{key}_kind",
                    help="Closed loop: each step keeps this many requests in flight. Open loop: each step sends "
                         "at a fixed rate (requests/s across all routes) whatever the responses do.") or "concurrency"
    loads_text = c2.text_input(
        "Concurrencies" if kind == "concurrency" else "Rates (requests/s, all routes)",
        value=DEFAULT_LOADS[kind], key=f"{key}_loads_{kind}",
        help=f"Comma-separated, at most {MAX_STEPS} steps; they run in rising order"
             + (f", each between 1 and {MAX_CONCURRENCY}." if kind == "concurrency" else "."))
    c1, c2, c3 = st.columns([1, 1, 1])
    size = c1.radio("Size each step by", list(SIZE_KINDS), format_func=SIZE_KINDS.get, key=f"{key}_size",
                    horizontal=True) or "count"
    if size == "count":
        per_step = c2.number_input("Requests per route per step", 1, 100_000, 20, key=f"{key}_count",
                                   help="Measured requests per route in each step; the plan's warm-up comes first.")
        duration = None
    else:
        duration = c2.number_input("Seconds per step", 0.5, 3600.0, 10.0, key=f"{key}_duration",
                                   help="Closed loop: the step stops at this time. Open loop: rate × seconds "
                                        "requests, spread over the routes.")
        per_step = None
    latency = c3.number_input("Typical latency (ms), for the estimate", 0.1, 600_000.0, DEFAULT_LATENCY_GUESS_MS,
                              key=f"{key}_latency_guess",
                              help="Only for the estimate below; the sweep measures the real latency.")
    try:
        loads = parse_loads(loads_text, integers=kind == "concurrency")
    except ValueError as exc:
        return None, [str(exc)], float(latency)
    sweep = SweepPlan(base=base_plan, concurrencies=loads if kind == "concurrency" else (),
                      rates=loads if kind == "rate" else (),
                      requests_per_step=int(per_step) if per_step is not None else None,
                      duration_s=float(duration) if duration is not None else None)
    return sweep, sweep.problems(), float(latency)


def live_progress(live: LiveSweep) -> None:
    """Step and progress of the sweep being sent, and the latency curve of the steps so far."""
    progress = live.sweep_progress()
    st.progress(progress.fraction, text=progress.text())
    frame = live.frame()
    if frame.empty:
        st.caption("Waiting for the first responses...")
        return
    table = step_table(frame, live.sweep)
    curve = latency_curve_frame(table)
    if not curve.empty:
        markers = markers_frame(table, analyze(frame, live.sweep))
        sweep_charts_show(sweep_charts.latency_vs_load_chart(curve, markers, live.sweep.load_unit,
                                                             stream=live.sweep.base.stream))


def sweep_panel(client: Client, base_plan: Plan, store: Store | None, key: str = "sweep") -> LiveSweep | None:
    """The sweep form, Run / Cancel, live progress while it runs, and the report once it has ended. The
    plan's routes, model, body, warm-up, cache mode, TTL and streaming are `base_plan`'s; its n, concurrency
    and rate are replaced by each step's. Returns the session's sweep (running or ended), None before one."""
    live_key = f"{key}_live"
    live: LiveSweep | None = st.session_state.get(live_key)
    running = live is not None and live.running
    routes = ", ".join(base_plan.routes) or MISSING
    st.caption(f"Each step runs the plan above at one load: routes {routes}, interleaved; "
               f"{base_plan.warmup} warm-up per route per step (excluded); stored as one run.")
    sweep, problems, latency = sweep_form(base_plan, key)
    problems += [p for p in base_plan.problems(client.connection) if p not in problems]
    if sweep is not None and not problems:
        st.caption(f"Estimate: {estimate(sweep, latency).text()}")
    for problem in problems:
        st.warning(problem, icon=":material/rule:")
    left, right, _ = st.columns([1, 1, 4])
    start = left.button("Run sweep", type="primary", icon=":material/play_arrow:", key=f"{key}_run",
                        disabled=bool(problems) or running, width="stretch")
    stop = right.button("Cancel", icon=":material/stop:", key=f"{key}_cancel", disabled=not running,
                        width="stretch")
    if stop and live is not None:
        live.cancel()
    if start and sweep is not None:
        try:
            live = LiveSweep.start_sweep(client, sweep, store)
        except (ValueError, ConfigError) as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.session_state[live_key] = live
            st.rerun()  # draw again with Run disabled and Cancel enabled
    if live is None:
        return None
    if live.running:
        poll_while_running(lambda: live.running, lambda: live_progress(live), key=key)
        return live
    finished_sweep(live, store, key)
    return live


def finished_sweep(live: LiveSweep, store: Store | None, key: str) -> None:
    """The ended sweep: how it ended, what was not stored, and its report (from the store when it has it)."""
    st.divider()
    if live.error:
        st.error(f"The sweep stopped: {live.error}", icon=":material/error:")
    unsaved_run_panel(live, store, key=f"{key}_unsaved")
    shown = run_for_display(store, live, live.run_id)
    records = shown.records if shown is not None else live.frame()
    progress = live.sweep_progress()
    if live.cancelled:
        st.info(f"Cancelled during step {progress.step + 1} of {progress.steps}; the {len(records):,} requests "
                "measured are kept (the rest of the steps were skipped).", icon=":material/stop:")
    st.caption(f"Sweep run `{live.run_id}` · {live.plan.model} · {len(records):,} records · {live.status()} · "
               "in History as one run")
    sweep_report(records, live.sweep, key=f"{key}_report")


# --- the report ------------------------------------------------------------------------------------------------
def sweep_charts_show(chart: Any) -> None:
    st.altair_chart(chart, width="stretch")


def headline_table(table: pd.DataFrame, analysis: dict[str, Any], sweep: SweepPlan) -> None:
    """One line per route: the knee, where errors and 429s start, the peak throughput (and at which load)."""
    heads = route_headlines(table, analysis, sweep)
    st.dataframe(
        pd.DataFrame([{"route": h.route, "knee": h.knee, "p50 before → at the knee": h.knee_detail,
                       "errors start": h.errors_start, "429s start": h.rate_limited_start,
                       "peak throughput": f"{h.peak_throughput} {h.peak_detail}"} for h in heads]),
        hide_index=True, width="stretch",
        column_config={"knee": st.column_config.TextColumn(
            "knee", help="The first step (in rising load) whose p50 exceeds 1.5× the lowest-load step's p50."),
            "errors start": st.column_config.TextColumn(
                "errors start", help="The first step with a failed measured request."),
            "429s start": st.column_config.TextColumn(
                "429s start", help="The first step with an HTTP 429 (rate limited) answer.")},
    )


def step_table_view(table: pd.DataFrame) -> None:
    shown = table[list(STEP_TABLE_COLUMNS)].copy()
    shown["step"] = shown["step"] + 1  # people count steps from 1
    st.dataframe(
        shown.rename(columns=STEP_TABLE_COLUMNS), hide_index=True, width="stretch", placeholder=MISSING,
        column_config={label: st.column_config.NumberColumn(label, format="%.1f") for label in
                       ("p50 (ms)", "p95 (ms)", "first byte p50 (ms)", "achieved req/s", "offered req/s",
                        "start lag p99 (ms)")} | {"load": st.column_config.NumberColumn("load", format="%g")},
    )


def sweep_report(records: pd.DataFrame, sweep: SweepPlan, key: str = "sweep_report") -> None:
    """Everything about one sweep from its records (all steps, as stored) and its SweepPlan (for a stored run:
    `cfai.sweep.sweep_from_stored_plan(info.plan)`)."""
    table = step_table(records, sweep)
    if table.empty:
        st.info("No measured requests in this sweep yet.", icon=":material/info:")
        return
    analysis = analyze(records, sweep)
    markers = markers_frame(table, analysis)
    unit = sweep.load_unit
    flagged = table.loc[~table["schedule_kept"].astype(bool)]
    headline_table(table, analysis, sweep)
    if not flagged.empty:
        lines = [f"- step {int(r.step) + 1} ({r.route}, {unit} {float(r.load):g}): {r.flag}"
                 for r in flagged.itertuples()]
        st.warning("**Steps not generated on schedule** (their latency and throughput are withheld, and they "
                   "never define a knee):\n" + "\n".join(lines), icon=":material/schedule:")
    curve = latency_curve_frame(table)
    if curve.empty:
        st.info("No step has latency numbers to plot (every step failed or was withheld).")
    else:
        sweep_charts_show(sweep_charts.latency_vs_load_chart(curve, markers, unit, stream=sweep.base.stream))
    left, right = st.columns(2)
    with left:
        sweep_charts_show(sweep_charts.throughput_chart(throughput_frame(table), markers, unit,
                                                        open_loop=sweep.open_loop))
    with right:
        if int(table["errors"].sum()) == 0:
            st.success("No failed requests at any step.", icon=":material/check_circle:")
        else:
            sweep_charts_show(sweep_charts.errors_chart(table, unit))

    st.subheader("Steps")
    st.caption(f"One row per step and route, warm-ups excluded. `load` is the step's {unit}; first byte is "
               f"the first token when the plan streams. {analysis['knee_rule'].capitalize()} is the knee.")
    step_table_view(table)
    with st.expander("Sweep summary as JSON (the same numbers as `cfai.sweep.analyze`)"):
        st.json(analysis, expanded=1)

    st.subheader("Open a step")
    labels = step_labels(table, sweep)
    steps = list(labels)
    chosen = st.selectbox("Step", steps, format_func=labels.get, key=f"{key}_step",
                          help="That step's records, reported like a normal comparison run.")
    if chosen is None:
        return
    plans = sweep.steps()
    plan = plans[chosen] if chosen < len(plans) else sweep.base
    step_records = records_of_step(records, chosen)
    if chosen in set(flagged["step"]):
        st.warning("The client could not keep this step's schedule: read its latency as an upper bound on what "
                   "the endpoint did.", icon=":material/schedule:")
    st.caption(f"Step {chosen + 1} · {unit} {float(plan.rate if plan.rate is not None else plan.concurrency):g} · "
               f"{len(step_records):,} records (warm-ups included)")
    run_report(step_records, plan, key=f"{key}_step{chosen}")

"""Compare routes: the same request sent N times direct and through AI Gateway, charted live."""

from __future__ import annotations

import json

import streamlit as st

from cfai.catalog import (
    DEFAULT_CLASSIFICATION_MODEL,
    DEFAULT_TEXT_GENERATION_MODEL,
    TEXT_CLASSIFICATION,
    TEXT_GENERATION,
)
from cfai.chat import validate_params
from cfai.config import ConfigError
from cfai.errors import hint_for_kind
from cfai.live_run import LiveRun
from cfai.plan import CACHE_MODES, MAX_CONCURRENCY, Plan
from cfai.routes import ROUTES
from components.app_shell import require_app_shell
from components.connection import connection_ready, get_client, get_connection
from components.model_picker import model_picker
from components.params import text_generation_params
from components.polling import poll_while_running
from components.run_report import live_charts, run_report
from components.run_store import history_store, run_for_display, store_notice, unsaved_run_panel

require_app_shell()

BODY_KINDS = ("Text generation", "Text classification", "Raw JSON")
DEFAULT_PROMPT = "In one sentence, what does a cache in front of an AI model save?"
ACTIVE_KEY = "compare_active"  # the LiveRun being sent (or last sent) in this session
RUNS_KEY = "compare_runs"  # run ids started in this session, newest last

st.title("Compare routes")
st.caption("Send the same request N times per route, interleaved: **direct** to Workers AI, through **AI "
           "Gateway** (cached with cf-aig-cache-ttl), or through the gateway with its cache skipped. Every "
           "run is stored; see History.")

connection = get_connection()
store, store_problem = history_store()
store_notice(store_problem)
live: LiveRun | None = st.session_state.get(ACTIVE_KEY)
running = live is not None and live.running


def request_editor() -> tuple[str, dict | None, str, str | None]:
    """Model, body, kind and a problem with the body (None when it is usable)."""
    kind = st.segmented_control("Request", BODY_KINDS, default=BODY_KINDS[0], required=True,
                                key="cmp_body_kind") or BODY_KINDS[0]
    if kind == "Text generation":
        model = model_picker(TEXT_GENERATION, key="cmp_tg_model", default=DEFAULT_TEXT_GENERATION_MODEL)
        prompt = st.text_area("Prompt", value=DEFAULT_PROMPT, key="cmp_prompt", height=90)
        with st.expander("Parameters"):
            params = text_generation_params("cmp_tg")
        problems = validate_params(params) + ([] if prompt.strip() else ["Write a prompt."])
        return model, {"prompt": prompt, **params}, kind, " ".join(problems) or None
    if kind == "Text classification":
        model = model_picker(TEXT_CLASSIFICATION, key="cmp_cls_model", default=DEFAULT_CLASSIFICATION_MODEL)
        text = st.text_area("Text", value="The gateway made this demo fast.", key="cmp_text", height=90)
        return model, {"text": text}, kind, None if text.strip() else "Write a text to classify."
    model = st.text_input("Model", value=DEFAULT_TEXT_GENERATION_MODEL, key="cmp_raw_model")
    raw = st.text_area("JSON body", value=json.dumps({"prompt": DEFAULT_PROMPT}, indent=2), key="cmp_raw_body",
                       height=140)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return model, None, kind, f"The body is not valid JSON: {exc}."
    if not isinstance(body, dict):
        return model, None, kind, "The body must be a JSON object, e.g. {\"prompt\": \"...\"}."
    return model, body, kind, None


def plan_editor(model: str, body: dict, kind: str) -> Plan:
    default_routes = ["direct", "gateway"] if connection.has_gateway else ["direct"]
    c1, c2, c3 = st.columns([2, 1, 1])
    routes = c1.multiselect("Routes", ROUTES, default=default_routes, key="cmp_routes",
                            help="gateway: through AI Gateway with cf-aig-cache-ttl. gateway-skip: through "
                                 "AI Gateway with cf-aig-skip-cache: true (the gateway's own overhead).")
    n = c2.number_input("Requests per route (N)", 1, 1000, 30, key="cmp_n")
    warmup = c3.number_input("Warm-up per route", 0, 20, 1, key="cmp_warmup",
                             help="Sent first and excluded from the statistics (fills the cache and the "
                                  "connection pool).")
    c1, c2, c3 = st.columns([2, 1, 1])
    load = c1.radio("Load", ("Closed loop", "Open loop"), horizontal=True, key="cmp_load",
                    help="Closed loop: N workers, each sends when its previous request is done. Open loop: "
                         "a fixed arrival rate whatever the responses do (a stall shows as latency).")
    concurrency, rate = 1, None
    if load == "Closed loop":
        concurrency = c2.number_input("Concurrency", 1, MAX_CONCURRENCY, 1, key="cmp_concurrency")
    else:
        rate = c2.number_input("Rate (requests/s, all routes)", 0.1, 1000.0, 10.0, key="cmp_rate")
    timeout_s = c3.number_input("Timeout (s)", 1.0, 600.0, 60.0, key="cmp_timeout")
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    cache_mode = c1.radio("Cache mode", CACHE_MODES, horizontal=True, key="cmp_cache_mode",
                          help="identical: the same request every time (hits after the first). unique: each "
                               "gateway request gets its own cf-aig-cache-key (every one misses).")
    send_ttl = c2.toggle("Send cf-aig-cache-ttl", value=True, key="cmp_send_ttl",
                         help="Off: rely on the gateway's own cache setting ('default' has caching off).")
    ttl = c3.number_input("Cache TTL (s)", 60, 2_592_000, 300, key="cmp_ttl", disabled=not send_ttl)
    stream = c4.toggle("Stream", key="cmp_stream", disabled=kind == "Text classification",
                       help="Streamed responses are not cached by the gateway by default.")
    name = st.text_input("Run name", key="cmp_name", placeholder="e.g. before the TTL change")
    return Plan(model=(model or "").strip(), body=body, routes=tuple(routes), n=int(n), warmup=int(warmup),
                concurrency=int(concurrency), rate=float(rate) if rate else None,
                cache_ttl=int(ttl) if send_ttl else None, cache_mode=cache_mode,
                stream=bool(stream) and kind != "Text classification", timeout_s=float(timeout_s),
                name=name.strip())


with st.container(border=True):
    st.subheader("Request")
    model, body, kind, body_problem = request_editor()
with st.container(border=True):
    st.subheader("Plan")
    plan = plan_editor(model, body or {}, kind)
problems = ([body_problem] if body_problem else []) + plan.problems(connection)
for problem in problems:
    st.warning(problem, icon=":material/rule:")

left, right, _ = st.columns([1, 1, 4])
ready = connection_ready()
start = left.button("Run", type="primary", icon=":material/play_arrow:", disabled=bool(problems) or running or not ready,
                    key="cmp_run", width="stretch")
stop = right.button("Cancel", icon=":material/stop:", disabled=not running, key="cmp_cancel", width="stretch")

if stop and live is not None:
    live.cancel()
if start:
    try:
        live = LiveRun.start(get_client(), plan, store)
    except (ValueError, ConfigError) as exc:
        st.error(str(exc), icon=":material/error:")
        live = None
    else:
        st.session_state[ACTIVE_KEY] = live
        st.session_state.setdefault(RUNS_KEY, []).append(live.run_id)
        st.session_state["cmp_show_run"] = live.run_id
        st.rerun()  # draw the page again with Run disabled and Cancel enabled



def live_progress(run: LiveRun) -> None:
    """Progress bar and the light live charts of the run being sent."""
    progress = run.progress()
    state = "Cancelling..." if run.cancelled and progress.running else "Running"
    st.progress(progress.fraction, text=f"{state}: {progress.done:,} of {run.total:,} requests")
    live_charts(run.frame(), stream=run.plan.stream)


# Live progress: a fragment polls the background run; the page reruns once when it ends (then the report).
if live is not None and live.running:
    poll_while_running(lambda: live.running, lambda: live_progress(live), key="compare")
    st.stop()  # the report below is drawn once the run has ended

session_runs: list[str] = st.session_state.get(RUNS_KEY, [])
if not session_runs:
    st.info("Set up a request and a plan, then press **Run**. Results from earlier sessions are in History.",
            icon=":material/info:")
    st.stop()

st.divider()
if st.session_state.get("cmp_show_run") not in session_runs:
    st.session_state["cmp_show_run"] = session_runs[-1]
shown = {rid: run_for_display(store, live, rid) for rid in session_runs}
session_runs = [rid for rid in session_runs if shown[rid] is not None]  # gone: deleted, or history lost
if not session_runs:
    st.stop()
run_id = st.selectbox("Run", list(reversed(session_runs)), key="cmp_show_run",
                      format_func=lambda rid: f"{shown[rid].name or 'unnamed'} · {rid}")
meta = shown[run_id]
df = meta.records
if live is not None and live.run_id == run_id and live.error:
    st.error(f"The run stopped: {live.error}", icon=":material/error:")
if live is not None and live.run_id == run_id:
    unsaved_run_panel(live, store, key="cmp_unsaved")
status = meta.status
if status == "cancelled":
    st.info(f"Cancelled after {meta.record_count:,} requests; what was measured is kept.", icon=":material/stop:")
elif status == "failed":
    failed = df.loc[~df["ok"]]
    errors = failed["error_message"].dropna()
    reason = errors.mode().iloc[0] if not errors.empty else "no request succeeded"
    # What to do next, from the kind of the most common error (records keep the kind, not the hint).
    kinds = failed.loc[failed["error_message"] == reason, "error_kind"].dropna()
    hint = hint_for_kind(kinds.iloc[0]) if not kinds.empty else None
    st.error(f"No measured request succeeded: {reason}" + (f"\n\n{hint}" if hint else ""), icon=":material/error:")
st.caption(f"Run `{run_id}` · {meta.model} · {meta.connection_label} · {meta.record_count:,} records "
           f"· {status}")
run_report(df, meta.plan, key="cmp_report")

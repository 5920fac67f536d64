"""Compare routes: the same request sent N times direct and through AI Gateway, charted live."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace

import streamlit as st

from cfai.catalog import (
    DEFAULT_CLASSIFICATION_MODEL,
    DEFAULT_TEXT_GENERATION_MODEL,
    TEXT_CLASSIFICATION,
    TEXT_GENERATION,
)
from cfai.chat import validate_params
from cfai.config import ConfigError
from cfai.estimate import Estimate, estimate_duration, eta_seconds, format_duration
from cfai.failures import summarize_failures
from cfai.format import format_ms
from cfai.live_run import LiveRun
from cfai.plan import CACHE_MODES, MAX_CONCURRENCY, Plan
from cfai.pricing import ModelPrice
from cfai.report import AFFINITY_HEADER
from cfai.routes import ROUTES
from cfai.safe_markdown import escape_markdown
from components.app_shell import require_app_shell
from components.connection import connection_ready, get_client, get_connection
from components.cost_view import price_override_editor, stored_price
from components.model_picker import catalogue, model_picker
from components.params import text_generation_params
from components.polling import poll_while_running
from components.presenter import page_css, presenter_mode, presenter_toggle
from components.run_report import live_report, run_report
from components.run_store import history_store, run_for_display, store_notice, unsaved_run_panel
from components.settings_memory import keep_settings
from components.sweep_view import sweep_panel

require_app_shell()

BODY_KINDS = ("Text generation", "Text classification", "Raw JSON")
DEFAULT_PROMPT = "In one sentence, what does a cache in front of an AI model save?"
ACTIVE_KEY = "compare_active"  # the LiveRun being sent (or last sent) in this session
RUNS_KEY = "compare_runs"  # run ids started in this session, newest last
SHOWN_KEY = "compare_shown_run"  # the run the report shows (not a widget key: it survives page changes)
PROBE_KEY = "_compare_probes"  # (model, body shape) -> measured miss latency in ms, or the probe's error
# Defaults that finish in about 15 s against the local emulator at its realistic speed (a Llama 3.1 8B miss of
# ~1.3 s at 64 tokens, x 11 direct + 1 gateway miss + 10 hits) and still leave 10 samples a side for the
# speed-up's interval (cfai.stats.MIN_CI_SAMPLES).
DEFAULT_N = 10
DEFAULT_MAX_TOKENS = 64
DEFAULT_CONCURRENCY = 1

keep_settings("cmp_", exclude_prefixes=("cmp_report", "cmp_unsaved", "cmp_show_run"))
st.session_state.setdefault("cmp_tg_max_tokens", DEFAULT_MAX_TOKENS)
presenter = presenter_mode()
page_css(presenter)
if not presenter:
    st.title("Compare routes")
    st.caption("Send the same request N times per route, interleaved: **direct** to Workers AI, through **AI "
               "Gateway**'s URL (cached with cf-aig-cache-ttl), through the gateway with its cache skipped, or "
               "the **unified** route (Workers AI's own API with a cf-aig-gateway-id header). Every run is "
               "stored; see History.")

connection = get_connection()
store, store_problem = history_store()
if not presenter:
    store_notice(store_problem)
live: LiveRun | None = st.session_state.get(ACTIVE_KEY)
running = live is not None and live.running
MODES = ("Comparison", "Load sweep")
mode = MODES[0] if presenter else st.segmented_control(
    "Mode", MODES, default=MODES[0], required=True, key="cmp_mode", label_visibility="collapsed",
    help="Comparison: one load, N requests per route. Load sweep: the same plan at rising loads, to find "
         "where latency bends.")
controls = st.container()  # Run, Cancel, the estimate: drawn first, filled once the plan is known
live_area = st.container()  # a run in progress: right under Run, above the editors, where the room looks


def catalogue_price(model: str, kind: str) -> ModelPrice | None:
    task = TEXT_CLASSIFICATION if kind == "Text classification" else TEXT_GENERATION
    info = catalogue(task).get(model)
    return info.price if info is not None else None


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
    # Routes on a row of their own: beside N and warm-up in a half-width column at 1024 px, the chips lost
    # their names and the labels broke mid-word ("Request s per route").
    routes = st.multiselect("Routes", ROUTES, default=default_routes, key="cmp_routes",
                            help="gateway: the AI Gateway URL, with cf-aig-cache-ttl. gateway-skip: the same with "
                                 "cf-aig-skip-cache: true (the gateway's own overhead). unified: the Workers AI "
                                 "REST API with a cf-aig-gateway-id header (the gateway's unified route).")
    c1, c2 = st.columns(2)
    n = c1.number_input("Requests per route (N)", 1, 1000, DEFAULT_N, key="cmp_n")
    warmup = c2.number_input("Warm-up per route", 0, 20, 1, key="cmp_warmup",
                             help="Sent first and excluded from the statistics (fills the cache and the "
                                  "connection pool).")
    c1, c2, c3 = st.columns([2, 1, 1])
    load = c1.radio("Load", ("Closed loop", "Open loop"), horizontal=True, key="cmp_load",
                    help="Closed loop: N workers, each sends when its previous request is done. Open loop: "
                         "a fixed arrival rate whatever the responses do (a stall shows as latency).")
    concurrency, rate = 1, None
    if load == "Closed loop":
        concurrency = c2.number_input("Concurrency", 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY, key="cmp_concurrency")
    else:
        rate = c2.number_input("Rate (requests/s, all routes)", 0.1, 1000.0, 10.0, key="cmp_rate")
    timeout_s = c3.number_input("Timeout (s)", 1.0, 600.0, 60.0, key="cmp_timeout")
    c1, c2 = st.columns([2, 1])
    cache_mode = c1.radio("Cache mode", CACHE_MODES, horizontal=True, key="cmp_cache_mode",
                          help="identical: the same request every time (hits after the first). unique: each "
                               "gateway request gets its own cf-aig-cache-key (every one misses).")
    send_ttl = st.session_state.get("cmp_send_ttl", True)
    ttl = c2.number_input("Cache TTL (s)", 60, 2_592_000, 300, key="cmp_ttl", disabled=not send_ttl)
    with st.container(horizontal=True, gap="medium"):
        send_ttl = st.toggle("Send cf-aig-cache-ttl", value=True, key="cmp_send_ttl",
                             help="Off: rely on the gateway's own cache setting ('default' has caching off).")
        stream = st.toggle("Stream", key="cmp_stream", disabled=kind == "Text classification",
                           help="Streamed responses are not cached by the gateway by default.")
        affinity = st.checkbox("Session affinity", key="cmp_affinity",
                               help=f"Sends one {AFFINITY_HEADER} value per run on every request of every route "
                                    "alike, so Workers AI's prompt caching treats the routes the same. Off: no "
                                    "header.")
    name = st.text_input("Run name", key="cmp_name", placeholder="e.g. before the TTL change")
    extra = {AFFINITY_HEADER: "per-run"} if affinity else {}  # the value is made when Run is pressed
    return Plan(model=(model or "").strip(), body=body, routes=tuple(routes), n=int(n), warmup=int(warmup),
                concurrency=int(concurrency), rate=float(rate) if rate else None,
                cache_ttl=int(ttl) if send_ttl else None, cache_mode=cache_mode,
                stream=bool(stream) and kind != "Text classification", timeout_s=float(timeout_s),
                name=name.strip(), extra_headers=extra)


def probe_key(plan: Plan) -> str:
    """What a miss's latency depends on: the model and the body without its text (the prompt's wording
    barely matters; max_tokens does), and streaming."""
    shape = {k: v for k, v in plan.body.items() if k not in ("prompt", "text", "messages")}
    return json.dumps([connection.mode, plan.model, shape, plan.stream], sort_keys=True, default=str)


def probe(plan: Plan) -> tuple[float | None, str | None]:
    """One direct request with the plan's body: its total time in ms, or why it failed."""
    result = get_client().run(plan.model, plan.body, route="direct", timeout=min(plan.timeout_s, 30.0))
    if result.error is not None or result.timings.total_ms is None:
        return None, escape_markdown(str(result.error or "no timing"), max_length=200)
    return float(result.timings.total_ms), None


def plan_estimate(plan: Plan, can_probe: bool) -> tuple[Estimate | None, str]:
    """The estimated duration before Run, from one probe request (automatic in local mode; a button on
    Cloudflare, where a request is billed), and a sentence saying what it rests on."""
    probes = st.session_state.setdefault(PROBE_KEY, {})
    key = probe_key(plan)
    if key not in probes and can_probe:
        local = connection.mode == "local"
        if local or st.button("Estimate the duration (sends 1 request)", key="cmp_probe_button",
                              icon=":material/timer:"):
            probes[key] = probe(plan)
    miss_ms, problem = probes.get(key, (None, None))
    if problem:
        return None, f"No estimate: the probe request failed ({problem})."
    if miss_ms is None:
        return None, ""
    est = estimate_duration(plan, miss_ms, basis="one probe request")
    basis = (f"{est.misses:,} requests reaching the model at {format_ms(miss_ms)} each (one probe request, direct)"
             + (f", {est.hits:,} expected cache hits" if est.hits else ""))
    return est, f"Estimated duration: about **{format_duration(est.seconds)}** ({basis})."


editors = st.expander("Request and plan", expanded=False) if presenter else st.container()
with editors:
    request_col, plan_col = st.columns([1, 1], gap="medium")
    with request_col, st.container(border=True):
        st.markdown("**Request**")
        model, body, kind, body_problem = request_editor()
        with st.expander("Price", icon=":material/payments:"):
            price = price_override_editor(model, catalogue_price(model, kind), key="cmp_price")
    with plan_col, st.container(border=True):
        st.markdown("**Plan**")
        plan = plan_editor(model, body or {}, kind)
problems = ([body_problem] if body_problem else []) + plan.problems(connection)
ready = connection_ready()

if mode == "Load sweep":  # below the editors: the sweep's form, its progress and its report
    if body_problem:
        st.warning(body_problem, icon=":material/rule:")
    elif not ready:
        st.info("Fix the connection in the sidebar to run a sweep.", icon=":material/info:")
    else:
        sweep_panel(get_client(), plan, store, key="cmp_sweep")
    st.stop()

with controls:
    # Buttons as wide as their labels and the estimate on its own line: fixed column shares cut the labels
    # short ("R...", "C...") at 1024 px with the sidebar open.
    with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
        start = st.button("Run", type="primary", icon=":material/play_arrow:",
                          disabled=bool(problems) or running or not ready, key="cmp_run", width="content")
        stop = st.button("Cancel", icon=":material/stop:", disabled=not running, key="cmp_cancel", width="content")
        presenter_toggle()
    info = st.container()
    estimate, estimate_text = None, ""
    with info:
        if not problems and ready and not running:
            estimate, estimate_text = plan_estimate(plan, can_probe=True)
        if estimate_text:
            st.markdown(estimate_text)
    for problem in problems:
        st.warning(problem, icon=":material/rule:")

if stop and live is not None:
    live.cancel()
if start:
    extra = dict(plan.extra_headers)
    if AFFINITY_HEADER in extra:  # one value per run, the same on every route
        extra[AFFINITY_HEADER] = f"cfai-{secrets.token_hex(8)}"
    to_run = replace(plan, extra_headers=extra, price=price.to_dict() if price is not None else None)
    try:
        live = LiveRun.start(get_client(), to_run, store)
    except (ValueError, ConfigError) as exc:
        st.error(str(exc), icon=":material/error:")
        live = None
    else:
        st.session_state[ACTIVE_KEY] = live
        st.session_state.setdefault(RUNS_KEY, []).append(live.run_id)
        st.session_state[SHOWN_KEY] = live.run_id  # the new run is the one shown, finished or cancelled
        st.session_state["_compare_estimate_s"] = estimate.seconds if estimate is not None else None
        st.rerun()  # draw the page again with Run disabled and Cancel enabled


def live_progress(run: LiveRun) -> None:
    """Progress with elapsed time and ETA, the headline numbers so far and the live latency chart."""
    progress = run.progress()
    state = "Cancelling..." if run.cancelled and progress.running else "Running"
    eta = eta_seconds(progress.done, run.total, progress.elapsed_s, st.session_state.get("_compare_estimate_s"))
    st.progress(progress.fraction, text=f"{state}: {progress.done:,} of {run.total:,} requests · elapsed "
                                        f"{format_duration(progress.elapsed_s)} · about {format_duration(eta)} left")
    live_report(run.frame(), run.plan, presenter=presenter)


# Live progress: a fragment polls the background run; the page reruns once when it ends (then the report).
if live is not None and live.running:
    with live_area:
        poll_while_running(lambda: live.running, lambda: live_progress(live), key="compare")
    st.stop()  # the report below is drawn once the run has ended

session_runs: list[str] = st.session_state.get(RUNS_KEY, [])
if not session_runs:
    st.info("Set up a request and a plan, then press **Run**. Results from earlier sessions are in History.",
            icon=":material/info:")
    st.stop()

if not presenter:
    st.divider()
shown = {rid: run_for_display(store, live, rid) for rid in session_runs}
session_runs = [rid for rid in session_runs if shown[rid] is not None]  # gone: deleted, or history lost
if not session_runs:
    st.stop()
if st.session_state.get(SHOWN_KEY) not in session_runs:
    st.session_state[SHOWN_KEY] = session_runs[-1]


def _pick_run() -> None:
    st.session_state[SHOWN_KEY] = st.session_state[f"cmp_show_run_{session_runs[-1]}"]


options = list(reversed(session_runs))
if not presenter:
    # Keyed per newest run: a new run (finished or cancelled) makes a fresh selector showing SHOWN_KEY, never a
    # value Streamlit kept for an older selector.
    st.selectbox("Run", options, index=options.index(st.session_state[SHOWN_KEY]),
                 key=f"cmp_show_run_{session_runs[-1]}", on_change=_pick_run,
                 format_func=lambda rid: f"{shown[rid].name or 'unnamed'} · {rid} · {shown[rid].status}")
run_id = st.session_state[SHOWN_KEY]
meta = shown[run_id]
df = meta.records
if live is not None and live.run_id == run_id and live.error:
    st.error(f"The run stopped: {escape_markdown(live.error)}", icon=":material/error:")
if live is not None and live.run_id == run_id and not presenter:
    unsaved_run_panel(live, store, key="cmp_unsaved")
status = meta.status
if status == "cancelled":
    measured_ok = int((~df["warmup"].astype(bool) & df["ok"].astype(bool)).sum()) if not df.empty else 0
    st.info(f"**Cancelled** after {meta.record_count:,} requests ({measured_ok:,} measured and successful); "
            "what was measured is kept and shown below.", icon=":material/stop:")
elif status == "failed":
    failure = summarize_failures(df)
    if failure is None:
        st.error("No measured request succeeded.", icon=":material/error:")
    else:
        hint = f"\n\n{escape_markdown(failure.hint)}" if failure.hint else ""
        st.error(f"No measured request succeeded: {escape_markdown(failure.headline())}{hint}",
                 icon=":material/error:")
if not presenter:
    st.caption(f"Run `{run_id}` · {escape_markdown(meta.model)} · {meta.connection_label} · "
               f"{meta.record_count:,} records · {status}")
run_price = stored_price(meta.plan.price if isinstance(meta.plan, Plan) else (meta.plan or {}).get("price"))
run_report(df, meta.plan, key="cmp_report", price=run_price, presenter=presenter)

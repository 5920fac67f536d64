"""The sweep panel and report under AppTest, against the session emulator; chart and marker frames directly."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cfai.live_sweep import LiveSweep, estimate
from cfai.plan import Plan
from cfai.records import Record, records_frame
from cfai.store import Store
from cfai.sweep import STEP_SEQ_STRIDE, SweepPlan, analyze, step_table, sweep_from_stored_plan
from cfai.sweep_report import markers_frame, route_headlines, step_labels
from components import sweep_charts

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "tests" / "apps" / "sweep_app.py")
TEXTGEN = "@cf/meta/llama-3.1-8b-instruct"


def base(**kw) -> Plan:
    values = {"model": TEXTGEN, "body": {"prompt": "x", "max_tokens": 8}, "routes": ("direct",), "n": 1,
              "warmup": 0}
    return Plan(**{**values, **kw})


def synthetic(latencies: list[float], routes=("direct",), per_step: int = 10, fail_by_step=None,
              lag_ms_by_step=None) -> list[Record]:
    rows = []
    for step, latency in enumerate(latencies):
        for i in range(per_step):
            for route in routes:
                failed = i < (fail_by_step or {}).get(step, 0)
                start = step * 10 + i * 0.05
                lag = (lag_ms_by_step or {}).get(step, 0.0) / 1000
                rows.append(Record(run_id="s", seq=step * STEP_SEQ_STRIDE + len(rows), route=route, warmup=False,
                                   intended_start_s=start, actual_start_s=start + lag,
                                   status=429 if failed else 200, ok=not failed, total_ms=latency,
                                   ttfb_ms=latency / 2, error_kind="rate_limited" if failed else None))
    return rows


# --- frames and charts, from hand-made sweeps ------------------------------------------------------------------
def test_markers_place_the_knee_and_the_first_errors_and_429s():
    sweep = SweepPlan(base(), concurrencies=(1, 2, 4, 8), requests_per_step=10)
    frame = records_frame(synthetic([10.0, 12.0, 20.0, 40.0], fail_by_step={3: 2}))
    table = step_table(frame, sweep)
    markers = markers_frame(table, analyze(frame, sweep))
    by_kind = {k: (r["load"], r["value_ms"]) for k, r in markers.set_index("kind").iterrows()}
    assert by_kind["knee"] == (4.0, 20.0)  # 20 > 1.5 x 10, 12 is not
    assert by_kind["errors start"][0] == 8.0 and by_kind["429s start"][0] == 8.0
    head = route_headlines(table, analyze(frame, sweep), sweep)[0]
    assert head.knee == "concurrency 4" and head.errors_start == "concurrency 8"
    assert "10 ms" in head.knee_detail and "20 ms" in head.knee_detail


def test_withheld_open_loop_steps_are_marked_and_left_off_the_curves():
    sweep = SweepPlan(base(), rates=(5, 10, 20), requests_per_step=10)
    frame = records_frame(synthetic([10.0, 11.0, 90.0], lag_ms_by_step={2: 80.0}))
    table = step_table(frame, sweep)
    analysis = analyze(frame, sweep)
    markers = markers_frame(table, analysis)
    assert markers.loc[markers["kind"] == "withheld", "load"].tolist() == [20.0]
    assert "knee" not in set(markers["kind"])  # the only bend is on a step the client could not generate
    assert step_labels(table, sweep)[2].endswith("numbers withheld")
    spec = sweep_charts.latency_vs_load_chart(
        __import__("cfai.sweep", fromlist=["latency_curve_frame"]).latency_curve_frame(table), markers,
        sweep.load_unit).to_dict()
    text = json.dumps(spec)
    assert "withheld (direct)" in text and "requests/s offered" in text
    values = [row["value_ms"] for d in spec["datasets"].values() for row in d if "series" in row]
    assert 90.0 not in values  # the withheld step's p50 is not drawn


def test_latency_chart_uses_a_log2_load_axis_and_names_what_it_measured():
    sweep = SweepPlan(base(), concurrencies=(1, 2, 4, 8, 16, 32), requests_per_step=10)
    frame = records_frame(synthetic([10, 10, 11, 12, 30, 300]))
    table = step_table(frame, sweep)
    from cfai.sweep import latency_curve_frame

    spec = sweep_charts.latency_vs_load_chart(latency_curve_frame(table), markers_frame(table, analyze(frame, sweep)),
                                              sweep.load_unit).to_dict()
    layer = spec["layer"][0]["encoding"]
    assert layer["x"]["scale"]["type"] == "log" and layer["x"]["scale"]["base"] == 2
    assert layer["y"]["scale"]["type"] == "log"  # 10 ms next to 300 ms
    assert layer["x"]["axis"]["values"] == [1, 2, 4, 8, 16, 32]
    text = json.dumps(spec["title"])
    assert "time to first byte" in text and "knee" in text
    flat = SweepPlan(base(), concurrencies=(1, 2), requests_per_step=10)
    flat_frame = records_frame(synthetic([10, 11]))
    flat_table = step_table(flat_frame, flat)
    flat_spec = sweep_charts.latency_vs_load_chart(latency_curve_frame(flat_table),
                                                   markers_frame(flat_table, analyze(flat_frame, flat)),
                                                   flat.load_unit).to_dict()
    assert flat_spec["layer"][0]["encoding"]["x"]["scale"].get("type") != "log"


def test_the_estimate_is_exact_where_the_plan_fixes_it():
    counted = SweepPlan(base(routes=("direct", "gateway"), warmup=1), concurrencies=(1, 2), requests_per_step=4)
    est = estimate(counted, latency_ms=100)
    assert est.requests == 2 * (4 + 1) * 2 and est.requests_exact and not est.seconds_exact
    # concurrency 1: 2 warm-up + 8 measured rounds; concurrency 2: 1 + 4 rounds; 100 ms each.
    assert est.seconds == pytest.approx((10 + 5) * 0.1)
    timed = SweepPlan(base(), concurrencies=(1, 4), duration_s=3)
    est = estimate(timed, latency_ms=100)
    assert est.seconds == 6 and est.seconds_exact and not est.requests_exact and est.requests == 30 + 120
    assert est.text().startswith("about 150 requests in 6.0 s")
    rated = SweepPlan(base(), rates=(10, 20), requests_per_step=10)
    assert estimate(rated, latency_ms=0).seconds == pytest.approx(10 / 10 + 10 / 20)


# --- the panel under AppTest, against the emulator ------------------------------------------------------------
@pytest.fixture
def sweep_app(app_env):
    from streamlit.testing.v1 import AppTest

    Path(os.environ["CFAI_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _stored(run_id: str) -> Store:
    store = Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")
    assert store.has_run(run_id)
    return store


def test_bad_loads_say_what_is_wrong_and_run_stays_off(sweep_app):
    at = sweep_app
    at.text_input(key="sweep_loads_concurrency").set_value("1, 2, lots").run()
    assert any("'lots' is not a whole number" in w.value for w in at.warning)
    assert at.button(key="sweep_run").disabled
    at.text_input(key="sweep_loads_concurrency").set_value("1, 200").run()
    assert any("between 1 and 64" in w.value for w in at.warning)
    assert at.button(key="sweep_run").disabled


def test_a_five_step_sweep_runs_is_stored_as_one_run_and_draws_its_curves(sweep_app):
    at = sweep_app
    at.text_input(key="sweep_loads_concurrency").set_value("1, 2, 4, 8, 16").run()
    at.number_input(key="sweep_count").set_value(8).run()
    assert any("Estimate: 90 requests" in c.value for c in at.caption)  # 5 x (8 + 1) x 2 routes
    t0 = time.monotonic()
    at.button(key="sweep_run").click().run()
    assert not at.exception, at.exception
    live: LiveSweep = at.session_state["sweep_live"]
    assert at.button(key="sweep_cancel").disabled is False or not live.running
    assert live.wait(60), "the sweep did not finish within a minute"
    elapsed = time.monotonic() - t0
    at.run()  # as the polling fragment's final rerun would
    assert not at.exception, at.exception
    print(f"5-step sweep, 90 requests: {elapsed:.1f} s")

    store = _stored(live.run_id)
    info = store.run_info(live.run_id)
    assert info.status == "complete" and info.record_count == 90
    again = sweep_from_stored_plan(info.plan)
    assert again is not None and again.concurrencies == (1, 2, 4, 8, 16) and again.requests_per_step == 8

    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    joined = " ".join(specs)
    assert "Latency against load, per route" in joined and "Achieved throughput against load" in joined
    heads = at.dataframe[0].value  # one line per route
    assert list(heads["route"]) == ["direct", "gateway"]
    assert list(heads.columns) == ["route", "knee", "p50 before → at the knee", "errors start", "429s start",
                                   "peak throughput"]
    assert heads["peak throughput"].str.contains(r"req/s at concurrency \d+$").all()
    table = at.dataframe[1].value
    assert len(table) == 10 and set(table["route"]) == {"direct", "gateway"}
    assert any("in History as one run" in c.value for c in at.caption)

    # Open step 3 (concurrency 4): the normal run report of that step's records.
    select = at.selectbox(key="sweep_report_step")
    assert len(select.options) == 5
    select.set_value(2).run()
    assert not at.exception, at.exception
    assert any("Step 3 · concurrency 4 · 18 records" in c.value for c in at.caption)
    joined = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "Latency per request over time" in joined and "p50 and p95 per route" in joined


def test_cancel_keeps_what_was_measured_and_skips_the_rest(sweep_app):
    at = sweep_app
    at.text_input(key="sweep_loads_concurrency").set_value("1, 2, 4").run()
    at.number_input(key="sweep_count").set_value(5000).run()
    at.button(key="sweep_run").click().run()
    live: LiveSweep = at.session_state["sweep_live"]
    deadline = time.monotonic() + 30
    while live.done_count() < 5 and time.monotonic() < deadline:  # readiness: some requests measured
        live.wait(0.05)
    at.button(key="sweep_cancel").click().run()
    assert live.wait(30)
    at.run()
    assert not at.exception, at.exception
    assert any("Cancelled during step 1 of 3" in i.value for i in at.info), [i.value for i in at.info] + [e.value for e in at.error]
    info = _stored(live.run_id).run_info(live.run_id)
    assert info.status == "cancelled" and 0 < info.record_count < 5000

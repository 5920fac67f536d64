"""Load sweeps: step logic, knee / error / schedule detection on synthetic records, a real sweep."""

from __future__ import annotations

import math
import threading

import pytest

from cfai.compare import Plan, Record, records_frame
from cfai.store import Store
from cfai.sweep import (
    STEP_SEQ_STRIDE,
    SweepPlan,
    SweepRunner,
    analyze,
    knee,
    latency_curve_frame,
    parse_loads,
    records_of_step,
    step_table,
    sweep_from_stored_plan,
    throughput_frame,
)

TEXTGEN = "@cf/meta/llama-3.1-8b-instruct"
CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"


def base(**kw) -> Plan:
    values = {"model": CLASSIFIER, "body": {"text": "a sweep"}, "routes": ("direct", "gateway"), "n": 1, "warmup": 0}
    return Plan(**{**values, **kw})


# --- the plan ------------------------------------------------------------------------------------------------
def test_steps_rise_and_take_their_size():
    sweep = SweepPlan(base(), concurrencies=(4, 1, 2), requests_per_step=5)
    plans = sweep.steps()
    assert [p.concurrency for p in plans] == [1, 2, 4]
    assert all(p.n == 5 and p.rate is None for p in plans)
    rated = SweepPlan(base(), rates=(10, 40), duration_s=2.0).steps()
    assert [(p.rate, p.n) for p in rated] == [(10, 10), (40, 40)]  # rate x duration / 2 routes


@pytest.mark.parametrize("kwargs, message", [
    ({"concurrencies": (1,), "rates": (2.0,), "requests_per_step": 1}, "either"),
    ({"requests_per_step": 1}, "either"),
    ({"concurrencies": (1, 65), "requests_per_step": 1}, "between 1 and 64"),
    ({"rates": (0.0,), "requests_per_step": 1}, "above 0"),
    ({"concurrencies": (2, 2), "requests_per_step": 1}, "only once"),
    ({"concurrencies": (1,)}, "request count or by a duration"),
    ({"concurrencies": (1,), "requests_per_step": 1, "duration_s": 1.0}, "request count or by a duration"),
    ({"concurrencies": tuple(range(1, 34)), "requests_per_step": 1}, "at most 32"),
])
def test_bad_sweeps_say_what_is_wrong(kwargs, message):
    problems = " ".join(SweepPlan(base(), **kwargs).problems())
    assert message in problems
    with pytest.raises(ValueError):
        SweepPlan(base(), **kwargs).validate()


def test_parse_loads():
    assert parse_loads("1, 2,4", integers=True) == (1, 2, 4)
    assert parse_loads("0.5,2", integers=False) == (0.5, 2.0)
    with pytest.raises(ValueError, match="whole number"):
        parse_loads("1,x", integers=True)
    with pytest.raises(ValueError, match="at least one"):
        parse_loads(" , ", integers=True)


def test_steps_run_in_order_tagged_and_cancel_skips_the_rest():
    seen: list[tuple[int, int]] = []
    cancel = threading.Event()

    def executor(plan, step_run_id, step_cancel, on_record):
        out = []
        for i in range(plan.n):
            r = Record(run_id=step_run_id, seq=i, route="direct", warmup=False, intended_start_s=0.0,
                       actual_start_s=0.0, status=200, ok=True, total_ms=1.0)
            on_record(r)
            out.append(r)
        seen.append((plan.concurrency, plan.n))
        if plan.concurrency == 2:
            cancel.set()
        return out

    sweep = SweepPlan(base(routes=("direct",)), concurrencies=(1, 2, 4), requests_per_step=3)
    result = SweepRunner(sweep, executor, run_id="sweep-1").run(cancel=cancel)
    assert seen == [(1, 3), (2, 3)]  # step 3 never started
    assert result.cancelled and result.status == "cancelled"
    assert [r.seq for r in result.records] == [0, 1, 2, STEP_SEQ_STRIDE, STEP_SEQ_STRIDE + 1, STEP_SEQ_STRIDE + 2]
    assert {r.run_id for r in result.records} == {"sweep-1"}


# --- analysis on synthetic records ---------------------------------------------------------------------------
def synthetic(latencies_by_step, *, lag_ms_by_step=None, fail_by_step=None, route="direct", per_step=20):
    rows = []
    for step, latency in enumerate(latencies_by_step):
        for i in range(per_step):
            lag = (lag_ms_by_step or {}).get(step, 0.0) / 1000
            failed = i < (fail_by_step or {}).get(step, 0)
            start = step * 10 + i * 0.05
            rows.append(Record(
                run_id="s", seq=step * STEP_SEQ_STRIDE + i, route=route, warmup=False, intended_start_s=start,
                actual_start_s=start + lag, status=429 if failed else 200, ok=not failed,
                total_ms=latency, ttfb_ms=latency / 2, error_kind="rate_limited" if failed else None,
            ))
    return rows


def test_knee_errors_and_429s_are_found():
    sweep = SweepPlan(base(routes=("direct",)), concurrencies=(1, 2, 4, 8), requests_per_step=20)
    frame = records_frame(synthetic([10.0, 12.0, 16.0, 40.0], fail_by_step={3: 2}))
    table = step_table(frame, sweep)
    assert list(table["load"]) == [1, 2, 4, 8]
    assert table["p50_ms"].tolist() == [10, 12, 16, 40]
    assert knee(table, "direct") == 2  # 16 > 1.5 x 10; 12 is not
    summary = analyze(frame, sweep)["routes"]["direct"]
    assert summary["knee_step"] == 2 and summary["knee_load"] == 4
    assert summary["errors_start_step"] == 3 and summary["rate_limited_start_load"] == 8
    assert table.loc[3, "rate_limited"] == 2 and table.loc[3, "ok"] == 18
    # Achieved throughput: successful requests over the step's wall time (first start to last end).
    wall = 19 * 0.05 + 0.010
    assert table.loc[0, "achieved_rps"] == pytest.approx(20 / wall)


def test_flat_latency_has_no_knee():
    sweep = SweepPlan(base(routes=("direct",)), concurrencies=(1, 2, 4), requests_per_step=20)
    assert knee(step_table(records_frame(synthetic([10.0, 11.0, 14.9])), sweep), "direct") is None


def test_open_loop_steps_that_fell_behind_are_withheld():
    sweep = SweepPlan(base(routes=("direct",)), rates=(5, 10, 20), requests_per_step=20)
    frame = records_frame(synthetic([10.0, 11.0, 60.0], lag_ms_by_step={2: 80.0}))
    table = step_table(frame, sweep)
    assert table["schedule_kept"].tolist() == [True, True, False]
    assert "could not keep" in table.loc[2, "flag"]
    assert math.isnan(table.loc[2, "p50_ms"]) and math.isnan(table.loc[2, "achieved_rps"])
    assert table.loc[2, "requests"] == 20  # counts stay
    assert table["offered_rps"].tolist() == [5, 10, 20]
    assert knee(table, "direct") is None  # the only bend is on a step we could not generate
    assert analyze(frame, sweep)["routes"]["direct"]["flagged_steps"] == [2]
    curve = latency_curve_frame(table)
    assert set(curve["step"]) == {0, 1}
    assert not throughput_frame(table)["schedule_kept"].iloc[2]


def test_chart_frames_are_tidy_and_mark_the_knee():
    sweep = SweepPlan(base(routes=("direct",)), concurrencies=(1, 2, 4), requests_per_step=20)
    table = step_table(records_frame(synthetic([10.0, 20.0, 40.0])), sweep)
    curve = latency_curve_frame(table)
    assert set(curve["series"]) == {"p50", "p95", "TTFT p50"}
    assert curve.loc[curve["knee"], ["step", "series"]].values.tolist() == [[1, "p50"]]
    assert len(curve) == 9


# --- against the emulator ------------------------------------------------------------------------------------
def test_a_real_three_step_sweep_is_one_stored_run(client, tmp_path):
    sweep = SweepPlan(base(model=TEXTGEN, body={"prompt": "Sweep me.", "max_tokens": 8}, warmup=1,
                           cache_mode="unique"),
                      concurrencies=(1, 2, 4), requests_per_step=4)
    steps_seen = []
    runner = SweepRunner.with_client(client, sweep)
    result = runner.run(on_step=steps_seen.append)
    assert [s.load for s in steps_seen] == [1, 2, 4]
    assert len(result.records) == 3 * (4 + 1) * 2
    measured = [r for r in result.records if not r.warmup]
    assert all(r.ok for r in measured), [r.error_message for r in measured if not r.ok]
    # Unique cache keys never repeat across steps: every gateway request misses.
    assert {r.cache_status for r in measured if r.route == "gateway"} == {"MISS"}

    with Store(tmp_path / "h.sqlite3") as store:
        store.save_run(result.to_run_result())
        meta = store.run_info(result.run_id)
        frame = store.load_records(result.run_id)
        assert meta.status == "complete" and meta.record_count == 30
        again = sweep_from_stored_plan(meta.plan)
        assert again is not None and again.concurrencies == (1, 2, 4)
        summary = analyze(frame, again)
        assert [(s["step"], s["route"]) for s in summary["steps"]] == [
            (0, "direct"), (0, "gateway"), (1, "direct"), (1, "gateway"), (2, "direct"), (2, "gateway")]
        assert all(s["achieved_rps"] > 0 and s["p50_ms"] > 0 for s in summary["steps"])
        step1 = records_of_step(frame, 1)
        assert sorted(step1["seq"]) == list(range(10))


def test_a_duration_step_stops_at_its_deadline(client):
    sweep = SweepPlan(base(routes=("direct",), extra_headers={"x-emulator-delay-ms": "20"}),
                      concurrencies=(1, 2), duration_s=0.4)
    result = SweepRunner.with_client(client, sweep).run()
    for outcome in result.steps:
        assert 0 < outcome.records < 100  # stopped by the deadline, far below the cap
        assert outcome.wall_s < 2.0 and not outcome.ended_early

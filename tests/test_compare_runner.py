"""The comparison runner: interleaving, warm-ups, cache modes, load models and cancellation, against the
emulator over loopback."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict

import pytest

from cfai import compare
from cfai.compare import ROUTES, Plan, Runner, RunResult, interleaved_jobs, records_frame, run_status
from cfai.config import ConfigError
from cfai.stats import route_summary, speedup, start_lag_warning, summarize

TEXT_MODEL = "@cf/meta/llama-3.1-8b-instruct"
CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"


def text_plan(**changes) -> Plan:
    # A fresh prompt per test so no test sees another's cache entries.
    values = dict(model=TEXT_MODEL, body={"prompt": f"test {uuid.uuid4().hex}", "max_tokens": 16}, n=5, warmup=1)
    values.update(changes)
    return Plan(**values)


def route_row(table, route, cache_status="all"):
    return table[(table["route"] == route) & (table["cache_status"] == cache_status)].iloc[0]


# --- plan and order, no network -----------------------------------------------------------------------------
def test_interleaved_order_with_warmups_first():
    jobs = interleaved_jobs(("direct", "gateway", "gateway-skip"), n=2, warmup=1)
    assert [j.route[0:9] for j in jobs] == ["direct", "gateway", "gateway-s"] * 3
    assert [j.warmup for j in jobs] == [True] * 3 + [False] * 6
    assert [j.seq for j in jobs] == list(range(9))


def test_plan_problems_are_explained():
    assert text_plan().problems() == []
    bad = Plan(model="", body={}, routes=("direct", "nope"), n=0, warmup=-1, concurrency=65, rate=0,
               cache_ttl=0, cache_mode="sometimes", timeout_s=0)
    text = " ".join(bad.problems())
    for word in ("model", "body", "nope", "at least 1", "Warm-up", "64", "rate", "TTL", "Cache mode", "timeout"):
        assert word in text
    with pytest.raises(ValueError):
        bad.validate()
    assert ROUTES == ("direct", "gateway", "gateway-skip", "unified")


def test_plan_dict_round_trip_drops_secret_headers():
    plan = text_plan(routes=("gateway",), extra_headers={"Authorization": "Bearer sekrit", "x-emulator-delay-ms": "5"})
    data = plan.to_dict()
    assert "sekrit" not in json.dumps(data)
    again = Plan.from_dict(data)
    assert again.routes == ("gateway",) and again.extra_headers == {"x-emulator-delay-ms": "5"}


def test_gateway_routes_need_a_gateway_id(local_conn):
    from cfai.client import Client

    client = Client(local_conn.with_changes(gateway_id=""))
    try:
        with pytest.raises(ConfigError, match="Gateway ID"):
            Runner(client, text_plan(routes=("direct", "gateway")))
        Runner(client, text_plan(routes=("direct",)))  # direct alone is fine
    finally:
        client.close()


# --- against the emulator -----------------------------------------------------------------------------------
def test_identical_requests_hit_the_gateway_cache_and_beat_direct(client):
    plan = text_plan(routes=("direct", "gateway"), n=30, warmup=1, concurrency=2)
    result = Runner(client, plan).run()
    assert isinstance(result, RunResult) and result.status == "complete" and not result.cancelled
    df = result.to_frame()
    assert len(df) == 62 and df["ok"].all()
    table = summarize(df)
    assert route_row(table, "gateway")["hit_rate"] >= 0.9
    assert route_row(table, "direct")["count"] == 30
    s = speedup(df)
    assert s.ci_low > 1.0, s
    # the warm-up gateway request is the cold one; records carry log ids and token counts
    warm = df[df["warmup"]]
    assert list(warm["route"]) == ["direct", "gateway"] and warm.iloc[1]["cache_status"] == "MISS"
    assert df.loc[df["route"] == "gateway", "log_id"].notna().all()
    assert (df["tokens_out"] > 0).all() and (df["bytes"] > 0).all()


def test_unique_requests_always_miss(client):
    plan = text_plan(routes=("gateway", "gateway-skip"), n=6, warmup=1, cache_mode="unique")
    df = Runner(client, plan).run().to_frame()
    table = summarize(df)
    assert route_row(table, "gateway")["hit_rate"] == 0.0
    assert route_row(table, "gateway-skip")["hit_rate"] == 0.0
    assert df["ok"].all()


def test_warmups_are_marked_and_kept(client):
    plan = Plan(model=CLASSIFIER, body={"text": "great"}, routes=("direct", "gateway"), n=3, warmup=2)
    df = Runner(client, plan).run().to_frame()
    assert len(df) == 10
    assert list(df["warmup"]) == [True] * 4 + [False] * 6
    assert list(df["route"]) == ["direct", "gateway"] * 5
    assert set(summarize(df)["count"]) == {3}


def test_failures_are_data_points_without_retries(client):
    plan = text_plan(routes=("direct",), n=4, warmup=0, extra_headers={"x-emulator-fault": "500"})
    seen = []
    result = Runner(client, plan).run(on_record=seen.append)
    df = result.to_frame()
    assert len(df) == 4 and len(seen) == 4  # one record per request: nothing retried
    assert not df["ok"].any() and (df["status"] == 500).all()
    assert df["error_kind"].eq("server_error").all() and df["error_message"].notna().all()
    assert result.status == "failed"


def test_streamed_ttfb_is_time_to_first_token(client):
    plan = text_plan(routes=("direct", "gateway"), n=2, warmup=0, stream=True, body={"prompt": "stream me", "max_tokens": 24})
    df = Runner(client, plan).run().to_frame()
    assert df["ok"].all()
    assert (df["ttfb_ms"] > 0).all() and (df["ttfb_ms"] <= df["total_ms"]).all()
    assert (df["tokens_out"] > 0).all()


def in_flight_peak(df) -> int:
    """Most requests overlapping at once, from their start times and durations."""
    events = []
    for start, total in zip(df["actual_start_s"], df["total_ms"], strict=True):
        events += [(start, 1), (start + total / 1000, -1)]
    peak = level = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        level += step
        peak = max(peak, level)
    return peak


def test_closed_loop_keeps_the_concurrency(client):
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct",), n=8, warmup=0, concurrency=4,
                extra_headers={"x-emulator-delay-ms": "150"})
    result = Runner(client, plan).run()
    df = result.to_frame()
    assert df["ok"].all() and (df["total_ms"] >= 140).all()
    assert in_flight_peak(df) == 4
    # two waves of 150 ms, not eight in a row
    assert result.finished_at - result.started_at < 0.9


def test_open_loop_sends_on_schedule_whatever_earlier_requests_do(client):
    rate = 20.0  # one request every 50 ms, each stalled for 300 ms
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct", "gateway-skip"), n=3, warmup=0,
                rate=rate, extra_headers={"x-emulator-delay-ms": "300"})
    df = Runner(client, plan).run().to_frame()
    assert df["ok"].all() and len(df) == 6
    intended = df["intended_start_s"].to_numpy()
    assert intended[1:] - intended[:-1] == pytest.approx([1 / rate] * 5, abs=1e-9)
    lag = df["actual_start_s"] - df["intended_start_s"]
    assert (lag >= 0).all() and (lag < 0.04).all(), lag
    # each request started while the previous one was still stalled
    finish = df["actual_start_s"] + df["total_ms"] / 1000
    assert (df["actual_start_s"].to_numpy()[1:] < finish.to_numpy()[:-1]).all()
    assert in_flight_peak(df) >= 5


def test_open_loop_that_falls_behind_reports_its_start_lag(client, monkeypatch):
    # One request in flight at a time, 20/s, each taking 150 ms: the client cannot keep the rate.
    monkeypatch.setattr(compare, "OPEN_LOOP_MAX_IN_FLIGHT", 1)
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct",), n=4, warmup=0, rate=20.0,
                extra_headers={"x-emulator-delay-ms": "150"})
    summary = route_summary(Runner(client, plan).run().to_frame())
    direct = summary["routes"]["direct"]
    assert direct["start_lag_p99_ms"] > 200  # the 4th request waited ~3 x (150 - 50) ms for the slot
    assert direct["from_intended_p99_ms"] > direct["p99_ms"] + 200  # the wait the latencies leave out
    assert "could not keep the rate" in start_lag_warning(summary, open_loop=True)


def test_cancel_keeps_what_was_measured(client):
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct",), n=200, warmup=0,
                extra_headers={"x-emulator-delay-ms": "20"})
    cancel = threading.Event()
    runner = Runner(client, plan)
    seen = []

    def on_record(record):
        seen.append(record)
        if len(seen) == 3:
            cancel.set()

    result = runner.run(on_record=on_record, cancel=cancel)
    assert result.cancelled and result.status == "cancelled"
    assert 3 <= len(result.records) <= 4 and result.records == runner.records_so_far()
    assert [r.seq for r in result.records] == list(range(len(result.records)))


def test_a_failing_callback_stops_the_run_and_is_raised(client):
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct",), n=50, warmup=0)

    def boom(record):
        raise RuntimeError("store full")

    with pytest.raises(RuntimeError, match="store full"):
        Runner(client, plan).run(on_record=boom)


def test_runs_in_a_background_thread_and_never_records_the_token(client):
    plan = Plan(model=CLASSIFIER, body={"text": "ok"}, routes=("direct", "gateway"), n=3, warmup=1, concurrency=2)
    runner = Runner(client, plan, run_id="fixed-id")
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", runner.run()))
    thread.start()
    thread.join(30)
    result = box["r"]
    assert result.run_id == "fixed-id" and len(result.records) == runner.total == 8
    assert "gateway demo" in result.connection_label
    dumped = json.dumps([asdict(r) for r in result.records]) + json.dumps(plan.to_dict()) + result.connection_label
    assert client.connection.api_token not in dumped


def test_records_frame_has_record_columns_and_status_rules():
    df = records_frame([])
    assert df.empty and "cache_status" in df.columns
    assert run_status([], cancelled=False) == "failed"

"""LiveRun (a comparison as a background job, stored as it goes), against the emulator over loopback."""

from __future__ import annotations

import time

import pytest

from cfai.compare import Plan
from cfai.live_run import LiveRun
from cfai.store import Store

MODEL = "@cf/huggingface/distilbert-sst-2-int8"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "history.sqlite3")
    yield s
    s.close()


def test_live_run_stores_every_record_and_finishes(client, store):
    live = LiveRun.start(client, Plan(model=MODEL, body={"text": "good"}, n=4, warmup=1), store)
    assert live.wait(30)
    assert live.error is None and live.done_count() == live.total == 10
    assert store.get_run(live.run_id)["status"] == "complete"
    stored = store.load_records(live.run_id)
    assert len(stored) == 10
    assert stored.equals(live.frame())


def test_cancel_keeps_what_was_measured(client, store):
    plan = Plan(model=MODEL, body={"text": "good"}, n=500, warmup=0, rate=50.0)  # ~20 s if not cancelled
    live = LiveRun.start(client, plan, store)
    deadline = time.monotonic() + 30
    while live.done_count() == 0 and time.monotonic() < deadline:  # readiness: the first answer is in
        live.wait(0.02)
    live.cancel()
    assert live.wait(30)
    meta = store.get_run(live.run_id)
    assert meta["status"] == "cancelled"
    assert 0 < meta["records"] < live.total
    assert meta["records"] == live.done_count()


def test_an_invalid_plan_is_refused_before_anything_is_stored(client, store):
    with pytest.raises(ValueError, match="at least 1"):
        LiveRun.start(client, Plan(model=MODEL, body={"text": "x"}, n=0), store)
    assert store.list_runs().empty

"""LiveRun (a comparison in a background thread, stored as it goes) and the server-side log view, against the
emulator over loopback."""

from __future__ import annotations

import time

import pytest

from cfai.compare import Plan
from cfai.live_run import LiveRun
from cfai.run_logs import fetch_run_logs
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


def test_server_side_view_pages_through_the_logs_and_matches_ids(client, store):
    live = LiveRun.start(client, Plan(model=MODEL, body={"text": "fine"}, routes=("direct", "gateway"), n=5,
                                      warmup=1), store)
    assert live.wait(30)
    records = store.load_records(live.run_id)
    meta = store.get_run(live.run_id)
    view = fetch_run_logs(client, records, started_at=meta["created_at"], finished_at=meta["finished_at"],
                          per_page=2)
    assert view.error is None and view.wanted == 6 and view.found == 6 and not view.missing
    assert view.pages >= 3  # 6 ids at 2 per page
    assert list(view.logs["seq"]) == sorted(records.loc[records["route"] == "gateway", "seq"])
    assert view.logs["cached"].tolist() == [False] + [True] * 5
    assert (view.logs["client_cache_status"] == view.logs["cached"].map({True: "HIT", False: "MISS"})).all()


def test_server_side_view_reports_ids_it_cannot_find(client):
    import pandas as pd

    records = pd.DataFrame({"log_id": ["01ZZZZZZZZZZZZZZZZZZZZZZZZ", None], "seq": [0, 1], "route": "gateway",
                            "warmup": False, "cache_status": "MISS", "total_ms": 1.0})
    view = fetch_run_logs(client, records, per_page=50, max_pages=2)
    assert view.wanted == 1 and view.found == 0 and view.missing == ["01ZZZZZZZZZZZZZZZZZZZZZZZZ"]

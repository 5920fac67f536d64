"""LiveRun (a comparison as a background job, stored as it goes), against the emulator over loopback."""

from __future__ import annotations

import time

import pytest

from cfai.compare import Plan
from cfai.live_run import LiveRun
from cfai.store import Store

MODEL = "@cf/huggingface/distilbert-sst-2-int8"


def test_live_run_stores_every_record_and_finishes(client, store):
    live = LiveRun.start(client, Plan(model=MODEL, body={"text": "good"}, n=4, warmup=1), store)
    assert live.wait(30)
    assert live.error is None and live.done_count() == live.total == 10
    assert store.run_info(live.run_id).status == "complete" and not live.unsaved
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
    meta = store.run_info(live.run_id)
    assert meta.status == "cancelled"
    assert 0 < meta.record_count < live.total
    assert meta.record_count == live.done_count()


def _fill_up(store: Store) -> None:
    """SQLite's own "database or disk is full" from now on: no page beyond the ones in use."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_does_not_stop_the_run_and_the_records_stay_exportable(client, store, tmp_path):
    plan = Plan(model=MODEL, body={"text": "good " * 200}, n=40, warmup=1)
    store.begin_run("seed", plan)  # the file has its tables; every later page will be refused
    live = LiveRun.start(client, plan, store)
    _fill_up(store)
    assert live.wait(60)
    assert live.error is None
    assert live.done_count() == live.total == 82  # the failed writes did not stop the run
    assert live.unsaved and "is full" in live.store_error and str(store.path) in live.store_error
    assert "cannot rollback" not in live.store_error
    shown = live.as_stored_run()
    assert shown.status == "complete" and len(shown.records) == 82
    # The run leaves as a file the History page imports, every record in it.
    other = Store(tmp_path / "other.sqlite3")
    run_id = other.import_run(live.export("json"), "json")
    assert len(other.load_records(run_id)) == 82 and other.run_info(run_id).status == "complete"
    other.close()
    # Space again: storing it now keeps every record in the history too.
    store._db.execute("PRAGMA max_page_count = 1073741823")
    assert live.store_now() and not live.unsaved and live.store_error is None
    assert store.run_info(live.run_id).status == "complete"
    assert len(store.load_records(live.run_id)) == 82


def test_a_lock_released_during_the_run_loses_nothing(client, tmp_path):
    """Writes fail while another process holds the lock; the batches wait in memory and go in later."""
    import subprocess
    import sys

    path = tmp_path / "history.sqlite3"
    store = Store(path, timeout_s=0.05)
    plan = Plan(model=MODEL, body={"text": "good"}, n=100, warmup=0, rate=100.0)  # about 2 s
    live = LiveRun.start(client, plan, store)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    deadline = time.monotonic() + 30
    while live.store_error is None and live.running and time.monotonic() < deadline:
        live.wait(0.02)  # readiness: a write has failed on the lock
    assert live.store_error is not None and "locked by another program" in live.store_error
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)
    assert live.wait(60)
    assert not live.unsaved and live.store_error is None
    assert store.run_info(live.run_id).record_count == live.done_count() == 200
    store.close()


def test_without_a_history_the_run_happens_in_memory(client):
    live = LiveRun.start(client, Plan(model=MODEL, body={"text": "good"}, n=3, warmup=0), None)
    assert live.wait(30)
    assert live.error is None and live.unsaved and "history is off" in live.store_error
    assert len(live.as_stored_run().records) == live.total == 6


def test_an_invalid_plan_is_refused_before_anything_is_stored(client, store):
    with pytest.raises(ValueError, match="at least 1"):
        LiveRun.start(client, Plan(model=MODEL, body={"text": "x"}, n=0), store)
    assert store.list_runs().empty

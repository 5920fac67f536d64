"""The server-side view of a run (cfai.run_logs): paging the gateway's logs API and joining rows to records,
against the emulator over loopback."""

from __future__ import annotations

import uuid

import pandas as pd

from cfai.live_run import LiveRun
from cfai.plan import Plan
from cfai.run_logs import fetch_run_logs, join_records

MODEL = "@cf/huggingface/distilbert-sst-2-int8"


def test_server_side_view_pages_through_the_logs_and_matches_ids(client, store):
    # A text no other test sends: the session emulator's gateway cache is shared across tests.
    live = LiveRun.start(client, Plan(model=MODEL, body={"text": f"fine {uuid.uuid4()}"}, routes=("direct", "gateway"), n=5,
                                      warmup=1), store)
    assert live.wait(30)
    records = store.load_records(live.run_id)
    meta = store.run_info(live.run_id)
    view = fetch_run_logs(client, records, started_at=meta.created_at, finished_at=meta.finished_at,
                          per_page=2)
    assert view.error is None and view.wanted == 6 and view.found == 6 and not view.missing
    assert view.pages >= 3  # 6 ids at 2 per page
    assert list(view.logs["seq"]) == sorted(records.loc[records["route"] == "gateway", "seq"])
    assert view.logs["cached"].tolist() == [False] + [True] * 5
    assert (view.logs["client_cache_status"] == view.logs["cached"].map({True: "HIT", False: "MISS"})).all()


def test_server_side_view_reports_ids_it_cannot_find(client):
    records = pd.DataFrame({"log_id": ["01ZZZZZZZZZZZZZZZZZZZZZZZZ", None], "seq": [0, 1], "route": "gateway",
                            "warmup": False, "cache_status": "MISS", "total_ms": 1.0})
    view = fetch_run_logs(client, records, per_page=50, max_pages=2)
    assert view.wanted == 1 and view.found == 0 and view.missing == ["01ZZZZZZZZZZZZZZZZZZZZZZZZ"]


def test_join_puts_the_client_timing_beside_each_log_row():
    logs = pd.DataFrame({"id": ["b", "a", "zz"], "duration": [5, 7, 9]})
    records = pd.DataFrame({"log_id": ["a", "b", None], "seq": [3, 1, 0], "route": "gateway", "warmup": False,
                            "cache_status": ["HIT", "MISS", None], "total_ms": [2.5, 410.0, 1.0]})
    joined = join_records(logs, records)
    assert joined[["id", "seq", "client_cache_status", "client_total_ms"]].to_dict("records")[:2] == [
        {"id": "b", "seq": 1, "client_cache_status": "MISS", "client_total_ms": 410.0},
        {"id": "a", "seq": 3, "client_cache_status": "HIT", "client_total_ms": 2.5},
    ]
    assert pd.isna(joined.iloc[2]["seq"])  # a log row no record claims keeps its place, unmatched

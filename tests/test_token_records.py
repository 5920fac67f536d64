"""Issue 15 point 1, the data path: every streamed request's record carries its token timing and the cached
and reasoning tokens from usage; the store keeps them (old histories upgrade), exports and imports carry them
(validated), `route_summary` summarises them per route with throttled requests apart, and the CLI prints them.
Real HTTP to the session emulator on 127.0.0.1."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from cfai.compare import Plan, Runner
from cfai.records import ADDED_RECORD_COLUMNS, RECORD_COLUMNS
from cfai.run_import import RunImportError, parse_run_file
from cfai.stats import route_summary
from cfai.store import Store
from cfai.token_timing import TOKEN_TIMING_FIELDS

REASONER = "@cf/zai-org/glm-4.7-flash"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
LONG_PROMPT = "Explain, step by step and in detail, why the sky looks blue at noon and red at dusk. " * 3


def streamed_plan(**changes) -> Plan:
    values = dict(model=REASONER, body={"messages": [{"role": "user", "content": LONG_PROMPT}], "max_tokens": 96},
                  routes=("direct", "gateway"), n=3, warmup=1, stream=True,
                  extra_headers={"x-session-affinity": "token-records"})
    values.update(changes)
    return Plan(**values)


@pytest.fixture(scope="module")
def streamed_run(emulator):
    from cfai.client import Client
    from cfai.config import local_connection

    with Client(local_connection(emulator.base_url)) as client:
        return Runner(client, streamed_plan()).run()


def test_streamed_records_carry_token_timing_and_usage_details(streamed_run):
    measured = [r for r in streamed_run.records if not r.warmup]
    assert measured and all(r.ok for r in measured), [r.error_message for r in measured]
    for r in measured:
        assert r.stream_tokens == r.tokens_out and r.stream_tokens > 1
        assert r.first_reasoning_ms is not None and r.first_reasoning_ms <= r.total_ms
        assert r.itl_p50_ms is not None and r.itl_p50_ms <= r.itl_p90_ms <= r.itl_p99_ms
        # TPOT and tokens/s by their definitions, from the record's own numbers.
        assert r.tpot_ms == pytest.approx((r.total_ms - r.ttfb_ms) / (r.stream_tokens - 1), rel=1e-6, abs=1e-6)
        assert r.output_tps == pytest.approx(r.stream_tokens / (r.total_ms / 1000), rel=1e-6)
        assert r.tokens_reasoning is not None and 0 < r.tokens_reasoning <= r.tokens_out
    # Session affinity: after the warm-up the prompt's prefix is cached on the direct route.
    direct = [r for r in measured if r.route == "direct"]
    assert all(r.tokens_cached and 0 < r.tokens_cached <= r.tokens_in for r in direct)


def test_a_whole_answer_has_no_token_timing_but_keeps_usage(client):
    plan = Plan(model=LLAMA, body={"prompt": "Hello", "max_tokens": 8}, routes=("direct",), n=2, warmup=0)
    records = Runner(client, plan).run().records
    assert all(r.ok and r.tokens_out for r in records)
    assert all(getattr(r, name) is None for r in records for name in TOKEN_TIMING_FIELDS)


def test_the_store_keeps_the_new_fields_and_exports_import_them(streamed_run, tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.save_run(streamed_run)
        frame = store.load_records(streamed_run.run_id)
        assert list(frame.columns) == list(RECORD_COLUMNS)
        streamed = frame.loc[~frame["warmup"]]
        assert streamed["itl_p99_ms"].notna().all() and streamed["tokens_reasoning"].notna().all()
        assert (streamed["stream_tokens"] == streamed["tokens_out"]).all()
        for fmt in ("json", "csv"):
            data = store.export_run(streamed_run.run_id, fmt)
            copy = store.import_run(data, fmt)
            back = store.load_records(copy)
            for column in ADDED_RECORD_COLUMNS:
                assert back[column].tolist() == pytest.approx(frame[column].tolist(), nan_ok=True), (fmt, column)


def _export_doc(store: Store, run_id: str) -> dict:
    return json.loads(store.export_run(run_id, "json"))


def test_imports_validate_the_new_fields(streamed_run, tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.save_run(streamed_run)
        doc = _export_doc(store, streamed_run.run_id)
    doc["records"][1]["itl_p50_ms"] = -3.0
    doc["records"][2]["tokens_cached"] = "many"
    with pytest.raises(RunImportError) as err:
        parse_run_file(json.dumps(doc).encode(), "json")
    text = str(err.value)
    assert "record 2, itl_p50_ms" in text and "record 3, tokens_cached" in text


def test_an_older_export_without_the_new_columns_still_imports(streamed_run, tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.save_run(streamed_run)
        doc = _export_doc(store, streamed_run.run_id)
        for record in doc["records"]:
            for column in ADDED_RECORD_COLUMNS:
                record.pop(column)
        run_id = store.import_run(json.dumps(doc).encode(), "json")
        frame = store.load_records(run_id)
        csv_text = store.export_run(run_id, "csv").decode()
    assert frame["itl_p50_ms"].isna().all() and frame["ttfb_ms"].notna().all()
    # A CSV export of an older version has none of the added columns: it imports too.
    header, *rows = csv_text.splitlines()
    names = header.split(",")
    keep = [i for i, name in enumerate(names) if name not in ADDED_RECORD_COLUMNS]
    import csv

    parsed = list(csv.reader(io.StringIO(csv_text)))
    old_csv = "\r\n".join(",".join(_quote(row[i]) for i in keep) for row in parsed) + "\r\n"
    imported = parse_run_file(old_csv.encode(), "csv")
    assert len(imported.records) == len(rows) and imported.records[0]["itl_p50_ms"] is None


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def test_a_schema_2_history_is_upgraded_and_keeps_its_records(tmp_path, streamed_run):
    from cfai.store import _SCHEMA_V1, _SCHEMA_V2

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1 + _SCHEMA_V2 + "PRAGMA user_version=2;")
    plan = json.dumps(streamed_plan().to_dict())
    db.execute("INSERT INTO runs (run_id, name, created_at, model, routes, n, status, connection_label, plan_json, "
               "mode, account_id, gateway_id) VALUES ('old-run', 'before', 1.0, ?, 'direct', 1, 'complete', "
               "'local · account local · gateway demo', ?, 'local', 'local', 'demo')", (REASONER, plan))
    db.execute("INSERT INTO records (run_id, seq, route, warmup, status, ok, ttfb_ms, total_ms, bytes) "
               "VALUES ('old-run', 0, 'direct', 0, 200, 1, 5.0, 9.0, 10)")
    db.commit()
    db.close()
    with Store(path) as store:
        frame = store.load_records("old-run")
        assert frame["total_ms"].tolist() == [9.0] and frame["itl_p50_ms"].isna().all()
        store.save_run(streamed_run)  # the upgraded file takes new records with every field
        assert store.load_records(streamed_run.run_id)["tpot_ms"].notna().any()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3


def test_a_read_only_schema_2_history_reads_the_new_columns_as_missing(tmp_path):
    from cfai.store import _SCHEMA_V1, _SCHEMA_V2

    path = tmp_path / "ro.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1 + _SCHEMA_V2 + "PRAGMA user_version=2;")
    db.execute("INSERT INTO runs (run_id, name, created_at, model, routes, n, status, connection_label, plan_json) "
               "VALUES ('r', '', 1.0, ?, 'direct', 1, 'complete', '', ?)",
               (LLAMA, json.dumps(Plan(model=LLAMA, body={"prompt": "x"}).to_dict())))
    db.execute("INSERT INTO records (run_id, seq, route, warmup, status, ok, total_ms, bytes) "
               "VALUES ('r', 0, 'direct', 0, 200, 1, 3.0, 1)")
    db.commit()
    db.close()
    with Store(path, read_only=True) as store:
        frame = store.load_records("r")
        assert list(frame.columns) == list(RECORD_COLUMNS) and frame["tokens_cached"].isna().all()
        assert json.loads(store.export_run("r", "json"))["records"][0]["stream_tokens"] is None


def test_route_summary_has_token_timing_per_route_and_cache_status(streamed_run):
    summary = route_summary(streamed_run.to_frame())
    for route in ("direct", "gateway"):
        timing = summary["routes"][route]["token_timing"]
        assert timing["n"] == 3
        values = sorted(r.itl_p50_ms for r in streamed_run.records if r.route == route and not r.warmup)
        assert timing["itl_p50_ms"]["p50"] == pytest.approx(values[1], abs=1e-3)  # the median of three
        assert timing["ttft_ms"]["p50"] is not None and timing["tpot_ms"]["p99"] is not None
        assert summary["routes"][route]["tokens_reasoning_total"] > 0
    gateway = summary["routes"]["gateway"]
    for status, entry in gateway["by_cache_status"].items():
        assert entry["token_timing"]["n"] == sum(1 for r in streamed_run.records
                                                 if r.route == "gateway" and not r.warmup and r.cache_status == status)


def test_throttled_requests_are_counted_apart_from_other_errors(client):
    plan = Plan(model=LLAMA, body={"prompt": "x", "max_tokens": 4}, routes=("direct",), n=2, warmup=0,
                extra_headers={"x-emulator-fault": "429"})
    throttled = Runner(client, plan).run().records
    plan = Plan(model=LLAMA, body={"prompt": "x", "max_tokens": 4}, routes=("direct",), n=3, warmup=0,
                extra_headers={"x-emulator-fault": "500"})
    failed = Runner(client, plan).run().records
    for offset, r in enumerate(failed):
        r.seq = 10 + offset
    from cfai.records import records_frame

    summary = route_summary(records_frame([*throttled, *failed]))
    direct = summary["routes"]["direct"]
    assert all(r.throttled for r in throttled) and not any(r.throttled for r in failed)
    assert (direct["errors"], direct["throttled"], direct["errors_other"]) == (5, 2, 3)


def test_cfai_compare_prints_token_timing_and_json_carries_it(emulator, tmp_path):
    from cfai.cli import main

    args = ["compare", "--api-base", f"{emulator.base_url}/client/v4", "--gateway-base", f"{emulator.base_url}/v1",
            "--model", LLAMA, "--prompt", "Stream a few tokens", "--max-tokens", "12", "--stream", "--n", "3",
            "--routes", "direct,gateway", "--db", str(tmp_path / "h.sqlite3"), "--quiet"]
    out, err = io.StringIO(), io.StringIO()
    assert main(args, out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert "token timing (streamed requests" in text and "itl p50" in text and "tpot p50" in text
    out = io.StringIO()
    assert main([*args, "--json"], out, io.StringIO()) == 0
    summary = json.loads(out.getvalue())
    direct = summary["routes"]["direct"]
    assert direct["token_timing"]["n"] == 3 and direct["token_timing"]["itl_p99_ms"]["p50"] is not None
    assert direct["throttled"] == 0 and direct["errors_other"] == 0

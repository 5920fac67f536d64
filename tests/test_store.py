"""Run history in SQLite: round trips, incremental saving, export/import, and nothing secret stored."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from dataclasses import replace

import pandas as pd
import pytest

from cfai.compare import Plan, Record, RunResult, records_frame
from cfai.run_import import MAX_PROBLEMS, RunImportError
from cfai.store import Store, StoredRun, StoreError, StoreUnavailable, default_db_path, open_store
from tests.bad_exports import JSON_CASES, bad_json


def make_records(run_id: str, n: int = 6) -> list[Record]:
    out = []
    for seq in range(n):
        route = ("direct", "gateway")[seq % 2]
        failed = seq == 5
        out.append(Record(
            run_id=run_id, seq=seq, route=route, warmup=seq < 2, intended_start_s=seq * 0.05 + 1e-7,
            actual_start_s=seq * 0.05 + 0.0001234567891, status=500 if failed else 200, ok=not failed,
            error_code=1234 if failed else None, error_message='boom, "quoted"\nline two' if failed else None,
            error_kind="server_error" if failed else None,
            cache_status=("HIT" if seq > 2 else "MISS") if route == "gateway" else None,
            ttfb_ms=None if failed else 1.0 / 3 + seq, total_ms=12.345678901234 + seq, bytes=100 + seq,
            tokens_in=None if route == "gateway" else 7, tokens_out=None if failed else 20,
            log_id="01ABC" if route == "gateway" else None,
        ))
    return out


def make_result(run_id: str = "run-1", name: str = "first") -> RunResult:
    plan = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"}, routes=("direct", "gateway"),
                n=2, warmup=1, name=name, extra_headers={"authorization": "Bearer sekrit-token"})
    return RunResult(run_id=run_id, plan=plan, started_at=1_700_000_000.5, finished_at=1_700_000_003.25,
                     records=make_records(run_id), cancelled=False, connection_label="local · account local · gateway demo")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "h.sqlite3")
    yield s
    s.close()


def test_save_and_load_round_trip(store):
    result = make_result()
    store.save_run(result)
    pd.testing.assert_frame_equal(store.load_records("run-1"), result.to_frame())
    run = store.get_run("run-1")
    assert isinstance(run, StoredRun) and isinstance(run.plan, Plan)
    assert run.name == "first" and run.status == "complete" and run.record_count == 6
    assert run.routes == ("direct", "gateway") and run.created_at == 1_700_000_000.5
    assert (run.mode, run.account_id, run.gateway_id) == ("local", "local", "demo")
    pd.testing.assert_frame_equal(run.records, result.to_frame())
    assert run.plan.body == {"prompt": "hi"} and store.get_plan("run-1") == run.plan


def test_wal_and_schema_version(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreUnavailable, match="newer version"):
        Store(path)


def test_incremental_saving_survives_a_crash(tmp_path):
    path = tmp_path / "h.sqlite3"
    result = make_result("run-2")
    first = Store(path)
    first.begin_run("run-2", result.plan, connection_label=result.connection_label)
    first.add_records("run-2", result.records[:3])
    # no finish_run: the process "crashed"; a new Store on the same file sees what was measured
    again = Store(path)
    assert again.run_info("run-2").status == "running"
    assert len(again.load_records("run-2")) == 3
    again.add_records("run-2", result.records[3:])
    again.finish_run("run-2", cancelled=True)
    assert again.run_info("run-2").status == "cancelled"
    first.close()
    again.close()


def test_list_rename_delete(store):
    store.save_run(make_result("old", "older"))
    newer = make_result("new", "newer")
    newer.started_at += 60
    store.save_run(newer)
    runs = store.list_runs()
    assert list(runs["run_id"]) == ["new", "old"]
    assert list(runs.columns) == ["run_id", "name", "created_at", "model", "routes", "n", "status", "records",
                                  "connection_label"]
    assert runs.loc[0, "records"] == 6 and runs.loc[0, "routes"] == "direct,gateway"
    assert runs.loc[0, "created_at"] == pd.Timestamp(1_700_000_060.5, unit="s", tz="UTC")
    store.rename_run("old", "renamed")
    assert store.run_info("old").name == "renamed"
    store.delete_run("old")
    assert list(store.list_runs()["run_id"]) == ["new"]
    assert store.load_records("old").empty  # records went with the run
    for action in (lambda: store.delete_run("old"), lambda: store.rename_run("old", "x"), lambda: store.get_run("old")):
        with pytest.raises(StoreError, match="No stored run"):
            action()


def test_load_several_runs(store):
    store.save_run(make_result("a"))
    store.save_run(make_result("b"))
    both = store.load_records(["a", "b"])
    assert len(both) == 12 and set(both["run_id"]) == {"a", "b"}
    assert store.load_records([]).empty


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_import_round_trip(store, tmp_path, fmt):
    result = make_result()
    store.save_run(result)
    data = store.export_run("run-1", fmt)
    other = Store(tmp_path / "other.sqlite3")
    run_id = other.import_run(data, fmt)
    assert run_id == "run-1"
    pd.testing.assert_frame_equal(other.load_records(run_id), store.load_records("run-1"))
    a, b = store.run_info("run-1"), other.run_info(run_id)
    assert replace(a, revision=0) == replace(b, revision=0) and b.gateway_id == "demo"
    other.close()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_reimport_of_an_existing_id_gets_a_new_one(store, fmt):
    store.save_run(make_result())
    new_id = store.import_run(store.export_run("run-1", fmt), fmt)
    assert new_id != "run-1"
    assert store.run_info(new_id).name == "first (imported)"
    recs = store.load_records(new_id)
    assert len(recs) == 6 and set(recs["run_id"]) == {new_id}


def test_token_never_stored_or_exported(store):
    store.save_run(make_result())
    blobs = [store.export_run("run-1", "json"), store.export_run("run-1", "csv"), store.path.read_bytes()]
    wal = store.path.with_name(store.path.name + "-wal")
    if wal.exists():
        blobs.append(wal.read_bytes())
    assert not any(b"sekrit" in blob for blob in blobs)


def test_json_export_shape(store):
    store.save_run(make_result())
    doc = json.loads(store.export_run("run-1", "json"))
    assert doc["format"] == "workers-ai-lab/run" and doc["version"] == 1
    assert doc["run"]["plan"]["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert doc["records"][5]["ok"] is False and doc["records"][5]["ttfb_ms"] is None


@pytest.mark.parametrize(("data", "fmt", "message"), [
    (b"not json", "json", "Not a Workers AI Lab run export"),
    (b'{"format": "other"}', "json", "Not a Workers AI Lab"),
    (b"a,b\n1,2\n", "csv", "columns missing"),
    (b"{}", "xml", "Unknown import format"),
])
def test_bad_imports_are_refused_clearly(store, data, fmt, message):
    with pytest.raises(RunImportError, match=message):
        store.import_run(data, fmt)


def test_concurrent_add_records(store):
    result = make_result()
    store.begin_run("run-1", result.plan)
    records = [Record(run_id="run-1", seq=i, route="direct", warmup=False, intended_start_s=0.0,
                      actual_start_s=0.0, status=200, ok=True, total_ms=float(i)) for i in range(200)]
    threads = [threading.Thread(target=lambda k=k: [store.add_records("run-1", [r]) for r in records[k::8]])
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pd.testing.assert_frame_equal(store.load_records("run-1"), records_frame(records))


def test_default_path_honours_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CFAI_DATA_DIR", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "history.sqlite3"
    s = Store()
    assert s.path.exists()
    s.close()
    monkeypatch.delenv("CFAI_DATA_DIR")
    assert default_db_path().name == "history.sqlite3" and "workers-ai-lab" in str(default_db_path())


def _export_doc(store) -> dict:
    store.save_run(make_result())
    return json.loads(store.export_run("run-1", "json"))


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_bad_import_is_refused_and_leaves_nothing_behind(tmp_path, store, change, message):
    doc = _export_doc(store)
    other = Store(tmp_path / "other.sqlite3")
    with pytest.raises(RunImportError) as caught:
        other.import_run(bad_json(doc, change), "json")
    assert any(message in p for p in caught.value.problems), caught.value.problems
    assert len(str(caught.value)) < 2_000  # a huge field is named, not echoed
    assert other.list_runs().empty and other.load_records("run-1").empty  # no half-imported run
    other.close()


def test_every_problem_is_listed_capped(tmp_path, store):
    doc = _export_doc(store)
    for record in doc["records"]:
        record.update(bytes=-1, route="nowhere")
    doc["run"]["plan"]["routes"] = "direct"
    with pytest.raises(RunImportError) as caught:
        store.import_run(json.dumps(doc).encode(), "json")
    problems = caught.value.problems
    assert "run.plan.routes: input should be a valid array (found 'direct')." in problems
    assert "record 6, bytes: input should be greater than or equal to 0 (found -1)." in problems
    assert len([p for p in problems if p.startswith("record ")]) == 12  # 6 records, 2 problems each

    many = _export_doc(store)
    many["records"] = [dict(many["records"][0], seq=i, route="x") for i in range(100)]
    with pytest.raises(RunImportError) as caught:
        store.import_run(json.dumps(many).encode(), "json")
    assert len(caught.value.problems) == MAX_PROBLEMS + 1
    assert caught.value.problems[-1] == "... and 80 more problem(s)."


def test_absurd_nesting_and_oversized_files_are_refused_before_parsing(store, monkeypatch):
    deep = b'{"format": "workers-ai-lab/run", "version": 1, "run": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(RunImportError, match="Not valid JSON: recursion limit"):
        store.import_run(deep, "json")
    import cfai.run_import as run_import

    monkeypatch.setattr(run_import, "MAX_IMPORT_BYTES", 1000)
    with pytest.raises(RunImportError, match="imports are limited to"):
        store.import_run(b" " * 1001, "json")


@pytest.mark.parametrize(("column", "value", "message"), [
    ("seq", "-3", "record 2, seq"),
    ("bytes", "-1", "record 2, bytes"),
    ("total_ms", "nan", "record 2, total_ms"),
    ("tokens_out", str(2**64), "record 2, tokens_out"),
    ("route", "d", "record 2, route"),
    ("run_id", "../x", "column run_id"),
    ("run_plan", '{"model": "@cf/x", "body": {"p": 1}, "routes": "direct", "n": 1}', "column run_plan, routes"),
    ("run_status", "great", "column run_status"),
])
def test_bad_csv_cells_are_named(tmp_path, store, column, value, message):
    store.save_run(make_result())
    frame = pd.read_csv(io.BytesIO(store.export_run("run-1", "csv")), dtype=str, keep_default_na=False)
    if column.startswith("run_"):  # run metadata: the same on every row
        frame[column] = value
    else:
        frame.loc[1, column] = value
    other = Store(tmp_path / "other.sqlite3")
    with pytest.raises(RunImportError) as caught:
        other.import_run(frame.to_csv(index=False).encode(), "csv")
    assert any(message in p for p in caught.value.problems), caught.value.problems
    assert other.list_runs().empty
    other.close()


def test_a_csv_cell_beyond_the_limit_is_refused_as_it_is_read(store):
    store.save_run(make_result())
    frame = pd.read_csv(io.BytesIO(store.export_run("run-1", "csv")), dtype=str, keep_default_na=False)
    frame.loc[0, "error_message"] = "x" * 3_000_000
    with pytest.raises(RunImportError, match="field larger than field limit"):
        store.import_run(frame.to_csv(index=False).encode(), "csv")


def test_bad_csv_import_names_the_record(tmp_path, store):
    store.save_run(make_result())
    frame = pd.read_csv(io.BytesIO(store.export_run("run-1", "csv")))
    frame.loc[3, "seq"] = None  # a blank cell; normalising would have made it seq 0 and overwritten record 1
    other = Store(tmp_path / "other.sqlite3")
    with pytest.raises(RunImportError, match="record 4, seq: missing"):
        other.import_run(frame.to_csv(index=False).encode(), "csv")
    assert other.list_runs().empty
    other.close()


def test_a_database_error_during_import_rolls_back(tmp_path, store):
    doc = _export_doc(store)
    other = Store(tmp_path / "other.sqlite3")
    other._db.execute("CREATE TRIGGER no_records BEFORE INSERT ON records "
                      "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(StoreError, match="Could not import the run.*disk says no"):
        other.import_run(json.dumps(doc).encode(), "json")
    assert other.list_runs().empty  # the run row went with the records
    other.close()


# --- database faults ---------------------------------------------------------------------------------------
def test_a_schema_1_history_is_upgraded_with_the_connection_as_fields(tmp_path):
    """Histories written before the connection was stored as fields: read back once from the label."""
    from cfai.store import _SCHEMA_V1

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1 + "PRAGMA user_version=1;")
    plan = make_result().plan
    db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               ("old-1", "old", 1.0, 2.0, plan.model, "direct,gateway", 2, "complete",
                "cloudflare · account abc123 · gateway my-gw", json.dumps(plan.to_dict())))
    db.commit()
    db.close()
    with Store(path) as store:
        info = store.run_info("old-1")
        assert (info.mode, info.account_id, info.gateway_id) == ("cloudflare", "abc123", "my-gw")


def test_a_corrupt_file_names_itself_and_what_to_do(tmp_path):
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(path)
    assert caught.value.kind == "corrupt"
    assert str(path) in str(caught.value) and "Move it aside" in str(caught.value)


@pytest.fixture
def locked_by_another_process(tmp_path):
    """A second process holding the history's write lock (WAL: readers still read, writers wait)."""
    import subprocess
    import sys

    path = tmp_path / "history.sqlite3"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"  # readiness: the lock is held
    yield path
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)


def test_a_lock_held_by_another_process_is_named(locked_by_another_process):
    path = locked_by_another_process
    store = Store(path, timeout_s=0.2)
    assert store.list_runs().empty  # reading still works
    with pytest.raises(StoreUnavailable) as caught:
        store.begin_run("r", make_result().plan)
    assert caught.value.kind == "locked"
    assert str(path) in str(caught.value) and "locked by another program" in str(caught.value)
    store.close()


def test_a_full_disk_says_so_instead_of_cannot_rollback(store):
    """SQLite's own SQLITE_FULL, from a page limit: the transaction is gone when the error arrives, and the
    store must not answer with the ROLLBACK's 'cannot rollback - no transaction is active'."""
    result = make_result()
    store.begin_run("run-1", result.plan)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    many = [Record(run_id="run-1", seq=i, route="direct", warmup=False, intended_start_s=0.0, actual_start_s=0.0,
                   status=200, ok=True, total_ms=1.0, error_message="x" * 500) for i in range(2000)]
    with pytest.raises(StoreUnavailable) as caught:
        store.add_records("run-1", many)
    assert caught.value.kind == "full", caught.value
    assert "is full" in str(caught.value) and "cannot rollback" not in str(caught.value)
    assert str(store.path) in str(caught.value)
    assert store.load_records("run-1").empty  # all or nothing
    store._db.execute("PRAGMA max_page_count = 1073741823")
    store.add_records("run-1", many)  # space again: the same store works on
    assert len(store.load_records("run-1")) == 2000


def test_a_history_that_cannot_be_written_opens_read_only(tmp_path):
    path = tmp_path / "history.sqlite3"
    with Store(path) as writer:
        writer.save_run(make_result())
    reader = Store(path, read_only=True)
    assert reader.read_only and list(reader.list_runs()["run_id"]) == ["run-1"]
    assert len(reader.get_run("run-1").records) == 6 and reader.export_run("run-1", "json")
    for write in (lambda: reader.rename_run("run-1", "x"), lambda: reader.delete_run("run-1"),
                  lambda: reader.import_run(b"{}", "json")):
        with pytest.raises(StoreUnavailable, match="read-only") as caught:
            write()
        assert caught.value.kind == "read_only" and str(tmp_path) in str(caught.value)
    reader.close()


def test_sqlite_refusing_writes_is_reported_as_a_read_only_folder(store):
    """SQLITE_READONLY (what a folder without write permission gives) from SQLite itself (query_only: the
    tests run as root, for whom no folder is read-only)."""
    store._db.execute("PRAGMA query_only = 1")
    with pytest.raises(StoreUnavailable) as caught:
        store.begin_run("r", make_result().plan)
    assert caught.value.kind == "read_only" and str(store.path.parent) in str(caught.value)

"""Run history in SQLite: round trips, incremental saving, export/import, and nothing secret stored."""

from __future__ import annotations

import io
import json
import sqlite3
import threading

import pandas as pd
import pytest

from cfai.compare import Plan, Record, RunResult, records_frame
from cfai.store import Store, StoreError, default_db_path


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
    meta = store.get_run("run-1")
    assert meta["name"] == "first" and meta["status"] == "complete" and meta["records"] == 6
    assert meta["routes"] == ["direct", "gateway"] and meta["created_at"] == 1_700_000_000.5
    assert store.get_plan("run-1").body == {"prompt": "hi"}


def test_wal_and_schema_version(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="newer version"):
        Store(path)


def test_incremental_saving_survives_a_crash(tmp_path):
    path = tmp_path / "h.sqlite3"
    result = make_result("run-2")
    first = Store(path)
    first.begin_run("run-2", result.plan, connection_label=result.connection_label)
    first.add_records("run-2", result.records[:3])
    # no finish_run: the process "crashed"; a new Store on the same file sees what was measured
    again = Store(path)
    assert again.get_run("run-2")["status"] == "running"
    assert len(again.load_records("run-2")) == 3
    again.add_records("run-2", result.records[3:])
    again.finish_run("run-2", cancelled=True)
    assert again.get_run("run-2")["status"] == "cancelled"
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
    assert store.get_run("old")["name"] == "renamed"
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
    a, b = store.get_run("run-1"), other.get_run(run_id)
    assert a == b
    other.close()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_reimport_of_an_existing_id_gets_a_new_one(store, fmt):
    store.save_run(make_result())
    new_id = store.import_run(store.export_run("run-1", fmt), fmt)
    assert new_id != "run-1"
    assert store.get_run(new_id)["name"] == "first (imported)"
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
    (b"not json", "json", "Not a JSON export"),
    (b'{"format": "other"}', "json", "Not a Workers AI Lab"),
    (b"a,b\n1,2\n", "csv", "columns missing"),
    (b"{}", "xml", "Unknown import format"),
])
def test_bad_imports_are_refused_clearly(store, data, fmt, message):
    with pytest.raises(StoreError, match=message):
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


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: doc["records"][2].pop("seq"), "Record 3 has no seq"),
    (lambda doc: doc["records"][0].pop("ok"), "Record 1 has no ok"),
    (lambda doc: doc["records"][1].update(seq=0), "Record 2 repeats seq 0"),
    (lambda doc: doc["records"][4].update(total_ms="fast"), "Record 5: total_ms 'fast' is not a number"),
    (lambda doc: doc["run"].update(created_at="yesterday"), "created_at 'yesterday' is not a time"),
    (lambda doc: doc["run"].update(status="great"), "status 'great' is not one of"),
])
def test_bad_import_is_refused_and_leaves_nothing_behind(tmp_path, store, change, message):
    doc = _export_doc(store)
    change(doc)
    other = Store(tmp_path / "other.sqlite3")
    with pytest.raises(StoreError, match=message):
        other.import_run(json.dumps(doc).encode(), "json")
    assert other.list_runs().empty and other.load_records("run-1").empty  # no half-imported run
    other.close()


def test_bad_csv_import_names_the_record(tmp_path, store):
    store.save_run(make_result())
    frame = pd.read_csv(io.BytesIO(store.export_run("run-1", "csv")))
    frame.loc[3, "seq"] = None  # a blank cell; normalising would have made it seq 0 and overwritten record 1
    other = Store(tmp_path / "other.sqlite3")
    with pytest.raises(StoreError, match="Record 4 has no seq"):
        other.import_run(frame.to_csv(index=False).encode(), "csv")
    assert other.list_runs().empty
    other.close()


def test_a_database_error_during_import_rolls_back(tmp_path, store):
    doc = _export_doc(store)
    other = Store(tmp_path / "other.sqlite3")
    other._db.execute("CREATE TRIGGER no_records BEFORE INSERT ON records "
                      "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(StoreError, match="could not be stored.*disk says no"):
        other.import_run(json.dumps(doc).encode(), "json")
    assert other.list_runs().empty  # the run row went with the records
    other.close()

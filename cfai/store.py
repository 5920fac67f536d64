"""Run history in SQLite (stdlib sqlite3, WAL): runs and their request records survive restarts.

A run can be saved in one go (`save_run`) or as it goes (`begin_run`, `add_records`, `finish_run`), so a crash
keeps what was measured (such a run stays "running"). Runs export to JSON (metadata + records) or CSV (records
with run metadata columns) and import back. Importing a run whose id is already stored keeps both: the import
gets a fresh id and its name is marked "(imported)". The API token is never stored: plans hold no token (see
`Plan.to_dict`) and the connection label names only mode, account and gateway.
"""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from cfai.compare import (
    RECORD_COLUMNS,
    Plan,
    Record,
    RunResult,
    new_run_id,
    normalize_records_frame,
    run_status,
)
from cfai.csv_safe import safe_csv

ENV_DATA_DIR = "CFAI_DATA_DIR"
DB_FILENAME = "history.sqlite3"
SCHEMA_VERSION = 1
EXPORT_FORMAT = "workers-ai-lab/run"
# Run metadata columns added to each record row of a CSV export (record columns keep their own names).
CSV_RUN_COLUMNS = (
    "run_name", "run_created_at", "run_finished_at", "run_status", "run_model", "run_connection_label", "run_plan",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    finished_at REAL,
    model TEXT NOT NULL,
    routes TEXT NOT NULL,
    n INTEGER NOT NULL,
    status TEXT NOT NULL,
    connection_label TEXT NOT NULL DEFAULT '',
    plan_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    route TEXT NOT NULL,
    warmup INTEGER NOT NULL,
    intended_start_s REAL,
    actual_start_s REAL,
    status INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error_code INTEGER,
    error_message TEXT,
    cache_status TEXT,
    ttfb_ms REAL,
    total_ms REAL,
    bytes INTEGER,
    tokens_in INTEGER,
    tokens_out INTEGER,
    log_id TEXT,
    error_kind TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at);
"""
_RUN_COLUMNS = ("run_id", "name", "created_at", "finished_at", "model", "routes", "n", "status",
                "connection_label", "plan_json")
_INSERT_RECORDS_SQL = (
    f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


class StoreError(ValueError):
    """A request the store cannot honour (unknown run, unreadable import); the message says why."""


def default_db_path() -> Path:
    """$CFAI_DATA_DIR/history.sqlite3, else the platform's user data dir for workers-ai-lab."""
    base = os.environ.get(ENV_DATA_DIR)
    if not base:
        from platformdirs import user_data_dir

        base = user_data_dir("workers-ai-lab", appauthor=False)
    return Path(base) / DB_FILENAME


def _clean(value: Any) -> Any:
    """NaN/NA to None, numpy scalars to Python, so sqlite3 and json accept them."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _record_rows(run_id: str, records: Iterable[Record | dict[str, Any]]) -> list[tuple]:
    rows = []
    for r in records:
        d = asdict(r) if isinstance(r, Record) else dict(r)
        d["run_id"] = run_id
        d["warmup"] = int(bool(d.get("warmup")))
        d["ok"] = int(bool(d.get("ok")))
        rows.append(tuple(_clean(d.get(c)) for c in RECORD_COLUMNS))
    return rows


class Store:
    """One SQLite file. Thread-safe: one connection shared under a lock (runner threads add records)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer version of Workers AI Lab (schema {version}); "
                    "upgrade, or set CFAI_DATA_DIR to use another history."
                )
            if version < SCHEMA_VERSION:
                self._db.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------------------------
    def begin_run(
        self,
        run_id: str,
        plan: Plan,
        *,
        connection_label: str = "",
        created_at: float | None = None,
        status: str = "running",
    ) -> None:
        """Create the run row before its first record arrives."""
        with self._lock:
            self._insert_run(run_id, plan, connection_label, created_at, status)

    def _insert_run(
        self, run_id: str, plan: Plan, connection_label: str, created_at: float | None, status: str
    ) -> None:
        """The run row, inside whatever transaction the caller holds (none: autocommit)."""
        self._db.execute(
            f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
            (run_id, plan.name, created_at if created_at is not None else time.time(), None, plan.model,
             ",".join(plan.routes), plan.n, status, connection_label, json.dumps(plan.to_dict())),
        )

    def add_records(self, run_id: str, records: Iterable[Record | dict[str, Any]]) -> None:
        rows = _record_rows(run_id, records)
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_INSERT_RECORDS_SQL, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def finish_run(
        self, run_id: str, cancelled: bool = False, *, status: str | None = None, finished_at: float | None = None
    ) -> None:
        """Mark the run done; the status is derived from its stored records unless given."""
        if status is None:
            records = [Record(**r) for r in self._record_dicts(run_id)]
            status = run_status(records, cancelled)
        with self._lock:
            self._db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, finished_at if finished_at is not None else time.time(), run_id),
            )

    def save_run(self, result: RunResult) -> None:
        """Store a finished run (or complete one begun with begin_run): metadata and every record."""
        with self._lock:
            if not self._exists(result.run_id):
                self.begin_run(result.run_id, result.plan, connection_label=result.connection_label,
                               created_at=result.started_at)
            self.add_records(result.run_id, result.records)
            self.finish_run(result.run_id, status=result.status, finished_at=result.finished_at)

    def rename_run(self, run_id: str, name: str) -> None:
        with self._lock:
            if self._db.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name.strip(), run_id)).rowcount == 0:
                raise StoreError(f"No stored run {run_id!r}.")

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            if self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount == 0:
                raise StoreError(f"No stored run {run_id!r}.")

    # --- reading -------------------------------------------------------------------------------------------
    def _exists(self, run_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def list_runs(self) -> pd.DataFrame:
        """Newest first: run_id, name, created_at (UTC datetime), model, routes, n, status, records,
        connection_label."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.run_id, r.name, r.created_at, r.model, r.routes, r.n, r.status, "
                "(SELECT COUNT(*) FROM records c WHERE c.run_id = r.run_id) AS records, r.connection_label "
                "FROM runs r ORDER BY r.created_at DESC, r.run_id DESC"
            ).fetchall()
        columns = ["run_id", "name", "created_at", "model", "routes", "n", "status", "records", "connection_label"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["created_at"] = pd.to_datetime(frame["created_at"].astype(float), unit="s", utc=True)
        return frame.astype({"n": "int64", "records": "int64"})

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Metadata: run_id, name, created_at, finished_at (epoch s), model, routes (list), n, status,
        connection_label, plan (dict), records (count)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            count = self._db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (run_id,)).fetchone()[0]
        if row is None:
            raise StoreError(f"No stored run {run_id!r}.")
        meta = dict(zip(_RUN_COLUMNS, row, strict=True))
        meta["routes"] = [r for r in meta["routes"].split(",") if r]
        meta["plan"] = json.loads(meta.pop("plan_json"))
        meta["records"] = count
        return meta

    def get_plan(self, run_id: str) -> Plan:
        return Plan.from_dict(self.get_run(run_id)["plan"])

    def _record_dicts(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(
                f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE run_id = ? ORDER BY seq", (run_id,)
            )
            return [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def load_records(self, run_ids: str | Iterable[str]) -> pd.DataFrame:
        """Records of one run or several (column run_id tells them apart), with the same dtypes as
        `RunResult.to_frame()`."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            return normalize_records_frame(pd.DataFrame(columns=list(RECORD_COLUMNS)))
        with self._lock:
            frame = pd.read_sql_query(
                f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE run_id IN ({', '.join('?' * len(ids))}) "
                "ORDER BY run_id, seq",
                self._db,
                params=ids,
            )
        return normalize_records_frame(frame)

    # --- export / import -----------------------------------------------------------------------------------
    def export_run(self, run_id: str, fmt: str = "json") -> bytes:
        """JSON: {"format", "version", "run": metadata incl. plan, "records": [...]}; CSV: one row per record,
        record columns then run_* metadata columns (the plan as JSON in run_plan)."""
        meta = self.get_run(run_id)
        records = self._record_dicts(run_id)
        if fmt == "json":
            run = {k: v for k, v in meta.items() if k != "records"}
            doc = {"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "run": run, "records": records}
            for r in records:
                r["warmup"], r["ok"] = bool(r["warmup"]), bool(r["ok"])
            return json.dumps(doc, indent=1, allow_nan=False).encode()
        if fmt == "csv":
            frame = pd.DataFrame(records, columns=list(RECORD_COLUMNS))
            frame["warmup"] = frame["warmup"].astype(bool)
            frame["ok"] = frame["ok"].astype(bool)
            extra = {
                "run_name": meta["name"], "run_created_at": meta["created_at"],
                "run_finished_at": meta["finished_at"], "run_status": meta["status"], "run_model": meta["model"],
                "run_connection_label": meta["connection_label"], "run_plan": json.dumps(meta["plan"]),
            }
            for key, value in extra.items():
                frame[key] = value
            return safe_csv(frame).encode()  # formula cells neutralised (cfai.csv_safe)
        raise StoreError(f"Unknown export format {fmt!r}: use 'json' or 'csv'.")

    def import_run(self, data: bytes, fmt: str = "json") -> str:
        """Store an exported run; returns its id (a fresh one when the original id is already stored).

        Everything is checked before anything is written, and the run row and its records go in one
        transaction: a bad file raises StoreError (saying what is wrong) and leaves the history as it was.
        """
        if fmt == "json":
            meta, raw_records = _parse_json_export(data)
        elif fmt == "csv":
            meta, raw_records = _parse_csv_export(data)
        else:
            raise StoreError(f"Unknown import format {fmt!r}: use 'json' or 'csv'.")
        plan = _import_plan(meta)
        created_at = _import_time(meta, "created_at")
        finished_at = _import_time(meta, "finished_at")
        status = _clean(meta.get("status")) or "complete"
        if status not in RUN_STATUSES:
            raise StoreError(f"The run's status {status!r} is not one of {', '.join(RUN_STATUSES)}.")
        records = _import_records(raw_records)
        with self._lock:
            run_id = str(_clean(meta.get("run_id")) or "") or new_run_id()
            if self._exists(run_id):
                run_id = new_run_id()
                plan.name = f"{plan.name or meta.get('name') or ''} (imported)".strip()
            else:
                plan.name = str(meta.get("name") or plan.name or "")
            try:
                self._db.execute("BEGIN")
                self._insert_run(run_id, plan, str(meta.get("connection_label") or ""),
                                 created_at if created_at is not None else time.time(), status)
                self._db.executemany(_INSERT_RECORDS_SQL, _record_rows(run_id, records))
                self._db.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (finished_at, run_id))
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, (sqlite3.Error, ValueError, TypeError, KeyError)) and not isinstance(
                    exc, StoreError
                ):
                    raise StoreError(f"The run could not be stored ({type(exc).__name__}: {exc}).") from None
                raise
        return run_id


RUN_STATUSES = ("complete", "cancelled", "failed", "running")
# Record fields an import must carry: the store has no honest default for them (a missing `ok` must not
# turn a failure into a success, a missing `seq` would overwrite another record).
_REQUIRED_FIELDS = ("seq", "route", "warmup", "status", "ok")
_FLOAT_FIELDS = ("intended_start_s", "actual_start_s", "ttfb_ms", "total_ms")
_INT_FIELDS = ("error_code", "bytes", "tokens_in", "tokens_out")
_TEXT_FIELDS = ("error_message", "cache_status", "log_id", "error_kind")


def _import_plan(meta: dict[str, Any]) -> Plan:
    try:
        plan = Plan.from_dict(meta["plan"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"The file's run has no usable plan ({exc}).") from None
    if not isinstance(plan.model, str) or not plan.model.strip():
        raise StoreError("The file's plan names no model.")
    if not plan.routes or not all(isinstance(r, str) for r in plan.routes):
        raise StoreError("The file's plan has no list of routes.")
    if isinstance(plan.n, bool) or not isinstance(plan.n, int):
        raise StoreError(f"The file's plan has n = {plan.n!r}, not a whole number.")
    try:
        json.dumps(plan.to_dict(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"The file's plan cannot be stored as JSON ({exc}).") from None
    return plan


def _as_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None when it is not one (bools are not numbers)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _import_time(meta: dict[str, Any], key: str) -> float | None:
    """An epoch-seconds field of the run metadata; None when absent."""
    value = _clean(meta.get(key))
    if value is None:
        return None
    number = _as_number(value)
    if number is None:
        raise StoreError(f"The run's {key} {value!r} is not a time in seconds since 1970 (e.g. 1700000000.5).")
    return number


def _import_records(raw: list[Any]) -> list[dict[str, Any]]:
    """Check and type every record of an import; the message names the first bad one (counted from 1)."""
    out: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise StoreError(f"Record {index} is not an object with the record fields.")
        r = {k: _clean(item.get(k)) for k in RECORD_COLUMNS}
        for name in _REQUIRED_FIELDS:
            if r[name] is None:
                raise StoreError(f"Record {index} has no {name}.")

        def whole(name: str, value: Any, index: int = index) -> int:
            number = _as_number(value)
            if number is None or not number.is_integer():
                raise StoreError(f"Record {index}: {name} {value!r} is not a whole number.")
            return int(number)

        def flag(name: str, value: Any, index: int = index) -> bool:
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise StoreError(f"Record {index}: {name} {value!r} is not true or false.")

        seq = whole("seq", r["seq"])
        if seq < 0:
            raise StoreError(f"Record {index}: seq {seq} is negative.")
        if seq in seen:
            raise StoreError(f"Record {index} repeats seq {seq} (already used by record {seen[seq]}).")
        seen[seq] = index
        if not isinstance(r["route"], str) or not r["route"].strip():
            raise StoreError(f"Record {index}: route {r['route']!r} is not a route name.")
        clean: dict[str, Any] = {"run_id": r["run_id"], "seq": seq, "route": r["route"],
                                 "warmup": flag("warmup", r["warmup"]), "status": whole("status", r["status"]),
                                 "ok": flag("ok", r["ok"])}
        for name in _FLOAT_FIELDS:
            if r[name] is not None and _as_number(r[name]) is None:
                raise StoreError(f"Record {index}: {name} {r[name]!r} is not a number.")
            clean[name] = None if r[name] is None else _as_number(r[name])
        for name in _INT_FIELDS:
            clean[name] = None if r[name] is None else whole(name, r[name])
        clean["bytes"] = clean["bytes"] or 0
        for name in _TEXT_FIELDS:
            clean[name] = None if r[name] is None else str(r[name])
        out.append(clean)
    return out


def _parse_json_export(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise StoreError(f"Not a JSON export: {exc}.") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise StoreError(f"Not a Workers AI Lab run export (expected \"format\": \"{EXPORT_FORMAT}\").")
    if int(doc.get("version") or 0) > SCHEMA_VERSION:
        raise StoreError("This export comes from a newer version of Workers AI Lab; upgrade to import it.")
    meta, records = doc.get("run"), doc.get("records")
    if not isinstance(meta, dict) or not isinstance(records, list):
        raise StoreError("The export lacks its 'run' metadata or its 'records' list.")
    return meta, records


def _parse_csv_export(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False,
                            na_values=[""], dtype={"run_id": str, "log_id": str, "error_message": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise StoreError(f"Not a CSV export: {exc}.") from None
    missing = [c for c in (*RECORD_COLUMNS, *CSV_RUN_COLUMNS) if c not in frame.columns]
    if missing:
        raise StoreError(f"Not a Workers AI Lab CSV export: columns missing: {', '.join(missing)}.")
    if frame.empty:
        raise StoreError("The CSV export has no records, so it carries no run to import.")
    first = frame.iloc[0]
    meta = {
        "run_id": first["run_id"], "name": _clean(first["run_name"]) or "", "created_at": first["run_created_at"],
        "finished_at": _clean(first["run_finished_at"]), "status": first["run_status"],
        "model": first["run_model"], "connection_label": _clean(first["run_connection_label"]) or "",
    }
    try:
        meta["plan"] = json.loads(first["run_plan"])
    except (TypeError, ValueError):
        raise StoreError("The CSV's run_plan column is not valid JSON.") from None
    # Raw rows, not normalised: normalising would fill a blank seq with 0; import_run checks and types them.
    rows = [{k: _clean(v) for k, v in row.items()} for row in frame[list(RECORD_COLUMNS)].to_dict("records")]
    return meta, rows

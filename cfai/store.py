"""Run history in SQLite (stdlib sqlite3, WAL): runs and their request records survive restarts.

A run can be saved in one go (`save_run`) or as it goes (`begin_run`, `add_records`, `finish_run`), so a crash
keeps what was measured (such a run stays "running"). `get_run` gives a typed `StoredRun` (metadata, the plan as
a `Plan`, the records frame); `run_info` the metadata alone. Runs export to JSON (metadata + records) or CSV
(records with run metadata columns) and import back; imports are validated by `cfai.run_import`. Importing a
run whose id is already stored keeps both: the import gets a fresh id and its name is marked "(imported)".
The API token is never stored: plans hold no token (see `Plan.to_dict`) and the connection is kept as mode,
account id and gateway id.

Database faults (a damaged file, a folder that cannot be written, a lock held by another program, a full
disk) raise `StoreUnavailable`, whose message names the file and what to do; `open_store` falls back to a
read-only history when the file can be read but not written.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

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
from cfai.config import Connection
from cfai.csv_safe import safe_csv
from cfai.records import ADDED_RECORD_COLUMNS, RECORD_DTYPES
from cfai.run_import import CSV_RUN_COLUMNS, EXPORT_FORMAT, EXPORT_VERSION, RUN_STATUSES, parse_run_file

__all__ = ["CSV_RUN_COLUMNS", "EXPORT_FORMAT", "RUN_STATUSES", "RunInfo", "Store", "StoreError",
           "StoreUnavailable", "StoredRun", "default_db_path", "export_bytes", "open_store"]

ENV_DATA_DIR = "CFAI_DATA_DIR"
DB_FILENAME = "history.sqlite3"
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 5.0  # how long a write waits for another program's lock before saying so

_SCHEMA_V1 = """
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
# v2: the connection as fields (no more parsing of a display label), and a revision that changes whenever the
# run's records or status do (what caches of derived data are keyed on).
_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN mode TEXT;
ALTER TABLE runs ADD COLUMN account_id TEXT;
ALTER TABLE runs ADD COLUMN gateway_id TEXT;
ALTER TABLE runs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
"""
# v3: per-record cached and reasoning tokens and the token-level timing of streams (cfai.token_timing). Older
# rows read them as missing.
_SQL_TYPES = {"Int64": "INTEGER", "int64": "INTEGER", "float64": "REAL", "str": "TEXT", "bool": "INTEGER"}
_SCHEMA_V3 = "".join(f"ALTER TABLE records ADD COLUMN {name} {_SQL_TYPES[RECORD_DTYPES[name]]};\n"
                     for name in ADDED_RECORD_COLUMNS)
_RUN_COLUMNS = ("run_id", "name", "created_at", "finished_at", "model", "routes", "n", "status",
                "connection_label", "plan_json", "mode", "account_id", "gateway_id", "revision")
_INSERT_RECORDS_SQL = (
    f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


# --- errors ---------------------------------------------------------------------------------------------------
class StoreError(ValueError):
    """A request the store cannot honour (unknown run, unreadable import); the message says why."""


FaultKind = Literal["corrupt", "read_only", "locked", "full", "newer", "unavailable"]


class StoreUnavailable(StoreError):
    """The database cannot be used as asked; `kind` says why, the message names the file and what to do."""

    def __init__(self, message: str, kind: FaultKind, path: Path):
        super().__init__(message)
        self.kind: FaultKind = kind
        self.path = path


# Primary SQLite result codes (https://www.sqlite.org/rescode.html).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26


def database_fault(exc: sqlite3.Error | OSError, path: Path, action: str) -> StoreUnavailable:
    """What went wrong with the history file, in words that name it and say what to do."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    cause = f"{exc}".strip() or type(exc).__name__
    folder = path.parent
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreUnavailable(
            f"The history file {path} is damaged or is not a Workers AI Lab history (SQLite said: {cause}). "
            f"Move it aside (for example rename it to {path.name}.broken) to start a new history, or set "
            f"{ENV_DATA_DIR} to another folder, then reload the page.", "corrupt", path)
    if code == _SQLITE_FULL or "disk is full" in cause:
        return StoreUnavailable(
            f"Could not {action}: the disk holding {path} is full (SQLite said: {cause}). Free some space or "
            "delete old runs, then try again.", "full", path)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreUnavailable(
            f"Could not {action}: {path} is locked by another program (another Workers AI Lab, or a `cfai "
            f"compare` still writing?) (SQLite said: {cause}). Let it finish or close it, then try again.",
            "locked", path)
    if code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN) or isinstance(exc, PermissionError):
        return StoreUnavailable(
            f"Could not {action}: the history folder {folder} cannot be written (SQLite said: {cause}). Make "
            f"it writable, or set {ENV_DATA_DIR} to a folder you can write, then restart the app.",
            "read_only", path)
    if code == _SQLITE_IOERR:
        return StoreUnavailable(
            f"Could not {action}: reading or writing {path} failed (SQLite said: {cause}). Check the disk and "
            "the folder, then try again.", "unavailable", path)
    return StoreUnavailable(f"Could not {action} in {path} ({type(exc).__name__}: {cause}).", "unavailable", path)


# --- what the store gives back --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """A stored run's metadata. `revision` changes whenever its records or status do."""

    run_id: str
    name: str
    created_at: float  # epoch seconds
    finished_at: float | None
    model: str
    routes: tuple[str, ...]
    n: int
    status: str
    connection_label: str
    mode: str | None  # local | cloudflare
    account_id: str | None
    gateway_id: str | None  # None: the run's connection had no gateway
    plan: Plan
    record_count: int
    revision: int

    @property
    def data_key(self) -> tuple[str, int, int, str]:
        """What the run's records and everything derived from them depend on (not its name)."""
        return (self.run_id, self.revision, self.record_count, self.status)

    @property
    def label(self) -> str:
        return f"{self.name} · {self.run_id}" if self.name else self.run_id


@dataclass(frozen=True, eq=False)
class StoredRun(RunInfo):
    """A stored run with its records (the same dtypes as `RunResult.to_frame()`)."""

    records: pd.DataFrame = None  # type: ignore[assignment]  # always set by the store

    @property
    def info(self) -> RunInfo:
        return RunInfo(**asdict_shallow(self))


def connection_fields(label: str) -> tuple[str | None, str | None, str | None]:
    """Mode, account and gateway from a label made by `cfai.compare.connection_label` (older stores, RunResult,
    imports without the fields). The one place such a label is read back."""
    parts = [p.strip() for p in (label or "").split(" · ")]
    mode = parts[0] or None if parts else None
    account = next((p.removeprefix("account ").strip() or None for p in parts if p.startswith("account ")), None)
    gateway = next((p.removeprefix("gateway ").strip() for p in parts if p.startswith("gateway ")), "")
    return mode, account, (gateway if gateway and gateway != "-" else None)


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


def _record_rows(run_id: str, records: Iterable[Record | Mapping[str, Any]]) -> list[tuple]:
    rows = []
    for r in records:
        d = asdict(r) if isinstance(r, Record) else dict(r)
        d["run_id"] = run_id
        d["warmup"] = int(bool(d.get("warmup")))
        d["ok"] = int(bool(d.get("ok")))
        d["bytes"] = d.get("bytes") or 0
        rows.append(tuple(_clean(d.get(c)) for c in RECORD_COLUMNS))
    return rows


# --- export (also used for a run that never reached the store) ------------------------------------------------
def export_bytes(info: RunInfo, records: list[dict[str, Any]], fmt: str = "json") -> bytes:
    """JSON: {"format", "version", "run": metadata incl. plan, "records": [...]}; CSV: one row per record,
    record columns then run_* metadata columns (the plan as JSON in run_plan)."""
    plan = info.plan.to_dict()
    rows = [{c: _clean(r.get(c)) for c in RECORD_COLUMNS} for r in records]
    for r in rows:
        r["warmup"], r["ok"] = bool(r["warmup"]), bool(r["ok"])
    if fmt == "json":
        run = {"run_id": info.run_id, "name": info.name, "created_at": info.created_at,
               "finished_at": info.finished_at, "model": info.model, "routes": list(info.routes), "n": info.n,
               "status": info.status, "connection_label": info.connection_label, "mode": info.mode,
               "account_id": info.account_id, "gateway_id": info.gateway_id, "plan": plan}
        doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "run": run, "records": rows}
        return json.dumps(doc, indent=1, allow_nan=False).encode()
    if fmt == "csv":
        frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
        extra: dict[str, Any] = {
            "run_name": info.name, "run_created_at": info.created_at, "run_finished_at": info.finished_at,
            "run_status": info.status, "run_model": info.model, "run_connection_label": info.connection_label,
            "run_plan": json.dumps(plan),
        }
        for key, value in extra.items():
            frame[key] = value
        return safe_csv(frame).encode()  # formula cells neutralised (cfai.csv_safe); the import restores them
    raise StoreError(f"Unknown export format {fmt!r}: use 'json' or 'csv'.")


def run_info_of(result: RunResult, connection: Connection | None = None, status: str | None = None) -> RunInfo:
    """The metadata a run in memory would have once stored (for exporting a run the store could not take)."""
    mode, account, gateway = (
        (connection.mode, connection.account_id, connection.gateway_id) if connection is not None
        else connection_fields(result.connection_label))
    return RunInfo(
        run_id=result.run_id, name=result.plan.name, created_at=result.started_at, finished_at=result.finished_at,
        model=result.plan.model, routes=tuple(result.plan.routes), n=result.plan.n,
        status=status or result.status, connection_label=result.connection_label, mode=mode, account_id=account,
        gateway_id=gateway or None, plan=result.plan, record_count=len(result.records), revision=0)


# --- the store ------------------------------------------------------------------------------------------------
class Store:
    """One SQLite file. Thread-safe: one connection shared under a lock (runner threads add records).

    `read_only=True` opens an existing history for reading only (every write raises StoreUnavailable);
    `open_store` picks it when the folder cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = read_only
        self._lock = threading.RLock()
        memory = str(self.path) == ":memory:"
        try:
            if not memory and not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if read_only:
                self._db = self._connect_read_only(timeout_s)
            else:
                self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=timeout_s,
                                           isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise database_fault(exc, self.path, "open the history") from None
        try:
            with self._using("open the history"):
                if not read_only:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: survives app crashes, fast
                self._db.execute("PRAGMA foreign_keys=ON")
                self._migrate()
        except StoreError:
            self._db.close()
            raise

    def _connect_read_only(self, timeout_s: float) -> sqlite3.Connection:
        if not self.path.exists():
            raise StoreUnavailable(f"There is no history file at {self.path} to read.", "unavailable", self.path)
        uri = self.path.resolve().as_uri()
        last: sqlite3.Error | None = None
        # WAL readers need a -shm file; in a folder that cannot be written there may be none: then read the
        # file as it is on disk (immutable), which is what the app last checkpointed into it.
        for query in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{uri}?{query}", uri=True, check_same_thread=False, timeout=timeout_s,
                                 isolation_level=None)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.Error as exc:
                db.close()
                last = exc
        assert last is not None
        raise last

    @contextmanager
    def _using(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; any SQLite error becomes a StoreUnavailable naming the file."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise database_fault(exc, self.path, action) from None

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction. On failure it is rolled back if SQLite has not already done so, and the
        error that caused it is the one raised (a failed ROLLBACK must not hide a full disk)."""
        self._writable(action)
        with self._using(action) as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: a busy database fails here, cleanly
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    # SQLite may have rolled back already (SQLITE_FULL does): the first error is the one to show.
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise

    def _writable(self, action: str) -> None:
        if self.read_only:
            raise StoreUnavailable(
                f"Could not {action}: the history at {self.path} is open read-only (its folder cannot be "
                f"written). Make {self.path.parent} writable or set {ENV_DATA_DIR} to another folder, then "
                "restart the app.", "read_only", self.path)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"{self.path} was written by a newer version of Workers AI Lab (schema {version}); "
                f"upgrade, or set {ENV_DATA_DIR} to use another history.", "newer", self.path)
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            if version == 0:
                raise StoreUnavailable(f"{self.path} holds no history yet.", "unavailable", self.path)
            return  # an older schema is read as it is (missing columns come from the connection label)
        script = (_SCHEMA_V1 if version < 1 else "") + (_SCHEMA_V2 if version < 2 else "") + _SCHEMA_V3
        self._db.executescript(f"BEGIN IMMEDIATE;{script}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        if version >= 2:
            return
        # Older runs: the connection fields from their label, once.
        rows = self._db.execute("SELECT run_id, connection_label FROM runs").fetchall()
        if rows:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE runs SET mode = ?, account_id = ?, gateway_id = ? WHERE run_id = ?",
                                 [(*connection_fields(label), run_id) for run_id, label in rows])
            self._db.execute("COMMIT")

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
        connection: Connection | None = None,
        connection_label: str = "",
        created_at: float | None = None,
        status: str = "running",
    ) -> None:
        """Create the run row before its first record arrives. `connection` (preferred) gives mode, account and
        gateway as fields; a bare `connection_label` is read back with `connection_fields`."""
        if connection is not None:
            from cfai.compare import connection_label as label_of

            connection_label = label_of(connection)
            fields: tuple[str | None, str | None, str | None] = (
                connection.mode, connection.account_id, connection.gateway_id or None)
        else:
            fields = connection_fields(connection_label)
        with self._transaction("start storing the run") as db:
            self._insert_run(db, run_id, plan, connection_label, fields, created_at, status)

    def _insert_run(self, db: sqlite3.Connection, run_id: str, plan: Plan, connection_label: str,
                    fields: tuple[str | None, str | None, str | None], created_at: float | None,
                    status: str) -> None:
        db.execute(
            f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
            (run_id, plan.name, created_at if created_at is not None else time.time(), None, plan.model,
             ",".join(plan.routes), plan.n, status, connection_label, json.dumps(plan.to_dict()), *fields, 0),
        )

    def add_records(self, run_id: str, records: Iterable[Record | Mapping[str, Any]]) -> None:
        rows = _record_rows(run_id, records)
        if not rows:
            return
        with self._transaction("store the run's records") as db:
            db.executemany(_INSERT_RECORDS_SQL, rows)
            db.execute("UPDATE runs SET revision = revision + 1 WHERE run_id = ?", (run_id,))

    def finish_run(
        self, run_id: str, cancelled: bool = False, *, status: str | None = None, finished_at: float | None = None
    ) -> None:
        """Mark the run done; the status is derived from its stored records unless given."""
        if status is None:
            records = [Record(**r) for r in self._record_dicts(run_id)]
            status = run_status(records, cancelled)
        with self._transaction("mark the run finished") as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, revision = revision + 1 WHERE run_id = ?",
                (status, finished_at if finished_at is not None else time.time(), run_id),
            )

    def save_run(self, result: RunResult, connection: Connection | None = None) -> None:
        """Store a finished run (or complete one begun with begin_run): metadata and every record."""
        with self._lock:
            if not self.has_run(result.run_id):
                self.begin_run(result.run_id, result.plan, connection=connection,
                               connection_label=result.connection_label, created_at=result.started_at)
            self.add_records(result.run_id, result.records)
            self.finish_run(result.run_id, status=result.status, finished_at=result.finished_at)

    def rename_run(self, run_id: str, name: str) -> None:
        with self._transaction("rename the run") as db:
            if db.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name.strip(), run_id)).rowcount == 0:
                raise StoreError(f"No stored run {run_id!r}.")

    def delete_run(self, run_id: str) -> None:
        with self._transaction("delete the run") as db:
            if db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount == 0:
                raise StoreError(f"No stored run {run_id!r}.")

    # --- reading -------------------------------------------------------------------------------------------
    def has_run(self, run_id: str) -> bool:
        with self._using("read the history") as db:
            return db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def list_runs(self) -> pd.DataFrame:
        """Newest first: run_id, name, created_at (UTC datetime), model, routes, n, status, records,
        connection_label."""
        with self._using("read the history") as db:
            rows = db.execute(
                "SELECT r.run_id, r.name, r.created_at, r.model, r.routes, r.n, r.status, "
                "(SELECT COUNT(*) FROM records c WHERE c.run_id = r.run_id) AS records, r.connection_label "
                "FROM runs r ORDER BY r.created_at DESC, r.run_id DESC"
            ).fetchall()
        columns = ["run_id", "name", "created_at", "model", "routes", "n", "status", "records", "connection_label"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["created_at"] = pd.to_datetime(frame["created_at"].astype(float), unit="s", utc=True)
        return frame.astype({"n": "int64", "records": "int64"})

    def run_info(self, run_id: str) -> RunInfo:
        """A run's metadata, without its records."""
        with self._using("read the history") as db:
            cursor = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
            count = db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (run_id,)).fetchone()[0]
        if row is None:
            raise StoreError(f"No stored run {run_id!r}.")
        meta = dict(zip(names, row, strict=True))
        if "mode" not in meta:  # a read-only history of schema 1
            meta["mode"], meta["account_id"], meta["gateway_id"] = connection_fields(meta["connection_label"])
        plan = Plan.from_dict(json.loads(meta["plan_json"]))
        return RunInfo(
            run_id=meta["run_id"], name=meta["name"], created_at=float(meta["created_at"]),
            finished_at=None if meta["finished_at"] is None else float(meta["finished_at"]), model=meta["model"],
            routes=tuple(r for r in meta["routes"].split(",") if r), n=int(meta["n"]), status=meta["status"],
            connection_label=meta["connection_label"], mode=meta["mode"], account_id=meta["account_id"],
            gateway_id=meta["gateway_id"] or None, plan=plan, record_count=int(count),
            revision=int(meta.get("revision") or 0))

    def get_run(self, run_id: str) -> StoredRun:
        """A run with its records."""
        info = self.run_info(run_id)
        return StoredRun(**asdict_shallow(info), records=self.load_records(run_id))

    def get_plan(self, run_id: str) -> Plan:
        return self.run_info(run_id).plan

    def _stored_columns(self, db: sqlite3.Connection) -> list[str]:
        """The record columns this database has: all of them, except in a read-only history of an older
        schema (then the added ones read as missing)."""
        if not self.read_only:
            return list(RECORD_COLUMNS)
        present = {row[1] for row in db.execute("PRAGMA table_info(records)").fetchall()}
        return [c for c in RECORD_COLUMNS if c in present]

    def _record_dicts(self, run_id: str) -> list[dict[str, Any]]:
        with self._using("read the run's records") as db:
            columns = self._stored_columns(db)
            cursor = db.execute(
                f"SELECT {', '.join(columns)} FROM records WHERE run_id = ? ORDER BY seq", (run_id,)
            )
            return [{**dict.fromkeys(RECORD_COLUMNS), **dict(zip(columns, row, strict=True))}
                    for row in cursor.fetchall()]

    def load_records(self, run_ids: str | Iterable[str]) -> pd.DataFrame:
        """Records of one run or several (column run_id tells them apart), with the same dtypes as
        `RunResult.to_frame()`."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            return normalize_records_frame(pd.DataFrame(columns=list(RECORD_COLUMNS)))
        with self._using("read the run's records") as db:
            columns = self._stored_columns(db)
            cursor = db.execute(
                f"SELECT {', '.join(columns)} FROM records WHERE run_id IN ({', '.join('?' * len(ids))}) "
                "ORDER BY run_id, seq", ids)
            frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        return normalize_records_frame(frame)

    # --- export / import -----------------------------------------------------------------------------------
    def export_run(self, run_id: str, fmt: str = "json") -> bytes:
        """The run as a file (see `export_bytes`)."""
        if fmt not in ("json", "csv"):
            raise StoreError(f"Unknown export format {fmt!r}: use 'json' or 'csv'.")
        return export_bytes(self.run_info(run_id), self._record_dicts(run_id), fmt)

    def import_run(self, data: bytes, fmt: str = "json") -> str:
        """Store an exported run; returns its id (a fresh one when the original id is already stored).

        The file is validated in full first (`cfai.run_import.parse_run_file` raises RunImportError listing
        the problems); the run row and its records then go in one transaction, so nothing is stored unless all
        of it is valid and written.
        """
        self._writable("import the run")
        imported = parse_run_file(data, fmt)
        run, plan = imported.run, imported.plan
        label = run.connection_label
        fields = (run.mode, run.account_id, run.gateway_id) if run.mode else connection_fields(label)
        with self._transaction("import the run") as db:
            run_id = run.run_id or new_run_id()
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None:
                run_id = new_run_id()
                plan.name = f"{run.name or plan.name} (imported)".strip()
            else:
                plan.name = run.name or plan.name
            self._insert_run(db, run_id, plan, label, fields,
                             run.created_at if run.created_at is not None else time.time(), run.status)
            # Validated records hold plain Python values already: no per-value cleaning needed.
            db.executemany(_INSERT_RECORDS_SQL, (
                tuple(run_id if c == "run_id" else int(r[c]) if c in ("warmup", "ok") else r[c]
                      for c in RECORD_COLUMNS) for r in imported.records))
            db.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (run.finished_at, run_id))
        return run_id


def asdict_shallow(info: RunInfo) -> dict[str, Any]:
    """RunInfo's fields without copying the Plan (dataclasses.asdict would turn it into a dict)."""
    return {k: getattr(info, k) for k in RunInfo.__dataclass_fields__}


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The history at `path`, writable if possible, else read-only when it exists but cannot be written.
    Raises StoreUnavailable (a message for the user) when it cannot be opened at all."""
    try:
        return Store(path)
    except StoreUnavailable as exc:
        if exc.kind != "read_only" or not exc.path.exists():
            raise
        try:
            return Store(exc.path, read_only=True)
        except StoreUnavailable:
            raise exc from None

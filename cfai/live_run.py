"""A comparison run in the background (a `cfai.jobs` job), stored as it goes, that a page can poll and cancel.

The page keeps the `LiveRun` across reruns (session state), polls `frame()`/`done` to draw live progress, and
calls `cancel()`; the run keeps what it measured. Records reach the store in small batches (one transaction
per batch, not per request) so a crash or a closed tab loses at most the last half second.

A store that fails (locked by another program, a full disk, a read-only folder, no history at all) never
stops the run: the batch stays in memory and is written again at the next flush (at most every
`RETRY_EVERY_S`), and at the end every record is written once more. If that still fails, the run finishes in
memory: `unsaved` is True, `store_error` says why, and the page can `export()` it or `store_now()` later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from cfai import jobs
from cfai.client import Client
from cfai.compare import Runner, RunResult, connection_label
from cfai.plan import Plan
from cfai.records import Record, records_frame, run_status
from cfai.store import Store, StoredRun, StoreError, asdict_shallow, export_bytes, run_info_of

FLUSH_EVERY_S = 0.5
FLUSH_EVERY_RECORDS = 200
RETRY_EVERY_S = 2.0  # after a failed write, how long new records wait in memory before the next try
FINAL_RETRY_DELAYS_S = (0.2, 1.0)  # at the end: tries after the first one, before finishing in memory


@dataclass
class LiveRun:
    runner: Runner
    store: Store | None  # None: no history (it could not be opened); the run lives in memory only
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: RunResult | None = None
    error: str | None = None  # why the run stopped early, token-free
    store_error: str | None = None  # why records are not (all) stored; None once they are
    _job: jobs.Job[None] | None = None
    _pending: list[Record] = field(default_factory=list)
    _last_flush: float = 0.0
    _retry_at: float = 0.0
    _begun: bool = False  # the run's row is in the store
    _all_stored: bool = False  # every record and the final status are in the store
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, client: Client, plan: Plan, store: Store | None, run_id: str | None = None) -> LiveRun:
        """Validate the plan (raises ValueError / ConfigError with a user-facing message), store the run's
        row (a store that fails does not stop the run: see the module's docstring), and start sending in a
        background job (cfai.jobs)."""
        return cls._launch(Runner(client, plan, run_id=run_id), store, name="cfai-live")

    @classmethod
    def _launch(cls, runner: Runner, store: Store | None, name: str) -> LiveRun:
        """Store the run's row (if the store can) and start `runner` in a background job."""
        live = cls(runner=runner, store=store)
        live._begin()
        live._last_flush = time.monotonic()
        live._job = jobs.start(live._work, name=f"{name}-{runner.run_id}", total=runner.total,
                               cancel=live.cancel_event)
        return live

    # --- what the page polls ------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.runner.run_id

    @property
    def plan(self) -> Plan:
        return self.runner.plan

    @property
    def total(self) -> int:
        return self.runner.total

    @property
    def running(self) -> bool:
        return self._job is not None and self._job.running

    def progress(self) -> jobs.JobProgress:
        """Requests finished of the plan's total (warm-ups included), whether it runs, elapsed time."""
        if self._job is None:
            return jobs.JobProgress(0, self.total, False, self.cancelled, 0.0)
        return self._job.progress()

    def done_count(self) -> int:
        return len(self.runner.records_so_far())

    def frame(self) -> pd.DataFrame:
        """The records finished so far (a copy; safe while the run goes on)."""
        return records_frame(self.runner.records_so_far())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends or `timeout` passes; True when it has ended."""
        return self._job.wait(timeout) if self._job is not None else True

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    # --- a store that fails -------------------------------------------------------------------------------
    @property
    def unsaved(self) -> bool:
        """The run has ended and its records are not all in the store (history off, or writes failed)."""
        return not self.running and not self._all_stored

    def _begin(self, store: Store | None = None) -> None:
        store = store or self.store
        if store is None:
            self.store_error = self.store_error or "the history is off (it could not be opened)."
            return
        try:
            store.begin_run(self.run_id, self.plan, connection=self.runner.client.connection)
        except StoreError as exc:
            if store.has_run(self.run_id):  # begun by an earlier try whose answer got lost
                self._begun = True
                return
            self.store_error = str(exc)
        else:
            self._begun = True

    def _store_everything(self, store: Store) -> bool:
        """Write the run's row (if missing), every record (idempotent: INSERT OR REPLACE) and its status."""
        try:
            if not self._begun:
                self._begin(store)
                if not self._begun:
                    return False
            store.add_records(self.run_id, self.runner.records_so_far())
            store.finish_run(self.run_id, cancelled=self.cancel_event.is_set(),
                             status="failed" if self.error else None)
        except StoreError as exc:
            self.store_error = str(exc)
            return False
        self.store_error = None
        self._all_stored = True
        return True

    def store_now(self, store: Store | None = None) -> bool:
        """Try again to store a run that finished in memory (e.g. after the lock was released); True when
        every record is stored."""
        if self.running:
            return False
        target = store or self.store
        if target is None:
            return False
        self.store = target
        with self._flush_lock:
            return self._store_everything(target)

    def status(self) -> str:
        """complete | cancelled | failed | running, from the records in memory."""
        if self.running:
            return "running"
        return "failed" if self.error else run_status(self.runner.records_so_far(), self.cancelled)

    def _result(self) -> RunResult:
        if self.result is not None:
            return self.result
        now = time.time()
        return RunResult(run_id=self.run_id, plan=self.plan, started_at=now, finished_at=now,
                         records=self.runner.records_so_far(), cancelled=self.cancelled,
                         connection_label=connection_label(self.runner.client.connection))

    def as_stored_run(self) -> StoredRun:
        """The run from memory, shaped as the store would give it back."""
        info = run_info_of(self._result(), self.runner.client.connection, status=self.status())
        return StoredRun(**asdict_shallow(info), records=self.frame())

    def export(self, fmt: str = "json") -> bytes:
        """The run from memory as an export file (the same format as History's exports; no token)."""
        info = run_info_of(self._result(), self.runner.client.connection, status=self.status())
        return export_bytes(info, [asdict(r) for r in self.runner.records_so_far()], fmt)

    # --- the background job --------------------------------------------------------------------------------
    def _on_record(self, record: Record) -> None:
        self._pending.append(record)
        if self._job is not None:
            self._job.advance()
        now = time.monotonic()
        due = len(self._pending) >= FLUSH_EVERY_RECORDS or now - self._last_flush >= FLUSH_EVERY_S
        if due and now >= self._retry_at:
            self._flush()

    def _flush(self) -> None:
        """Write the pending records; on failure keep them for the next flush (never raises: a failed write
        must not stop the run)."""
        with self._flush_lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not batch or self.store is None:
                self._pending = batch + self._pending
                return
            try:
                if not self._begun:
                    self._begin()
                    if not self._begun:
                        raise StoreError(self.store_error or "the run could not be stored")
                self.store.add_records(self.run_id, batch)
            except StoreError as exc:
                self.store_error = str(exc)
                self._pending = batch + self._pending
                self._retry_at = time.monotonic() + RETRY_EVERY_S

    def _work(self, job: jobs.Job[None]) -> None:
        try:
            self.result = self.runner.run(on_record=self._on_record, cancel=job.cancel_event)
        except Exception as exc:  # noqa: BLE001 - the page shows it; the stored records stay
            self.error = self.runner.scrub(f"{type(exc).__name__}: {exc}")
        finally:
            self._finish_storing()

    def _finish_storing(self) -> None:
        """Every record once more (a failed flush lost none), then the status; retried briefly, then left in
        memory for `export()` / `store_now()`."""
        if self.store is None:
            return
        with self._flush_lock:
            self._pending = []
            for delay in (0.0, *FINAL_RETRY_DELAYS_S):
                if delay:
                    time.sleep(delay)  # a lock held by another program is often released within a second
                if self._store_everything(self.store):
                    return

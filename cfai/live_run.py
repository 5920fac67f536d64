"""A comparison run in the background (a `cfai.jobs` job), stored as it goes, that a page can poll and cancel.

The page keeps the `LiveRun` across reruns (session state), polls `frame()`/`running` to draw live progress,
and calls `cancel()`; the run keeps what it measured. Records reach the store in small batches (one
transaction per batch, not per request) so a crash or a closed tab loses at most the last half second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from cfai import jobs
from cfai.client import Client
from cfai.compare import Runner, RunResult, connection_label
from cfai.plan import Plan
from cfai.records import Record, records_frame

FLUSH_EVERY_S = 0.5
FLUSH_EVERY_RECORDS = 200


class RunSink(Protocol):
    """Where a live run keeps its records (`cfai.store.Store`)."""

    def begin_run(self, run_id: str, plan: Plan, *, connection_label: str = ...) -> None: ...

    def add_records(self, run_id: str, records: Iterable[Record]) -> None: ...

    def finish_run(self, run_id: str, cancelled: bool = ..., *, status: str | None = ...) -> None: ...


@dataclass
class LiveRun:
    runner: Runner
    store: RunSink
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: RunResult | None = None
    error: str | None = None  # why the run stopped early, token-free
    _job: jobs.Job[None] | None = None
    _pending: list[Record] = field(default_factory=list)
    _last_flush: float = 0.0
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, client: Client, plan: Plan, store: RunSink, run_id: str | None = None) -> LiveRun:
        """Validate the plan (raises ValueError / ConfigError with a user-facing message), store the run's
        row, and start sending in the background."""
        runner = Runner(client, plan, run_id=run_id)
        live = cls(runner=runner, store=store)
        store.begin_run(runner.run_id, plan, connection_label=connection_label(client.connection))
        live._last_flush = time.monotonic()
        live._job = jobs.start(live._work, name=f"cfai-live-{runner.run_id}", total=runner.total,
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

    # --- the background job -------------------------------------------------------------------------------
    def _on_record(self, record: Record) -> None:
        self._pending.append(record)
        if self._job is not None:
            self._job.advance()
        now = time.monotonic()
        if len(self._pending) >= FLUSH_EVERY_RECORDS or now - self._last_flush >= FLUSH_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        with self._flush_lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if batch:
                self.store.add_records(self.run_id, batch)

    def _work(self, job: jobs.Job[None]) -> None:
        try:
            self.result = self.runner.run(on_record=self._on_record, cancel=job.cancel_event)
        except Exception as exc:  # noqa: BLE001 - the page shows it; the stored records stay
            self.error = self.runner.scrub(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                self._flush()
                # Anything the runner finished that a failed flush lost, stored once more (INSERT OR REPLACE).
                self.store.add_records(self.run_id, self.runner.records_so_far())
                self.store.finish_run(self.run_id, cancelled=self.cancel_event.is_set(),
                                      status="failed" if self.error else None)
            except Exception as exc:  # noqa: BLE001
                self.error = self.error or self.runner.scrub(
                    f"Could not store the run: {type(exc).__name__}: {exc}")

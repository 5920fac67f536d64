"""A comparison run in a background thread, stored as it goes, that a page can poll and cancel.

The page keeps the `LiveRun` across reruns (session state), polls `frame()`/`done` to draw live progress, and
calls `cancel()`; the run keeps what it measured. Records reach the store in small batches (one transaction
per batch, not per request) so a crash or a closed tab loses at most the last half second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cfai.compare import Plan, Record, Runner, RunResult, connection_label, records_frame

FLUSH_EVERY_S = 0.5
FLUSH_EVERY_RECORDS = 200


@dataclass
class LiveRun:
    runner: Runner
    store: Any  # cfai.store.Store
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: RunResult | None = None
    error: str | None = None  # why the run stopped early, token-free
    _thread: threading.Thread | None = None
    _pending: list[Record] = field(default_factory=list)
    _last_flush: float = 0.0
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, client: Any, plan: Plan, store: Any, run_id: str | None = None) -> LiveRun:
        """Validate the plan (raises ValueError / ConfigError with a user-facing message), store the run's
        row, and start sending in a daemon thread."""
        runner = Runner(client, plan, run_id=run_id)
        live = cls(runner=runner, store=store)
        store.begin_run(runner.run_id, plan, connection_label=connection_label(client.connection))
        live._last_flush = time.monotonic()
        live._thread = threading.Thread(target=live._work, name=f"cfai-live-{runner.run_id}", daemon=True)
        live._thread.start()
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
        return self._thread is not None and self._thread.is_alive()

    def done_count(self) -> int:
        return len(self.runner.records_so_far())

    def frame(self) -> pd.DataFrame:
        """The records finished so far (a copy; safe while the run goes on)."""
        return records_frame(self.runner.records_so_far())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends or `timeout` passes; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    # --- the background thread ----------------------------------------------------------------------------
    def _on_record(self, record: Record) -> None:
        self._pending.append(record)
        now = time.monotonic()
        if len(self._pending) >= FLUSH_EVERY_RECORDS or now - self._last_flush >= FLUSH_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        with self._flush_lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if batch:
                self.store.add_records(self.run_id, batch)

    def _scrub(self, text: str) -> str:
        conn = self.runner.client.connection
        for secret in (conn.api_token, conn.gateway_token):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "****")
        return text

    def _work(self) -> None:
        try:
            self.result = self.runner.run(on_record=self._on_record, cancel=self.cancel_event)
        except Exception as exc:  # noqa: BLE001 - the page shows it; the stored records stay
            self.error = self._scrub(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                self._flush()
                # Anything the runner finished that a failed flush lost, stored once more (INSERT OR REPLACE).
                self.store.add_records(self.run_id, self.runner.records_so_far())
                self.store.finish_run(self.run_id, cancelled=self.cancel_event.is_set(),
                                      status="failed" if self.error else None)
            except Exception as exc:  # noqa: BLE001
                self.error = self.error or f"Could not store the run: {type(exc).__name__}: {exc}"

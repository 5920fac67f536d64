"""The one place threads start: background jobs, and a bounded, paced concurrent map.

- `start(fn)` runs `fn(job)` in a daemon thread and returns the `Job`: `cancel()`, `wait()`, `result()`,
  and progress (`advance`, `progress()`), safe to poll from another thread (a Streamlit rerun, the CLI).
  Cancelling is cooperative: `fn` checks `job.cancel_event` (or passes it on) and returns what it has.
- `paced_map(fn, items, ...)` calls `fn(item, due)` for every item with at most `concurrency` calls in
  flight, optionally paced (`Pacing`): an open loop keeps a fixed schedule (start k is due at k * interval,
  late starts are sent at once), a rate cap keeps a minimum spacing between starts. A cancel stops new calls
  at once; those in flight finish. `on_result` is called once per finished call, never concurrently.
- `gather(calls)` runs a few calls at the same time and returns their results in order (side by side).

The comparison runner, the live comparison, the classify batch, the CLI and the playground all use these.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class JobProgress:
    done: int
    total: int | None  # None: not known
    running: bool
    cancelled: bool
    elapsed_s: float

    @property
    def fraction(self) -> float:
        """Share of `total` done, 0..1 (1 when the total is unknown and the job has ended)."""
        if not self.total:
            return 0.0 if self.running else 1.0
        return min(max(self.done / self.total, 0.0), 1.0)


class Job(Generic[T]):
    """A function running in a background thread (see `start`)."""

    def __init__(self, name: str, total: int | None = None, cancel: threading.Event | None = None):
        self.name = name
        self.cancel_event = cancel or threading.Event()
        self._lock = threading.Lock()
        self._done = 0
        self._total = total
        self._thread: threading.Thread | None = None
        self._result: T | None = None
        self._error: BaseException | None = None
        self._started = 0.0
        self._finished = 0.0
        # Completion is an Event, not Thread.join: a join interrupted by Ctrl-C can report a live thread as
        # finished, and the caller then reads a result that is not there yet.
        self._ended = threading.Event()

    # --- inside the job --------------------------------------------------------------------------------
    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n

    def set_total(self, total: int | None) -> None:
        with self._lock:
            self._total = total

    # --- outside ---------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._ended.is_set()

    @property
    def finished(self) -> bool:
        """Started and ended (with a result or an error)."""
        return self._ended.is_set()

    @property
    def error(self) -> BaseException | None:
        """What `fn` raised, once the job has ended; None otherwise."""
        return self._error if self.finished else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends or `timeout` passes; True when it has ended."""
        if self._thread is not None:
            self._ended.wait(timeout)
        return not self.running

    def result(self, timeout: float | None = None) -> T:
        """`fn`'s return value (waiting up to `timeout`); re-raises what `fn` raised."""
        if not self.wait(timeout) or self._thread is None:
            raise TimeoutError(f"job {self.name} has not finished")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set by a job that ended without error

    def wait_cancelling_on_interrupt(self, poll_s: float = 0.2,
                                     on_cancel: Callable[[], None] | None = None) -> T | None:
        """For a command line. The first Ctrl-C cancels the job (no new work; what is in flight finishes, each
        by its deadline) and keeps waiting, calling `on_cancel` once; a second Ctrl-C stops waiting and
        returns None. Otherwise returns (or raises) as the job ends."""
        interrupts = 0

        def interrupted(*_: object) -> None:
            nonlocal interrupts
            interrupts += 1
            self.cancel()
            if interrupts == 1 and on_cancel is not None:
                on_cancel()

        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, interrupted) if in_main else None
        try:
            while not self._ended.is_set() and interrupts < 2:
                try:
                    self._ended.wait(poll_s)
                except KeyboardInterrupt:  # a handler other than ours raised it (e.g. embedded use)
                    interrupted()
        finally:
            if in_main and previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.result() if self._ended.is_set() else None

    def progress(self) -> JobProgress:
        with self._lock:
            end = self._finished or time.monotonic()
            return JobProgress(self._done, self._total, self.running, self.cancelled,
                               (end - self._started) if self._started else 0.0)

    def _run(self, fn: Callable[[Job[T]], T]) -> None:
        try:
            self._result = fn(self)
        except BaseException as exc:  # noqa: BLE001 - kept for result() in the waiting thread
            self._error = exc
        finally:
            with self._lock:
                self._finished = time.monotonic()
            self._ended.set()


def start(fn: Callable[[Job[T]], T], *, name: str, total: int | None = None,
          cancel: threading.Event | None = None) -> Job[T]:
    """Run `fn(job)` in a daemon thread now and return the job."""
    job: Job[T] = Job(name, total=total, cancel=cancel)
    job._started = time.monotonic()
    job._thread = threading.Thread(target=job._run, args=(fn,), name=name, daemon=True)
    job._thread.start()
    return job


@dataclass(frozen=True)
class Pacing:
    """When calls may start. `interval_s` between starts; `fixed_schedule` True: start k is due at
    `k * interval_s` from the first (an open loop: a late start does not push the later ones back);
    False: at least `interval_s` after the previous start (a rate cap: a stall is never made up)."""

    interval_s: float
    fixed_schedule: bool = False

    @classmethod
    def per_second(cls, rate: float) -> Pacing:
        return cls(1.0 / rate, fixed_schedule=True)

    @classmethod
    def per_minute_cap(cls, per_minute: int | None) -> Pacing | None:
        return cls(60.0 / per_minute) if per_minute else None


def paced_map(
    fn: Callable[[T, float], R],
    items: Iterable[T],
    *,
    concurrency: int,
    cancel: threading.Event | None = None,
    pacing: Pacing | None = None,
    on_result: Callable[[R], None] | None = None,
    name: str = "cfai-map",
) -> int:
    """Call `fn(item, due)` for each item (`due`: the monotonic time the call was due to start), at most
    `concurrency` at once, in order. Items are taken one at a time as slots free up, so a cancel stops new
    calls immediately while those in flight complete. If `fn` or `on_result` raises, no new call starts and
    the first error is raised once the calls in flight have finished. Returns how many calls were started.

    With `concurrency` 1 and no pacing the calls run in this thread (no thread hand-off at all)."""
    cancel = cancel or threading.Event()
    concurrency = max(1, int(concurrency))
    result_lock = threading.Lock()
    errors: list[BaseException] = []

    def call(item: T, due: float) -> None:
        try:
            result = fn(item, due)
            if on_result is not None:
                with result_lock:
                    on_result(result)
        except BaseException as exc:  # noqa: BLE001 - raised from paced_map once the others finish
            errors.append(exc)
            cancel.set()

    started = 0
    if concurrency == 1 and pacing is None:
        for item in items:
            if cancel.is_set():
                break
            started += 1
            call(item, time.monotonic())
    else:
        slots = threading.BoundedSemaphore(concurrency)

        def in_slot(item: T, due: float) -> None:
            try:
                call(item, due)
            finally:
                slots.release()

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
            first = next_due = time.monotonic()
            for k, item in enumerate(items):
                if cancel.is_set():
                    break
                slots.acquire()  # a slot frees when a call in flight finishes (each has its own deadline)
                if cancel.is_set():
                    slots.release()
                    break
                due = time.monotonic()
                if pacing is not None:
                    due = first + k * pacing.interval_s if pacing.fixed_schedule else max(due, next_due)
                    # Wait for the slot's time; a cancel wakes the wait at once.
                    if cancel.wait(max(0.0, due - time.monotonic())):
                        slots.release()
                        break
                    next_due = max(due, time.monotonic()) + pacing.interval_s
                started += 1
                pool.submit(in_slot, item, due)
    if errors:
        raise errors[0]
    return started


def gather(calls: Sequence[Callable[[], R]], *, name: str = "cfai-gather") -> list[R]:
    """Run `calls` at the same time and return their results in order (re-raising the first error)."""
    results: dict[int, R] = {}

    def run(indexed: tuple[int, Callable[[], R]], _due: float) -> tuple[int, R]:
        return indexed[0], indexed[1]()

    def keep(pair: tuple[int, R]) -> None:
        results[pair[0]] = pair[1]

    paced_map(run, list(enumerate(calls)), concurrency=max(len(calls), 1), on_result=keep, name=name)
    return [results[i] for i in range(len(calls))]

"""A load sweep in the background, stored as one run as it goes, that a page can poll and cancel.

`LiveSweep` is a `cfai.live_run.LiveRun` whose runner is a `SweepRunner` behind the Runner interface
LiveRun drives (run id, stored plan, records so far, run, scrub). So a sweep is stored exactly as a
comparison is (Store.begin_run with `sweep_run_plan(sweep)`, records in batches, finish_run, the same
in-memory fallback and export when the history fails), and the page polls it the same way.

Also here: `estimate` (requests and time a sweep will take, before it runs) and `SweepProgress` (which step
is running and how far the sweep is), both UI-free.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cfai.client import Client
from cfai.compare import Runner, RunResult
from cfai.live_run import LiveRun
from cfai.plan import Plan
from cfai.records import Record
from cfai.store import Store
from cfai.sweep import StepOutcome, SweepPlan, SweepRunner, step_of, sweep_run_plan

# Used by `estimate` when no latency is known yet (closed-loop steps sized by a count take as long as their
# requests do).
DEFAULT_LATENCY_GUESS_MS = 500.0


class SweepSteps:
    """A SweepRunner seen through the Runner interface that LiveRun uses."""

    def __init__(self, client: Client, sweep: SweepPlan, run_id: str | None = None):
        self.inner = SweepRunner.with_client(client, sweep, run_id=run_id)
        self.client = client
        self.sweep = self.inner.sweep
        self.plan: Plan = sweep_run_plan(self.sweep)
        # Scrubbing is the Runner's (one definition of which secrets a message must not carry).
        self._scrubber = Runner(client, self.inner.plans[0], run_id=self.inner.run_id)
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self.outcomes: list[StepOutcome] = []
        self.step_started_at = time.monotonic()

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    @property
    def total(self) -> int:
        return self.inner.total

    @property
    def steps(self) -> list[Plan]:
        return self.inner.plans

    def records_so_far(self) -> list[Record]:
        with self._lock:
            return sorted(self._records, key=lambda r: r.seq)

    def scrub(self, text: str) -> str:
        return self._scrubber.scrub(text)

    def _on_step(self, outcome: StepOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
            self.step_started_at = time.monotonic()

    def run(self, on_record: Callable[[Record], None] | None = None,
            cancel: threading.Event | None = None) -> RunResult:
        def collect(record: Record) -> None:
            with self._lock:
                self._records.append(record)
            if on_record is not None:
                on_record(record)

        self.step_started_at = time.monotonic()
        result = self.inner.run(on_record=collect, cancel=cancel, on_step=self._on_step)
        with self._lock:  # records an executor returned without reporting them
            self._records = list(result.records)
        return result.to_run_result()


@dataclass(frozen=True)
class SweepProgress:
    step: int  # the step running (or the last one, once ended), from 0
    steps: int
    load: float
    load_unit: str
    done: int  # requests finished, all steps
    fraction: float  # 0..1 of the whole sweep
    running: bool
    cancelled: bool
    elapsed_s: float

    def text(self) -> str:
        state = "Cancelling..." if self.cancelled and self.running else ("Running" if self.running else "Ended")
        return (f"{state}: step {self.step + 1} of {self.steps} ({self.load_unit} {self.load:g}) · "
                f"{self.done:,} requests · {self.elapsed_s:,.1f} s")


@dataclass
class LiveSweep(LiveRun):
    runner: SweepSteps  # type: ignore[assignment]  # the sweep behind the Runner interface

    @classmethod
    def start_sweep(cls, client: Client, sweep: SweepPlan, store: Store | None,
                    run_id: str | None = None) -> LiveSweep:
        """Validate the sweep (raises ValueError / ConfigError with a user-facing message), store the run's row
        with the sweep's plan, and start the steps in a background job (cfai.jobs)."""
        live = cls._launch(SweepSteps(client, sweep, run_id=run_id), store, name="cfai-sweep")  # type: ignore[arg-type]  # the Runner interface
        assert isinstance(live, LiveSweep)
        return live

    @property
    def sweep(self) -> SweepPlan:
        return self.runner.sweep

    def sweep_progress(self) -> SweepProgress:
        base = self.progress()
        plans = self.runner.steps
        with self.runner._lock:
            outcomes = list(self.runner.outcomes)
            since = time.monotonic() - self.runner.step_started_at
        finished_steps = len(outcomes)
        # Running: the step after the last one that ended. Ended: the last step that ran (a cancelled step
        # still reports its outcome).
        step = finished_steps if base.running else (outcomes[-1].step if outcomes else 0)
        step = min(step, len(plans) - 1)
        if self.sweep.duration_s:
            within = min(1.0, since / self.sweep.duration_s) if base.running else 1.0
        else:
            done_in_step = sum(1 for r in self.runner.records_so_far() if step_of(r.seq) == step)
            within = min(1.0, done_in_step / max(1, plans[step].total_requests))
        fraction = 1.0 if not base.running and not base.cancelled else (
            min(1.0, (min(finished_steps, step) + within) / len(plans)))
        plan = plans[step]
        load = float(plan.rate if plan.rate is not None else plan.concurrency)
        return SweepProgress(step=step, steps=len(plans), load=load, load_unit=self.sweep.load_unit,
                             done=base.done, fraction=fraction, running=base.running,
                             cancelled=base.cancelled, elapsed_s=base.elapsed_s)


@dataclass(frozen=True)
class SweepEstimate:
    requests: int  # warm-ups included
    seconds: float
    requests_exact: bool  # False: closed-loop steps of a fixed duration send what the latency allows
    seconds_exact: bool  # False: the time depends on the latency guess
    latency_ms: float

    def text(self) -> str:
        count = f"{'' if self.requests_exact else 'about '}{self.requests:,} requests"
        time_ = f"{'' if self.seconds_exact else 'about '}{_duration(self.seconds)}"
        guess = "" if self.requests_exact and self.seconds_exact else (
            f" (assuming about {self.latency_ms:,.0f} ms a request)")
        return f"{count} in {time_}{guess}."


def estimate(sweep: SweepPlan, latency_ms: float = DEFAULT_LATENCY_GUESS_MS) -> SweepEstimate:
    """Requests and wall time of a sweep before it runs. Exact where the plan fixes them (request counts,
    the time of duration-sized closed-loop steps); elsewhere from `latency_ms`, a typical request's latency.
    Open-loop steps take their schedule (requests / rate, warm-ups included) plus the last request's latency."""
    latency_s = max(float(latency_ms), 0.0) / 1000.0
    routes = len(sweep.base.routes)
    requests = 0
    seconds = 0.0
    requests_exact = seconds_exact = True
    for plan in sweep.steps():
        if plan.rate is not None:
            requests += plan.total_requests
            seconds += plan.total_requests / plan.rate + latency_s
            seconds_exact = False
        elif sweep.duration_s is not None:
            requests += int(plan.concurrency * sweep.duration_s / latency_s) if latency_s else 0
            seconds += float(sweep.duration_s)
            requests_exact = False
        else:  # rounds of `concurrency` requests, warm-ups (which run first) and measured ones apart
            rounds = math.ceil(plan.warmup * routes / plan.concurrency) + math.ceil(plan.n * routes / plan.concurrency)
            requests += plan.total_requests
            seconds += rounds * latency_s
            seconds_exact = False
    return SweepEstimate(requests=requests, seconds=seconds, requests_exact=requests_exact,
                         seconds_exact=seconds_exact, latency_ms=float(latency_ms))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:,.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"

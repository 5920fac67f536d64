"""The comparison runner: the same request sent over several routes, interleaved, one record per request.

Routes (cfai.routes): `direct` (Workers AI REST API), `gateway` (the AI Gateway URL with `cf-aig-cache-ttl`, so
hits happen even where the gateway's own caching is off), `gateway-skip` (the gateway URL with
`cf-aig-skip-cache: true`) and `unified` (Workers AI's own REST API through the gateway named in
`cf-aig-gateway-id`, with the same cache options as `gateway`).

How the numbers stay honest:
- Order is interleaved (A B C A B C ...), so drift (a noisy neighbour, a warming server) hits every route alike.
- Warm-up requests run first, as a phase of their own that finishes before measuring starts (so the cache and
  the connection pool are warm); they are kept in the data and marked `warmup`, and the statistics skip them.
- Retries are off: a failure is a data point (`ok` False, with its status and error code).
- Closed loop: `concurrency` workers, each sends its next request when its previous one is done.
  Open loop (`rate` set): request k is sent at `k / rate` seconds whatever the earlier ones are doing, so a
  stall shows as latency instead of silently lowering the load (coordinated omission, which wrk2 and vegeta
  avoid). `actual_start_s - intended_start_s` shows any lag of our own dispatcher; `cfai.stats` reports
  it per route (start_lag_p50/p99) and the run report warns when the client fell behind the rate.
- Timings are the client's (request written -> headers -> last byte), not a wall clock around the call.
  For streamed requests `ttfb_ms` is the time to the first token, and the record carries the token-level
  timing of the stream (cfai.token_timing: first reasoning / answer token, ITL p50/p90/p99, TPOT, tokens/s).

Cache modes: "identical" sends the same body every time (the first gateway request misses, later ones hit).
"unique" gives each gateway request its own `cf-aig-cache-key` (`cfai-<run id>-<seq>`), so every one misses.
The key is a header, so the body, and with it the model's input and work, stay byte-identical across modes and
routes: a nonce in the prompt would change what the model reads and how many tokens it processes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cfai import jobs
from cfai.client import Client, GatewayOptions, Result
from cfai.config import ConfigError, Connection
from cfai.errors import scrub_secrets
from cfai.plan import (
    CACHE_MODES,
    MAX_CONCURRENCY,
    NO_GATEWAY_PROBLEM,
    OPEN_LOOP_MAX_IN_FLIGHT,
    CacheMode,
    Plan,
)
from cfai.records import (
    RECORD_COLUMNS,
    RECORD_DTYPES,
    Record,
    normalize_records_frame,
    records_frame,
    run_status,
)
from cfai.routes import CACHING_ROUTES, GATEWAY_SKIP, ROUTES, wire_route
from cfai.token_timing import empty_token_fields, token_timing

# The plan and the record model live in cfai.plan and cfai.records; the runner's callers (the store, the
# CLI, the bench) may import them from here too.
__all__ = [
    "CACHE_MODES", "MAX_CONCURRENCY", "OPEN_LOOP_MAX_IN_FLIGHT", "RECORD_COLUMNS", "RECORD_DTYPES", "ROUTES",
    "CacheMode", "Job", "Plan", "Record", "RunResult", "Runner", "connection_label", "interleaved_jobs", "new_run_id",
    "normalize_records_frame", "records_frame", "run_status",
]
OnRecord = Callable[[Record], None]


@dataclass
class RunResult:
    run_id: str
    plan: Plan
    started_at: float  # epoch seconds
    finished_at: float
    records: list[Record]
    cancelled: bool
    connection_label: str

    @property
    def status(self) -> str:
        return run_status(self.records, self.cancelled)

    def to_frame(self) -> pd.DataFrame:
        return records_frame(self.records)


def new_run_id() -> str:
    """Sortable by time, unique enough for a local history: 20250101-120000-a1b2c3."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def connection_label(connection: Connection) -> str:
    """Where a run went, for the history: mode, account and gateway. Never the token."""
    gateway = connection.gateway_id or "-"
    return f"{connection.mode} · account {connection.account_id} · gateway {gateway}"


@dataclass(frozen=True)
class Job:
    """One planned request: its dispatch number, route, and whether it is a warm-up."""

    seq: int
    route: str
    warmup: bool


_Job = Job  # the earlier private name


def interleaved_jobs(routes: tuple[str, ...], n: int, warmup: int) -> list[Job]:
    """Warm-up rounds first, then measured rounds; each round visits every route once (A B C A B C ...)."""
    jobs: list[Job] = []
    for round_index in range(warmup + n):
        for route in routes:
            jobs.append(Job(len(jobs), route, round_index < warmup))
    return jobs


class Runner:
    """Runs a Plan with a Client. Safe to run in a background thread; `on_record` is called once per
    finished request, never concurrently (calls are serialised), from the runner's worker threads."""

    def __init__(self, client: Client, plan: Plan, run_id: str | None = None):
        plan.validate()
        if plan.uses_gateway and not client.connection.gateway_id:
            raise ConfigError("gateway_id", NO_GATEWAY_PROBLEM)
        self.client = client
        self.plan = plan
        self.run_id = run_id or new_run_id()
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._t0 = 0.0  # monotonic clock at run start
        self._cancel = threading.Event()
        self._callback_error: BaseException | None = None

    @property
    def total(self) -> int:
        """Requests the plan will send, warm-ups included."""
        return self.plan.total_requests

    def records_so_far(self) -> list[Record]:
        """A copy of the records finished so far, in dispatch order (for polling from another thread)."""
        with self._lock:
            return sorted(self._records, key=lambda r: r.seq)

    def start_clock(self, origin: float | None = None) -> None:
        """Set the run's time origin (`time.monotonic()` seconds; now when None): record times count from it.
        `run()` sets it itself; a caller driving `execute_one` (the Locust engine) sets it once first."""
        self._t0 = time.monotonic() if origin is None else origin

    def now(self) -> float:
        """Seconds since the run's time origin (see `start_clock`)."""
        return time.monotonic() - self._t0

    def execute_one(self, job: Job, intended_s: float | None = None, on_record: OnRecord | None = None) -> Record:
        """Send one planned request now and return its Record (kept in `records_so_far`, and given to
        `on_record`). `intended_s` is its scheduled start in run seconds (now when None). Never raises for a
        failed request: a failure is a data point."""
        return self._execute(job, self.now() if intended_s is None else intended_s, on_record)

    def scrub(self, text: str) -> str:
        """`text` without this connection's secrets (server messages and exceptions can echo them)."""
        conn = self.client.connection
        return scrub_secrets(text, tuple(s for s in (conn.api_token, conn.gateway_token) if s))

    # --- public --------------------------------------------------------------------------------------------
    def run(self, on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> RunResult:
        # Checked between requests; a failing `on_record` sets it too, which stops the run.
        self._cancel = cancel or threading.Event()
        started_at = time.time()
        self.start_clock()
        planned = interleaved_jobs(self.plan.routes, self.plan.n, self.plan.warmup)
        phases = [[j for j in planned if j.warmup], [j for j in planned if not j.warmup]]
        for phase in phases:  # warm-up completes before measuring starts
            if self._cancel.is_set() or not phase:
                continue
            self._run_phase(phase, on_record)
        if self._callback_error is not None:
            raise self._callback_error
        records = self.records_so_far()
        return RunResult(
            run_id=self.run_id,
            plan=self.plan,
            started_at=started_at,
            finished_at=time.time(),
            records=records,
            cancelled=self._cancel.is_set(),
            connection_label=connection_label(self.client.connection),
        )

    # --- load models -------------------------------------------------------------------------------------
    def _run_phase(self, phase: list[_Job], on_record: OnRecord | None) -> None:
        """Closed loop: `concurrency` requests in flight, the next one sent as soon as one finishes. Open loop:
        request k is due at k / rate from the phase's start whatever the earlier ones do; when
        OPEN_LOOP_MAX_IN_FLIGHT are in flight a start is late, and its record says so."""
        if self.plan.rate is not None:
            concurrency, pacing = min(len(phase), OPEN_LOOP_MAX_IN_FLIGHT), jobs.Pacing.per_second(self.plan.rate)
        else:
            concurrency, pacing = min(self.plan.concurrency, len(phase)), None

        def send(job: _Job, due: float) -> None:
            self._execute(job, due - self._t0, on_record)

        jobs.paced_map(send, phase, concurrency=concurrency, cancel=self._cancel, pacing=pacing,
                       name="cfai-runner")

    # --- one request -------------------------------------------------------------------------------------
    _now = now  # the earlier private name

    def _gateway_options(self, job: Job) -> GatewayOptions | None:
        if job.route == GATEWAY_SKIP:
            return GatewayOptions(skip_cache=True)
        if job.route in CACHING_ROUTES:
            key = f"cfai-{self.run_id}-{job.seq}" if self.plan.cache_mode == "unique" else None
            return GatewayOptions(cache_ttl=self.plan.cache_ttl, cache_key=key)
        return None

    def _execute(self, job: Job, intended: float, on_record: OnRecord | None) -> Record:
        plan = self.plan
        route = wire_route(job.route)
        options = self._gateway_options(job)
        headers = dict(plan.extra_headers) or None
        actual = self._now()
        try:
            if plan.stream:
                stream = self.client.stream(
                    plan.model, plan.body, route=route, gateway=options, extra_headers=headers,
                    timeout=plan.timeout_s,
                )
                try:
                    for _ in stream:
                        pass
                finally:
                    stream.close()
                result = stream.result
            else:
                result = self.client.run(
                    plan.model, plan.body, route=route, gateway=options, extra_headers=headers,
                    timeout=plan.timeout_s,
                )
            record = self._record(job, intended, actual, result)
        except Exception as exc:  # noqa: BLE001 - a client bug must still become a data point, not a lost row
            record = Record(
                run_id=self.run_id, seq=job.seq, route=job.route, warmup=job.warmup,
                intended_start_s=intended, actual_start_s=actual, status=0, ok=False,
                error_message=self.scrub(f"{type(exc).__name__}: {exc}"), error_kind="client_exception",
            )
        with self._lock:
            self._records.append(record)
            if on_record is not None and self._callback_error is None:
                try:
                    on_record(record)
                except Exception as exc:  # noqa: BLE001 - stop the run and re-raise from run()
                    self._callback_error = exc
                    self._cancel.set()
        return record

    def _record(self, job: Job, intended: float, actual: float, result: Result) -> Record:
        t = result.timings
        ttfb = t.first_token_ms if self.plan.stream and t.first_token_ms is not None else t.ttfb_ms
        usage = result.usage or {}
        completion = _count(usage.get("completion_tokens"))
        if self.plan.stream and result.streamed and result.token_events:
            timing = token_timing(result.token_events, t.total_ms, completion).record_fields()
        else:
            timing = empty_token_fields()
        error = result.error
        ok = bool(result.ok) and error is None and not result.interrupted
        return Record(
            run_id=self.run_id,
            seq=job.seq,
            route=job.route,
            warmup=job.warmup,
            intended_start_s=intended,
            actual_start_s=actual,
            status=int(result.status or 0),
            ok=ok,
            error_code=error.code if error is not None else None,
            error_message=self.scrub(error.message) if error is not None else (
                "The stream ended before it finished." if result.interrupted else None
            ),
            cache_status=(result.cache_status or None) if job.route != "direct" else None,
            ttfb_ms=ttfb,
            total_ms=t.total_ms,
            bytes=int(result.bytes_received or 0),
            tokens_in=_count(usage.get("prompt_tokens")),
            tokens_out=completion,
            log_id=result.log_id,
            error_kind=error.kind if error is not None else ("stream_interrupted" if result.interrupted else None),
            tokens_cached=_count(_detail(usage, "prompt_tokens_details", "cached_tokens")),
            tokens_reasoning=_count(_detail(usage, "completion_tokens_details", "reasoning_tokens")),
            **timing,
        )


def _detail(usage: dict[str, Any], group: str, name: str) -> object:
    details = usage.get(group)
    return details.get(name) if isinstance(details, dict) else None


def _count(value: object) -> int | None:
    """A token count from usage: a non-negative whole number, else None (a server may send anything)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 and float(value).is_integer() else None

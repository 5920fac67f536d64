"""The comparison runner: the same request sent over several routes, interleaved, one record per request.

Routes: `direct` (Workers AI REST API), `gateway` (AI Gateway with `cf-aig-cache-ttl`, so hits happen even
where the gateway's own caching is off) and `gateway-skip` (AI Gateway with `cf-aig-skip-cache: true`).

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
  For streamed requests `ttfb_ms` is the time to the first token.

Cache modes: "identical" sends the same body every time (the first gateway request misses, later ones hit).
"unique" gives each gateway request its own `cf-aig-cache-key` (`cfai-<run id>-<seq>`), so every one misses.
The key is a header, so the body, and with it the model's input and work, stay byte-identical across modes and
routes: a nonce in the prompt would change what the model reads and how many tokens it processes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import pandas as pd

from cfai.client import Client, GatewayOptions, Result
from cfai.config import ConfigError, Connection

ROUTES = ("direct", "gateway", "gateway-skip")
CacheMode = Literal["identical", "unique"]
CACHE_MODES = ("identical", "unique")
MAX_CONCURRENCY = 64
# Open loop: the most requests in flight at once. Beyond it a start is late, and `actual_start_s` says so.
OPEN_LOOP_MAX_IN_FLIGHT = 256
# Header names never kept in a stored plan (a plan is saved and exported; tokens must not be).
_SECRET_HEADERS = ("authorization", "cf-aig-authorization")


@dataclass
class Plan:
    model: str
    body: dict[str, Any]
    routes: tuple[str, ...] = ("direct", "gateway")
    n: int = 30  # measured requests per route
    warmup: int = 1  # warm-up requests per route, before the measured ones, excluded from statistics
    concurrency: int = 1  # closed loop: requests in flight at once (1..64)
    rate: float | None = None  # open loop when set: requests per second across all routes
    cache_ttl: int | None = 300  # cf-aig-cache-ttl on the `gateway` route; None sends no header
    cache_mode: CacheMode = "identical"
    stream: bool = False
    timeout_s: float = 60.0
    name: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)  # sent on every request (e.g. emulator knobs)

    def __post_init__(self) -> None:
        self.routes = tuple(self.routes)

    @property
    def is_open_loop(self) -> bool:
        return self.rate is not None

    @property
    def total_requests(self) -> int:
        return (self.n + self.warmup) * len(self.routes)

    def problems(self) -> list[str]:
        """Everything wrong with the plan, in words a user can act on; empty when it can run."""
        out: list[str] = []
        if not self.model or not self.model.strip():
            out.append("Choose a model.")
        if not isinstance(self.body, dict) or not self.body:
            out.append("The request body must be a non-empty JSON object.")
        if not self.routes:
            out.append("Choose at least one route.")
        unknown = [r for r in self.routes if r not in ROUTES]
        if unknown:
            out.append(f"Unknown route(s) {', '.join(unknown)}; choose from {', '.join(ROUTES)}.")
        if len(set(self.routes)) != len(self.routes):
            out.append("Each route may appear only once.")
        if self.n < 1:
            out.append("Requests per route (n) must be at least 1.")
        if self.warmup < 0:
            out.append("Warm-up requests cannot be negative.")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            out.append(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
        if self.rate is not None and not self.rate > 0:
            out.append("The request rate must be above 0 requests per second.")
        if self.cache_ttl is not None and self.cache_ttl <= 0:
            out.append("The cache TTL must be a positive number of seconds (or none).")
        if self.cache_mode not in CACHE_MODES:
            out.append(f"Cache mode must be one of {', '.join(CACHE_MODES)}.")
        if not self.timeout_s > 0:
            out.append("The timeout must be above 0 seconds.")
        return out

    def validate(self) -> Plan:
        problems = self.problems()
        if problems:
            raise ValueError(" ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for storage and export; secret-bearing headers are dropped."""
        data = asdict(self)
        data["routes"] = list(self.routes)
        data["extra_headers"] = {
            k: v for k, v in self.extra_headers.items() if k.lower() not in _SECRET_HEADERS
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**values)


@dataclass
class Record:
    """One request. Times are seconds from the run's start; durations are milliseconds."""

    run_id: str
    seq: int  # dispatch order within the run, from 0
    route: str
    warmup: bool
    intended_start_s: float  # open loop: the scheduled time; closed loop: when a worker took the request
    actual_start_s: float  # just before the client was called
    status: int  # HTTP status, 0 when no response arrived
    ok: bool
    error_code: int | None = None  # Cloudflare error code
    error_message: str | None = None
    cache_status: str | None = None  # HIT | MISS (gateway routes), None otherwise
    ttfb_ms: float | None = None  # to the response headers; streams: to the first token
    total_ms: float | None = None  # to the last byte
    bytes: int = 0
    tokens_in: int | None = None
    tokens_out: int | None = None
    log_id: str | None = None
    error_kind: str | None = None  # e.g. rate_limited, server_error, network (see cfai.errors)


RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))
# One dtype per column, shared by the in-memory frame and the store, so both give identical frames.
RECORD_DTYPES: dict[str, str] = {
    "run_id": "str",
    "seq": "int64",
    "route": "str",
    "warmup": "bool",
    "intended_start_s": "float64",
    "actual_start_s": "float64",
    "status": "int64",
    "ok": "bool",
    "error_code": "Int64",
    "error_message": "str",
    "cache_status": "str",
    "ttfb_ms": "float64",
    "total_ms": "float64",
    "bytes": "int64",
    "tokens_in": "Int64",
    "tokens_out": "Int64",
    "log_id": "str",
    "error_kind": "str",
}


def records_frame(records: list[Record] | list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, columns = Record fields, with the canonical dtypes (missing values are NA)."""
    rows = [asdict(r) if isinstance(r, Record) else r for r in records]
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return normalize_records_frame(frame)


def normalize_records_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the canonical column order and dtypes (used for frames from memory, SQLite and CSV)."""
    frame = frame.reindex(columns=list(RECORD_COLUMNS))
    out = {}
    for name, dtype in RECORD_DTYPES.items():
        col = frame[name]
        if dtype == "bool":
            col = col.fillna(False).astype(bool)
        elif dtype in ("float64", "Int64"):
            col = pd.to_numeric(col, errors="coerce").astype(dtype)
        elif dtype == "int64":
            col = pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
        else:  # text: missing stays missing, never the string "None"
            col = col.astype("object").where(col.notna(), None).astype("str")
        out[name] = col
    result = pd.DataFrame(out)
    return result.sort_values(["run_id", "seq"], kind="stable").reset_index(drop=True)


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


def run_status(records: list[Record], cancelled: bool) -> str:
    """complete | cancelled | failed (nothing measured succeeded)."""
    measured = [r for r in records if not r.warmup]
    if cancelled:
        return "cancelled"
    if not measured or not any(r.ok for r in measured):
        return "failed"
    return "complete"


def new_run_id() -> str:
    """Sortable by time, unique enough for a local history: 20250101-120000-a1b2c3."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def connection_label(connection: Connection) -> str:
    """Where a run went, for the history: mode, account and gateway. Never the token."""
    gateway = connection.gateway_id or "-"
    return f"{connection.mode} · account {connection.account_id} · gateway {gateway}"


@dataclass(frozen=True)
class _Job:
    seq: int
    route: str
    warmup: bool


def interleaved_jobs(routes: tuple[str, ...], n: int, warmup: int) -> list[_Job]:
    """Warm-up rounds first, then measured rounds; each round visits every route once (A B C A B C ...)."""
    jobs: list[_Job] = []
    for round_index in range(warmup + n):
        for route in routes:
            jobs.append(_Job(len(jobs), route, round_index < warmup))
    return jobs


class Runner:
    """Runs a Plan with a Client. Safe to run in a background thread; `on_record` is called once per
    finished request, never concurrently (calls are serialised), from the runner's worker threads."""

    def __init__(self, client: Client, plan: Plan, run_id: str | None = None):
        plan.validate()
        if any(r.startswith("gateway") for r in plan.routes) and not client.connection.gateway_id:
            raise ConfigError(
                "gateway_id",
                "The gateway routes need an AI Gateway ID: set CLOUDFLARE_GATEWAY_ID (or the Gateway ID in "
                "the sidebar), or compare the direct route only.",
            )
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

    # --- public --------------------------------------------------------------------------------------------
    def run(
        self,
        on_record: Callable[[Record], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        # Checked between requests; a failing `on_record` sets it too, which stops the run.
        self._cancel = cancel or threading.Event()
        started_at = time.time()
        self._t0 = time.monotonic()
        jobs = interleaved_jobs(self.plan.routes, self.plan.n, self.plan.warmup)
        phases = [[j for j in jobs if j.warmup], [j for j in jobs if not j.warmup]]
        for phase in phases:  # warm-up completes before measuring starts
            if self._cancel.is_set():
                break
            if self.plan.is_open_loop:
                self._run_open_loop(phase, on_record)
            else:
                self._run_closed_loop(phase, on_record)
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
    def _run_closed_loop(self, jobs: list[_Job], on_record) -> None:
        queue: Iterator[_Job] = iter(jobs)
        take = threading.Lock()

        def worker() -> None:
            while not self._cancel.is_set():
                with take:
                    job = next(queue, None)
                if job is None:
                    return
                self._execute(job, self._now(), on_record)

        workers = min(self.plan.concurrency, len(jobs))
        if workers <= 1:
            worker()
            return
        threads = [threading.Thread(target=worker, name=f"cfai-runner-{i}", daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _run_open_loop(self, jobs: list[_Job], on_record) -> None:
        if not jobs:
            return
        interval = 1.0 / float(self.plan.rate or 1.0)
        phase_start = self._now()
        in_flight = min(len(jobs), OPEN_LOOP_MAX_IN_FLIGHT)
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="cfai-open-loop") as pool:
            for k, job in enumerate(jobs):
                intended = phase_start + k * interval
                # Wait for the slot without looking at earlier requests; cancel wakes the wait at once.
                if self._cancel.wait(max(0.0, intended - self._now())):
                    break
                pool.submit(self._execute, job, intended, on_record)

    # --- one request -------------------------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _gateway_options(self, job: _Job) -> GatewayOptions | None:
        if job.route == "gateway-skip":
            return GatewayOptions(skip_cache=True)
        if job.route == "gateway":
            key = f"cfai-{self.run_id}-{job.seq}" if self.plan.cache_mode == "unique" else None
            return GatewayOptions(cache_ttl=self.plan.cache_ttl, cache_key=key)
        return None

    def _execute(self, job: _Job, intended: float, on_record) -> None:
        plan = self.plan
        route = "direct" if job.route == "direct" else "gateway"
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
                error_message=self._scrub(f"{type(exc).__name__}: {exc}"), error_kind="client_exception",
            )
        with self._lock:
            self._records.append(record)
            if on_record is not None and self._callback_error is None:
                try:
                    on_record(record)
                except Exception as exc:  # noqa: BLE001 - stop the run and re-raise from run()
                    self._callback_error = exc
                    self._cancel.set()

    def _record(self, job: _Job, intended: float, actual: float, result: Result) -> Record:
        t = result.timings
        ttfb = t.first_token_ms if self.plan.stream and t.first_token_ms is not None else t.ttfb_ms
        usage = result.usage or {}
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
            error_message=self._scrub(error.message) if error is not None else (
                "The stream ended before it finished." if result.interrupted else None
            ),
            cache_status=(result.cache_status or None) if job.route != "direct" else None,
            ttfb_ms=ttfb,
            total_ms=t.total_ms,
            bytes=int(result.bytes_received or 0),
            tokens_in=usage.get("prompt_tokens"),
            tokens_out=usage.get("completion_tokens"),
            log_id=result.log_id,
            error_kind=error.kind if error is not None else ("stream_interrupted" if result.interrupted else None),
        )

    def _scrub(self, text: str) -> str:
        for secret in (self.client.connection.api_token, self.client.connection.gateway_token):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "****")
        return text

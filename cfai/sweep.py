"""Load sweeps: one plan run at rising load (concurrencies or rates), step by step, stored as one run.

A `SweepPlan` is a base `Plan` (model, body, routes, cache mode, streaming, warm-up) plus a list of loads:
closed-loop concurrencies (1, 2, 4, ...) or open-loop rates (requests per second across all routes), and a
size per step (measured requests per route, or a duration). Each step is a normal comparison run of the
base plan at that load (today's `Runner`, routes interleaved A B C A B C within the step), so every honesty
rule of the runner holds per step. Steps run in order of rising load.

One run, steps openable: all steps' records share the sweep's run id; a record's step is its
`seq // STEP_SEQ_STRIDE` (seq within the step is `seq % STEP_SEQ_STRIDE`), which survives the store, CSV and
JSON export and import unchanged. The sweep's own definition travels in the stored plan under "sweep"
(see `sweep_run_plan`). Each step's runner gets its own id (`<run id>-s<step>`), so "unique" cache keys never
repeat across steps.

Analysis (`analyze`), per step and route: p50/p95 latency, TTFT p50/p95, achieved throughput (successful
measured requests / the step's measured wall time) against offered load, errors and 429s. Definitions:
- knee: the first step (in rising load) whose p50 latency exceeds KNEE_FACTOR x the p50 of the route's
  lowest-load step with a p50. A plain, reproducible rule: "where latency has risen by half" (GuideLLM and
  GenAI-Perf leave the knee to the reader; max-curvature rules move with the step spacing).
- errors start: the first step with any failed measured request; 429s start: the first with an HTTP 429.
- open-loop steps whose p99 start lag exceeds `cfai.stats.START_LAG_WARN_MS` did not keep the schedule:
  they are flagged, their latency and throughput are withheld (NaN) and they never define a knee.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from cfai import jobs
from cfai.compare import (
    MAX_CONCURRENCY,
    Plan,
    Record,
    Runner,
    RunResult,
    connection_label,
    new_run_id,
    run_status,
)
from cfai.stats import START_LAG_WARN_MS, route_sort_key

STEP_SEQ_STRIDE = 1_000_000  # seq = step * STRIDE + seq within the step
MAX_STEPS = 32
KNEE_FACTOR = 1.5
# Closed-loop steps sized by duration: the runner needs a count, so it gets this many per route and the step
# is stopped at its deadline (a step that sends them all sooner ends early and says so).
DURATION_STEP_MAX_PER_ROUTE = 20_000
SWEEP_KEY = "sweep"  # where the sweep definition lives in a stored plan


@dataclass
class SweepPlan:
    base: Plan
    concurrencies: tuple[int, ...] = ()  # closed-loop steps
    rates: tuple[float, ...] = ()  # open-loop steps, requests/s across all routes
    requests_per_step: int | None = None  # measured requests per route per step
    duration_s: float | None = None  # or: seconds per step (warm-up included)

    def __post_init__(self) -> None:
        self.concurrencies = tuple(int(c) for c in self.concurrencies)
        self.rates = tuple(float(r) for r in self.rates)

    @property
    def open_loop(self) -> bool:
        return bool(self.rates)

    @property
    def loads(self) -> tuple[float, ...]:
        return self.rates if self.open_loop else tuple(float(c) for c in self.concurrencies)

    @property
    def load_unit(self) -> str:
        return "requests/s offered" if self.open_loop else "concurrency"

    def problems(self) -> list[str]:
        out: list[str] = []
        if bool(self.concurrencies) == bool(self.rates):
            out.append("Give the sweep either a list of concurrencies or a list of rates (one of the two).")
        loads = self.loads
        if len(loads) > MAX_STEPS:
            out.append(f"A sweep has at most {MAX_STEPS} steps.")
        if any(not 1 <= c <= MAX_CONCURRENCY for c in self.concurrencies):
            out.append(f"Each concurrency must be between 1 and {MAX_CONCURRENCY}.")
        if any(not (math.isfinite(r) and r > 0) for r in self.rates):
            out.append("Each rate must be above 0 requests per second.")
        if len(set(loads)) != len(loads):
            out.append("Each load may appear only once.")
        if (self.requests_per_step is None) == (self.duration_s is None):
            out.append("Size each step by a request count or by a duration (one of the two).")
        if self.requests_per_step is not None and self.requests_per_step < 1:
            out.append("Requests per step must be at least 1.")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            out.append("The step duration must be above 0 seconds.")
        base = replace(self.base, n=max(1, self.base.n), concurrency=1, rate=None)
        out.extend(base.problems())
        return out

    def validate(self) -> SweepPlan:
        problems = self.problems()
        if problems:
            raise ValueError(" ".join(problems))
        return self

    def steps(self) -> list[Plan]:
        """The plan of every step, in order of rising load."""
        out = []
        for load in sorted(self.loads):
            if self.open_loop:
                n = self.requests_per_step or max(1, round(load * float(self.duration_s or 0) / len(self.base.routes)))
                out.append(replace(self.base, n=n, rate=load, concurrency=1))
            else:
                n = self.requests_per_step or DURATION_STEP_MAX_PER_ROUTE
                out.append(replace(self.base, n=n, rate=None, concurrency=int(load)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"concurrencies": list(self.concurrencies), "rates": list(self.rates),
                "requests_per_step": self.requests_per_step, "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, base: Plan, data: Mapping[str, Any]) -> SweepPlan:
        return cls(base=base, concurrencies=tuple(data.get("concurrencies") or ()),
                   rates=tuple(data.get("rates") or ()), requests_per_step=data.get("requests_per_step"),
                   duration_s=data.get("duration_s"))


def sweep_run_plan(sweep: SweepPlan) -> Plan:
    """The plan stored for a sweep run: its base plan, with the sweep definition in `Plan.sweep`."""
    return replace(sweep.base, sweep=sweep.to_dict())


def sweep_from_stored_plan(plan: Plan | Mapping[str, Any]) -> SweepPlan | None:
    """The SweepPlan of a stored run's plan (a Plan or its dict), None when the run is not a sweep."""
    base = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    if not isinstance(base.sweep, Mapping):
        return None
    return SweepPlan.from_dict(replace(base, sweep=None), base.sweep)


def step_of(seq: int | pd.Series) -> Any:
    return seq // STEP_SEQ_STRIDE


@dataclass
class StepOutcome:
    step: int
    load: float
    plan: Plan
    records: int
    wall_s: float
    ended_early: bool  # a duration step that sent all its requests before its deadline
    cancelled: bool


@dataclass
class SweepResult:
    run_id: str
    sweep: SweepPlan
    started_at: float
    finished_at: float
    records: list[Record]
    steps: list[StepOutcome]
    cancelled: bool
    connection_label: str

    def to_run_result(self) -> RunResult:
        """The sweep as one stored run (for `Store.save_run`)."""
        return RunResult(run_id=self.run_id, plan=sweep_run_plan(self.sweep), started_at=self.started_at,
                         finished_at=self.finished_at, records=self.records, cancelled=self.cancelled,
                         connection_label=self.connection_label)

    @property
    def status(self) -> str:
        return run_status(self.records, self.cancelled)


# A step executor runs one step's plan and returns its records (seq within the step, any run id); it calls
# on_record as requests finish and stops early when `cancel` is set. The default is today's Runner;
# cfai.locust_engine provides one that runs the step on Locust.
StepExecutor = Callable[[Plan, str, threading.Event, Callable[[Record], None]], list[Record]]


def runner_executor(client: Any) -> StepExecutor:
    def execute(plan: Plan, step_run_id: str, cancel: threading.Event, on_record: Callable[[Record], None]) -> list[Record]:
        return Runner(client, plan, run_id=step_run_id).run(on_record=on_record, cancel=cancel).records

    return execute


def retag(record: Record, run_id: str, step: int) -> Record:
    """A step's record as part of the sweep run: the sweep's id, seq carrying the step."""
    return replace(record, run_id=run_id, seq=step * STEP_SEQ_STRIDE + record.seq)


class SweepRunner:
    """Runs a SweepPlan step by step. `on_record` gets every record already re-tagged for the sweep run;
    `on_step` gets each StepOutcome as its step ends. Cancel stops the current step and skips the rest."""

    def __init__(self, sweep: SweepPlan, executor: StepExecutor, *, run_id: str | None = None,
                 connection_label: str = ""):
        self.sweep = sweep.validate()
        self.executor = executor
        self.run_id = run_id or new_run_id()
        self.connection_label = connection_label
        self.plans = sweep.steps()

    @classmethod
    def with_client(cls, client: Any, sweep: SweepPlan, run_id: str | None = None) -> SweepRunner:
        # Refuse a gateway route without a gateway id before any step starts (the Runner's own check).
        Runner(client, sweep.steps()[0], run_id="check")
        return cls(sweep, runner_executor(client), run_id=run_id, connection_label=connection_label(client.connection))

    @property
    def total(self) -> int:
        """Requests the sweep will send when sized by count; an upper bound for duration steps."""
        return sum(p.total_requests for p in self.plans)

    def run(self, on_record: Callable[[Record], None] | None = None, cancel: threading.Event | None = None,
            on_step: Callable[[StepOutcome], None] | None = None) -> SweepResult:
        cancel = cancel or threading.Event()
        started_at = time.time()
        records: list[Record] = []
        outcomes: list[StepOutcome] = []
        lock = threading.Lock()
        for step, plan in enumerate(self.plans):
            if cancel.is_set():
                break
            step_cancel = threading.Event()
            done = threading.Event()
            # Closed-loop duration steps stop at their deadline; open-loop ones are sized to it already.
            timed = self.sweep.duration_s is not None and not self.sweep.open_loop
            deadline = time.monotonic() + float(self.sweep.duration_s or 0) if timed else None
            def watch(_job: jobs.Job[None], sc: threading.Event = step_cancel, dn: threading.Event = done,
                      d: float | None = deadline) -> None:
                _watch(cancel, sc, dn, d)

            watcher = jobs.start(watch, name=f"cfai-sweep-step-{step}")

            def tagged(record: Record, step: int = step) -> None:
                out = retag(record, self.run_id, step)
                with lock:
                    records.append(out)
                if on_record is not None:
                    on_record(out)

            t0 = time.monotonic()
            try:
                step_records = self.executor(plan, f"{self.run_id}-s{step}", step_cancel, tagged)
            finally:
                done.set()
                watcher.wait()
            with lock:  # an executor that returns records it never reported is still counted
                seen = {r.seq for r in records}
                for r in step_records:
                    tagged_r = retag(r, self.run_id, step)
                    if tagged_r.seq not in seen:
                        records.append(tagged_r)
            outcome = StepOutcome(
                step=step, load=float(plan.rate if plan.rate is not None else plan.concurrency), plan=plan,
                records=len(step_records), wall_s=time.monotonic() - t0,
                ended_early=deadline is not None and not step_cancel.is_set(),
                cancelled=cancel.is_set(),
            )
            outcomes.append(outcome)
            if on_step is not None:
                on_step(outcome)
        records.sort(key=lambda r: r.seq)
        return SweepResult(run_id=self.run_id, sweep=self.sweep, started_at=started_at, finished_at=time.time(),
                           records=records, steps=outcomes, cancelled=cancel.is_set(),
                           connection_label=self.connection_label)


def _watch(cancel: threading.Event, step_cancel: threading.Event, done: threading.Event, deadline: float | None) -> None:
    """Stop the step when the user cancels or its deadline passes; exit as soon as the step is done."""
    while not done.is_set():
        if cancel.is_set() or (deadline is not None and time.monotonic() >= deadline):
            step_cancel.set()
            return
        done.wait(0.02)


# --- analysis ------------------------------------------------------------------------------------------------
STEP_COLUMNS = (
    "step", "load", "load_unit", "route", "requests", "ok", "errors", "rate_limited", "error_rate",
    "p50_ms", "p95_ms", "ttft_p50_ms", "ttft_p95_ms", "achieved_rps", "offered_rps", "wall_s",
    "start_lag_p99_ms", "schedule_kept", "flag",
)


def _pct(values: pd.Series, q: float) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    return float(np.percentile(v, q)) if v.size else math.nan


def step_table(records: pd.DataFrame, sweep: SweepPlan | None = None,
               lag_threshold_ms: float = START_LAG_WARN_MS) -> pd.DataFrame:
    """One tidy row per (step, route) of a sweep's records (warm-ups excluded), columns STEP_COLUMNS.

    `load` is the step's concurrency or rate (from the sweep definition; NaN when it is unknown), and
    `offered_rps` the rate a route was offered (open loop: rate / routes). Flagged steps keep their counts
    but have latency and throughput withheld (NaN): the client could not generate them on schedule.
    """
    if records.empty:
        return pd.DataFrame(columns=list(STEP_COLUMNS))
    df = records.loc[~records["warmup"].astype(bool)].copy()
    if df.empty:
        return pd.DataFrame(columns=list(STEP_COLUMNS))
    df["step"] = step_of(df["seq"].astype("int64"))
    loads = sorted(sweep.loads) if sweep is not None else []
    routes_n = len(sweep.base.routes) if sweep is not None else max(1, df["route"].nunique())
    open_loop = sweep.open_loop if sweep is not None else False
    rows: list[dict[str, Any]] = []
    for step, in_step in df.groupby("step", sort=True):
        start = pd.to_numeric(in_step["actual_start_s"], errors="coerce")
        end = start + pd.to_numeric(in_step["total_ms"], errors="coerce").fillna(0) / 1000.0
        wall = float(end.max() - start.min()) if start.notna().any() else math.nan
        lag = (start - pd.to_numeric(in_step["intended_start_s"], errors="coerce")) * 1000.0
        step_no = _as_int(step)
        load = loads[step_no] if step_no < len(loads) else math.nan
        for route, group in in_step.groupby("route", sort=False):
            ok = group["ok"].astype(bool)
            good = group.loc[ok]
            lag_p99 = _pct(lag.loc[group.index], 99)
            kept = not (open_loop and math.isfinite(lag_p99) and lag_p99 > lag_threshold_ms)
            limited = int((pd.to_numeric(group["status"], errors="coerce") == 429).sum())
            row = {
                "step": step_no, "load": load, "load_unit": sweep.load_unit if sweep else "",
                "route": str(route), "requests": int(len(group)), "ok": int(ok.sum()),
                "errors": int((~ok).sum()), "rate_limited": limited,
                "error_rate": float((~ok).mean()),
                "p50_ms": _pct(good["total_ms"], 50), "p95_ms": _pct(good["total_ms"], 95),
                "ttft_p50_ms": _pct(good["ttfb_ms"], 50), "ttft_p95_ms": _pct(good["ttfb_ms"], 95),
                "achieved_rps": len(good) / wall if wall and wall > 0 else math.nan,
                "offered_rps": load / routes_n if open_loop and math.isfinite(load) else math.nan,
                "wall_s": wall, "start_lag_p99_ms": lag_p99, "schedule_kept": kept,
                "flag": None if kept else (
                    f"p99 start lag {lag_p99:,.0f} ms > {lag_threshold_ms:g} ms: the client could not keep "
                    "this rate, so its numbers are withheld"),
            }
            if not kept:
                for name in ("p50_ms", "p95_ms", "ttft_p50_ms", "ttft_p95_ms", "achieved_rps"):
                    row[name] = math.nan
            rows.append(row)
    out = pd.DataFrame(rows, columns=list(STEP_COLUMNS))
    order = sorted(range(len(out)), key=lambda i: (out["step"].iat[i], route_sort_key(out["route"].iat[i])))
    return out.iloc[order].reset_index(drop=True)


def knee(table: pd.DataFrame, route: str, factor: float = KNEE_FACTOR) -> int | None:
    """The first step (rising load) whose p50 exceeds `factor` x the p50 of the route's lowest-load step
    that has one; flagged steps are skipped. None when latency never bends that far."""
    rows = table.loc[table["route"].eq(route) & table["schedule_kept"].astype(bool)].sort_values("step")
    p50 = rows["p50_ms"].astype(float)
    valid = rows.loc[p50.notna()]
    if len(valid) < 2:
        return None
    base = _as_float(valid["p50_ms"].iat[0])
    for step, value in zip(valid["step"].iloc[1:], valid["p50_ms"].iloc[1:], strict=True):
        if _as_float(value) > factor * base:
            return _as_int(step)
    return None


def first_step_where(table: pd.DataFrame, route: str, column: str) -> int | None:
    rows = table.loc[table["route"].eq(route)].sort_values("step")
    hit = rows.loc[rows[column].astype(float) > 0, "step"]
    return _as_int(hit.iat[0]) if len(hit) else None


def analyze(records: pd.DataFrame, sweep: SweepPlan | None = None) -> dict[str, Any]:
    """JSON-ready: {"load_unit", "knee_factor", "steps": [rows of step_table], "routes": {route: {knee_step,
    knee_load, errors_start_step, errors_start_load, rate_limited_start_step, rate_limited_start_load,
    flagged_steps}}}."""
    table = step_table(records, sweep)
    routes: dict[str, Any] = {}
    for route in sorted(table["route"].unique(), key=route_sort_key):
        k = knee(table, route)
        e = first_step_where(table, route, "errors")
        q = first_step_where(table, route, "rate_limited")
        flagged = [int(s) for s in table.loc[table["route"].eq(route) & ~table["schedule_kept"].astype(bool), "step"]]
        routes[route] = {
            "knee_step": k, "knee_load": _load_at(table, k),
            "errors_start_step": e, "errors_start_load": _load_at(table, e),
            "rate_limited_start_step": q, "rate_limited_start_load": _load_at(table, q),
            "flagged_steps": flagged,
        }
    return {
        "load_unit": sweep.load_unit if sweep else "",
        "knee_factor": KNEE_FACTOR,
        "knee_rule": f"first step whose p50 exceeds {KNEE_FACTOR:g}x the lowest-load step's p50",
        "steps": [_json_row({str(k): v for k, v in row.items()}) for row in table.to_dict("records")],
        "routes": routes,
    }


def _load_at(table: pd.DataFrame, step: int | None) -> float | None:
    if step is None:
        return None
    loads = table.loc[table["step"].eq(step), "load"]
    value = _as_float(loads.iat[0]) if len(loads) else math.nan
    return value if math.isfinite(value) else None


def _as_int(value: Any) -> int:
    """A pandas scalar (numpy integer or float) as an int."""
    return int(value)


def _as_float(value: Any) -> float:
    return float(value)


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float | np.floating):
            out[key] = round(float(value), 3) if math.isfinite(value) else None
        elif isinstance(value, np.integer | np.bool_):
            out[key] = value.item()
        else:
            out[key] = value
    return out


# --- chart data ----------------------------------------------------------------------------------------------
LATENCY_SERIES = {"p50_ms": "p50", "p95_ms": "p95", "ttft_p50_ms": "TTFT p50"}


def latency_curve_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Long form for the latency-vs-load chart: step, load, route, series (p50 | p95 | TTFT p50), value_ms,
    knee (bool: this point is the route's knee). Withheld (flagged) points are left out."""
    if table.empty:
        return pd.DataFrame(columns=["step", "load", "route", "series", "value_ms", "knee"])
    long = table.melt(id_vars=["step", "load", "route"], value_vars=list(LATENCY_SERIES),
                      var_name="series", value_name="value_ms")
    long["series"] = long["series"].map(LATENCY_SERIES)
    long = long.dropna(subset=["value_ms"])
    knees = {route: knee(table, route) for route in table["route"].unique()}
    long["knee"] = [knees.get(r) == s and series == "p50" for r, s, series in
                    zip(long["route"], long["step"], long["series"], strict=True)]
    return long.reset_index(drop=True)


def throughput_frame(table: pd.DataFrame) -> pd.DataFrame:
    """For the throughput chart: step, load, route, offered_rps, achieved_rps, errors, rate_limited,
    schedule_kept, flag (one row per step and route)."""
    cols = ["step", "load", "route", "offered_rps", "achieved_rps", "errors", "rate_limited", "schedule_kept", "flag"]
    return table[cols].reset_index(drop=True) if not table.empty else pd.DataFrame(columns=cols)


def records_of_step(records: pd.DataFrame, step: int) -> pd.DataFrame:
    """One step's records, seq back to within-step numbering: opens like a normal run's records."""
    rows = records.loc[step_of(records["seq"].astype("int64")) == step].copy()
    rows["seq"] = rows["seq"].astype("int64") % STEP_SEQ_STRIDE
    return rows.reset_index(drop=True)


def parse_loads(text: str, *, integers: bool) -> tuple[float, ...]:
    """"1,2,4,8" -> (1, 2, 4, 8); a clear ValueError for anything else."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("Give at least one load, e.g. 1,2,4,8.")
    out: list[float] = []
    for item in items:
        try:
            value = int(item) if integers else float(item)
        except ValueError:
            kind = "a whole number" if integers else "a number"
            raise ValueError(f"{item!r} is not {kind}.") from None
        out.append(value)
    return tuple(out)


"""What a sweep report says besides its curves, UI-free: the markers drawn on the charts (knee, where errors
and 429s start, withheld steps), one headline per route, and a label per step. Numbers come from
`cfai.sweep.analyze` / `step_table`; nothing here restates their rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cfai.format import format_ms, format_rate
from cfai.sweep import KNEE_FACTOR, SweepPlan

MARKER_KINDS = ("knee", "errors start", "429s start", "withheld")
MARKER_COLUMNS = ["route", "step", "load", "kind", "label", "value_ms"]


def load_text(load: Any, sweep: SweepPlan | None) -> str:
    """"concurrency 8" / "20 requests/s offered"."""
    number = float(load) if load is not None else math.nan
    if not math.isfinite(number):
        return "load unknown"
    if sweep is not None and sweep.open_loop:
        return f"{number:g} requests/s offered"
    return f"concurrency {number:g}"


def markers_frame(table: pd.DataFrame, analysis: dict[str, Any]) -> pd.DataFrame:
    """One row per marker: the route's knee (at its p50), the first step with errors, the first with 429s,
    and every step whose numbers are withheld. `value_ms` places a knee on the latency chart (NaN for rules).
    """
    rows: list[dict[str, Any]] = []
    for route, info in analysis.get("routes", {}).items():
        in_route = table.loc[table["route"] == route]
        knee_row = _row_at(in_route, info.get("knee_step"))
        if knee_row is not None:
            rows.append({"route": route, "step": int(knee_row["step"]), "load": float(knee_row["load"]),
                         "kind": "knee", "label": f"knee ({route})", "value_ms": float(knee_row["p50_ms"])})
        for kind, field in (("errors start", "errors_start_step"), ("429s start", "rate_limited_start_step")):
            row = _row_at(in_route, info.get(field))
            if row is not None:
                rows.append({"route": route, "step": int(row["step"]), "load": float(row["load"]), "kind": kind,
                             "label": f"{kind} ({route})", "value_ms": math.nan})
        for step in info.get("flagged_steps", []):
            row = _row_at(in_route, step)
            if row is not None:
                rows.append({"route": route, "step": int(step), "load": float(row["load"]), "kind": "withheld",
                             "label": f"withheld ({route})", "value_ms": math.nan})
    return pd.DataFrame(rows, columns=MARKER_COLUMNS)


def _row_at(rows: pd.DataFrame, step: int | None) -> pd.Series | None:
    hit = rows.loc[rows["step"] == step] if step is not None else rows.iloc[0:0]
    return hit.iloc[0] if len(hit) else None


def _start_text(rows: pd.DataFrame, step: int | None, sweep: SweepPlan | None) -> str:
    row = _row_at(rows, step)
    return "none" if row is None else load_text(row["load"], sweep)


@dataclass(frozen=True)
class RouteHeadline:
    route: str
    knee: str
    knee_detail: str
    errors_start: str
    rate_limited_start: str
    peak_throughput: str
    peak_detail: str


def route_headlines(table: pd.DataFrame, analysis: dict[str, Any], sweep: SweepPlan | None) -> list[RouteHeadline]:
    """Per route, in words: where the knee is (and the p50 before and at it), where errors and 429s start,
    and the highest achieved throughput (at which load)."""
    out = []
    for route, info in analysis.get("routes", {}).items():
        rows = table.loc[table["route"] == route].sort_values("step")
        valid = rows.loc[rows["p50_ms"].notna()]
        knee_step = info.get("knee_step")
        if knee_step is not None and not valid.empty:
            at = rows.loc[rows["step"] == knee_step].iloc[0]
            knee = load_text(at["load"], sweep)
            detail = (f"p50 {format_ms(valid['p50_ms'].iat[0])} at the lowest load → {format_ms(at['p50_ms'])} "
                      f"(over {KNEE_FACTOR:g}×)")
        else:
            knee = "none"
            detail = f"p50 never rose above {KNEE_FACTOR:g}× its lowest-load value" if len(valid) >= 2 else (
                "too few steps with a p50")
        rps = rows["achieved_rps"].astype(float)
        if rps.notna().any():
            best = rows.loc[rps.idxmax()]
            peak, peak_detail = format_rate(best["achieved_rps"], "req/s"), f"at {load_text(best['load'], sweep)}"
        else:
            peak, peak_detail = format_rate(None, "req/s"), "no step with a throughput"
        out.append(RouteHeadline(route=route, knee=knee, knee_detail=detail, errors_start=_start_text(rows, info.get("errors_start_step"), sweep),
                                 rate_limited_start=_start_text(rows, info.get("rate_limited_start_step"), sweep), peak_throughput=peak,
                                 peak_detail=peak_detail))
    return out


def step_labels(table: pd.DataFrame, sweep: SweepPlan | None) -> dict[int, str]:
    """{step: "Step 2 · concurrency 2 · 40 requests"} for a step selector (requests over all routes)."""
    labels: dict[int, str] = {}
    for step_value, rows in table.groupby("step", sort=True):
        step = int(str(step_value))  # a pandas group key; steps are whole numbers
        flagged = "" if rows["schedule_kept"].astype(bool).all() else " · numbers withheld"
        labels[step] = (f"Step {step + 1} · {load_text(rows['load'].iat[0], sweep)} · "
                             f"{int(rows['requests'].sum()):,} requests{flagged}")
    return labels

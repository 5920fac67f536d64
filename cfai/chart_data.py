"""Chart-ready DataFrames for the comparison and history pages, aggregated in pandas.

`st.altair_chart` ships every row of a chart's data to the browser, so each function here bounds its
output: raw scatters are downsampled (stratified so every route keeps points), distributions become box
statistics or an ECDF of at most ~200 points per series, counts and percentiles are a few rows per route.
Inputs are frames with the comparison `Record` columns (see `cfai.compare.records_frame`). Warm-up requests
are excluded from every aggregate; the scatter keeps them, marked, so the cold start stays visible.

Point estimates (p50, p95, hit rate, speed-up) come from `cfai.stats`, so the page shows the same numbers
as the CLI; this module only adds what a chart needs around them (intervals, sampling, shape).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

METRIC_LABELS = {
    "total_ms": "total time (request sent to last byte)",
    "ttfb_ms": "time to first byte (request sent to response headers; streams: first token)",
}
# Short enough for a half-width chart's subtitle.
METRIC_SUBTITLES = {
    "total_ms": "Measured: total time, request sent → last byte",
    "ttfb_ms": "Measured: time to first byte, request sent → headers",
}
# Streamed runs time TTFB to the first token, not to the headers; runs overlaid may mix both.
TTFB_SUBTITLES = {
    True: "Measured: time to first byte, request sent → first token",
    None: "Measured: time to first byte (streams: to the first token)",
}
METRIC_SHORT = {"total_ms": "total", "ttfb_ms": "TTFB"}
# Route medians further apart than this make the smaller bars invisible on a linear axis.
LOG_SCALE_RATIO = 10.0
MIN_TIME_AXIS_S = 1.0
ROUTE_ORDER = ("direct", "gateway", "gateway-skip")
NO_CACHE_STATUS = "none"  # no cf-aig-cache-status header: the direct route, or the gateway bypassed
ERROR_STATUS = "error"
MAX_SCATTER_POINTS = 5000
MAX_ECDF_POINTS = 200


def metric_label(metric: str) -> str:
    """What a metric measured, for chart titles and captions."""
    return METRIC_LABELS.get(metric, metric)


def measured_note(metric: str, warmup_excluded: bool = True) -> str:
    """The one-line 'what was measured' note for captions."""
    note = f"Measured: {metric_label(metric)}, client side, in ms"
    return note + ("; warm-up requests excluded" if warmup_excluded else "")


def measured_lines(metric: str, *, warmups: str = "excluded", failures_excluded: bool = True,
                   stream: bool | None = False) -> list[str]:
    """'What was measured' as short subtitle lines: the metric, then what was left out (or faded).

    `stream`: whether the run streamed (TTFB is then the first token); None when overlaid runs differ."""
    if failures_excluded and warmups == "excluded":
        tail = "client side, in ms; warm-ups and errors excluded"
    else:
        tail = f"client side, in ms; warm-ups {warmups}" + ("; errors excluded" if failures_excluded else "")
    if metric == "ttfb_ms" and stream is not False:
        return [TTFB_SUBTITLES[stream], tail]
    return [METRIC_SUBTITLES.get(metric, f"Measured: {metric}"), tail]


def wants_log_scale(summary: pd.DataFrame | None, ratio: float = LOG_SCALE_RATIO) -> bool:
    """Whether the log-scale toggle should start on: the largest route median over the smallest exceeds
    `ratio` (a 2 ms gateway hit next to a 4,000 ms direct bar is invisible on a linear axis).

    `summary` is `cfai.stats.summarize(...)` (with a `run` column on the history page); only the per-route
    rows (cache_status "all") count, and medians that are missing or not positive are ignored."""
    if summary is None or summary.empty or "p50" not in summary:
        return False
    rows = summary[summary["cache_status"].astype(str) == "all"] if "cache_status" in summary else summary
    medians = pd.to_numeric(rows["p50"], errors="coerce").to_numpy(dtype=float)
    medians = medians[np.isfinite(medians) & (medians > 0)]
    return medians.size >= 2 and float(medians.max() / medians.min()) > ratio


def time_axis_max(points: pd.DataFrame) -> float:
    """The right end of the over-time x axis in seconds: the last request's end (start + duration), at
    least MIN_TIME_AXIS_S, so the axis reads 0-1 s instead of 0.000000-0.000100 while the first request runs."""
    if points is None or points.empty or "start_s" not in points:
        return MIN_TIME_AXIS_S
    start = pd.to_numeric(points["start_s"], errors="coerce")
    ends = start + pd.to_numeric(points["ms"], errors="coerce").fillna(0.0) / 1000.0 if "ms" in points else start
    latest = ends.max()
    return max(float(latest), MIN_TIME_AXIS_S) if pd.notna(latest) else MIN_TIME_AXIS_S


def cache_label(series: pd.Series, ok: pd.Series | None = None) -> pd.Series:
    """HIT / MISS / other header values upper-cased; `none` without a header; `error` for failed requests."""
    labels = series.astype("string").str.strip().str.upper()
    labels = labels.mask(labels.isna() | (labels == ""), NO_CACHE_STATUS).astype(object)
    if ok is not None:
        labels = labels.mask(~ok.fillna(False).astype(bool), ERROR_STATUS)
    return labels


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The rows every aggregate uses: warm-ups dropped."""
    if df.empty or "warmup" not in df:
        return df
    return df[~df["warmup"].fillna(False).astype(bool)]


def _route_sort_key(route: Any) -> tuple[int, str]:
    route = str(route)
    return (ROUTE_ORDER.index(route) if route in ROUTE_ORDER else len(ROUTE_ORDER), route)


def routes_in(df: pd.DataFrame) -> list[str]:
    """Routes present, in the canonical order (direct, gateway, gateway-skip, then anything else)."""
    if df.empty or "route" not in df:
        return []
    return sorted({str(r) for r in df["route"].dropna().unique()}, key=_route_sort_key)


# --- latency per request over time ---------------------------------------------------------------------
@dataclass
class PointSample:
    """The scatter's rows and whether they are a sample: `shown` of `total` points (rows with a value)."""

    frame: pd.DataFrame
    total: int
    downsampled: bool

    @property
    def shown(self) -> int:
        return len(self.frame)

    def note(self) -> str:
        if not self.downsampled:
            return f"all {self.total:,} requests shown"
        return f"showing {self.shown:,} of {self.total:,} points (stratified sample per route)"


POINT_COLUMNS = ["seq", "route", "cache_status", "warmup", "ok", "status", "start_s", "ms"]


def latency_points(
    df: pd.DataFrame, metric: str = "total_ms", max_points: int = MAX_SCATTER_POINTS, seed: int = 0
) -> PointSample:
    """One row per request with a value for `metric`, at most `max_points` rows.

    When there are more, each route gets a quota proportional to its size (and at least an equal share of
    what is left, so a small route is never drowned out), sampled at random with a fixed seed; each route's
    fastest and slowest request are always kept so the extremes stay visible. Warm-ups stay, marked.
    """
    if df.empty or metric not in df:
        return PointSample(pd.DataFrame(columns=POINT_COLUMNS), 0, False)
    values = pd.to_numeric(df[metric], errors="coerce")
    has_value = values.notna().to_numpy()
    base = df.loc[has_value]
    total = len(base)
    if total > max_points:
        keep = _stratified_positions(base["route"].astype(str).to_numpy(), values[has_value].to_numpy(),
                                     max_points, seed)
        base = base.iloc[keep]
    frame = pd.DataFrame({
        "seq": base["seq"].to_numpy() if "seq" in base else np.arange(len(base)),
        "route": base["route"].astype(str).to_numpy(),
        "cache_status": cache_label(base["cache_status"], base.get("ok")).to_numpy(),
        "warmup": base["warmup"].fillna(False).astype(bool).to_numpy() if "warmup" in base else False,
        "ok": base["ok"].fillna(False).astype(bool).to_numpy() if "ok" in base else True,
        "status": base["status"].to_numpy() if "status" in base else 0,
        "start_s": pd.to_numeric(base["actual_start_s"], errors="coerce").to_numpy()
        if "actual_start_s" in base else np.arange(len(base), dtype=float),
        "ms": pd.to_numeric(base[metric], errors="coerce").to_numpy(dtype=float),
    })
    return PointSample(frame.reset_index(drop=True), total, total > len(frame))


def _stratified_positions(routes: np.ndarray, values: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    groups = {r: np.flatnonzero(routes == r) for r in np.unique(routes)}
    quotas = _quotas({r: len(ix) for r, ix in groups.items()}, max_points)
    chosen: list[np.ndarray] = []
    for route, positions in groups.items():
        quota = quotas[route]
        if quota >= len(positions):
            chosen.append(positions)
            continue
        group_values = values[positions]
        extremes = positions[[int(np.argmin(group_values)), int(np.argmax(group_values))]]
        rest = np.setdiff1d(positions, extremes, assume_unique=False)
        picked = rng.choice(rest, size=max(quota - len(np.unique(extremes)), 0), replace=False)
        chosen.append(np.unique(np.concatenate([extremes, picked])))
    return np.sort(np.concatenate(chosen))


def _quotas(sizes: dict[str, int], budget: int) -> dict[str, int]:
    """Split `budget` over groups: small groups keep everything, the rest share what remains equally."""
    quotas: dict[str, int] = {}
    remaining = dict(sizes)
    left = budget
    while remaining:
        share = left // len(remaining)
        small = {g: n for g, n in remaining.items() if n <= share}
        if not small:
            for i, g in enumerate(sorted(remaining)):
                quotas[g] = share + (1 if i < left - share * len(remaining) else 0)
            return quotas
        for g, n in small.items():
            quotas[g] = n
            left -= n
            del remaining[g]
    return quotas


# --- distributions ---------------------------------------------------------------------------------------
def _values_by(df: pd.DataFrame, metric: str, by: Sequence[str]) -> list[tuple[tuple, np.ndarray]]:
    data = measured(df)
    if data.empty or metric not in data:
        return []
    values = pd.to_numeric(data[metric], errors="coerce")
    keep = values.notna()
    if "ok" in data:
        keep &= data["ok"].fillna(False).astype(bool)  # failed requests are counted as errors, not latency
    keys = data.loc[keep, list(by)].astype(str)
    values = values[keep].to_numpy(dtype=float)
    out = []
    for key, positions in keys.groupby(list(by), sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        out.append((key, np.sort(values[positions])))
    out.sort(key=lambda kv: tuple(_route_sort_key(k) for k in kv[0]))
    return out


def box_stats(df: pd.DataFrame, metric: str = "total_ms", by: Sequence[str] = ("route",)) -> pd.DataFrame:
    """Per group: count, min, q1, median, q3, max and Tukey whiskers (1.5 IQR, clipped to the data)."""
    rows = []
    for key, values in _values_by(df, metric, by):
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        iqr = q3 - q1
        low = values[values >= q1 - 1.5 * iqr].min()
        high = values[values <= q3 + 1.5 * iqr].max()
        rows.append({**dict(zip(by, key, strict=True)), "count": len(values), "min": values[0],
                     "q1": q1, "median": median, "q3": q3, "max": values[-1],
                     "whisker_low": low, "whisker_high": high})
    return pd.DataFrame(rows, columns=[*by, "count", "min", "q1", "median", "q3", "max", "whisker_low",
                                       "whisker_high"])


def ecdf(df: pd.DataFrame, metric: str = "total_ms", by: Sequence[str] = ("route",),
         max_points: int = MAX_ECDF_POINTS) -> pd.DataFrame:
    """Empirical CDF per group: (ms, fraction of requests at or below it), at most `max_points` per group.

    Small groups keep every sorted value; large ones are reduced to evenly spaced quantiles (plus the
    minimum and maximum), which draws the same curve with bounded size.
    """
    frames = []
    for key, values in _values_by(df, metric, by):
        n = len(values)
        if n <= max_points:
            ms, fraction = values, np.arange(1, n + 1) / n
        else:
            fraction = np.linspace(0.0, 1.0, max_points)
            ms = np.quantile(values, fraction, method="inverted_cdf")
            fraction = np.maximum(fraction, 1 / n)  # the minimum sits at 1/n, as in the exact ECDF
        frame = pd.DataFrame({"ms": ms, "fraction": fraction})
        for column, value in zip(by, key, strict=True):
            frame[column] = value
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*by, "ms", "fraction"])
    return pd.concat(frames, ignore_index=True)[[*by, "ms", "fraction"]]


# --- cache hits vs misses --------------------------------------------------------------------------------
def cache_counts(df: pd.DataFrame, by: Sequence[str] = ("route",)) -> pd.DataFrame:
    """Requests per group and cache status (HIT, MISS, none, error), with each status's share of the group."""
    data = measured(df)
    columns = [*by, "cache_status", "count", "share"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    labelled = pd.DataFrame({c: data[c].astype(str) for c in by})
    labelled["cache_status"] = cache_label(data["cache_status"], data.get("ok"))
    counts = labelled.groupby([*by, "cache_status"], sort=False).size().rename("count").reset_index()
    counts["share"] = counts["count"] / counts.groupby(list(by))["count"].transform("sum")
    order = {"HIT": 0, "MISS": 1, NO_CACHE_STATUS: 3, ERROR_STATUS: 4}
    counts["_status"] = counts["cache_status"].map(lambda s: order.get(s, 2))
    counts["_route"] = counts[by[0]].map(_route_sort_key) if by[0] == "route" else counts[by[0]]
    counts = counts.sort_values(["_route", *by[1:], "_status"]).drop(columns=["_status", "_route"])
    return counts.reset_index(drop=True)[columns]


# --- percentiles with intervals --------------------------------------------------------------------------
def quantile_interval(sorted_values: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the q-quantile from order statistics.

    The number of observations below the true quantile is Binomial(n, q); the interval runs between the
    order statistics at its lower and upper tail (normal approximation, continuity-corrected). Unlike a
    bootstrap it costs one sort, so it stays fast for 100,000 records.
    """
    n = len(sorted_values)
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = max(int(math.floor(n * q - spread - 0.5)), 0)
    high_rank = min(int(math.ceil(n * q + spread + 0.5)), n - 1)
    return float(sorted_values[low_rank]), float(sorted_values[high_rank])


PERCENTILES = {"p50": 0.5, "p95": 0.95}


def percentile_bars(df: pd.DataFrame, summary: pd.DataFrame, metric: str = "total_ms",
                    confidence: float = 0.95, by: Sequence[str] = ("route",)) -> pd.DataFrame:
    """p50 and p95 per group with a confidence interval, for bars with error bars.

    `summary` is `cfai.stats.summarize(df, metric)` (route rows where cache_status == "all"), whose
    percentiles are the point estimates, so the bars match the statistics table and the CLI.
    Grouping by more than the route (e.g. ("run", "route") on the history page) needs a `summary` with
    those columns too.
    """
    columns = [*by, "percentile", "ms", "ci_low", "ci_high", "count"]
    groups = dict(_values_by(df, metric, by))
    if summary is None or summary.empty or not groups:
        return pd.DataFrame(columns=columns)
    rows = summary[summary["cache_status"].astype(str) == "all"] if "cache_status" in summary else summary
    out = []
    for _, row in rows.iterrows():
        key = tuple(row[c] for c in by)
        values = groups.get(key)
        if values is None or len(values) == 0:
            continue
        for name, q in PERCENTILES.items():
            low, high = quantile_interval(values, q, confidence)
            point = float(row[name])
            out.append({**dict(zip(by, key, strict=True)), "percentile": name, "ms": point,
                        "ci_low": min(low, point), "ci_high": max(high, point), "count": len(values)})
    return pd.DataFrame(out, columns=columns)


# --- headline numbers ------------------------------------------------------------------------------------
@dataclass
class Headline:
    """The four metric cards: values in ms / ratio / fraction, None when the run has no data for them."""

    p50_direct: float | None
    p50_gateway_hit: float | None
    speedup: float | None
    speedup_ci: tuple[float, float] | None
    hit_rate: float | None
    n_direct: int = 0
    n_gateway_hit: int = 0


def _summary_value(summary: pd.DataFrame, route: str, cache_status: str, column: str) -> Any:
    if summary is None or summary.empty:
        return None
    match = summary[(summary["route"] == route) & (summary["cache_status"] == cache_status)]
    if match.empty:
        return None
    value = match.iloc[0][column]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def headline(summary: pd.DataFrame, speedup: Any | None) -> Headline:
    """Pick the card values out of `stats.summarize` and `stats.speedup` results (no recomputation)."""
    ratio = getattr(speedup, "median_ratio", None)
    low, high = getattr(speedup, "ci_low", None), getattr(speedup, "ci_high", None)

    def finite(x: Any) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x)

    successes = "ok" if summary is not None and "ok" in summary else "count"  # the medians' sample sizes
    p50_direct = _summary_value(summary, "direct", "all", "p50")
    p50_hit = _summary_value(summary, "gateway", "HIT", "p50")
    hit_rate = _summary_value(summary, "gateway", "all", "hit_rate")
    return Headline(
        p50_direct=finite(p50_direct),
        p50_gateway_hit=finite(p50_hit),
        speedup=finite(ratio),
        speedup_ci=(float(low), float(high)) if finite(low) is not None and finite(high) is not None else None,
        hit_rate=finite(hit_rate),
        n_direct=int(_summary_value(summary, "direct", "all", successes) or 0),
        n_gateway_hit=int(_summary_value(summary, "gateway", "HIT", successes) or 0),
    )


def format_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:,.1f} ms" if value >= 1 else f"{value:.2f} ms"


def format_speedup(value: float | None, ci: tuple[float, float] | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.1f}×"
    if ci is not None:
        text += f" (95% CI {ci[0]:,.1f}–{ci[1]:,.1f})"
    return text


def format_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


# --- progress --------------------------------------------------------------------------------------------
def progress_fraction(done: int, plan_n: int, plan_warmup: int, n_routes: int) -> float:
    """Fraction of the planned requests (measured + warm-up, every route) that have a record."""
    planned = max((plan_n + plan_warmup) * max(n_routes, 1), 1)
    return min(max(done / planned, 0.0), 1.0)

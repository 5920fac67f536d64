"""Chart-ready DataFrames for the comparison and history pages, aggregated in pandas.

`st.altair_chart` ships every row of a chart's data to the browser, so each function here bounds its
output: raw scatters are downsampled (stratified so every route keeps points), distributions become box
statistics or an ECDF of at most ~200 points per series, counts and percentiles are a few rows per route.
Inputs are frames with the comparison `Record` columns (see `cfai.compare.records_frame`). Warm-up requests
are excluded from every aggregate; the scatter keeps them, marked, so the cold start stays visible.

Point estimates (p50, p95, hit rate, speed-up) and intervals come from `cfai.stats`, so the page shows the
same numbers as the CLI; this module only shapes them for a chart (sampling, bounded size, order). What
the charts' captions say is in `cfai.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cfai.records import measured
from cfai.routes import GATEWAY_ROUTES, route_sort_key, sorted_routes
from cfai.stats import enough_for_interval, quantile_interval, values_by_group

# Route medians further apart than this make the smaller bars invisible on a linear axis.
LOG_SCALE_RATIO = 10.0
MIN_TIME_AXIS_S = 1.0
NO_CACHE_STATUS = "none"  # no cf-aig-cache-status header: the direct route, or the gateway bypassed
ERROR_STATUS = "error"
MAX_SCATTER_POINTS = 5000
MAX_ECDF_POINTS = 200


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


def routes_in(df: pd.DataFrame) -> list[str]:
    """Routes present, in the canonical order (direct, gateway, gateway-skip, then anything else)."""
    if df.empty or "route" not in df:
        return []
    return sorted_routes(df["route"].dropna().unique())


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
def ecdf(df: pd.DataFrame, metric: str = "total_ms", by: Sequence[str] = ("route",),
         max_points: int = MAX_ECDF_POINTS) -> pd.DataFrame:
    """Empirical CDF per group: (ms, fraction of requests at or below it), at most `max_points` per group.

    Small groups keep every sorted value; large ones are reduced to evenly spaced quantiles (plus the
    minimum and maximum), which draws the same curve with bounded size.
    """
    frames = []
    for key, values in values_by_group(df, metric, by):
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
def cache_counts(df: pd.DataFrame, by: Sequence[str] = ("route",), gateway_only: bool = True) -> pd.DataFrame:
    """Requests per group and cache status (HIT, MISS, none, error), with each status's share of the group.

    `gateway_only`: only the gateway routes, the ones with a cache (a direct request has no cache status,
    so its bar would be one grey "none" block that says nothing)."""
    data = measured(df)
    if gateway_only and not data.empty and "route" in data:
        data = data.loc[data["route"].astype(str).isin(GATEWAY_ROUTES)]
    columns = [*by, "cache_status", "count", "share"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    labelled = pd.DataFrame({c: data[c].astype(str) for c in by})
    labelled["cache_status"] = cache_label(data["cache_status"], data.get("ok"))
    counts = labelled.groupby([*by, "cache_status"], sort=False).size().rename("count").reset_index()
    counts["share"] = counts["count"] / counts.groupby(list(by))["count"].transform("sum")
    order = {"HIT": 0, "MISS": 1, NO_CACHE_STATUS: 3, ERROR_STATUS: 4}
    counts["_status"] = counts["cache_status"].map(lambda s: order.get(s, 2))
    counts["_route"] = counts[by[0]].map(route_sort_key) if by[0] == "route" else counts[by[0]]
    counts = counts.sort_values(["_route", *by[1:], "_status"]).drop(columns=["_status", "_route"])
    return counts.reset_index(drop=True)[columns]


# --- percentiles with intervals --------------------------------------------------------------------------
CHART_PERCENTILES = {"p50": 0.5, "p95": 0.95}


def percentile_bars(df: pd.DataFrame, summary: pd.DataFrame, metric: str = "total_ms",
                    confidence: float = 0.95, by: Sequence[str] = ("route",)) -> pd.DataFrame:
    """p50 and p95 per group with a confidence interval, for bars with error bars. A group with fewer than
    `stats.MIN_CI_SAMPLES` successful requests gets no interval (NaN: too few samples), only its bar.

    `summary` is `cfai.stats.summarize(df, metric)` (route rows where cache_status == "all"), whose
    percentiles are the point estimates, so the bars match the statistics table and the CLI.
    Grouping by more than the route (e.g. ("run", "route") on the history page) needs a `summary` with
    those columns too.
    """
    columns = [*by, "percentile", "ms", "ci_low", "ci_high", "count"]
    groups = dict(values_by_group(df, metric, by))
    if summary is None or summary.empty or not groups:
        return pd.DataFrame(columns=columns)
    rows = summary[summary["cache_status"].astype(str) == "all"] if "cache_status" in summary else summary
    out = []
    for _, row in rows.iterrows():
        key = tuple(row[c] for c in by)
        values = groups.get(key)
        if values is None or len(values) == 0:
            continue
        for name, q in CHART_PERCENTILES.items():
            point = float(row[name])
            if enough_for_interval(len(values)):
                low, high = quantile_interval(values, q, confidence)
                low, high = min(low, point), max(high, point)
            else:
                low = high = np.nan
            out.append({**dict(zip(by, key, strict=True)), "percentile": name, "ms": point,
                        "ci_low": low, "ci_high": high, "count": len(values)})
    return pd.DataFrame(out, columns=columns)

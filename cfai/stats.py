"""Statistics over comparison records: percentiles per route and cache status, hit rate, and the speed-up of a
gateway cache hit over the direct route with a bootstrap confidence interval. Vectorised pandas/numpy.

Conventions (the README explains them to users):
- Warm-up records are excluded everywhere.
- `count` is every measured request, `errors` those that failed; latency statistics use successful requests
  only, because a failure's duration says how fast it failed, not how fast the route answers.
- `hit_rate` is hits / count on routes that report a cache status (the gateway routes), NaN elsewhere.
- Percentiles interpolate linearly between the closest ranks (numpy's default, Excel's PERCENTILE.INC).
- Start lag is `actual_start_s - intended_start_s` in ms, over every measured request (a failure started late
  too). In an open loop it is how late the client sent requests against the schedule: the latency columns
  leave that wait out, so `from_intended_*` adds it back (what a caller arriving on schedule would see, as
  wrk2 reports). In a closed loop the intended start is when a worker took the request, so lag is ~0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from cfai.records import is_throttled, measured
from cfai.routes import route_sort_key

PERCENTILES = (50, 90, 95, 99)
CACHE_STATUS_ORDER = ("all", "HIT", "MISS")
SUMMARY_COLUMNS = (
    "group", "route", "cache_status", "count", "ok", "errors", "hit_rate",
    "min", "mean", *(f"p{p}" for p in PERCENTILES), "max",
    "start_lag_p50", "start_lag_p99", "from_intended_p50", "from_intended_p99",
)
# Start lag above this p99 means the client could not keep an open loop's rate (the report warns), unless
# it is small against the request interval: see `lag_threshold_ms`.
START_LAG_WARN_MS = 10.0
# A start lag under this share of the interval between requests leaves the schedule intact.
START_LAG_INTERVAL_SHARE = 0.5
# The fewest successful samples per group for a confidence interval: below it an interval from order
# statistics or a bootstrap is the sample's own extremes, so the report says "too few samples" instead.
MIN_CI_SAMPLES = 10
TOO_FEW_SAMPLES = "too few samples"


def enough_for_interval(*sizes: int, minimum: int = MIN_CI_SAMPLES) -> bool:
    """Whether every group is large enough (`MIN_CI_SAMPLES`) to show a confidence interval."""
    return bool(sizes) and all(int(n) >= minimum for n in sizes)


def _aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(keys, sort=False, observed=True)
    out = grouped.agg(
        count=("ok", "size"),
        ok=("ok", "sum"),
        hits=("hit", "sum"),
        reported=("reported", "sum"),
        min=("value", "min"),
        mean=("value", "mean"),
        max=("value", "max"),
    )
    for column, prefix, percentiles in (("value", "p", PERCENTILES), ("lag", "start_lag_p", (50, 99)),
                                        ("from_intended", "from_intended_p", (50, 99))):
        levels = [p / 100 for p in percentiles]
        # reindex: groups whose values are all NaN (only errors) drop out of quantile(); they get NaN back.
        quantiles = grouped[column].quantile(np.array(levels)).unstack().reindex(index=out.index, columns=levels)
        quantiles.columns = [f"{prefix}{p}" for p in percentiles]
        out = out.join(quantiles)
    return out.reset_index()


def start_lag_ms(df: pd.DataFrame) -> pd.Series:
    """Per record: how many ms after its intended start it was sent (NaN when a start time is missing)."""
    if "intended_start_s" not in df or "actual_start_s" not in df:
        return pd.Series(np.nan, index=df.index, dtype=float)
    intended = pd.to_numeric(df["intended_start_s"], errors="coerce").astype(float)
    actual = pd.to_numeric(df["actual_start_s"], errors="coerce").astype(float)
    return (actual - intended) * 1000.0


def summarize(df: pd.DataFrame, metric: str = "total_ms") -> pd.DataFrame:
    """One row per route (cache_status "all") and per (route, cache status), warm-ups excluded.

    Columns: group (a label for tables), route, cache_status, count, ok, errors, hit_rate, min, mean, p50,
    p90, p95, p99, max (the statistics in the unit of `metric`, milliseconds for the *_ms columns), then
    start_lag_p50/p99 (ms a request started after its intended time) and from_intended_p50/p99 (`metric`
    plus that lag, successful requests).
    """
    m = measured(df)
    if m.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    ok = m["ok"].astype(bool)
    status = m["cache_status"]
    value = pd.to_numeric(m[metric], errors="coerce").astype(float).where(ok)
    lag = start_lag_ms(m)
    frame = pd.DataFrame({
        "route": m["route"].astype(str),
        "cache_status": status,
        "ok": ok,
        "hit": status.eq("HIT").fillna(False).astype(bool),
        "reported": status.notna(),
        "value": value,
        "lag": lag,
        "from_intended": value + lag,
    })
    by_route = _aggregate(frame, ["route"])
    by_route["cache_status"] = "all"
    by_status = _aggregate(frame.loc[frame["reported"]], ["route", "cache_status"])
    out = pd.concat([by_route, by_status], ignore_index=True)
    out["errors"] = out["count"] - out["ok"]
    out["hit_rate"] = (out["hits"] / out["count"]).where(out["reported"] > 0)
    out["group"] = np.where(out["cache_status"].eq("all"), out["route"], out["route"] + " · " + out["cache_status"])
    order = [
        (route_sort_key(r), CACHE_STATUS_ORDER.index(s) if s in CACHE_STATUS_ORDER else 99, s)
        for r, s in zip(out["route"], out["cache_status"], strict=True)
    ]
    out = out.iloc[sorted(range(len(out)), key=order.__getitem__)]
    out = out[list(SUMMARY_COLUMNS)].reset_index(drop=True)
    return out.astype({"count": "int64", "ok": "int64", "errors": "int64"})


# --- distributions per group -----------------------------------------------------------------------------
def values_by_group(df: pd.DataFrame, metric: str, by: Sequence[str]) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """Sorted `metric` values of the successful measured requests per group (keys as strings), groups in
    the canonical route order."""
    data = measured(df)
    if data.empty or metric not in data:
        return []
    values = pd.to_numeric(data[metric], errors="coerce")
    keep = values.notna()
    if "ok" in data:
        keep &= data["ok"].fillna(False).astype(bool)  # failed requests are counted as errors, not latency
    keys = data.loc[keep, list(by)].astype(str)
    kept = values[keep].to_numpy(dtype=float)
    out = []
    for key, positions in keys.groupby(list(by), sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        out.append((key, np.sort(kept[positions])))
    out.sort(key=lambda kv: tuple(route_sort_key(k) for k in kv[0]))
    return out


def box_stats(df: pd.DataFrame, metric: str = "total_ms", by: Sequence[str] = ("route",)) -> pd.DataFrame:
    """Per group: count, min, q1, median, q3, max and Tukey whiskers (1.5 IQR, clipped to the data)."""
    rows = []
    for key, values in values_by_group(df, metric, by):
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        iqr = q3 - q1
        low = values[values >= q1 - 1.5 * iqr].min()
        high = values[values <= q3 + 1.5 * iqr].max()
        rows.append({**dict(zip(by, key, strict=True)), "count": len(values), "min": values[0],
                     "q1": q1, "median": median, "q3": q3, "max": values[-1],
                     "whisker_low": low, "whisker_high": high})
    return pd.DataFrame(rows, columns=[*by, "count", "min", "q1", "median", "q3", "max", "whisker_low",
                                       "whisker_high"])


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


@dataclass(frozen=True)
class Speedup:
    """median(numerator) / median(denominator): above 1 means the denominator (e.g. a gateway hit) is faster.
    Fields are None when not computable (a group without successful measured requests)."""

    median_ratio: float | None
    ci_low: float | None
    ci_high: float | None
    n_num: int
    n_den: int
    median_num: float | None = None
    median_den: float | None = None
    numerator: str = "direct"
    denominator: str = "gateway HIT"
    n_boot: int = 0

    @property
    def computable(self) -> bool:
        return self.median_ratio is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _select(df: pd.DataFrame, target: str | tuple[str, str], metric: str) -> np.ndarray:
    m = measured(df)
    mask = m["ok"].astype(bool)
    if isinstance(target, tuple):
        route, status = target
        mask &= m["route"].eq(route) & m["cache_status"].eq(status).fillna(False).astype(bool)
    else:
        mask &= m["route"].eq(target)
    values = pd.to_numeric(m.loc[mask, metric], errors="coerce").to_numpy(dtype=float)
    return values[~np.isnan(values)]


def bootstrap_medians(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `n_boot` resamples (with replacement) of `values`, drawn exactly but in O(n_boot).

    A resample of x is x_sorted[floor(n * U_i)] for n uniforms U_i, and floor is monotone, so the resample's
    k-th smallest value is x_sorted[floor(n * U_(k))]. The order statistic U_(k) ~ Beta(k, n - k + 1), and the
    next one is U_(k) + (1 - U_(k)) * Beta(1, n - k). So the median of a resample has exactly the same
    distribution as resampling n values and sorting them, without the n_boot x n array (2000 x 50,000
    resamples would be 800 MB).
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    k = (n + 1) // 2  # the (lower) middle rank, 1-based

    def at(u: np.ndarray) -> np.ndarray:
        return x[np.minimum((u * n).astype(np.int64), n - 1)]

    u_k = rng.beta(k, n - k + 1, size=n_boot)
    if n % 2:
        return at(u_k)
    u_next = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=n_boot)
    return (at(u_k) + at(u_next)) / 2.0


def _label(target: str | tuple[str, str]) -> str:
    return " ".join(target) if isinstance(target, tuple) else target


def speedup(
    df: pd.DataFrame,
    numerator_route: str = "direct",
    denominator: str | tuple[str, str] = ("gateway", "HIT"),
    metric: str = "total_ms",
    n_boot: int = 2000,
    seed: int = 0,
) -> Speedup:
    """Ratio of medians with a 95% percentile-bootstrap interval (both groups resampled independently).

    `denominator` is a route, or (route, cache status). Successful measured requests only. Seeded, so the same
    records always give the same interval (the CLI and the page agree to the last digit).
    """
    num = _select(df, numerator_route, metric)
    den = _select(df, denominator, metric)
    label_num, label_den = _label(numerator_route), _label(denominator)
    if num.size == 0 or den.size == 0:
        return Speedup(None, None, None, int(num.size), int(den.size), numerator=label_num, denominator=label_den)
    med_num, med_den = float(np.median(num)), float(np.median(den))
    ratio = med_num / med_den if med_den > 0 else math.inf
    rng = np.random.default_rng(seed)
    boot_num = bootstrap_medians(num, n_boot, rng)
    boot_den = bootstrap_medians(den, n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_num / boot_den
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Speedup(
        median_ratio=ratio, ci_low=float(low), ci_high=float(high), n_num=int(num.size), n_den=int(den.size),
        median_num=med_num, median_den=med_den, numerator=label_num, denominator=label_den, n_boot=n_boot,
    )


def _num(value: Any, digits: int) -> float | None:
    """A JSON-safe rounded float: None for NaN/None/inf."""
    if value is None or pd.isna(value):
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _stats_dict(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": int(row["count"]),
        "ok": int(row["ok"]),
        "errors": int(row["errors"]),
        "hit_rate": _num(row["hit_rate"], 4),
        "min_ms": _num(row["min"], 3),
        "mean_ms": _num(row["mean"], 3),
    }
    for p in PERCENTILES:
        out[f"p{p}_ms"] = _num(row[f"p{p}"], 3)
    out["max_ms"] = _num(row["max"], 3)
    out["start_lag_p50_ms"] = _num(row["start_lag_p50"], 3)
    out["start_lag_p99_ms"] = _num(row["start_lag_p99"], 3)
    out["from_intended_p50_ms"] = _num(row["from_intended_p50"], 3)
    out["from_intended_p99_ms"] = _num(row["from_intended_p99"], 3)
    return out


# Token-level timing per route (streamed requests): the distribution over requests of each per-request
# metric. `ttft_ms` is the record's ttfb_ms (for a stream, the first token); the ITL columns are each request's
# own percentiles of its token gaps (cfai.token_timing), so `itl_p50_ms.p50` is the median request's median gap.
TOKEN_SUMMARY_METRICS = ("ttft_ms", "first_reasoning_ms", "first_answer_ms", "itl_p50_ms", "itl_p90_ms",
                         "itl_p99_ms", "tpot_ms", "output_tps")
TOKEN_SUMMARY_PERCENTILES = (50, 90, 99)


def _throttled_mask(m: pd.DataFrame) -> pd.Series:
    status = m["status"] if "status" in m else pd.Series(0, index=m.index)
    kinds = m["error_kind"] if "error_kind" in m else pd.Series(None, index=m.index, dtype=object)
    ok = m["ok"].fillna(False).astype(bool) if "ok" in m else pd.Series(False, index=m.index)
    flags = [is_throttled(st, kind) for st, kind in zip(status.tolist(), kinds.tolist(), strict=True)]
    return pd.Series(flags, index=m.index, dtype=bool) & ~ok


def token_timing_summary(df: pd.DataFrame) -> dict[str, Any] | None:
    """{"n": streamed successful requests with token timing, metric: {p50, p90, p99, mean}} over the
    measured records of `df` (one route, or one route and cache status); None when none was streamed."""
    m = measured(df)
    if m.empty or "stream_tokens" not in m:
        return None
    ok = m["ok"].fillna(False).astype(bool)
    streamed = m.loc[ok & pd.to_numeric(m["stream_tokens"], errors="coerce").notna()]
    if streamed.empty:
        return None
    out: dict[str, Any] = {"n": int(len(streamed))}
    for name in TOKEN_SUMMARY_METRICS:
        column = "ttfb_ms" if name == "ttft_ms" else name
        values = pd.to_numeric(streamed[column], errors="coerce").dropna().to_numpy(dtype=float) \
            if column in streamed else np.array([])
        entry: dict[str, Any] = {"n": int(values.size)}
        for q in TOKEN_SUMMARY_PERCENTILES:
            entry[f"p{q}"] = _num(np.percentile(values, q), 3) if values.size else None
        entry["mean"] = _num(values.mean(), 3) if values.size else None
        out[name] = entry
    return out


def _counts(m: pd.DataFrame) -> dict[str, Any]:
    """Throttled (429 / rate-limit kinds) and other errors, and the token totals of successful requests."""
    throttled = _throttled_mask(m)
    ok = m["ok"].fillna(False).astype(bool)
    out: dict[str, Any] = {"throttled": int(throttled.sum()), "errors_other": int((~ok & ~throttled).sum())}
    for column in ("tokens_cached", "tokens_reasoning"):
        values = pd.to_numeric(m.loc[ok, column], errors="coerce") if column in m else pd.Series(dtype=float)
        out[f"{column}_total"] = int(values.sum()) if values.notna().any() else None
    return out


def route_summary(df: pd.DataFrame, metric: str = "total_ms") -> dict[str, Any]:
    """The run's headline numbers, JSON-ready: {"routes": {route: {n, ok, errors, hit_rate, min_ms, mean_ms,
    p50_ms, p90_ms, p95_ms, p99_ms, max_ms, start_lag_p50_ms, start_lag_p99_ms, from_intended_p50_ms,
    from_intended_p99_ms, ttfb_p50_ms, throttled, errors_other, tokens_cached_total, tokens_reasoning_total,
    token_timing (see token_timing_summary; None when not streamed), by_cache_status: {HIT: {...}, MISS:
    {...}}}}, "speedup": {median_ratio, ci95: [lo, hi], ...}}. `errors` = throttled + errors_other.

    The one function both the CLI's --json and the Compare/History pages use, so they always agree.
    """
    table = summarize(df, metric)
    ttfb_p50: dict[str, float] = {}
    if "ttfb_ms" in df.columns:
        ttfb = summarize(df, "ttfb_ms")
        ttfb = ttfb.loc[ttfb["cache_status"].eq("all")]
        ttfb_p50 = dict(zip(ttfb["route"], ttfb["p50"], strict=True))
    routes: dict[str, Any] = {}
    m = measured(df)
    for _, row in table.iterrows():
        route_rows = m.loc[m["route"].astype(str).eq(row["route"])]
        if row["cache_status"] == "all":
            entry = _stats_dict(row)
            entry["ttfb_p50_ms"] = _num(ttfb_p50.get(row["route"]), 3)
            entry.update(_counts(route_rows))
            entry["token_timing"] = token_timing_summary(route_rows)
            entry["by_cache_status"] = {}
            routes[row["route"]] = entry
        else:
            sub = route_rows.loc[route_rows["cache_status"].eq(row["cache_status"]).fillna(False).astype(bool)]
            entry = _stats_dict(row)
            entry.update(_counts(sub))
            entry["token_timing"] = token_timing_summary(sub)
            routes[row["route"]]["by_cache_status"][row["cache_status"]] = entry
    s = speedup(df, "direct", ("gateway", "HIT"), metric=metric)
    return {
        "metric": metric,
        "routes": routes,
        "speedup": {
            "numerator": s.numerator,
            "denominator": s.denominator,
            "median_ratio": _num(s.median_ratio, 4),
            "ci95": [_num(s.ci_low, 4), _num(s.ci_high, 4)],
            "n_numerator": s.n_num,
            "n_denominator": s.n_den,
            "numerator_median_ms": _num(s.median_num, 3),
            "denominator_median_ms": _num(s.median_den, 3),
            "n_boot": s.n_boot,
        },
    }


def lag_threshold_ms(rate: float | None, floor_ms: float = START_LAG_WARN_MS) -> float:
    """The p99 start lag above which an open loop did not keep its schedule: half the interval between
    requests (1 / rate), and never below `floor_ms`. At 10 req/s a 10 ms lag is a tenth of the interval
    and changes nothing; at 500 req/s (2 ms apart) it does."""
    if not rate or rate <= 0:
        return floor_ms
    return max(floor_ms, START_LAG_INTERVAL_SHARE * 1000.0 / float(rate))


def max_in_flight(df: pd.DataFrame) -> int:
    """The most requests in flight at once (from each record's actual start and total time)."""
    if df is None or df.empty or "actual_start_s" not in df or "total_ms" not in df:
        return 0
    start = pd.to_numeric(df["actual_start_s"], errors="coerce").to_numpy(dtype=float)
    end = start + pd.to_numeric(df["total_ms"], errors="coerce").fillna(0).to_numpy(dtype=float) / 1000.0
    keep = np.isfinite(start)
    if not keep.any():
        return 0
    times = np.concatenate([start[keep], end[keep]])
    steps = np.concatenate([np.ones(keep.sum()), -np.ones(keep.sum())])
    order = np.lexsort((steps, times))  # at equal times an end (-1) comes before a start (+1)
    return int(np.cumsum(steps[order]).max())


def start_lag_warning(summary: dict[str, Any], open_loop: bool, threshold_ms: float | None = None, *,
                      rate: float | None = None, in_flight_peak: int | None = None) -> str | None:
    """The run report's warning when an open loop's requests started late; `summary` is `route_summary(...)`.

    Late means p99 start lag over `threshold_ms` (default `lag_threshold_ms(rate)`: relative to the interval
    between requests). The warning names only causes that apply: the in-flight cap when `in_flight_peak`
    reached it, otherwise the client being too busy. None when there is nothing to say."""
    if not open_loop:
        return None
    threshold = lag_threshold_ms(rate) if threshold_ms is None else threshold_ms
    lags = [r.get("start_lag_p99_ms") for r in summary.get("routes", {}).values()]
    worst = max((lag for lag in lags if lag is not None), default=None)
    if worst is None or worst <= threshold:
        return None
    from cfai.plan import OPEN_LOOP_MAX_IN_FLIGHT  # lazy: the statistics need no HTTP client otherwise

    interval = f" against {1000.0 / rate:,.0f} ms between requests" if rate else ""
    text = (f"Requests started up to {worst:,.0f} ms late (p99 start lag{interval}): the client could not keep "
            "the rate. The latencies shown exclude that wait (`from_intended_p99_ms` in the JSON summary "
            "includes it). ")
    if in_flight_peak is not None and in_flight_peak >= OPEN_LOOP_MAX_IN_FLIGHT:
        return text + (f"{in_flight_peak} requests were in flight at once, the most the client allows: later "
                       "ones waited for a free slot. Lower the rate, or compare fewer routes at once.")
    if in_flight_peak is not None:
        return text + (f"At most {in_flight_peak} requests were in flight, under the client's limit of "
                       f"{OPEN_LOOP_MAX_IN_FLIGHT}, so this machine was too busy to send on time: lower the rate "
                       "or close other work (the CLI, `cfai compare`, has less overhead than the page).")
    return text + (f"Lower the rate: at most {OPEN_LOOP_MAX_IN_FLIGHT} requests are in flight at once, and later "
                   "ones wait for a free slot.")

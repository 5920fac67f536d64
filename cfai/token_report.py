"""Token-level timing of a run's streamed requests, per route and cache status: tidy, aggregated frames.

The per-request metrics are the Record's TOKEN_TIMING_FIELDS (cfai.token_timing), plus TTFT, which for a
streamed request is the Record's `ttfb_ms` (the first token). Only measured (not warm-up), successful
requests that streamed at least one token count. Groups are "route · cache status" so a gateway's cached
replay (HIT) stands apart from the requests it forwarded (MISS).

Frames are aggregated (quantiles per group and metric), never raw rows, so charts stay small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cfai.chart_data import NO_CACHE_STATUS, cache_label
from cfai.records import measured
from cfai.routes import route_sort_key
from cfai.token_timing import METRIC_DEFINITIONS, TOKEN_TIMING_FIELDS


@dataclass(frozen=True)
class TokenMetric:
    name: str  # the metric's key in METRIC_DEFINITIONS
    column: str  # the records' column
    label: str
    unit: str  # "ms", "tok/s", "tokens"

    @property
    def definition(self) -> str:
        return METRIC_DEFINITIONS[self.name]


# In the order the page shows them. TTFT's column is ttfb_ms: a streamed record's TTFB is its first token.
METRICS: tuple[TokenMetric, ...] = (
    TokenMetric("ttft_ms", "ttfb_ms", "TTFT", "ms"),
    TokenMetric("itl_p50_ms", "itl_p50_ms", "ITL p50", "ms"),
    TokenMetric("itl_p90_ms", "itl_p90_ms", "ITL p90", "ms"),
    TokenMetric("itl_p99_ms", "itl_p99_ms", "ITL p99", "ms"),
    TokenMetric("tpot_ms", "tpot_ms", "TPOT", "ms"),
    TokenMetric("output_tps", "output_tps", "Output tokens/s", "tok/s"),
    TokenMetric("stream_tokens", "stream_tokens", "Output tokens", "tokens"),
)
REASONING_METRICS: tuple[TokenMetric, ...] = (
    TokenMetric("first_reasoning_ms", "first_reasoning_ms", "First reasoning token", "ms"),
    TokenMetric("first_answer_ms", "first_answer_ms", "First answer token", "ms"),
)
METRICS_BY_NAME = {m.name: m for m in METRICS + REASONING_METRICS}
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
DISTRIBUTION_COLUMNS = ["group", "route", "cache", "metric", "label", "unit", "count", "min", *QUANTILES,
                        "max", "mean"]
# What tells a streamed record apart: at least one of these is set (a non-streamed record has none).
_STREAM_MARKERS = ("stream_tokens", "itl_p50_ms", "tpot_ms", "output_tps")


def has_token_columns(records: pd.DataFrame) -> bool:
    """The frame carries the token-timing columns (records stored before they existed do not)."""
    return all(name in records.columns for name in TOKEN_TIMING_FIELDS)


def streamed_records(records: pd.DataFrame) -> pd.DataFrame:
    """Measured, successful requests that streamed at least one token, with `group` (route · cache) and
    `cache` (HIT / MISS / none) columns. Empty when the token columns are absent."""
    if records.empty or not has_token_columns(records):
        return pd.DataFrame(columns=[*records.columns, "cache", "group"])
    rows = measured(records)
    rows = rows.loc[rows["ok"].astype(bool)]
    markers = rows[list(_STREAM_MARKERS)].apply(pd.to_numeric, errors="coerce")
    tokens = markers["stream_tokens"].fillna(0)
    rows = rows.loc[markers.notna().any(axis=1) & (tokens > 0)].copy()
    rows["cache"] = cache_label(rows["cache_status"], rows["ok"]).to_numpy()
    rows["group"] = [route if cache == NO_CACHE_STATUS else f"{route} · {cache}"
                     for route, cache in zip(rows["route"], rows["cache"], strict=True)]
    return rows


def group_order(rows: pd.DataFrame) -> list[str]:
    """Groups in the canonical route order, MISS before HIT within a route."""
    pairs = rows[["group", "route", "cache"]].drop_duplicates() if not rows.empty else pd.DataFrame()
    if pairs.empty:
        return []
    order = sorted(zip(pairs["group"], pairs["route"], pairs["cache"], strict=True),
                   key=lambda p: (route_sort_key(p[1]), {"MISS": 0, "HIT": 1}.get(p[2], 2), p[2]))
    return [p[0] for p in order]


def has_reasoning(rows: pd.DataFrame) -> bool:
    return "first_reasoning_ms" in rows and bool(pd.to_numeric(rows["first_reasoning_ms"], errors="coerce").notna().any())


def distributions(rows: pd.DataFrame, metrics: tuple[TokenMetric, ...] = METRICS) -> pd.DataFrame:
    """One row per (group, metric): count, min, p5..p99, max, mean of the per-request values (NaNs left
    out). `rows` is `streamed_records(...)`. Quantiles interpolate linearly, as cfai.stats does."""
    out: list[dict[str, object]] = []
    for group in group_order(rows):
        in_group = rows.loc[rows["group"] == group]
        route, cache = str(in_group["route"].iat[0]), str(in_group["cache"].iat[0])
        for metric in metrics:
            if metric.column not in in_group:
                continue
            values = pd.to_numeric(in_group[metric.column], errors="coerce").dropna().to_numpy(dtype=float)
            if not values.size:
                continue
            row: dict[str, object] = {"group": group, "route": route, "cache": cache, "metric": metric.name,
                                      "label": metric.label, "unit": metric.unit, "count": int(values.size),
                                      "min": float(values.min()), "max": float(values.max()),
                                      "mean": float(values.mean())}
            row.update({name: float(np.quantile(values, q)) for name, q in QUANTILES.items()})
            out.append(row)
    return pd.DataFrame(out, columns=DISTRIBUTION_COLUMNS)


REPLAY_COLUMNS = ["route", "metric", "label", "unit", "miss_p50", "hit_p50", "miss_count", "hit_count", "ratio"]


def replay_comparison(dist: pd.DataFrame) -> pd.DataFrame:
    """Per gateway route and metric, the p50 of forwarded (MISS) and replayed (HIT) streams side by side, and
    their ratio MISS / HIT (above 1: the replay is faster for a time, or higher for a rate). Only routes
    with both. `dist` is `distributions(...)`."""
    rows: list[dict[str, object]] = []
    if dist.empty:
        return pd.DataFrame(columns=REPLAY_COLUMNS)
    for route in sorted(dist["route"].unique(), key=route_sort_key):
        in_route = dist.loc[dist["route"] == route]
        for metric in in_route["metric"].unique():
            hit = in_route.loc[(in_route["metric"] == metric) & (in_route["cache"] == "HIT")]
            miss = in_route.loc[(in_route["metric"] == metric) & (in_route["cache"] == "MISS")]
            if hit.empty or miss.empty:
                continue
            h, m = float(hit["p50"].iat[0]), float(miss["p50"].iat[0])
            rows.append({"route": route, "metric": metric, "label": hit["label"].iat[0], "unit": hit["unit"].iat[0],
                         "miss_p50": m, "hit_p50": h, "miss_count": int(miss["count"].iat[0]),
                         "hit_count": int(hit["count"].iat[0]), "ratio": m / h if h > 0 else math.nan})
    return pd.DataFrame(rows, columns=REPLAY_COLUMNS)


def reasoning_split(rows: pd.DataFrame) -> pd.DataFrame:
    """Per group, for requests that reasoned: p50 first reasoning token, p50 first answer token, and the p50
    of the gap between them (how long the thinking delayed the answer)."""
    cols = ["group", "count", "first_reasoning_p50_ms", "first_answer_p50_ms", "thinking_p50_ms"]
    if rows.empty or not has_reasoning(rows):
        return pd.DataFrame(columns=cols)
    out = []
    for group in group_order(rows):
        g = rows.loc[rows["group"] == group]
        r = pd.to_numeric(g["first_reasoning_ms"], errors="coerce")
        a = pd.to_numeric(g["first_answer_ms"], errors="coerce")
        both = r.notna() & a.notna()
        if not both.any():
            continue
        out.append({"group": group, "count": int(both.sum()),
                    "first_reasoning_p50_ms": float(r[both].median()), "first_answer_p50_ms": float(a[both].median()),
                    "thinking_p50_ms": float((a[both] - r[both]).median())})
    return pd.DataFrame(out, columns=cols)

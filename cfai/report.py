"""What the run report says around its numbers: what each metric measured (titles, subtitles, captions) and
the headline cards' values picked out of the statistics. Used by the Compare and History pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cfai.stats import TOO_FEW_SAMPLES, Speedup, enough_for_interval

AFFINITY_HEADER = "x-session-affinity"
THROTTLED_KINDS = ("rate_limited",)  # cfai.errors kinds that mean "slow down" (HTTP 429 and its codes)

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
    # One short line per clause: a chart in a half-width column (1024 px) cuts a long subtitle line short.
    head = TTFB_SUBTITLES[stream] if metric == "ttfb_ms" and stream is not False else \
        METRIC_SUBTITLES.get(metric, f"Measured: {metric}")
    return [head, *tail.split("; ")]


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

    @property
    def interval_note(self) -> str | None:
        """What to say under the speed-up: its 95% interval, "too few samples" when either side has fewer
        than `stats.MIN_CI_SAMPLES`, None without a speed-up."""
        if self.speedup is None:
            return None
        if not enough_for_interval(self.n_direct, self.n_gateway_hit):
            return f"{TOO_FEW_SAMPLES} for a 95% CI"
        if self.speedup_ci is None:
            return None
        from cfai.format import format_interval  # the one formatter

        return f"95% CI {format_interval(*self.speedup_ci)}"


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


def finite(x: Any) -> float | None:
    """A finite float, or None (missing, NaN or infinite)."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def headline(summary: pd.DataFrame, speedup: Speedup | None) -> Headline:
    """Pick the card values out of `stats.summarize` and `stats.speedup` results (no recomputation)."""
    ratio = speedup.median_ratio if speedup is not None else None
    low = finite(speedup.ci_low) if speedup is not None else None
    high = finite(speedup.ci_high) if speedup is not None else None

    successes = "ok" if summary is not None and "ok" in summary else "count"  # the medians' sample sizes
    p50_direct = _summary_value(summary, "direct", "all", "p50")
    p50_hit = _summary_value(summary, "gateway", "HIT", "p50")
    hit_rate = _summary_value(summary, "gateway", "all", "hit_rate")
    return Headline(
        p50_direct=finite(p50_direct),
        p50_gateway_hit=finite(p50_hit),
        speedup=finite(ratio),
        speedup_ci=(low, high) if low is not None and high is not None else None,
        hit_rate=finite(hit_rate),
        n_direct=int(_summary_value(summary, "direct", "all", successes) or 0),
        n_gateway_hit=int(_summary_value(summary, "gateway", "HIT", successes) or 0),
    )


@dataclass(frozen=True)
class Throttled:
    """Requests the service refused as too many (HTTP 429 / rate-limit kinds), per route."""

    total: int
    by_route: dict[str, int]
    other_errors: int

    def sentence(self) -> str | None:
        if not self.total:
            return None
        routes = ", ".join(f"{route} {count:,}" for route, count in self.by_route.items())
        rest = f"; {self.other_errors:,} other errors" if self.other_errors else ""
        return (f"{self.total:,} requests were throttled (HTTP 429, rate limited: {routes}){rest}. Throttled "
                "requests are errors, left out of the latency statistics: the service refused them, so the "
                "run measured less than planned. Lower the concurrency or rate, or stay under the model's "
                "requests-per-minute limit.")


def throttled(df: pd.DataFrame) -> Throttled:
    """Measured requests refused for rate (status 429 or a rate-limit error kind), apart from other errors."""
    if df is None or df.empty or "ok" not in df:
        return Throttled(0, {}, 0)
    data = df.loc[~df["warmup"].astype(bool)] if "warmup" in df else df
    failed = data.loc[~data["ok"].astype(bool)]
    status = pd.to_numeric(failed["status"], errors="coerce") if "status" in failed else None
    mask = pd.Series(False, index=failed.index)
    if status is not None:
        mask |= status.eq(429).fillna(False)
    if "error_kind" in failed:
        mask |= failed["error_kind"].isin(THROTTLED_KINDS).fillna(False)
    hit = failed.loc[mask]
    by_route = {str(r): int(c) for r, c in hit["route"].astype(str).value_counts(sort=False).items()}
    return Throttled(int(mask.sum()), by_route, int((~mask).sum()))


def session_affinity(plan: Any) -> str:
    """Whether the plan sent `x-session-affinity` (prompt caching on Workers AI), in one sentence."""
    headers = (plan.get("extra_headers") if isinstance(plan, dict) else getattr(plan, "extra_headers", None)) or {}
    used = any(str(k).lower() == AFFINITY_HEADER for k in headers)
    if used:
        return (f"Session affinity: on ({AFFINITY_HEADER} sent on every request of both routes alike, so "
                "Workers AI's prompt caching can serve repeated prefixes on each).")
    return f"Session affinity: off (no {AFFINITY_HEADER} header: no prompt caching on either route)."


def distinct_stat_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The statistics table without rows that repeat their route's row: a (route, cache status) row whose
    requests are all of the route's (every gateway request a HIT, none failed) has the same numbers as the
    route's own row, so only the route's row stays (its hit rate says 100%)."""
    if summary is None or summary.empty or "cache_status" not in summary:
        return summary
    keys = [c for c in ("run_id", "run") if c in summary]
    whole = summary.loc[summary["cache_status"] == "all"].set_index([*keys, "route"])["count"]
    def repeats(row: pd.Series) -> bool:
        if row["cache_status"] == "all":
            return False
        total = whole.get(tuple(row[c] for c in [*keys, "route"]) if keys else row["route"])
        return total is not None and int(row["count"]) == int(total)
    return summary.loc[~summary.apply(repeats, axis=1)].reset_index(drop=True)

"""What the run report says around its numbers: what each metric measured (titles, subtitles, captions) and
the headline cards' values picked out of the statistics. Used by the Compare and History pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cfai.stats import Speedup

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
    if metric == "ttfb_ms" and stream is not False:
        return [TTFB_SUBTITLES[stream], tail]
    return [METRIC_SUBTITLES.get(metric, f"Measured: {metric}"), tail]


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

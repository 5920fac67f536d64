"""The run report's words and headline values (cfai.report)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cfai import report
from cfai.stats import Speedup
from components import compare_charts as charts

SPEEDUP = Speedup(median_ratio=58.2, ci_low=50.1, ci_high=63.0, n_num=30, n_den=29)


def test_headline_picks_summary_values():
    summary = pd.DataFrame([
        {"route": "direct", "cache_status": "all", "count": 30, "p50": 300.0, "hit_rate": np.nan},
        {"route": "gateway", "cache_status": "all", "count": 30, "p50": 5.5, "hit_rate": 0.9667},
        {"route": "gateway", "cache_status": "HIT", "count": 29, "p50": 5.2, "hit_rate": 1.0},
    ])
    h = report.headline(summary, SPEEDUP)
    assert (h.p50_direct, h.p50_gateway_hit, h.hit_rate) == (300.0, 5.2, 0.9667)
    assert h.speedup_ci == (50.1, 63.0) and h.n_gateway_hit == 29
    empty = report.headline(pd.DataFrame(columns=["route", "cache_status"]), None)
    assert empty.p50_direct is None and empty.speedup is None


def test_every_chart_subtitle_says_what_was_measured():
    assert report.measured_lines("total_ms")[0] == "Measured: total time, request sent → last byte"
    assert "warm-ups and errors excluded" in report.measured_lines("ttfb_ms")[1]
    assert "first byte" in report.measured_lines("ttfb_ms")[0]
    assert all(len(line) <= 60 for m in report.METRIC_SUBTITLES for line in report.measured_lines(m))  # half-width charts


def test_ttfb_subtitle_follows_streaming():
    assert report.measured_lines("ttfb_ms")[0].endswith("→ headers")
    assert report.measured_lines("ttfb_ms", stream=True)[0].endswith("→ first token")
    assert "first token" in report.measured_lines("ttfb_ms", stream=None)[0]  # overlaid runs that differ
    assert report.measured_lines("total_ms", stream=True)[0].endswith("→ last byte")
    assert all(len(line) <= 60 for s in (True, None) for line in report.measured_lines("ttfb_ms", stream=s))
    spec = json.dumps(charts.percentile_chart(pd.DataFrame(columns=["route", "percentile", "ms", "ci_low",
                                                                    "ci_high", "count"]),
                                              "ttfb_ms", stream=True).to_dict())
    assert "first token" in spec and "→ headers" not in spec

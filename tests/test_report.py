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
    assert report.measured_lines("ttfb_ms")[1:] == ["client side, in ms", "warm-ups and errors excluded"]
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


def test_speedup_interval_only_with_enough_samples():
    from cfai.report import Headline

    few = Headline(1000.0, 2.0, 3170.8, (3168.3, 3173.3), 1.0, n_direct=2, n_gateway_hit=1)
    assert few.interval_note == "too few samples for a 95% CI"
    enough = Headline(1000.0, 2.0, 500.0, (450.0, 560.0), 1.0, n_direct=10, n_gateway_hit=10)
    assert enough.interval_note == "95% CI 450–560×"


def test_throttled_requests_are_counted_apart_from_other_errors():
    import pandas as pd

    from cfai.report import throttled
    from tests.synthetic import synthetic_records

    df = synthetic_records(10, error_every=3)  # synthetic failures are HTTP 429
    df.loc[df.index[-1], ["ok", "status", "error_kind"]] = [False, 500, "server_error"]
    result = throttled(df)
    measured_failed = df.loc[~df["warmup"] & ~df["ok"]]
    assert result.total == int((measured_failed["status"] == 429).sum()) > 0
    assert result.other_errors == 1 and "throttled (HTTP 429" in result.sentence()
    assert throttled(synthetic_records(5)).sentence() is None
    assert throttled(pd.DataFrame()).total == 0


def test_session_affinity_sentence_follows_the_plans_headers():
    from cfai.plan import Plan
    from cfai.report import session_affinity

    on = Plan(model="m", body={"prompt": "x"}, extra_headers={"x-session-affinity": "cfai-1"})
    assert "on" in session_affinity(on) and "off" in session_affinity({"extra_headers": {}})


def test_stats_rows_that_repeat_their_route_are_dropped():
    from cfai import stats
    from cfai.report import distinct_stat_rows
    from tests.synthetic import synthetic_records

    groups = list(distinct_stat_rows(stats.summarize(synthetic_records(10)))["group"])
    assert groups == ["direct", "gateway"]  # every measured gateway request hit: no "gateway · HIT" copy
    mixed = distinct_stat_rows(stats.summarize(synthetic_records(10, routes=("gateway",), warmup=0)))
    assert "gateway · HIT" in list(mixed["group"]) and "gateway · MISS" in list(mixed["group"])

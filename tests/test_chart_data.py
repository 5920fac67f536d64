"""Chart-data functions, tested directly (AppTest cannot look inside a chart), and their size bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfai import chart_data as cd
from cfai import report, stats
from components import compare_charts as charts
from tests.synthetic import fake_summary, synthetic_records


# --- latency points ------------------------------------------------------------------------------------
def test_small_run_keeps_every_point_with_warmups_marked():
    df = synthetic_records(10)
    sample = cd.latency_points(df, "total_ms")
    assert not sample.downsampled
    assert sample.shown == sample.total == len(df)
    assert sample.frame["warmup"].sum() == 2
    assert set(sample.frame["cache_status"]) == {"none", "MISS", "HIT"}
    assert "all 22 requests" in sample.note()


def test_large_run_is_downsampled_stratified_and_keeps_extremes():
    df = synthetic_records(4000, routes=("direct", "gateway", "gateway-skip"))  # 12,003 rows
    small = synthetic_records(50, routes=("gateway-skip",), run_id="r1")
    df = pd.concat([df[df["route"] != "gateway-skip"], small], ignore_index=True)
    sample = cd.latency_points(df, "total_ms", max_points=5000)
    assert sample.downsampled and sample.shown <= 5000 and sample.total == len(df)
    per_route = sample.frame["route"].value_counts()
    assert per_route["gateway-skip"] == len(small)  # the small route keeps everything
    assert abs(per_route["direct"] - per_route["gateway"]) <= 2
    for route, group in df.groupby("route"):
        shown = sample.frame[sample.frame["route"] == route]["ms"]
        assert shown.max() == pytest.approx(group["total_ms"].max())
        assert shown.min() == pytest.approx(group["total_ms"].min())
    assert sample.note() == f"showing {sample.shown:,} of {len(df):,} points (stratified sample per route)"


def test_latency_points_are_deterministic_and_sorted_by_time():
    df = synthetic_records(3000)
    a = cd.latency_points(df, max_points=1000).frame
    b = cd.latency_points(df, max_points=1000).frame
    pd.testing.assert_frame_equal(a, b)
    assert a["start_s"].is_monotonic_increasing


def test_ttfb_metric_and_missing_values():
    df = synthetic_records(5)
    df.loc[0, "ttfb_ms"] = np.nan
    sample = cd.latency_points(df, "ttfb_ms")
    assert sample.total == len(df) - 1
    assert cd.latency_points(df.iloc[0:0]).total == 0


# --- distributions ---------------------------------------------------------------------------------------
def test_ecdf_is_bounded_monotone_and_reaches_one():
    df = synthetic_records(10_000)
    curve = cd.ecdf(df, max_points=200)
    for _, group in curve.groupby("route"):
        assert len(group) <= 200
        assert group["ms"].is_monotonic_increasing and group["fraction"].is_monotonic_increasing
        assert group["fraction"].iloc[-1] == pytest.approx(1.0)
    small = cd.ecdf(synthetic_records(3, warmup=0))
    assert list(small[small["route"] == "direct"]["fraction"]) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_ecdf_by_run_and_route_for_overlays():
    df = pd.concat([synthetic_records(20, run_id="a"), synthetic_records(20, run_id="b", hit=False)])
    curve = cd.ecdf(df, by=("run_id", "route"))
    assert set(map(tuple, curve[["run_id", "route"]].drop_duplicates().to_numpy())) == {
        ("a", "direct"), ("a", "gateway"), ("b", "direct"), ("b", "gateway")}


# --- cache counts ----------------------------------------------------------------------------------------
def test_cache_counts_per_route():
    df = synthetic_records(10, routes=("direct", "gateway", "gateway-skip"))
    counts = cd.cache_counts(df).set_index(["route", "cache_status"])["count"]
    assert "direct" not in counts.index.get_level_values("route")  # no cache there: no grey "none" bar
    assert cd.cache_counts(df, gateway_only=False).set_index(["route", "cache_status"])["count"][
        ("direct", "none")] == 10
    assert counts[("gateway", "HIT")] == 10  # the warm-up was the miss
    assert counts[("gateway-skip", "MISS")] == 10
    shares = cd.cache_counts(df).groupby("route")["share"].sum()
    assert np.allclose(shares, 1.0)


def test_cache_counts_label_errors():
    df = synthetic_records(10, error_every=2)
    counts = cd.cache_counts(df)
    assert "error" in set(counts["cache_status"])
    assert counts["count"].sum() == 10  # the gateway route's measured requests


# --- percentiles with intervals --------------------------------------------------------------------------
def test_percentile_bars_take_point_estimates_from_the_summary():
    df = synthetic_records(200)
    summary = fake_summary(df)
    summary.loc[summary["route"] == "direct", "p50"] = 123.0  # whatever summarize says is what is drawn
    bars = cd.percentile_bars(df, summary)
    assert len(bars) == 4
    direct_p50 = bars[(bars["route"] == "direct") & (bars["percentile"] == "p50")].iloc[0]
    assert direct_p50["ms"] == 123.0
    assert (bars["ci_low"] <= bars["ms"]).all() and (bars["ms"] <= bars["ci_high"]).all()


def test_percentile_bars_have_no_interval_below_the_minimum_sample():
    df = synthetic_records(stats.MIN_CI_SAMPLES - 1)
    bars = cd.percentile_bars(df, fake_summary(df))
    assert bars["ci_low"].isna().all() and bars["ci_high"].isna().all()
    assert bars["ms"].notna().all()  # the bar itself stays
    df = synthetic_records(stats.MIN_CI_SAMPLES)
    assert cd.percentile_bars(df, fake_summary(df))["ci_low"].notna().all()


# --- size bounds and speed ------------------------------------------------------------------------------
def test_ten_thousand_records_give_bounded_chart_data():
    df = synthetic_records(5000)  # 10,002 records
    assert len(cd.latency_points(df).frame) <= 5000
    assert len(cd.ecdf(df)) <= 2 * 200
    assert len(stats.box_stats(df)) == 2
    assert len(cd.cache_counts(df, gateway_only=False)) <= 2 * 4
    assert len(cd.percentile_bars(df, fake_summary(df))) == 4


# --- chart builders: every chart serialises, also for empty and all-failed runs ---------------------------
@pytest.mark.parametrize("records", [
    synthetic_records(20),
    synthetic_records(3, error_every=1),  # every request failed
    synthetic_records(0, warmup=1),  # only warm-ups
], ids=["normal", "all-failed", "warmup-only"])
def test_chart_builders_serialise(records):
    from components import compare_charts as ch

    for metric in report.METRIC_LABELS:
        for log_scale in (False, True):
            ch.latency_over_time_chart(cd.latency_points(records, metric), metric, log_scale).to_dict()
            for kind in ("ecdf", "box"):
                ch.distribution_chart(records, metric, kind, log_scale).to_dict()
    counts = cd.cache_counts(records)
    if not counts.empty:
        ch.cache_chart(counts).to_dict()
    bars = cd.percentile_bars(records, fake_summary(records))
    if not bars.empty:
        ch.percentile_chart(bars, "total_ms").to_dict()


def test_overlay_builders_serialise():
    from components import compare_charts as ch

    df = pd.concat([synthetic_records(20, run_id="a"), synthetic_records(20, run_id="b")], ignore_index=True)
    df["run"] = df["run_id"]
    ch.overlay_ecdf_chart(cd.ecdf(df, by=("run", "route")), "total_ms", True).to_dict()
    summary = pd.concat([fake_summary(g).assign(run=r) for r, g in df.groupby("run")], ignore_index=True)
    bars = cd.percentile_bars(df, summary, by=("run", "route"))
    assert len(bars) == 8
    ch.overlay_percentile_chart(bars, "total_ms").to_dict()


def _summary(medians: dict[str, float]) -> pd.DataFrame:
    rows = [{"route": r, "cache_status": "all", "p50": v} for r, v in medians.items()]
    return pd.DataFrame(rows + [{"route": "gateway", "cache_status": "HIT", "p50": 0.001}])  # sub-rows ignored


def test_log_scale_starts_on_when_route_medians_differ_tenfold():
    assert cd.wants_log_scale(_summary({"direct": 4000.0, "gateway": 2.0}))
    assert not cd.wants_log_scale(_summary({"direct": 300.0, "gateway": 40.0}))  # 7.5x: linear reads fine
    assert not cd.wants_log_scale(_summary({"direct": 300.0}))
    assert not cd.wants_log_scale(_summary({"direct": 300.0, "gateway": float("nan")}))
    assert not cd.wants_log_scale(pd.DataFrame(columns=["route", "cache_status", "p50"]))
    # History: one row per (run, route); a fast run next to a slow one counts too.
    overlay = pd.concat([_summary({"direct": 500.0}).assign(run="a"), _summary({"direct": 20.0}).assign(run="b")])
    assert cd.wants_log_scale(overlay)


def test_time_axis_reads_in_seconds_from_the_start():
    first = pd.DataFrame({"start_s": [0.00001], "ms": [0.05]})
    assert cd.time_axis_max(first) == cd.MIN_TIME_AXIS_S  # not 0.000000-0.000100
    assert cd.time_axis_max(pd.DataFrame(columns=["start_s", "ms"])) == cd.MIN_TIME_AXIS_S
    later = pd.DataFrame({"start_s": [0.0, 4.5], "ms": [100.0, 700.0]})
    assert cd.time_axis_max(later) == pytest.approx(5.2)  # the last request's end
    spec = charts.latency_over_time_chart(cd.latency_points(synthetic_records(3)), "total_ms").to_dict()
    assert spec["encoding"]["x"]["scale"]["domain"][0] == 0

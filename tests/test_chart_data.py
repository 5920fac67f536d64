"""Chart-data functions, tested directly (AppTest cannot look inside a chart), and their size bounds."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from cfai import chart_data as cd
from cfai.compare import Plan, normalize_records_frame
from cfai.diagnose import gateway_never_hit, no_hit_causes, overlay_mismatch
from components import compare_charts as charts


def synthetic_records(n_per_route: int, routes=("direct", "gateway"), warmup: int = 1, seed: int = 0,
                      hit: bool = True, error_every: int = 0, run_id: str = "r1") -> pd.DataFrame:
    """Interleaved records like the runner's: direct ~ 300 ms, gateway misses ~ 300 ms, hits ~ 5 ms.
    Vectorised so 100,000 records take milliseconds to make."""
    rng = np.random.default_rng(seed)
    rounds = warmup + n_per_route
    count = rounds * len(routes)
    seq = np.arange(count)
    round_index = seq // len(routes)
    route = np.array(routes, dtype=object)[seq % len(routes)]
    cache = np.full(count, None, dtype=object)
    cache[route == "gateway-skip"] = "MISS"
    is_gateway = route == "gateway"
    cache[is_gateway] = np.where(hit & (round_index[is_gateway] > 0), "HIT", "MISS")
    total = rng.lognormal(np.where(cache == "HIT", np.log(5), np.log(300)), 0.2)
    ok = np.ones(count, dtype=bool) if not error_every else (seq % error_every != error_every - 1)
    frame = pd.DataFrame(dict(
        run_id=run_id, seq=seq, route=route, warmup=round_index < warmup, intended_start_s=seq * 0.01,
        actual_start_s=seq * 0.01, status=np.where(ok, 200, 429), ok=ok,
        error_code=np.where(ok, None, 3040), error_message=np.where(ok, None, "Capacity"),
        cache_status=np.where(ok, cache, None), ttfb_ms=total * 0.8, total_ms=np.where(ok, total, 2.0),
        bytes=100, tokens_in=10, tokens_out=20,
        log_id=np.where(route != "direct", np.char.add("log", seq.astype(str)).astype(object), None),
    ))
    return normalize_records_frame(frame)


def fake_summary(df: pd.DataFrame, metric: str = "total_ms") -> pd.DataFrame:
    """A stand-in for stats.summarize's route rows (percentile bars take their point estimates from it)."""
    data = cd.measured(df)
    data = data[data["ok"]]
    rows = [{"route": r, "cache_status": "all", "p50": g[metric].median(), "p95": g[metric].quantile(0.95)}
            for r, g in data.groupby("route")]
    return pd.DataFrame(rows)


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
    assert "showing" in sample.note() and "5,000" in sample.note().replace(str(sample.shown), "5,000")


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
def test_box_stats_exclude_warmups_and_errors():
    df = synthetic_records(100, error_every=10)
    box = cd.box_stats(df)
    assert list(box["route"]) == ["direct", "gateway"]
    measured_ok = df[~df["warmup"] & df["ok"]]
    assert box.set_index("route").loc["direct", "count"] == (measured_ok["route"] == "direct").sum()
    row = box.iloc[0]
    assert row["min"] <= row["whisker_low"] <= row["q1"] <= row["median"] <= row["q3"] <= row["whisker_high"]


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
    assert counts[("direct", "none")] == 10
    assert counts[("gateway", "HIT")] == 10  # the warm-up was the miss
    assert counts[("gateway-skip", "MISS")] == 10
    shares = cd.cache_counts(df).groupby("route")["share"].sum()
    assert np.allclose(shares, 1.0)


def test_cache_counts_label_errors():
    df = synthetic_records(10, error_every=2)
    counts = cd.cache_counts(df)
    assert "error" in set(counts["cache_status"])
    assert counts["count"].sum() == 20


# --- percentiles with intervals --------------------------------------------------------------------------
def test_quantile_interval_covers_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = np.sort(rng.normal(100, 10, 50))
    large = np.sort(rng.normal(100, 10, 50_000))
    lo_s, hi_s = cd.quantile_interval(small, 0.5)
    lo_l, hi_l = cd.quantile_interval(large, 0.5)
    assert lo_s < np.median(small) < hi_s
    assert lo_l < 100 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 10
    assert cd.quantile_interval(np.array([7.0]), 0.95) == (7.0, 7.0)


def test_percentile_bars_take_point_estimates_from_the_summary():
    df = synthetic_records(200)
    summary = fake_summary(df)
    summary.loc[summary["route"] == "direct", "p50"] = 123.0  # whatever summarize says is what is drawn
    bars = cd.percentile_bars(df, summary)
    assert len(bars) == 4
    direct_p50 = bars[(bars["route"] == "direct") & (bars["percentile"] == "p50")].iloc[0]
    assert direct_p50["ms"] == 123.0
    assert (bars["ci_low"] <= bars["ms"]).all() and (bars["ms"] <= bars["ci_high"]).all()


# --- headline numbers ------------------------------------------------------------------------------------
class _Speedup:
    median_ratio, ci_low, ci_high, n_num, n_den = 58.2, 50.1, 63.0, 30, 30


def test_headline_picks_summary_values():
    summary = pd.DataFrame([
        {"route": "direct", "cache_status": "all", "count": 30, "p50": 300.0, "hit_rate": np.nan},
        {"route": "gateway", "cache_status": "all", "count": 30, "p50": 5.5, "hit_rate": 0.9667},
        {"route": "gateway", "cache_status": "HIT", "count": 29, "p50": 5.2, "hit_rate": 1.0},
    ])
    h = cd.headline(summary, _Speedup())
    assert (h.p50_direct, h.p50_gateway_hit, h.hit_rate) == (300.0, 5.2, 0.9667)
    assert h.speedup_ci == (50.1, 63.0) and h.n_gateway_hit == 29
    assert cd.format_speedup(h.speedup, h.speedup_ci) == "58.2× (95% CI 50.1–63.0)"
    assert cd.format_ms(300.0) == "300 ms" and cd.format_ms(5.2) == "5.2 ms" and cd.format_ms(None) == "n/a"
    assert cd.format_rate(0.9667) == "97%"
    empty = cd.headline(pd.DataFrame(columns=["route", "cache_status"]), None)
    assert empty.p50_direct is None and empty.speedup is None


def test_progress_fraction():
    assert cd.progress_fraction(0, 10, 1, 2) == 0.0
    assert cd.progress_fraction(11, 10, 1, 2) == 0.5
    assert cd.progress_fraction(99, 10, 1, 2) == 1.0


# --- size bounds and speed ------------------------------------------------------------------------------
def test_ten_thousand_records_give_bounded_chart_data():
    df = synthetic_records(5000)  # 10,002 records
    assert len(cd.latency_points(df).frame) <= 5000
    assert len(cd.ecdf(df)) <= 2 * 200
    assert len(cd.box_stats(df)) == 2
    assert len(cd.cache_counts(df)) <= 2 * 4
    assert len(cd.percentile_bars(df, fake_summary(df))) == 4


def test_one_hundred_thousand_records_prepare_well_under_a_second():
    df = synthetic_records(50_000)  # 100,002 records
    summary = fake_summary(df)
    start = time.perf_counter()
    cd.latency_points(df, "total_ms")
    cd.ecdf(df, "total_ms")
    cd.box_stats(df, "total_ms")
    cd.cache_counts(df)
    cd.percentile_bars(df, summary, "total_ms")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"chart data for 100k records took {elapsed:.2f} s"


# --- no-hit diagnosis ------------------------------------------------------------------------------------
def test_gateway_never_hit():
    assert not gateway_never_hit(synthetic_records(5))
    assert gateway_never_hit(synthetic_records(5, hit=False))
    assert not gateway_never_hit(synthetic_records(1, warmup=0, hit=False))  # one request can only miss
    assert not gateway_never_hit(synthetic_records(5, routes=("direct",)))


def test_no_hit_causes_always_lists_the_usual_three_with_fixes():
    plan = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"})
    causes = no_hit_causes(plan, synthetic_records(5, hit=False))
    keys = [c.key for c in causes]
    assert {"caching_off", "stream", "changing_request"} <= set(keys)
    assert all(c.fix for c in causes)
    assert not any(c.likely for c in causes)  # TTL sent, not streamed, identical bodies: nothing obvious


def test_no_hit_causes_mark_what_the_plan_shows():
    plan = Plan(model="m", body={"prompt": "hi"}, stream=True, cache_ttl=None, cache_mode="unique",
                concurrency=8, warmup=0)
    causes = no_hit_causes(plan, synthetic_records(5, hit=False, warmup=0))
    likely = [c.key for c in causes if c.likely]
    assert {"caching_off", "stream", "changing_request", "unique_mode", "concurrent_first"} <= set(likely)
    assert causes[0].likely  # likely causes first


def test_no_hit_causes_accept_a_stored_plan_dict():
    plan = {"routes": ["gateway-skip"], "stream": False, "cache_ttl": 300}
    keys = [c.key for c in no_hit_causes(plan, synthetic_records(5, routes=("gateway-skip",)))]
    assert "skip_only" in keys


def test_every_chart_subtitle_says_what_was_measured():
    assert cd.measured_lines("total_ms")[0] == "Measured: total time, request sent → last byte"
    assert "warm-ups and errors excluded" in cd.measured_lines("ttfb_ms")[1]
    assert "first byte" in cd.measured_lines("ttfb_ms")[0]
    assert all(len(line) <= 60 for m in cd.METRIC_SUBTITLES for line in cd.measured_lines(m))  # half-width charts


# --- chart builders: every chart serialises, also for empty and all-failed runs ---------------------------
@pytest.mark.parametrize("records", [
    synthetic_records(20),
    synthetic_records(3, error_every=1),  # every request failed
    synthetic_records(0, warmup=1),  # only warm-ups
], ids=["normal", "all-failed", "warmup-only"])
def test_chart_builders_serialise(records):
    from components import compare_charts as ch

    for metric in cd.METRIC_LABELS:
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


def test_ttfb_subtitle_follows_streaming():
    assert cd.measured_lines("ttfb_ms")[0].endswith("→ headers")
    assert cd.measured_lines("ttfb_ms", stream=True)[0].endswith("→ first token")
    assert "first token" in cd.measured_lines("ttfb_ms", stream=None)[0]  # overlaid runs that differ
    assert cd.measured_lines("total_ms", stream=True)[0].endswith("→ last byte")
    assert all(len(line) <= 60 for s in (True, None) for line in cd.measured_lines("ttfb_ms", stream=s))
    spec = json.dumps(charts.percentile_chart(pd.DataFrame(columns=["route", "percentile", "ms", "ci_low",
                                                                    "ci_high", "count"]),
                                              "ttfb_ms", stream=True).to_dict())
    assert "first token" in spec and "→ headers" not in spec


def test_overlay_mismatch_names_what_differs():
    llama = {"model": "@cf/meta/llama-3.1-8b-instruct", "body": {"prompt": "hi"}}
    sst2 = {"model": "@cf/huggingface/distilbert-sst-2-int8", "body": {"text": "hi"}}
    assert overlay_mismatch({"a": llama, "b": dict(llama)}) is None
    text = overlay_mismatch({"a": llama, "b": sst2})
    assert "model (a: @cf/meta/llama-3.1-8b-instruct; b: @cf/huggingface/distilbert-sst-2-int8)" in text
    assert "request kind (a: text generation; b: text classification)" in text
    same_model = overlay_mismatch({"a": llama, "b": {**llama, "body": {"messages": []}}})
    assert same_model is None  # prompt and messages are both text generation
    assert "request kind" in overlay_mismatch({"a": llama, "b": {**llama, "body": {"foo": 1}}})

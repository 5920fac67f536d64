"""Statistics: hand-computed percentiles, hit rate, warm-up exclusion, the bootstrap speed-up interval."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cfai import stats
from cfai.records import Record, normalize_records_frame, records_frame
from cfai.stats import PERCENTILES, bootstrap_medians, route_summary, speedup, start_lag_warning, summarize
from tests.synthetic import synthetic_records


def rec(seq: int, route: str, total: float | None, *, ok: bool = True, cache: str | None = None,
        warmup: bool = False, ttfb: float | None = None) -> Record:
    return Record(run_id="r1", seq=seq, route=route, warmup=warmup, intended_start_s=seq * 0.1,
                  actual_start_s=seq * 0.1, status=200 if ok else 500, ok=ok, cache_status=cache,
                  ttfb_ms=ttfb if ttfb is not None else (total / 2 if total else None), total_ms=total)


@pytest.fixture
def small() -> pd.DataFrame:
    records = [
        # warm-ups: huge values that must not show up anywhere
        rec(0, "direct", 9999.0, warmup=True),
        rec(1, "gateway", 9999.0, cache="MISS", warmup=True),
        # direct: 10..50, plus an error whose duration must not count as latency
        *[rec(2 + i, "direct", v) for i, v in enumerate([30.0, 10.0, 50.0, 20.0, 40.0])],
        rec(7, "direct", 1.0, ok=False),
        # gateway: 3 hits (4, 5, 6) and 1 miss (60)
        rec(8, "gateway", 4.0, cache="HIT"),
        rec(9, "gateway", 60.0, cache="MISS"),
        rec(10, "gateway", 5.0, cache="HIT"),
        rec(11, "gateway", 6.0, cache="HIT"),
    ]
    return records_frame(records)


def row(table: pd.DataFrame, route: str, cache_status: str = "all") -> pd.Series:
    match = table[(table["route"] == route) & (table["cache_status"] == cache_status)]
    assert len(match) == 1, table
    return match.iloc[0]


def test_percentiles_are_hand_computed_linear_interpolation(small):
    table = summarize(small)
    d = row(table, "direct")
    # sorted ok values 10 20 30 40 50; rank (n-1)*q: p90 -> 3.6 -> 40 + 0.6*10
    assert (d["min"], d["mean"], d["p50"], d["max"]) == (10.0, 30.0, 30.0, 50.0)
    assert d["p90"] == pytest.approx(46.0)
    assert d["p95"] == pytest.approx(48.0)
    assert d["p99"] == pytest.approx(49.6)
    assert (d["count"], d["ok"], d["errors"]) == (6, 5, 1)
    assert np.isnan(d["hit_rate"])  # direct reports no cache status


def test_rows_per_route_and_cache_status_with_hit_rate(small):
    table = summarize(small)
    assert list(table["group"]) == ["direct", "gateway", "gateway · HIT", "gateway · MISS"]
    assert list(table.columns[:7]) == ["group", "route", "cache_status", "count", "ok", "errors", "hit_rate"]
    g = row(table, "gateway")
    assert g["count"] == 4 and g["hit_rate"] == 0.75
    hit = row(table, "gateway", "HIT")
    assert (hit["count"], hit["hit_rate"], hit["p50"], hit["min"], hit["max"]) == (3, 1.0, 5.0, 4.0, 6.0)
    assert row(table, "gateway", "MISS")["hit_rate"] == 0.0


def test_warmups_are_excluded(small):
    table = summarize(small)
    assert table["max"].max() < 9999.0
    assert table.loc[table["cache_status"] == "all", "count"].sum() == 10


def test_other_metric_and_empty_input(small):
    ttfb = summarize(small, "ttfb_ms")
    assert row(ttfb, "direct")["p50"] == 15.0
    empty = summarize(small.iloc[0:0])
    assert empty.empty and "p99" in empty.columns


def test_route_with_only_errors_has_nan_latency():
    table = summarize(records_frame([rec(0, "direct", 5.0, ok=False), rec(1, "direct", 7.0, ok=False)]))
    d = row(table, "direct")
    assert d["errors"] == 2 and np.isnan(d["p50"])


@pytest.mark.parametrize("n", [7, 8])
def test_bootstrap_medians_match_naive_resampling(n):
    values = np.array([3.0, 9.0, 1.0, 7.0, 5.0, 11.0, 2.0, 8.0][:n])
    exact = bootstrap_medians(values, 40_000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, n, size=(40_000, n))
    naive = np.median(values[idx], axis=1)
    for q in (10, 25, 50, 75, 90):
        assert np.percentile(exact, q) == pytest.approx(np.percentile(naive, q), abs=0.51)
    assert exact.mean() == pytest.approx(naive.mean(), abs=0.05)


def synthetic(n_direct: int, n_hits: int, seed: int) -> pd.DataFrame:
    """Lognormal latencies with known medians: direct 120 ms, gateway hits 30 ms, so the true ratio is 4."""
    rng = np.random.default_rng(seed)
    direct = 120.0 * rng.lognormal(0.0, 0.4, n_direct)
    hits = 30.0 * rng.lognormal(0.0, 0.4, n_hits)
    return normalize_records_frame(pd.DataFrame({
        "run_id": "syn", "seq": np.arange(n_direct + n_hits), "route": ["direct"] * n_direct + ["gateway"] * n_hits,
        "warmup": False, "ok": True, "status": 200, "cache_status": [None] * n_direct + ["HIT"] * n_hits,
        "total_ms": np.concatenate([direct, hits]),
    }))


def test_speedup_interval_contains_true_ratio():
    covered = 0
    for seed in range(20):
        s = speedup(synthetic(60, 60, seed), n_boot=2000, seed=seed)
        assert s.ci_low < s.median_ratio < s.ci_high
        covered += s.ci_low <= 4.0 <= s.ci_high
    assert covered >= 17  # a 95% interval; 20 trials


def test_speedup_is_seeded_and_reports_sizes():
    df = synthetic(31, 30, 5)
    a, b = speedup(df), speedup(df)
    assert a == b
    assert (a.n_num, a.n_den) == (31, 30)
    assert a.median_ratio == pytest.approx(a.median_num / a.median_den)


def test_speedup_not_computable_without_hits(small):
    s = speedup(small[small["cache_status"].ne("HIT").fillna(True)])
    assert s.median_ratio is None and s.ci_low is None and not s.computable and s.n_den == 0


def test_speedup_with_route_denominator(small):
    s = speedup(small, "direct", "gateway")
    assert s.median_ratio == pytest.approx(30.0 / 5.5)  # gateway ok values 4 5 6 60 -> median 5.5


def test_route_summary_is_json_ready(small):
    summary = route_summary(small)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    direct, gateway = summary["routes"]["direct"], summary["routes"]["gateway"]
    assert direct["n"] == 6 and direct["errors"] == 1 and direct["hit_rate"] is None
    assert direct["p50_ms"] == 30.0 and direct["p99_ms"] == 49.6
    assert gateway["hit_rate"] == 0.75 and gateway["by_cache_status"]["HIT"]["n"] == 3
    assert summary["speedup"]["median_ratio"] == round(30.0 / 5.0, 4)
    lo, hi = summary["speedup"]["ci95"]
    assert lo <= summary["speedup"]["median_ratio"] <= hi


def test_100k_records_summarise_into_one_row_per_route_and_cache_status():
    """Shape only: how fast it is, is bench's `stats_100k_s` (no timing targets in pytest)."""
    n = 100_000
    rng = np.random.default_rng(0)
    routes = np.array(["direct", "gateway", "gateway-skip"])[np.arange(n) % 3]
    cache = np.where(routes == "direct", None, np.where(rng.random(n) < 0.9, "HIT", "MISS"))
    df = normalize_records_frame(pd.DataFrame({
        "run_id": "big", "seq": np.arange(n), "route": routes, "warmup": np.arange(n) < 3,
        "intended_start_s": 0.0, "actual_start_s": 0.0, "status": 200, "ok": rng.random(n) > 0.01,
        "cache_status": cache, "ttfb_ms": rng.lognormal(3, 0.3, n), "total_ms": rng.lognormal(4, 0.3, n),
    }))
    table = summarize(df)
    s = speedup(df)
    assert list(table["group"]) == ["direct", "gateway", "gateway · HIT", "gateway · MISS", "gateway-skip",
                                    "gateway-skip · HIT", "gateway-skip · MISS"]
    assert table.loc[table["cache_status"] == "all", "count"].sum() == n - 3 and s.computable


def test_percentile_columns_follow_constant():
    assert [f"p{p}" for p in PERCENTILES] == ["p50", "p90", "p95", "p99"]


def lagged(lags_ms: list[float], totals: list[float]) -> pd.DataFrame:
    """Open-loop-like records: request i intended at i*0.1 s, sent lags_ms[i] later."""
    return records_frame([
        Record(run_id="r1", seq=i, route="direct", warmup=False, intended_start_s=i * 0.1,
               actual_start_s=i * 0.1 + lag / 1000, status=200, ok=True, total_ms=total)
        for i, (lag, total) in enumerate(zip(lags_ms, totals, strict=True))
    ])


def test_start_lag_and_latency_from_the_intended_start():
    df = lagged([0.0, 0.0, 10.0, 30.0, 100.0], [10.0, 20.0, 30.0, 40.0, 50.0])
    direct = row(summarize(df), "direct")
    assert direct["start_lag_p50"] == pytest.approx(10.0)
    assert direct["start_lag_p99"] == pytest.approx(30.0 + 0.96 * 70.0)  # linear between ranks 4 and 5
    # from the intended start: 10, 20, 40, 70, 150 -> p50 40
    assert direct["from_intended_p50"] == pytest.approx(40.0)
    entry = route_summary(df)["routes"]["direct"]
    assert entry["p50_ms"] == 30.0  # the existing keys are unchanged
    assert entry["start_lag_p50_ms"] == 10.0 and entry["start_lag_p99_ms"] == pytest.approx(97.2)
    assert entry["from_intended_p50_ms"] == 40.0


def test_start_lag_warning_only_for_a_late_open_loop():
    late = route_summary(lagged([0.0, 5.0, 400.0], [10.0, 10.0, 10.0]))
    on_time = route_summary(lagged([0.1, 0.2, 0.3], [10.0, 10.0, 10.0]))
    message = start_lag_warning(late, open_loop=True)
    assert message and "started up to 392 ms late" in message and "Lower the rate" in message
    assert start_lag_warning(late, open_loop=False) is None  # closed loop: lag is queueing by design
    assert start_lag_warning(on_time, open_loop=True) is None
    assert start_lag_warning(route_summary(lagged([], [])), open_loop=True) is None


# --- distributions per group ---------------------------------------------------------------------------
def test_box_stats_exclude_warmups_and_errors():
    df = synthetic_records(100, error_every=10)
    box = stats.box_stats(df)
    assert list(box["route"]) == ["direct", "gateway"]
    measured_ok = df[~df["warmup"] & df["ok"]]
    assert box.set_index("route").loc["direct", "count"] == (measured_ok["route"] == "direct").sum()
    row = box.iloc[0]
    assert row["min"] <= row["whisker_low"] <= row["q1"] <= row["median"] <= row["q3"] <= row["whisker_high"]


def test_quantile_interval_covers_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = np.sort(rng.normal(100, 10, 50))
    large = np.sort(rng.normal(100, 10, 50_000))
    lo_s, hi_s = stats.quantile_interval(small, 0.5)
    lo_l, hi_l = stats.quantile_interval(large, 0.5)
    assert lo_s < np.median(small) < hi_s
    assert lo_l < 100 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 10
    assert stats.quantile_interval(np.array([7.0]), 0.95) == (7.0, 7.0)


def test_interval_minimum_and_lag_threshold_relative_to_the_interval():
    from cfai.stats import MIN_CI_SAMPLES, enough_for_interval, lag_threshold_ms

    assert MIN_CI_SAMPLES == 10
    assert enough_for_interval(10, 10) and not enough_for_interval(2, 1) and not enough_for_interval()
    assert lag_threshold_ms(10.0) == 50.0  # half of 100 ms between requests
    assert lag_threshold_ms(1000.0) == 10.0 and lag_threshold_ms(None) == 10.0  # never below the floor


def test_open_loop_warning_is_relative_and_names_only_causes_that_apply():
    summary = {"routes": {"direct": {"start_lag_p99_ms": 10.4}}}
    assert start_lag_warning(summary, open_loop=True, rate=10.0, in_flight_peak=3) is None  # 10 ms of 100 ms
    late = {"routes": {"direct": {"start_lag_p99_ms": 80.0}}}
    busy = start_lag_warning(late, open_loop=True, rate=10.0, in_flight_peak=3)
    assert "could not keep the rate" in busy and "100 ms between requests" in busy
    assert "too busy" in busy and "waited for a free slot" not in busy
    capped = start_lag_warning(late, open_loop=True, rate=10.0, in_flight_peak=256)
    assert "waited for a free slot" in capped


def test_max_in_flight_from_start_and_total_times():
    from cfai.stats import max_in_flight

    df = pd.DataFrame({"actual_start_s": [0.0, 0.1, 0.2, 1.0], "total_ms": [500.0, 500.0, 50.0, 10.0]})
    assert max_in_flight(df) == 3
    assert max_in_flight(pd.DataFrame({"actual_start_s": [0.0, 1.0], "total_ms": [1000.0, 5.0]})) == 1

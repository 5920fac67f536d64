"""Duration estimates before a run and the ETA while it runs (cfai.estimate), against hand-computed values."""

from __future__ import annotations

import pytest

from cfai.estimate import estimate_duration, eta_seconds, expected_misses, format_duration
from cfai.plan import Plan


def _plan(**kw) -> Plan:
    return Plan(model="m", body={"prompt": "hi"}, **kw)


def test_identical_gateway_requests_miss_once():
    assert expected_misses(_plan(n=10, warmup=1)) == (11 + 1, 10)
    assert expected_misses(_plan(n=10, warmup=1, cache_mode="unique")) == (22, 0)
    assert expected_misses(_plan(n=5, warmup=0, routes=("direct", "gateway", "gateway-skip"))) == (5 + 1 + 5, 4)


def test_closed_loop_estimate_divides_the_work_by_the_concurrency():
    est = estimate_duration(_plan(n=10, warmup=1), miss_ms=1300.0, basis="probe", hit_ms=5.0)
    assert est.seconds == pytest.approx((12 * 1300 + 10 * 5) / 1000)  # 15.65 s: the default plan locally
    two = estimate_duration(_plan(n=10, warmup=1, concurrency=2), miss_ms=1300.0, basis="probe", hit_ms=5.0)
    assert two.seconds == pytest.approx(est.seconds / 2)


def test_open_loop_estimate_is_the_schedule_plus_the_last_request():
    est = estimate_duration(_plan(n=10, warmup=0, rate=4.0), miss_ms=500.0, basis="probe")
    assert est.seconds == pytest.approx(19 / 4 + 0.5)


def test_eta_uses_the_pace_so_far_then_the_estimate():
    assert eta_seconds(10, 20, 5.0) == pytest.approx(5.0)
    assert eta_seconds(1, 20, 2.0, estimate_s=15.0) == pytest.approx(13.0)
    assert eta_seconds(1, 20, 2.0) is None and eta_seconds(20, 20, 9.0) == 0.0


def test_durations_read_as_people_say_them():
    assert format_duration(0.4) == "under 1 s" and format_duration(14.6) == "15 s"
    assert format_duration(130) == "2 min 10 s" and format_duration(None) == "–"

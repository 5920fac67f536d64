"""One number style everywhere (cfai.format): latency, ratios, intervals, percentages, rates, missing values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cfai.format import (
    MISSING,
    format_count,
    format_interval,
    format_ms,
    format_percent,
    format_rate,
    format_ratio,
    format_score,
)


@pytest.mark.parametrize(("ms", "text"), [
    (0.4234, "0.42 ms"), (1.0, "1.0 ms"), (5.24, "5.2 ms"), (12.6, "13 ms"), (300.0, "300 ms"),
    (1234.4, "1,234 ms"), (9999.0, "9,999 ms"), (10_000.0, "10.0 s"), (12_345.0, "12.3 s"),
    (-0.5, "-0.50 ms"),
])
def test_latency_is_ms_under_ten_seconds_then_seconds(ms, text):
    assert format_ms(ms) == text


@pytest.mark.parametrize("missing", [None, math.nan, math.inf, pd.NA, "n/a", True])
def test_every_formatter_shows_one_glyph_for_a_missing_value(missing):
    for formatter in (format_ms, format_ratio, format_percent, format_count, format_score):
        assert formatter(missing) == MISSING == "–"
    assert format_interval(missing, 2.0) == MISSING
    assert format_rate(missing, "tok/s") == "– tok/s"


def test_ratios_and_intervals_keep_three_significant_figures():
    assert format_ratio(3.3612) == "3.36×"
    assert format_ratio(33.61) == "33.6×"
    assert format_ratio(3170.8) == "3,170×"  # not "3,171×" or "3,170.8×": three figures at any size
    assert format_ratio(2690.0) == "2,690×" and format_ratio(31_708) == "31,700×"
    assert format_ratio(999.6) == "1,000×"
    assert format_interval(50.12, 63.04) == "50.1–63.0×"
    assert format_interval(2.1, 3.456) == "2.10–3.46×"


def test_percentages_rates_counts_and_scores():
    assert format_percent(0.9667) == "97%"
    assert format_percent(0.9667, 1) == "96.7%"
    assert format_rate(12.34, "tok/s") == "12.3 tok/s"
    assert format_rate(1240.0, "rows/s") == "1,240 rows/s"
    assert format_rate(0, "tok/s") == "– tok/s"  # nothing generated: no rate, not "0.0"
    assert format_count(12345) == "12,345"
    assert format_score(0.91234) == "0.912"

"""How every page and the CLI print numbers: one style, one missing-value glyph.

- Latency: "0.42 ms", "5.2 ms", "1,234 ms" under 10 s, then seconds: "12.3 s".
- Ratios (speed-up): three significant figures, "3.36×", "33.6×", "3,170×".
- Percentages: "97%" (or with decimals when asked), rates: "12.3 tok/s", "1,240 rows/s".
- Anything missing (None, NaN, infinite): "–".
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"
SECONDS_FROM_MS = 10_000.0  # at and above 10 s, latencies read better in seconds


def _number(value: Any) -> float | None:
    """A finite float, or None for None, NaN, pandas NA, infinities and non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_ms(value: Any) -> str:
    """A latency given in milliseconds."""
    ms = _number(value)
    if ms is None:
        return MISSING
    size = abs(ms)
    if size >= SECONDS_FROM_MS:
        return f"{ms / 1000:,.1f} s"
    if size >= 10:
        return f"{ms:,.0f} ms"
    if size >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _three_figures(number: float) -> str:
    size = abs(number)
    if size >= 100:
        return f"{number:,.0f}"
    if size >= 10:
        return f"{number:.1f}"
    return f"{number:.2f}"


def format_ratio(value: Any) -> str:
    """A ratio such as a speed-up: "3.36×"."""
    ratio = _number(value)
    return MISSING if ratio is None else f"{_three_figures(ratio)}×"


def format_interval(low: Any, high: Any) -> str:
    """A ratio's confidence interval: "2.10–3.40×"; missing when either end is."""
    lo, hi = _number(low), _number(high)
    if lo is None or hi is None:
        return MISSING
    return f"{_three_figures(lo)}–{_three_figures(hi)}×"


def format_percent(value: Any, digits: int = 0) -> str:
    """A fraction (0.97) as a percentage ("97%")."""
    fraction = _number(value)
    return MISSING if fraction is None else f"{fraction:.{digits}%}"


def format_rate(value: Any, unit: str) -> str:
    """Something per second: "12.3 tok/s", "1,240 rows/s"; missing when zero or absent."""
    rate = _number(value)
    if not rate:
        return f"{MISSING} {unit}"
    return f"{rate:,.0f} {unit}" if abs(rate) >= 100 else f"{rate:.1f} {unit}"


def format_count(value: Any) -> str:
    """A whole number with thousands separators."""
    number = _number(value)
    return MISSING if number is None else f"{int(number):,}"


def format_score(value: Any) -> str:
    """A model score or an F1 in 0..1: three decimals."""
    number = _number(value)
    return MISSING if number is None else f"{number:.3f}"

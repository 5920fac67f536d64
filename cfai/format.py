"""How every page and the CLI print numbers: one style, one missing-value glyph.

- Latency: "0.42 ms", "5.2 ms", "1,234 ms" under 10 s, then seconds: "12.3 s".
- Ratios (speed-up): three significant figures, "3.36×", "33.6×", "3,170×", "31,700×".
- Percentages: "97%" (or with decimals when asked), rates: "12.3 tok/s", "1,240 rows/s".
- Anything missing (None, NaN, infinite): "–".
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"
NO_PRICE = "no price listed"  # a model without a list price: never shown as $0
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
    if size >= 1000:  # "3,170", "31,700": three significant figures, never a false "3,170.8"
        digits = math.floor(math.log10(size)) - 2
        return f"{round(number, -digits):,.0f}"
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


# --- money ---------------------------------------------------------------------------------------
def _significant(value: float, digits: int = 3) -> str:
    """`value` (> 0) to `digits` significant figures, fixed-point, trailing zeros dropped down to 2 decimals."""
    decimals = max(2, digits - 1 - math.floor(math.log10(value)))
    text = f"{value:,.{decimals}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def format_usd(value: float | None, digits: int = 3) -> str:
    """Dollars for people: "no price listed" for None (never "$0"); $1 and above with cents
    ("$1,234.57"); below $1 to `digits` significant figures ("$0.50", "$0.0123", "$0.00000118")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_PRICE
    if value == 0:
        return "$0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if magnitude >= 1:
        return f"{sign}${magnitude:,.2f}"
    if magnitude < 1e-9:
        return f"{sign}<$0.000000001"
    return f"{sign}${_significant(magnitude, digits)}"


def format_neurons(value: float | None) -> str:
    """"1,234 neurons", "0.523 neurons"; "" when the mapping is not known (show nothing rather than 0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value == 0:
        return "0 neurons"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} neurons"


def format_unit_price(value: float) -> str:
    """A list price as the pricing page writes it: "$0.027", "$2.253", "$4", "$0.00045"."""
    if value == int(value):
        return f"${int(value):,}"
    return "$" + _significant(value, 4 if value < 1 else 6)

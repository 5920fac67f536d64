"""The shape of results.json: one entry per figure, with its target and whether it was met."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Comparison = Literal["<=", ">=", "<", "track"]


def figure(value: float, unit: str, target: float | None, comparison: Comparison,
           details: dict[str, Any] | None = None, digits: int = 4) -> dict[str, Any]:
    """A figure; `pass` is None for figures we only track."""
    value = round(float(value), digits) if math.isfinite(value) else value
    if comparison == "track" or target is None:
        passed = None
    elif not math.isfinite(value):
        passed = False
    elif comparison == "<=":
        passed = value <= target
    elif comparison == ">=":
        passed = value >= target
    elif comparison == "<":
        passed = value < target
    else:
        raise ValueError(f"unknown comparison {comparison!r}")
    return {"value": value, "unit": unit, "target": target, "comparison": comparison, "pass": passed,
            "details": details or {}}


def json_safe(value: Any) -> Any:
    """NaN and infinities (a figure that could not be measured) become null: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def all_pass(figures: dict[str, dict[str, Any]]) -> bool:
    return all(f["pass"] is not False for f in figures.values())


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # the machine is shared: context for the figures
    }


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else math.nan


def r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)

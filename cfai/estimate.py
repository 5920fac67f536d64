"""How long a comparison will take, before Run (from the plan and a measured miss latency), and the
elapsed time and ETA while it runs. Pure functions: the page probes, this module only does arithmetic.

The model: every request that reaches Workers AI (direct, gateway-skip, a gateway miss) takes `miss_ms`;
a gateway cache hit takes `hit_ms` (a few ms). Identical gateway requests hit after the first one; in
"unique" cache mode every one misses. A closed loop of concurrency c spreads the work over c workers (but
never faster than the longest single request); an open loop sends on schedule, so it lasts the schedule
plus the last request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cfai.plan import Plan

DEFAULT_HIT_MS = 5.0  # a cache hit when none was measured: a few ms on loopback, tens on Cloudflare


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # what the estimate rests on, for the page ("one probe request: 1,234 ms")
    misses: int  # requests that reach Workers AI
    hits: int  # expected gateway cache hits


def expected_misses(plan: Plan) -> tuple[int, int]:
    """(requests that reach the model, expected cache hits) over the whole plan, warm-ups included."""
    per_route = plan.n + plan.warmup
    misses = hits = 0
    for route in plan.routes:
        if route == "gateway" and plan.cache_mode == "identical":
            misses += 1
            hits += per_route - 1
        else:
            misses += per_route
    return misses, hits


def estimate_duration(plan: Plan, miss_ms: float, basis: str, hit_ms: float | None = None) -> Estimate:
    """Seconds the plan should take when each miss takes `miss_ms` (see the module docstring)."""
    hit = DEFAULT_HIT_MS if hit_ms is None else hit_ms
    misses, hits = expected_misses(plan)
    work_s = (misses * miss_ms + hits * hit) / 1000.0
    if plan.is_open_loop and plan.rate:
        schedule_s = max(plan.total_requests - 1, 0) / plan.rate
        seconds = schedule_s + miss_ms / 1000.0
    else:
        seconds = max(work_s / max(plan.concurrency, 1), miss_ms / 1000.0 if misses else hit / 1000.0)
    return Estimate(seconds=seconds, basis=basis, misses=misses, hits=hits)


def eta_seconds(done: int, total: int, elapsed_s: float, estimate_s: float | None = None) -> float | None:
    """Seconds left: from the pace so far once a few requests are done, else what the estimate leaves.
    None when nothing can be said."""
    if total <= 0:
        return None
    left = max(total - done, 0)
    if left == 0:
        return 0.0
    if done >= 3 and elapsed_s > 0:
        return elapsed_s / done * left
    if estimate_s is not None:
        return max(estimate_s - elapsed_s, 0.0)
    return None


def format_duration(seconds: float | None) -> str:
    """"about 14 s", "about 2 min 10 s", "under 1 s"; "–" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


__all__ = ["DEFAULT_HIT_MS", "Estimate", "estimate_duration", "eta_seconds", "expected_misses",
           "format_duration"]

"""Synthetic comparison records for the statistics, chart-data, report and diagnosis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cfai.records import measured, normalize_records_frame


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
    data = measured(df)
    data = data[data["ok"]]
    rows = [{"route": r, "cache_status": "all", "p50": g[metric].median(), "p95": g[metric].quantile(0.95)}
            for r, g in data.groupby("route")]
    return pd.DataFrame(rows)

"""gateway_hit_p50_ms, gateway_miss_p50_ms, hit_speedup: what AI Gateway caching buys, through our client.

Text generation (`@cf/meta/llama-3.1-8b-instruct`, simulated at the emulator's realistic speed 1). Misses
send the same body as hits with `cf-aig-skip-cache: true`, so the model does identical work and only the
cache differs; `max_tokens` is small to keep the bench short. Misses and hits are interleaved (one miss,
then a block of hits) so drift on a shared machine hits both alike.
"""

from __future__ import annotations

from typing import Any

from bench.report import figure, pct, r
from cfai.client import Client, GatewayOptions
from cfai.config import local_connection

MODEL = "@cf/meta/llama-3.1-8b-instruct"
BODY = {"prompt": "Explain in one sentence why a cache makes repeated requests fast.", "max_tokens": 8}
HIT_TARGET_MS = 2.0
SPEEDUP_TARGET = 10.0


def measure(base_url: str, misses: int = 20, hits_per_miss: int = 20) -> dict[str, dict[str, Any]]:
    hit_ms: list[float] = []
    miss_ms: list[float] = []
    unexpected: list[str] = []
    skip = GatewayOptions(skip_cache=True)
    with Client(local_connection(base_url)) as client:
        first = client.run(MODEL, BODY, route="gateway")  # fills the cache (or finds it filled)
        if not first.ok:
            raise RuntimeError(f"gateway request failed: {first.error}")
        for _ in range(5):  # warm the connection and code path
            client.run(MODEL, BODY, route="gateway")
        for _ in range(misses):
            miss = client.run(MODEL, BODY, route="gateway", gateway=skip)
            if miss.ok and miss.cache_status == "MISS":
                miss_ms.append(miss.timings.total_ms or float("nan"))
            else:
                unexpected.append(f"miss: {miss.status} {miss.cache_status}")
            for _ in range(hits_per_miss):
                hit = client.run(MODEL, BODY, route="gateway")
                if hit.ok and hit.cache_status == "HIT":
                    hit_ms.append(hit.timings.total_ms or float("nan"))
                else:
                    unexpected.append(f"hit: {hit.status} {hit.cache_status}")
    hit50, miss50 = pct(hit_ms, 50), pct(miss_ms, 50)
    common = {
        "model": MODEL,
        "body": BODY,
        "emulator_speed": 1.0,
        "miss_method": "cf-aig-skip-cache: true with the same body as the hits (identical model work)",
        "metric": "Result.timings.total_ms (request written to last body byte)",
        "hits": len(hit_ms),
        "misses": len(miss_ms),
        "unexpected_responses": unexpected[:10],
    }
    hit_details = {**common, "p90_ms": r(pct(hit_ms, 90)), "p99_ms": r(pct(hit_ms, 99))}
    miss_details = {**common, "p90_ms": r(pct(miss_ms, 90)), "min_ms": r(min(miss_ms, default=float("nan")))}
    ratio = miss50 / hit50 if hit50 > 0 else float("nan")
    return {
        "gateway_hit_p50_ms": figure(hit50, "ms", HIT_TARGET_MS, "<=", hit_details),
        "gateway_miss_p50_ms": figure(miss50, "ms", None, "track", miss_details),
        "hit_speedup": figure(ratio, "x", SPEEDUP_TARGET, ">=",
                              {"what": "gateway miss p50 / gateway hit p50, same run, interleaved",
                               "hit_p50_ms": r(hit50), "miss_p50_ms": r(miss50)}),
    }

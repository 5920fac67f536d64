"""runner_concurrency16_speedup: does the comparison Runner really keep 16 requests in flight?

Against an upstream with a fixed 50 ms latency (`x-emulator-delay-ms: 50`, direct route, classification), the
ideal is 16x the throughput of concurrency 1; whatever the runner, the client or the emulator serialise shows
as a lower ratio. Throughput = measured requests / the measured phase's wall time, clocked in `on_record`
from the last warm-up's completion to the last measured completion (the warm-up phase, which opens the
connections, finishes before measuring starts).
"""

from __future__ import annotations

import time
from typing import Any

from bench.report import figure, pct, r
from cfai.client import Client
from cfai.compare import Plan, Record, Runner
from cfai.config import local_connection

MODEL = "@cf/huggingface/distilbert-sst-2-int8"
BODY = {"text": "Concurrency keeps the pipe full while each request waits."}
DELAY_MS = 50
TARGET = 12.0


def _throughput(base_url: str, concurrency: int, n: int) -> dict[str, Any]:
    plan = Plan(model=MODEL, body=BODY, routes=("direct",), n=n, warmup=concurrency, concurrency=concurrency,
                cache_ttl=None, extra_headers={"x-emulator-delay-ms": str(DELAY_MS)}, name="bench")
    marks: dict[str, float] = {}

    def on_record(record: Record) -> None:  # calls are serialised by the runner
        marks["measured_end" if not record.warmup else "warmup_end"] = time.perf_counter()

    with Client(local_connection(base_url), pool_size=max(concurrency, 4)) as client:
        result = Runner(client, plan).run(on_record=on_record)
    measured = [rec for rec in result.records if not rec.warmup]
    ok = [rec for rec in measured if rec.ok]
    wall = marks["measured_end"] - marks["warmup_end"]
    return {
        "concurrency": concurrency,
        "measured": len(measured),
        "errors": len(measured) - len(ok),
        "wall_s": r(wall),
        "throughput_rps": r(len(measured) / wall, 2),
        "latency_p50_ms": r(pct([rec.total_ms for rec in ok], 50)),
    }


def measure(base_url: str, n1: int = 40, n16: int = 480) -> dict[str, dict[str, Any]]:
    c1 = _throughput(base_url, 1, n1)
    c16 = _throughput(base_url, 16, n16)
    ratio = c16["throughput_rps"] / c1["throughput_rps"]
    details = {
        "upstream": f"direct route, {MODEL}, x-emulator-delay-ms: {DELAY_MS} (fixed latency)",
        "ideal": 16,
        "concurrency_1": c1,
        "concurrency_16": c16,
        "what": "throughput (measured requests / wall time of the measured phase) at concurrency 16 over 1",
    }
    if c1["errors"] or c16["errors"]:
        ratio = float("nan")  # a failing run measures nothing
    return {"runner_concurrency16_speedup": figure(ratio, "x", TARGET, ">=", details)}

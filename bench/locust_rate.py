"""locust_2workers_rps, runner_hits_rps: achieved request rate on gateway cache hits, Locust vs built-in.

The same plan (classification, gateway route, identical body so every measured request is a cache hit
after the warm-up, closed loop at concurrency 16) runs once on the built-in runner in this process and once
on the Locust engine with 2 local worker processes. Rate = measured requests / the measured phase's wall
time, from the records themselves (first measured start to last measured end), so Locust's process start-up
is not counted. A figure to track, not a target: it depends on the machine's cores (reported with it) and
the load-generating processes share them with the emulator.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from bench.report import figure, pct, r
from cfai.client import Client
from cfai.compare import Plan, Record, Runner
from cfai.config import local_connection
from cfai.locust_engine import read_locust_records, run_locally

MODEL = "@cf/huggingface/distilbert-sst-2-int8"
BODY = {"text": "A cache hit should be cheap to generate load for."}
CONCURRENCY = 16


def _plan(n: int) -> Plan:
    return Plan(model=MODEL, body=BODY, routes=("gateway",), n=n, warmup=CONCURRENCY, concurrency=CONCURRENCY,
                cache_ttl=300, name="bench locust_rate")


def _rate(records: list[Record]) -> dict[str, Any]:
    measured = [x for x in records if not x.warmup]
    hits = [x for x in measured if x.ok and x.cache_status == "HIT"]
    start = min(x.actual_start_s for x in measured)
    end = max(x.actual_start_s + (x.total_ms or 0) / 1000 for x in measured)
    wall = end - start
    return {"measured": len(measured), "hits": len(hits), "errors": sum(1 for x in measured if not x.ok),
            "wall_s": r(wall), "rps": r(len(measured) / wall, 1) if wall > 0 else float("nan"),
            "hit_p50_ms": r(pct([x.total_ms for x in hits], 50))}


def measure(base_url: str, n: int = 2000, workers: int = 2) -> dict[str, dict[str, Any]]:
    conn = local_connection(base_url)
    with Client(conn, pool_size=CONCURRENCY) as client:
        builtin = _rate(Runner(client, _plan(n)).run().records)
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as work:
        local = run_locally(_plan(n), conn, run_id="bench-locust", workers=workers, work_dir=work)
        locust = _rate(read_locust_records(local.records_path).record_objects())
    common = {"model": MODEL, "route": "gateway (identical body: cache hits)", "concurrency": CONCURRENCY,
              "cpu_count": os.cpu_count(), "what": "measured requests / measured wall time, from the records"}
    ok = not (builtin["errors"] or locust["errors"])
    return {
        "locust_2workers_rps": figure(locust["rps"] if ok else float("nan"), "req/s", None, "track",
                                      {**common, "workers": workers, "locust": locust, "builtin": builtin}),
        "runner_hits_rps": figure(builtin["rps"] if ok else float("nan"), "req/s", None, "track",
                                  {**common, "builtin": builtin}),
    }


if __name__ == "__main__":  # python -m bench.locust_rate [BASE_URL]: against a running emulator
    import json
    import sys

    from bench.emulator_proc import EmulatorProcess

    if len(sys.argv) > 1:
        print(json.dumps(measure(sys.argv[1]), indent=2))
    else:
        with EmulatorProcess("--allow-faults") as proc:
            print(json.dumps(measure(proc.base_url, n=int(os.environ.get("BENCH_N", "2000"))), indent=2))

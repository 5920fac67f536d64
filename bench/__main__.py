"""`python -m bench [--quick] [--out bench/results.json]`: measure, write results.json, print it.

Exit status 1 when any figure misses its target, so `make bench` is honest; 0 otherwise.

The emulator runs as a child process by default. In-process (`--in-process`), its event loop shares this
process's GIL with the measuring loops: each request's server half then waits for the client's Python code
and the other way round, which inflates the client's timed windows with time that belongs to neither (the
two ways are compared in the README's Benchmarks section). A child process is also what a user runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    classify_page,
    client_overhead,
    emulator_rps,
    gateway_cache,
    history_page,
    locust_rate,
    runner_concurrency,
    stats_speed,
)
from bench.emulator_proc import EmulatorProcess
from bench.report import all_pass, json_safe, machine_info

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Sizes:
    overhead_per_loop: int
    overhead_cpu_per_loop: int
    misses: int
    hits_per_miss: int
    runner_n1: int
    runner_n16: int
    stats_records: int
    stats_repeats: int
    rps_seconds: float
    history_records: int
    history_repeats: int
    classify_rows: int = 100_000
    classify_repeats: int = 3
    locust_n: int = 2000  # measured cache hits per engine (locust_2workers_rps, runner_hits_rps)


FULL = Sizes(2000, 500, 20, 20, 40, 480, 100_000, 3, 4.0, 100_000, 3, 100_000, 3, 2000)
QUICK = Sizes(200, 100, 3, 10, 10, 96, 100_000, 1, 1.0, 5_000, 1, 5_000, 1, 200)


@dataclass(frozen=True)
class Emulator:
    base_url: str
    pid: int | None  # the child's pid; None in-process (no separate CPU accounting)


@contextmanager
def emulator(in_process: bool) -> Iterator[Emulator]:
    # Faults allowed: the runner figure needs x-emulator-delay-ms. Speed 1: realistic model latencies.
    if in_process:
        from cfai.emulator import start_emulator

        handle = start_emulator(allow_faults=True, rate_limits=False)
        try:
            yield Emulator(handle.base_url, None)
        finally:
            handle.stop()
    else:
        with EmulatorProcess("--allow-faults", "--no-rate-limits") as proc:
            yield Emulator(proc.base_url, proc.pid)


def run(sizes: Sizes, in_process: bool, only: set[str] | None) -> dict[str, Any]:
    s = sizes

    def wanted(*names: str) -> bool:
        return only is None or any(n in only for n in names)

    figures: dict[str, dict[str, Any]] = {}
    steps: list[tuple[tuple[str, ...], Callable[[Emulator], dict[str, dict[str, Any]]]]] = [
        (("client_timing_overhead_ms",),
         lambda e: client_overhead.measure(e.base_url, s.overhead_per_loop, cpu_per_loop=s.overhead_cpu_per_loop)),
        (("gateway_hit_p50_ms", "gateway_miss_p50_ms", "hit_speedup"),
         lambda e: gateway_cache.measure(e.base_url, s.misses, s.hits_per_miss)),
        (("runner_concurrency16_speedup",),
         lambda e: runner_concurrency.measure(e.base_url, s.runner_n1, s.runner_n16)),
        (("locust_2workers_rps", "runner_hits_rps"), lambda e: locust_rate.measure(e.base_url, s.locust_n, workers=2)),
        # Last: it floods the emulator's logs and connection table.
        (("emulator_rps",), lambda e: emulator_rps.measure(e.base_url, s.rps_seconds, e.pid)),
    ]
    with emulator(in_process) as emu:
        for names, step in steps:
            if wanted(*names):
                print(f"measuring {', '.join(names)} ...", file=sys.stderr, flush=True)
                figures.update(step(emu))
    if wanted("stats_100k_s"):  # no network: after the emulator is gone, so it has the CPU to itself
        print("measuring stats_100k_s ...", file=sys.stderr, flush=True)
        figures.update(stats_speed.measure(s.stats_records, s.stats_repeats))
    if wanted("history_first_load_s", "history_rerun_s"):  # in-process AppTest, no network
        print("measuring history_first_load_s, history_rerun_s ...", file=sys.stderr, flush=True)
        figures.update(history_page.measure(s.history_records, s.history_repeats))
    if wanted("classify_rerun_s"):  # in-process AppTest, no network
        print("measuring classify_rerun_s ...", file=sys.stderr, flush=True)
        figures.update(classify_page.measure(s.classify_rows, s.classify_repeats))
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="Workers AI Lab benchmarks")
    p.add_argument("--quick", action="store_true", help="small counts: a smoke run, figures not comparable")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results file (default {DEFAULT_OUT})")
    p.add_argument("--in-process", action="store_true",
                   help="run the emulator in this process instead of a child process (for comparison)")
    p.add_argument("--only", default=None, help="comma-separated figure names to measure")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = {n.strip() for n in args.only.split(",")} if args.only else None
    machine = machine_info()
    started = time.time()
    figures = run(QUICK if args.quick else FULL, args.in_process, only)
    results = {
        "machine": machine,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "quick": args.quick,
        "emulator": "in-process" if args.in_process else "child process (python -m cfai.emulator --allow-faults)",
        "figures": figures,
        "all_pass": all_pass(figures),
    }
    text = json.dumps(json_safe(results), indent=2, allow_nan=False, default=str)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if results["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())

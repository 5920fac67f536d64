"""emulator_rps: requests per second the emulator serves on gateway cache hits, 32 clients at once.

32 keep-alive `http.client` connections (the lightest Python client), one per thread, spread over 2
load-generator processes (16 threads each), send the same cached request for a fixed time. With all 32
threads in the measuring process they share its GIL, and in some runs the load generator rather than the
emulator set the pace (1,100-1,300/s with the emulator at 0.75 of a core); two processes keep the emulator
busy. Tracked, no target: it depends on the machine. The emulator's CPU use over the window says whether it
was the bottleneck (it is one event loop, so about 1.0 core means saturated).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from bench.report import figure, r
from cfai.config import local_connection

MODEL = "@cf/huggingface/distilbert-sst-2-int8"
BODY = json.dumps({"text": "Thirty-two clients ask the same thing."}, separators=(",", ":")).encode()
CONNECTIONS = 32
PROCESSES = 2
TIMEOUT_S = 60.0


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_process(url: str, token: str, threads: int, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """One load-generator process: `threads` connections, warmed up, then `seconds` of requests after `go`."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    counts, errors = [0] * threads, [0] * threads
    warmed = threading.Barrier(threads + 1, timeout=TIMEOUT_S)

    def worker(i: int) -> None:
        c = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
        try:
            try:
                c.request("POST", parts.path, body=BODY, headers=headers)  # connect and warm up, unclocked
                c.getresponse().read()
            except BaseException:
                warmed.abort()  # fail now rather than after the barrier's timeout
                raise
            warmed.wait()
            go.wait(TIMEOUT_S)
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                c.request("POST", parts.path, body=BODY, headers=headers)
                resp = c.getresponse()
                resp.read()
                counts[i] += 1
                errors[i] += resp.status != 200 or resp.getheader("cf-aig-cache-status") != "HIT"
        finally:
            c.close()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    warmed.wait()
    ready.wait(TIMEOUT_S)  # every process warmed up: the parent may start the clock
    go.wait(TIMEOUT_S)
    start, cpu0 = time.perf_counter(), time.process_time()
    for t in pool:
        t.join(seconds + TIMEOUT_S)
    out.put({"requests": sum(counts), "errors": sum(errors), "elapsed": time.perf_counter() - start,
             "cpu_s": time.process_time() - cpu0})


def measure(base_url: str, seconds: float = 4.0, emulator_pid: int | None = None,
            processes: int = PROCESSES) -> dict[str, dict[str, Any]]:
    conn = local_connection(base_url)
    ctx = mp.get_context("spawn")  # no fork of a process that already runs threads
    ready, go, out = ctx.Barrier(processes + 1), ctx.Event(), ctx.Queue()
    threads = CONNECTIONS // processes
    procs = [ctx.Process(target=_load_process, daemon=True,
                         args=(conn.run_url(MODEL, "gateway"), conn.api_token, threads, seconds, ready, go, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        ready.wait(TIMEOUT_S)
        cpu0 = _cpu_s(emulator_pid) if emulator_pid else None
        t0 = time.perf_counter()
        go.set()
        reports = [out.get(timeout=seconds + TIMEOUT_S) for _ in procs]
        emu_s = _cpu_s(emulator_pid) - cpu0 if emulator_pid and cpu0 is not None else None
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            p.join(TIMEOUT_S)
            if p.is_alive():
                p.terminate()  # our own child, by its handle
    elapsed = max(rep["elapsed"] for rep in reports)
    total = sum(rep["requests"] for rep in reports)
    details = {
        "endpoint": f"POST gateway /workers-ai/{MODEL} (cache HIT)",
        "connections": CONNECTIONS,
        "load_processes": processes,
        "seconds": r(elapsed, 3),
        "requests": total,
        "errors_or_not_hit": sum(rep["errors"] for rep in reports),
        "load_generator_cpu_cores": r(sum(rep["cpu_s"] for rep in reports) / elapsed, 2),
        "emulator_cpu_cores": r(emu_s / wall, 2) if emu_s is not None else None,
        "emulator_process": ("a child process: its CPU is its own (read from /proc) and it shares no GIL "
                             "with measuring code") if emulator_pid else "in-process (no separate CPU figure)",
    }
    return {"emulator_rps": figure(total / elapsed, "requests/s", None, "track", details, digits=1)}

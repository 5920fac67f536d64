"""`python -m bench --quick` runs end to end and writes results.json in the documented shape.

Only the shape is checked: whether a figure meets its target depends on the machine, and speed targets
belong in the benchmark, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {
    "client_timing_overhead_ms": ("ms", "<="),
    "gateway_hit_p50_ms": ("ms", "<="),
    "gateway_miss_p50_ms": ("ms", "track"),
    "hit_speedup": ("x", ">="),
    "runner_concurrency16_speedup": ("x", ">="),
    "stats_100k_s": ("s", "<"),
    "emulator_rps": ("requests/s", "track"),
    "history_first_load_s": ("s", "<"),
    "history_rerun_s": ("s", "<"),
    "classify_rerun_s": ("s", "<"),
    "locust_2workers_rps": ("req/s", "track"),
    "runner_hits_rps": ("req/s", "track"),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    return proc, out


def test_quick_bench_writes_results_in_the_documented_shape(quick_run):
    proc, out = quick_run
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1 = a target missed, still a valid run
    data = json.loads(out.read_text())
    assert json.loads(proc.stdout) == data  # what it prints is what it writes
    assert {"machine", "timestamp", "figures", "all_pass"} <= data.keys()
    assert {"cpu_count", "python", "platform"} <= data["machine"].keys()
    assert set(data["figures"]) == set(FIGURES)
    for name, (unit, comparison) in FIGURES.items():
        figure = data["figures"][name]
        assert {"value", "unit", "target", "comparison", "pass", "details"} <= figure.keys(), name
        assert isinstance(figure["value"], int | float), (name, figure["value"])
        assert (figure["unit"], figure["comparison"]) == (unit, comparison), name
        assert isinstance(figure["details"], dict) and figure["details"], name
        if comparison == "track":
            assert figure["pass"] is None and figure["target"] is None, name
        else:
            assert isinstance(figure["pass"], bool) and isinstance(figure["target"], int | float), name


def test_exit_status_follows_all_pass(quick_run):
    proc, out = quick_run
    data = json.loads(out.read_text())
    assert data["all_pass"] == all(f["pass"] is not False for f in data["figures"].values())
    assert proc.returncode == (0 if data["all_pass"] else 1)


def test_no_request_failed_in_the_quick_run(quick_run):
    _, out = quick_run
    figures = json.loads(out.read_text())["figures"]
    assert figures["client_timing_overhead_ms"]["details"]["responses_not_hit"] == 0
    assert figures["gateway_hit_p50_ms"]["details"]["unexpected_responses"] == []
    runner = figures["runner_concurrency16_speedup"]["details"]
    assert runner["concurrency_1"]["errors"] == runner["concurrency_16"]["errors"] == 0
    assert figures["emulator_rps"]["details"]["errors_or_not_hit"] == 0
    assert figures["history_rerun_s"]["details"]["exceptions"] == []  # the page ran cleanly throughout
    locust = figures["locust_2workers_rps"]["details"]
    assert locust["workers"] == 2 and locust["cpu_count"] and locust["locust"]["errors"] == 0
    assert locust["locust"]["hits"] == locust["locust"]["measured"] > 0  # all cache hits, as the figure says

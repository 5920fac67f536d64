"""`python -m cfai compare`: JSON summary equal to the stored run's summary, table output, exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from cfai.cli import main
from cfai.stats import route_summary
from cfai.store import Store
from tests.conftest import ROOT

CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("CLOUDFLARE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CFAI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "history.sqlite3"


def emulator_args(emulator) -> list[str]:
    return ["--api-base", f"{emulator.base_url}/client/v4", "--gateway-base", f"{emulator.base_url}/v1"]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_summary_matches_the_stored_run(emulator, clean_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "cfai", "compare", *emulator_args(emulator), "--model", "@cf/meta/llama-3.1-8b-instruct",
         "--prompt", "cli test prompt", "--max-tokens", "8", "--n", "8", "--warmup", "1", "--concurrency", "2",
         "--routes", "direct,gateway", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["status"] == "complete"
    assert printed["routes"]["gateway"]["hit_rate"] == 1.0 and printed["routes"]["direct"]["n"] == 8
    assert printed["speedup"]["median_ratio"] is not None and len(printed["speedup"]["ci95"]) == 2
    with Store(clean_env) as store:
        stored = route_summary(store.load_records(printed["run_id"]))
        assert store.run_info(printed["run_id"]).record_count == 18
    assert {k: printed[k] for k in stored} == stored


def test_table_output_and_classification_body(emulator, clean_env):
    code, out, err = run_cli("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "lovely",
                             "--n", "3", "--routes", "direct,gateway,gateway-skip", "--cache-mode", "unique")
    assert code == 0, err
    assert "p50" in out.splitlines()[2].split() and " ms" in out and "gateway-skip" in out and "not computable" in out
    assert "requests" in err  # progress on stderr
    with Store(clean_env) as store:
        runs = store.list_runs()
        assert len(runs) == 1 and runs.loc[0, "status"] == "complete"
        assert store.get_plan(runs.loc[0, "run_id"]).body == {"text": "lovely"}


def test_open_loop_and_raw_body(emulator, clean_env):
    code, out, err = run_cli("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--body", '{"text": "x"}',
                             "--n", "3", "--warmup", "0", "--rate", "50", "--routes", "direct", "--json", "--quiet")
    assert code == 0, err
    printed = json.loads(out)
    assert err == "" and printed["routes"]["direct"]["n"] == 3
    # Open loop: how late requests started, and latency from the scheduled start, in the same JSON the page shows.
    direct = printed["routes"]["direct"]
    assert direct["start_lag_p99_ms"] is not None and direct["start_lag_p50_ms"] >= 0
    assert direct["from_intended_p99_ms"] >= direct["p99_ms"]
    with Store(clean_env) as store:
        assert {k: printed[k] for k in ("routes", "speedup")} == {
            k: v for k, v in route_summary(store.load_records(printed["run_id"])).items() if k in ("routes", "speedup")}


def test_a_run_where_everything_fails_exits_1(emulator, clean_env):
    code, out, _ = run_cli("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "x", "--n", "2",
                           "--warmup", "0", "--header", "x-emulator-fault:500", "--json", "--quiet")
    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "failed" and summary["routes"]["direct"]["errors"] == 2


@pytest.mark.parametrize("argv", [
    ["compare", "--n", "0", "--local"],
    ["compare", "--concurrency", "65", "--local"],
    ["compare", "--body", "not json", "--local"],
    ["compare", "--body", "[1, 2]", "--local"],
    ["compare", "--routes", "direct,sideways", "--local"],
    ["compare", "--header", "no-colon", "--local"],
    ["compare", "--prompt", "a", "--text", "b"],
    ["compare", "--bogus"],
    [],
])
def test_bad_arguments_exit_2(argv, clean_env, capsys):
    code, _, _ = run_cli(*argv)
    assert code == 2


def test_missing_credentials_exit_2_with_a_hint(clean_env):
    code, out, err = run_cli("compare")
    assert code == 2 and out == ""
    assert "CLOUDFLARE_ACCOUNT_ID" in err and "--local" in err


def test_local_starts_an_in_process_emulator(clean_env):
    code, out, err = run_cli("compare", "--local", "--speed", "100", "--model", CLASSIFIER, "--text", "fine",
                             "--n", "2", "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["routes"]["gateway"]["hit_rate"] == 1.0
    with Store(clean_env) as store:
        assert store.run_info(summary["run_id"]).connection_label.startswith("local")

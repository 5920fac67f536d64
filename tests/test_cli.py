"""`python -m cfai compare`: JSON summary equal to the stored run's summary, table output, exit codes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from cfai.cli import main
from cfai.errors import ServerError
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
    # stderr holds at most the start-lag warning (a busy machine may start a request late), never an error.
    assert (err == "" or err.startswith("warning: Requests started up to")) and printed["routes"]["direct"]["n"] == 3
    # Open loop: how late requests started, and latency from the scheduled start, in the same JSON the page shows.
    direct = printed["routes"]["direct"]
    assert direct["start_lag_p99_ms"] is not None and direct["start_lag_p50_ms"] >= 0
    assert direct["from_intended_p99_ms"] >= direct["p99_ms"]
    with Store(clean_env) as store:
        assert {k: printed[k] for k in ("routes", "speedup")} == {
            k: v for k, v in route_summary(store.load_records(printed["run_id"])).items() if k in ("routes", "speedup")}


def test_a_run_where_everything_fails_exits_1_and_says_why(emulator, clean_env):
    code, out, err = run_cli("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "x", "--n", "2",
                             "--warmup", "0", "--routes", "direct", "--header", "x-emulator-fault:500", "--json",
                             "--quiet")
    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "failed" and summary["routes"]["direct"]["errors"] == 2
    failure = summary["failure"]
    assert failure["kind"] == "server_error" and failure["failed"] == failure["count"] == 2 and failure["status"] == 500
    assert "no measured request succeeded: 2 of 2 requests failed; most common (2):" in err
    assert "[server_error" in err and ServerError.default_hint in err  # the error, its kind/code, its hint


def test_deadline_is_in_the_help_the_run_header_and_the_summary(emulator, clean_env, capsys):
    from cfai.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["compare"].format_help().split())
    assert "total deadline per request" in help_text
    code, out, err = run_cli("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "x", "--n", "1",
                             "--warmup", "0", "--routes", "direct", "--timeout", "7.5")
    assert code == 0, err
    assert "deadline 7.5 s per request" in err.splitlines()[0]  # the run header, before any request
    assert "deadline 7.5 s per request" in out.splitlines()[0]


def test_timeout_ends_a_trickling_request_by_its_deadline(clean_env):
    from tests.hostile_server import HostileServer

    with HostileServer("trickle:0.3") as server:
        code, out, err = run_cli("compare", "--api-base", f"{server.base_url}/client/v4", "--gateway-base",
                                 f"{server.base_url}/v1", "--model", CLASSIFIER, "--text", "x", "--n", "1",
                                 "--warmup", "0", "--routes", "direct", "--timeout", "1", "--json", "--quiet")
    assert code == 1
    summary = json.loads(out)
    assert summary["failure"]["kind"] == "deadline" and "1 s deadline" in summary["failure"]["message"]


def test_api_base_uses_the_token_that_is_set(clean_env, monkeypatch):
    from cfai.emulator import start_emulator

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "env-token-123456")  # no CLOUDFLARE_ACCOUNT_ID on purpose
    with start_emulator(port=0, speed=100, api_token="env-token-123456") as emu:
        code, out, err = run_cli("compare", *emulator_args(emu), "--model", CLASSIFIER, "--text", "x", "--n", "1",
                                 "--warmup", "0", "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["status"] == "complete"


def test_api_base_elsewhere_without_a_token_is_refused_before_sending(clean_env):
    from tests.hostile_server import HostileServer

    with HostileServer("ok") as server:
        # A base that is not this machine: refused with a message (nothing listens there; nothing is sent).
        code, out, err = run_cli("compare", "--api-base", "http://192.0.2.10/client/v4", "--gateway-base",
                                 f"{server.base_url}/v1", "--model", CLASSIFIER, "--text", "x", "--n", "1")
        assert code == 2 and out == "" and server.requests == []
    assert "192.0.2.10" in err and "CLOUDFLARE_API_TOKEN" in err


@pytest.mark.parametrize("argv", [
    ["compare", "--n", "0", "--local"],
    ["compare", "--concurrency", "65", "--local"],
    ["compare", "--body", "not json", "--local"],
    ["compare", "--body", "[1, 2]", "--local"],
    ["compare", "--routes", "direct,sideways", "--local"],
    ["compare", "--header", "no-colon", "--local"],
    ["compare", "--header", "x bad name:1", "--local"],
    ["compare", "--header", "x-ok:caf\u20ac", "--local"],
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


# --- Ctrl-C: a subprocess sent SIGINT ---------------------------------------------------------------------
def _start_cli(base_url: str, tmp_path, *extra: str) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env["CFAI_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfai", "compare", "--api-base", f"{base_url}/client/v4", "--gateway-base",
         f"{base_url}/v1", "--model", CLASSIFIER, "--text", "x", "--routes", "direct", "--warmup", "0", "--json",
         *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    err: list[str] = []

    def read_stderr() -> None:
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            err.append(chunk.decode())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    return proc, err, reader


def _wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen, err: list[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # readiness: what the CLI printed or the server saw, not a fixed sleep
        assert proc.poll() is None, "".join(err)
        assert time.monotonic() < deadline, f"{what} never happened: {''.join(err)!r}"
        time.sleep(0.02)


def _finish(proc: subprocess.Popen, reader: threading.Thread, seconds: float) -> tuple[str, int]:
    proc.wait(timeout=seconds)
    out = proc.stdout.read().decode()
    reader.join(10)  # all of stderr is read
    return out, proc.returncode


def test_ctrl_c_prints_the_summary_and_stores_the_run_as_cancelled(emulator, clean_env, tmp_path):
    proc, err, reader = _start_cli(emulator.base_url, tmp_path, "--n", "200", "--concurrency", "2",
                                   "--header", "x-emulator-delay-ms:100")
    _wait_for(lambda: "requests" in "".join(err), "progress", proc, err)  # some measured, others in flight
    proc.send_signal(signal.SIGINT)
    out, code = _finish(proc, reader, 60)
    errors = "".join(err)
    assert code == 130, errors
    assert "Traceback" not in errors and "KeyError" not in errors
    summary = json.loads(out)
    assert summary["status"] == "cancelled"
    measured = summary["routes"]["direct"]["n"]
    assert 0 < measured < 200
    with Store(clean_env) as store:
        run = store.run_info(summary["run_id"])
        assert run.status == "cancelled" and run.record_count == measured  # in-flight ones finished and kept
    assert f"cancelled: {measured} request(s) measured" in errors


def test_a_second_ctrl_c_stops_waiting_for_requests_in_flight(clean_env, tmp_path):
    from tests.hostile_server import HostileServer

    with HostileServer("stall") as server:  # answers nothing: the request stays in flight
        proc, err, reader = _start_cli(server.base_url, tmp_path, "--n", "5", "--timeout", "60")
        _wait_for(lambda: len(server.requests) >= 1, "the first request", proc, err)
        proc.send_signal(signal.SIGINT)
        _wait_for(lambda: "Press Ctrl-C again" in "".join(err), "the cancelling notice", proc, err)
        proc.send_signal(signal.SIGINT)
        out, code = _finish(proc, reader, 15)  # long before the 60 s deadline of the request in flight
    errors = "".join(err)
    assert code == 130, errors
    assert "Traceback" not in errors and "still in flight were not recorded" in errors
    summary = json.loads(out)
    assert summary["status"] == "cancelled" and len(server.requests) == 1  # nothing new was sent
    with Store(clean_env) as store:
        assert store.run_info(summary["run_id"]).status == "cancelled"


# --- the lab's commands and cost, from the `cfai` command itself -----------------------------------------------
def test_the_cfai_command_has_the_lab_commands(emulator, clean_env):
    """`cfai sweep`, `cfai runs ...` and `--engine` are registered on cfai.cli's own parser (the console
    script's entry point), not only on cfai.cli_lab's."""
    code, out, err = run_cli("sweep", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "x", "--n", "2",
                             "--concurrencies", "1,2", "--json", "--quiet")
    assert code == 0, err
    swept = json.loads(out)
    assert [s["load"] for s in swept["sweep"]["steps"] if s["route"] == "direct"] == [1, 2]
    code, out, err = run_cli("runs", "list", "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == [swept["run_id"]]
    code, out, err = run_cli("runs", "show", swept["run_id"], "--json")
    assert code == 0 and json.loads(out)["sweep"]["steps"]
    code, _, err = run_cli("compare", "--engine", "builtin", *emulator_args(emulator), "--model", CLASSIFIER,
                           "--text", "x", "--n", "1", "--write-locustfile", "x.py", "--quiet")
    assert code == 2 and "--write-locustfile needs --engine locust" in err


def test_compare_json_carries_the_cost_with_the_catalogue_price(emulator, clean_env):
    from cfai.pricing import ModelPrice

    code, out, err = run_cli("compare", *emulator_args(emulator), "--prompt", "Price me", "--max-tokens", "16",
                             "--n", "3", "--routes", "direct,gateway,unified", "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(out)
    cost = summary["cost"]
    assert cost["price_source"] == "catalogue" and cost["price"]["source"] == "catalogue"
    price = ModelPrice.from_dict(cost["price"])
    with Store(clean_env) as store:
        records = store.load_records(summary["run_id"])
    direct = records.loc[(records["route"] == "direct") & ~records["warmup"]]
    expected = (direct["tokens_in"] * price.input_per_m + direct["tokens_out"] * price.output_per_m) / 1e6
    assert cost["routes"]["direct"]["cost_total_usd"] == pytest.approx(float(expected.sum()))
    assert set(cost["cache_saved_by_route"]) == {"gateway", "unified"}
    assert any("list price" in n.lower() or "invoice" in n.lower() for n in cost["notes"])
    code, out, _ = run_cli("compare", *emulator_args(emulator), "--prompt", "Price me", "--max-tokens", "16",
                           "--n", "1", "--routes", "direct", "--quiet")
    assert code == 0 and "cost (list price: $" in out


def test_a_custom_price_is_used_and_stored_with_the_run(emulator, clean_env):
    code, out, err = run_cli("compare", *emulator_args(emulator), "--prompt", "Contract price", "--max-tokens", "8",
                             "--n", "2", "--routes", "direct", "--price-in", "1", "--price-out", "2", "--json",
                             "--quiet")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cost"]["price_source"] == "custom"
    assert (summary["cost"]["price"]["input_per_m"], summary["cost"]["price"]["output_per_m"]) == (1.0, 2.0)
    with Store(clean_env) as store:
        plan = store.get_plan(summary["run_id"])
        records = store.load_records(summary["run_id"])
        exported = json.loads(store.export_run(summary["run_id"], "json"))
        copy = store.import_run(json.dumps(exported).encode(), "json")
        assert store.get_plan(copy).price == plan.price  # the price travels with an export
    assert plan.price["source"] == "custom" and plan.price["output_per_m"] == 2.0
    measured = records.loc[~records["warmup"]]
    expected = float((measured["tokens_in"] * 1 + measured["tokens_out"] * 2).sum() / 1e6)
    assert summary["cost"]["routes"]["direct"]["cost_total_usd"] == pytest.approx(expected)
    code, _, err = run_cli("compare", *emulator_args(emulator), "--n", "1", "--price-cached-in", "1", "--quiet")
    assert code == 2 and "needs an input or an output price" in err


# --- a history that fails during a run (issue 10.10) -------------------------------------------------------
def test_a_full_disk_mid_run_keeps_every_record_and_leaves_an_importable_file(emulator, tmp_path, monkeypatch):
    from cfai.cli import _RunWriter
    from cfai.compare import Runner
    from cfai.config import local_connection
    from cfai.plan import Plan

    monkeypatch.chdir(tmp_path)
    store = Store(tmp_path / "history.sqlite3")
    plan = Plan(model=CLASSIFIER, body={"text": "good"}, routes=("direct",), n=300, warmup=0, concurrency=8)
    from cfai.client import Client

    with Client(local_connection(emulator.base_url)) as client:
        runner = Runner(client, plan)
        writer = _RunWriter(store, runner.run_id)
        writer.begin(plan, "local")
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        result = runner.run(on_record=writer.add)
        assert not writer.finish(cancelled=False)  # the history could not take the run...
        assert len(writer.records) == 300  # ...and nothing measured was lost
        assert "full" in writer.error and str(store.path) in writer.error
        saved = writer.export(plan, client.connection, "complete", result)
    assert saved is not None and saved.parent == tmp_path
    with Store(tmp_path / "other.sqlite3") as other:
        run_id = other.import_run(saved.read_bytes(), "json")
        assert other.run_info(run_id).status == "complete" and len(other.load_records(run_id)) == 300
    store._db.execute("PRAGMA max_page_count = 1073741823")  # space again: the next finish stores it all
    assert writer.finish(cancelled=False) and writer.error is None
    assert len(store.load_records(runner.run_id)) == 300
    store.close()


def test_a_history_that_cannot_be_opened_is_one_clear_line(emulator, tmp_path):
    bad = tmp_path / "history.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    code, out, err = run_cli("compare", *emulator_args(emulator), "--db", str(bad), "--text", "x", "--n", "1", "--quiet")
    assert code == 1 and "Traceback" not in err
    assert str(bad) in err and err.startswith("error: ")

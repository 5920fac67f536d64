"""`cfai sweep` and `cfai runs ...` (cfai.cli_lab), called through the lab parser with a temp data dir."""

from __future__ import annotations

import io
import json

import pytest

from cfai.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cfai.cli_lab import main

CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CFAI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def call(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err, env or {})
    return code, out.getvalue(), err.getvalue()


def emulator_args(emulator) -> list[str]:
    return ["--api-base", f"{emulator.base_url}/client/v4", "--gateway-base", f"{emulator.base_url}/v1"]


def compare_once(emulator, *extra: str) -> str:
    code, out, err = call("compare", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "fine",
                          "--n", "3", "--json", "--quiet", *extra)
    assert code == EXIT_OK, err
    return json.loads(out)["run_id"]


def test_runs_list_show_export_import_delete(emulator, data_dir, tmp_path):
    run_id = compare_once(emulator, "--name", "first")
    code, out, _ = call("runs", "list", "--json")
    assert code == EXIT_OK
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [run_id] and rows[0]["name"] == "first" and rows[0]["records"] == 8

    code, out, _ = call("runs", "list")
    assert code == EXIT_OK and run_id in out and "first" in out

    code, out, _ = call("runs", "show", run_id, "--json")
    shown = json.loads(out)
    assert code == EXIT_OK and shown["routes"]["direct"]["n"] == 3 and "sweep" not in shown
    code, out, _ = call("runs", "show", run_id)
    assert code == EXIT_OK and "speed-up" in out

    export = tmp_path / "run.json"
    code, _, err = call("runs", "export", run_id, "--out", str(export))
    assert code == EXIT_OK and export.stat().st_size > 0
    code, out, _ = call("runs", "export", run_id, "--format", "csv")
    assert code == EXIT_OK and out.splitlines()[0].startswith("run_id,seq,route")

    code, out, _ = call("runs", "import", str(export), "--json")
    assert code == EXIT_OK
    imported = json.loads(out)["run_id"]
    assert imported != run_id  # the id was taken: the import gets a fresh one

    code, out, _ = call("runs", "delete", run_id, imported, "--json")
    assert code == EXIT_OK and json.loads(out)["deleted"] == [run_id, imported]
    assert json.loads(call("runs", "list", "--json")[1]) == []


def test_runs_errors_are_usage_errors_and_lose_nothing(emulator, data_dir, tmp_path):
    run_id = compare_once(emulator)
    code, _, err = call("runs", "show", "nope")
    assert code == EXIT_USAGE and "No stored run 'nope'" in err
    code, _, err = call("runs", "delete", run_id, "nope")
    assert code == EXIT_USAGE and "nothing was deleted" in err
    assert len(json.loads(call("runs", "list", "--json")[1])) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    code, _, err = call("runs", "import", str(bad))
    assert code == EXIT_USAGE and "Not a Workers AI Lab run export" in err
    code, _, err = call("runs", "import", str(tmp_path / "missing.json"))
    assert code == EXIT_USAGE and "Cannot read" in err
    code, _, err = call("runs", "import-locust", str(bad))
    assert code == EXIT_USAGE and "not a Locust records file" in err
    assert len(json.loads(call("runs", "list", "--json")[1])) == 1


def test_sweep_runs_stores_and_shows_steps(emulator, data_dir):
    code, out, err = call("sweep", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "sweep",
                          "--concurrencies", "1,2,4", "--n", "4", "--warmup", "1", "--json")
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert summary["status"] == "complete" and summary["engine"] == "builtin"
    steps = summary["sweep"]["steps"]
    assert [(s["step"], s["load"]) for s in steps if s["route"] == "direct"] == [(0, 1), (1, 2), (2, 4)]
    assert all(s["requests"] == 4 and s["achieved_rps"] > 0 for s in steps)
    assert "step 3/3: load 4" in err
    code, out, _ = call("runs", "show", summary["run_id"], "--json")
    assert code == EXIT_OK and json.loads(out)["sweep"]["steps"] == steps
    code, out, _ = call("runs", "show", summary["run_id"])
    assert "knee rule" in out


@pytest.mark.parametrize("argv, message", [
    (["--concurrencies", "1,2", "--rates", "3"], "one of the two"),
    ([], "one of the two"),
    (["--concurrencies", "1,x"], "--concurrencies: 'x' is not a whole number"),
    (["--concurrencies", "1,2", "--concurrency", "4"], "not --concurrency/--rate"),
    (["--concurrencies", "1,99"], "between 1 and 64"),
    (["--concurrencies", "1", "--engine", "locust", "--workers", "0"], "--workers"),
])
def test_bad_sweep_arguments(emulator, data_dir, argv, message):
    code, _, err = call("sweep", *emulator_args(emulator), *argv)
    assert code == EXIT_USAGE and message in err


def test_a_sweep_that_fails_everywhere_exits_1(emulator, data_dir):
    code, out, _ = call("sweep", *emulator_args(emulator), "--model", CLASSIFIER, "--text", "x", "--routes",
                        "direct", "--concurrencies", "1,2", "--n", "2", "--warmup", "0",
                        "--header", "x-emulator-fault:500", "--json", "--quiet")
    assert code == EXIT_FAILED and json.loads(out)["status"] == "failed"


def test_write_locustfile_prints_commands_and_keeps_the_token_out(data_dir, tmp_path):
    target = tmp_path / "lf.py"
    env = {"CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef", "CLOUDFLARE_API_TOKEN": "canary-token-1234",
           "CLOUDFLARE_GATEWAY_ID": "my-gw"}
    code, out, err = call("compare", "--engine", "locust", "--write-locustfile", str(target), "--workers", "3",
                          "--concurrency", "6", "--json", env=env)
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert "--expect-workers 3" in doc["commands"]["master"] and "-u 6" in doc["commands"]["master"]
    assert "--worker --master-host" in doc["commands"]["worker"]
    assert doc["commands"]["import"].startswith("cfai runs import-locust lf.records.jsonl")
    text = target.read_text()
    assert "canary-token-1234" not in text and "canary-token-1234" not in out
    assert "0123456789abcdef0123456789abcdef" in text and "build_user_class" in text
    compile(text, str(target), "exec")
    code, _, err = call("compare", "--write-locustfile", str(target), env=env)
    assert code == EXIT_USAGE and "needs --engine locust" in err

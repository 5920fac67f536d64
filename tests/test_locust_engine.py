"""The Locust engine end to end: a master and two worker processes on 127.0.0.1 against the emulator."""

from __future__ import annotations

import io
import json

import pytest

from cfai.compare import RECORD_COLUMNS, Plan
from cfai.config import Connection, local_connection
from cfai.locust_engine import (
    LocustSettings,
    locustfile_source,
    read_locust_records,
    remote_commands,
    run_locally,
    store_locust_records,
    token_timing_rows,
    users_for,
)
from cfai.store import Store

TEXTGEN = "@cf/meta/llama-3.1-8b-instruct"
CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"


def test_two_workers_run_the_plan_and_land_in_history(emulator, tmp_path):
    plan = Plan(model=TEXTGEN, body={"prompt": "Locust, stream me.", "max_tokens": 8}, routes=("direct", "gateway"),
                n=6, warmup=1, concurrency=4, stream=True, name="locust e2e")
    local = run_locally(plan, local_connection(emulator.base_url), run_id="loc-e2e", workers=2,
                        work_dir=tmp_path, timeout_s=90)
    assert local.returncode == 0, local.log_path.read_text()[-2000:]
    data = read_locust_records(local.records_path)
    assert data.complete and data.footer["workers_done"] == [0, 1]  # both workers ran and reported
    assert sorted(r["seq"] for r in data.records) == list(range(plan.total_requests))
    assert all(r["ok"] for r in data.records), [r["error_message"] for r in data.records if not r["ok"]]
    gateway = [r for r in data.records if r["route"] == "gateway" and not r["warmup"]]
    assert {r["cache_status"] for r in gateway} <= {"HIT", "MISS"} and gateway
    # Streams carry token timing from the worker's own stamps.
    for row in token_timing_rows(data):
        assert row["stream_tokens"] == 8 and row["tpot_ms"] is not None and row["first_answer_ms"] is not None
    # One time line: every start within the run's few seconds, warm-ups first on each worker.
    assert all(0 <= r["actual_start_s"] < 60 for r in data.records)

    with Store(tmp_path / "h.sqlite3") as store:
        run_id = store_locust_records(store, data)
        meta = store.run_info(run_id)
        frame = store.load_records(run_id)
    assert meta.status == "complete" and meta.record_count == plan.total_requests and meta.name == "locust e2e"
    assert list(frame.columns) == list(RECORD_COLUMNS)
    assert frame["ttfb_ms"].notna().all() and frame["total_ms"].notna().all()
    # The history keeps the token timing the workers measured (the same Record fields as the built-in runner).
    assert frame["stream_tokens"].eq(8).all() and frame["tpot_ms"].notna().all()
    assert frame["itl_p99_ms"].notna().all() and frame["first_answer_ms"].notna().all()


def test_the_engine_drives_the_runner_through_its_public_api():
    import inspect

    import cfai.locust_engine as engine

    source = inspect.getsource(engine)
    for private in ("._execute", "._now", "._t0", "._record("):
        assert private not in source, private


def test_compare_and_sweep_with_engine_locust(emulator, tmp_path, monkeypatch):
    from cfai.cli_lab import main

    monkeypatch.setenv("CFAI_DATA_DIR", str(tmp_path / "data"))
    base = ["--api-base", f"{emulator.base_url}/client/v4", "--gateway-base", f"{emulator.base_url}/v1",
            "--model", CLASSIFIER, "--text", "locust", "--engine", "locust", "--workers", "2", "--json", "--quiet"]
    out, err = io.StringIO(), io.StringIO()
    assert main(["compare", *base, "--n", "5", "--concurrency", "2"], out, err, {}) == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["engine"] == "locust" and summary["routes"]["gateway"]["n"] == 5
    assert summary["routes"]["gateway"]["hit_rate"] > 0

    out, err = io.StringIO(), io.StringIO()
    assert main(["sweep", *base, "--n", "3", "--concurrencies", "1,2"], out, err, {}) == 0, err.getvalue()
    swept = json.loads(out.getvalue())
    assert [s["load"] for s in swept["sweep"]["steps"] if s["route"] == "direct"] == [1, 2]
    assert all(s["requests"] == 3 for s in swept["sweep"]["steps"])

    out = io.StringIO()
    assert main(["runs", "list", "--json"], out, io.StringIO(), {}) == 0
    assert {r["run_id"] for r in json.loads(out.getvalue())} == {summary["run_id"], swept["run_id"]}


def test_the_locustfile_is_self_contained_and_secret_free(tmp_path):
    conn = Connection(mode="cloudflare", account_id="0123456789abcdef0123456789abcdef", api_token="canary-9876",
                      gateway_id="gw", gateway_token="gw-canary-5432")
    plan = Plan(model=CLASSIFIER, body={"text": "x"}, extra_headers={"Authorization": "Bearer canary-9876",
                                                                     "x-note": "kept"})
    text = locustfile_source(plan, LocustSettings.of(conn, "r1", 3, "r1.records.jsonl"))
    assert "canary-9876" not in text and "gw-canary-5432" not in text
    assert "x-note" in text and "'account_id': '0123456789abcdef0123456789abcdef'" in text
    namespace: dict = {}
    exec(compile(text.replace("from cfai.locust_engine import build_user_class", "build_user_class = lambda p, s: (p, s)"),
                 "lf", "exec"), namespace)
    plan_back, settings_back = namespace["CfaiUser"]
    assert Plan.from_dict(plan_back).model == CLASSIFIER and settings_back["workers"] == 3
    commands = remote_commands("lf.py", plan, 3, master_host="10.0.0.5")
    assert "--master-host 10.0.0.5" in commands["worker"] and "--headless" in commands["master"]


def test_users_keep_an_open_loop_schedule():
    assert users_for(Plan(model=CLASSIFIER, body={"text": "x"}, concurrency=5)) == 5
    assert users_for(Plan(model=CLASSIFIER, body={"text": "x"}, n=500, rate=100.0)) == 256


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("not json\n", "line 1 is not JSON"),
    ('{"format": "other"}\n', "not a Locust records file"),
    ('{"format": "workers-ai-lab/locust-records", "version": 99}\n', "newer"),
])
def test_bad_records_files_are_refused(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_locust_records(path)


def test_workers_carry_only_the_connections_tokens(emulator, tmp_path):
    """The children inherit the caller's environment; a token in it that the connection does not use (local
    mode's placeholder instead of the user's CLOUDFLARE_API_TOKEN, no gateway token) must not reach a worker,
    which would send it to the connection's base URLs."""
    from tests.recording_proxy import RecordingProxy

    plan = Plan(model=TEXTGEN, body={"prompt": "hi", "max_tokens": 4}, routes=("direct", "gateway"), n=2,
                warmup=0, concurrency=1, name="token scope")
    env = {**__import__("os").environ, "CLOUDFLARE_API_TOKEN": "users-real-api-token",
           "CLOUDFLARE_GATEWAY_TOKEN": "users-real-gateway-token"}
    with RecordingProxy("emu", emulator.base_url) as proxy:
        local = run_locally(plan, local_connection(proxy.base_url), run_id="loc-scope", workers=1,
                            work_dir=tmp_path, timeout_s=90, env=env)
        seen = proxy.everything()
    assert local.returncode == 0, local.log_path.read_text()[-2000:]
    assert len(read_locust_records(local.records_path).records) == plan.total_requests
    assert "users-real-api-token" not in seen and "users-real-gateway-token" not in seen


@pytest.mark.parametrize("name", ["Authorization", "cf-aig-authorization", "Proxy-Authorization", "X-Auth-Key",
                                  "cf-api-token"])
def test_no_credential_header_reaches_a_locustfile_or_a_stored_plan(tmp_path, monkeypatch, name):
    """Every header the client treats as a credential (cfai.errors.SECRET_HEADERS), typed with `--header`, is
    left out of the plan as stored, exported and written into a locustfile, not only the two Bearer ones."""
    from cfai.cli import main

    path = tmp_path / "lf.py"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "t")
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef")
    code = main(["compare", "--engine", "locust", "--write-locustfile", str(path), "--api-base",
                 "http://127.0.0.1:9/client/v4", "--routes", "direct", "--n", "1", "--header", f"{name}: canary-4711",
                 "--header", "x-note: kept"], out=io.StringIO(), err=io.StringIO())
    assert code == 0
    text = path.read_text()
    assert "canary-4711" not in text and "x-note" in text
    assert "canary-4711" not in json.dumps(Plan(model=TEXTGEN, body={"prompt": "x"},
                                                extra_headers={name: "canary-4711"}).to_dict())

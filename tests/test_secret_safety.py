"""Secret safety (issue 7, item 3): a canary token goes through every flow and comes out nowhere.

The app runs in Cloudflare mode (env vars) against emulators on loopback that require the canary as their API
token, so every call succeeds with it; a second emulator requires another token, so the canary is also the
*wrong* token somewhere. Then everything the app produced is searched for the canary, raw and encoded
(URL-encoded, hex, base64 at every alignment): every rendered element (each node's protobuf), the data behind
the download buttons, every SQLite row and file in the data directory, the Python logs of every logger at
DEBUG (the emulators' included), stdout/stderr, the CLI's output, code snippets, error text and the
emulator's gateway logs. Expected hits: zero, the sidebar's password fields included: a token configured on
the server is used there but never sent to the browser as a widget value.

The second test puts a recording proxy in front of two emulators (API base -> A, gateway base -> B) and
watches every outgoing connection of the process: the token goes only to the configured base URLs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests

from cfai.client import Client
from cfai.config import Connection
from cfai.faults import FAULT_KINDS
from tests.recording_proxy import RecordingProxy

ROOT = Path(__file__).resolve().parent.parent
CANARY = "cfai-canary-" + secrets.token_hex(12)
OTHER_TOKEN = "a-token-that-is-not-the-canary"
ACCOUNT = "0123456789abcdef0123456789abcdef"
GATEWAY = "safe-gw"
LLM = "@cf/meta/llama-3.1-8b-instruct"
SST2 = "@cf/huggingface/distilbert-sst-2-int8"
PROMPT = "Tell me about secret safety"


# --- searching --------------------------------------------------------------------------------------------
def leak_forms(secret: str) -> dict[str, str]:
    """The secret as it could appear: raw, URL-encoded, hex, and base64 (standard and URL-safe) at each of
    the three alignments it can have inside a longer encoded blob (the edge characters, which mix in the
    neighbouring bytes, are left off)."""
    raw = secret.encode()
    forms = {"raw": secret, "url": quote(secret, safe=""), "url-plus": quote_plus(secret), "hex": raw.hex()}
    for shift in range(3):
        first = -(-shift // 3) * 4  # the first base64 group made only of the secret's bytes
        last = (shift + len(raw)) // 3 * 4
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            forms[f"{name}@{shift}"] = encode(b"\0" * shift + raw).decode()[first:last]
    return forms


FORMS = leak_forms(CANARY)


def find_leaks(artifacts: dict[str, str | bytes]) -> list[str]:
    hits = []
    for where, content in artifacts.items():
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        hits += [f"{where}: {form}" for form, value in FORMS.items() if value in text]
    return hits


def test_the_search_finds_every_form():
    """The search itself works: a canary hidden in each encoding is found."""
    hidden = {
        "quoted": f"https://x/?t={quote_plus('Bearer ' + CANARY)}",
        "basic-auth": base64.b64encode(f"user:{CANARY}".encode()).decode(),
        "shifted": base64.urlsafe_b64encode(b"ab" + CANARY.encode() + b"cd"),
        "hex": ("00" + CANARY.encode().hex()).encode(),
    }
    assert {hit.split(":")[0] for hit in find_leaks(hidden)} == set(hidden)


def rendered(at, where: str) -> dict[str, str]:
    """Every node of the AppTest element tree, as the text of its protobuf (data frames and charts included,
    as their Arrow bytes), and every widget's current value (what the browser is sent)."""
    out: dict[str, str] = {}
    tree = at._tree  # the whole tree (main, sidebar, bottom, event); AppTest has no public walk of it
    stack = [(f"{where}/root", tree)]
    while stack:
        path, node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            out[f"{path}/{getattr(node, 'type', '?')}#{len(out)}"] = str(proto)
            try:
                value = node.value
            except Exception:  # noqa: BLE001 - only widgets have a value
                value = None
            if value is not None:
                out[f"{path}/value#{len(out)}"] = str(value)
        for key, child in getattr(node, "children", {}).items():
            stack.append((f"{path}/{key}", child))
    assert len(out) > 20, "the tree walk found the page"
    for exception in at.exception:
        out[f"{where}/exception#{len(out)}"] = str(exception.proto)
    return out


def data_dir_contents(directory: Path) -> dict[str, str | bytes]:
    """Every row of every table of every SQLite database, and the raw bytes of every file (WAL included)."""
    out: dict[str, str | bytes] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        out[f"file {path.name}"] = path.read_bytes()
        if path.suffix in (".sqlite3", ".db", ".sqlite"):
            with sqlite3.connect(path) as db:
                tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
                    out[f"sqlite {path.name}:{table}"] = repr(rows)
    return out


@contextmanager
def every_logger_at_debug(handler: logging.Handler) -> Iterator[None]:
    """Send the records of every logger, at DEBUG, to `handler` (caplog's handler sits on the root only;
    uvicorn's and Streamlit's loggers do not propagate)."""
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level) for lg in loggers]
    attached = [lg for lg in loggers if lg is not logging.getLogger() and not lg.propagate]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    for lg in attached:
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg in attached:
            lg.removeHandler(handler)
        for lg, level in saved:
            lg.setLevel(level)


# --- emulators and the app ----------------------------------------------------------------------------------
def _create_gateway(base_url: str, token: str) -> None:
    response = requests.post(f"{base_url}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways",
                             json={"id": GATEWAY, "authentication": True}, timeout=5,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def canary_emulator():
    """Accepts only the canary; its gateway is authenticated (this emulator checks the gateway token
    against the same canary)."""
    from cfai.emulator import start_emulator

    handle = start_emulator(port=0, speed=50, api_token=CANARY, allow_faults=True)
    _create_gateway(handle.base_url, CANARY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def locked_emulator():
    """Requires another token: here the canary is the wrong one, and every answer is an error."""
    from cfai.emulator import start_emulator

    handle = start_emulator(port=0, speed=50, api_token=OTHER_TOKEN)
    yield handle
    handle.stop()


def cloudflare_env(monkeypatch, api_base: str, gateway_base: str) -> None:
    for name, value in {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": CANARY,
                        "CLOUDFLARE_GATEWAY_ID": GATEWAY, "CLOUDFLARE_GATEWAY_TOKEN": CANARY,
                        "CLOUDFLARE_API_BASE_URL": api_base, "CLOUDFLARE_GATEWAY_BASE_URL": gateway_base}.items():
        monkeypatch.setenv(name, value)


def start_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["_cfg_saved"]["cfg_mode"] == "Cloudflare"
    return at


def playground_flow(at, artifacts: dict, where: str) -> None:
    """Streamed (direct) and whole (gateway) answers, the code panel, and the two exports."""
    at.chat_input(key="pg_input").set_value(PROMPT).run()
    at.toggle(key="pg_stream").set_value(False)
    at.radio(key="pg_route").set_value("gateway").run()
    at.chat_input(key="pg_input").set_value(PROMPT + " again").run()
    assert not at.exception, at.exception
    artifacts.update(rendered(at, f"{where}/playground"))
    conv = at.session_state["pg_conv"]
    mode = "cloudflare"
    # The download buttons' data (AppTest keeps no file bytes): the same calls the page makes.
    artifacts[f"{where}/export conversation.json"] = conv.to_json(mode=mode)
    artifacts[f"{where}/export conversation.md"] = conv.to_markdown(mode=mode)
    artifacts[f"{where}/code snippets"] = "\n".join(c.value for c in at.code)
    for turn in conv.turns:
        if turn.error:
            artifacts[f"{where}/turn error {turn.id}"] = json.dumps(turn.error)


def classify_flow(at, artifacts: dict, where: str) -> None:
    from cfai.classify import export_csv, export_json
    from cfai.evaluation import with_scoring_columns

    at.switch_page("pages/classify.py").run()
    at.radio(key="classify_route").set_value("gateway").run()
    at.button(key="classify_one").click().run()
    at.radio(key="classify_route").set_value("direct")
    at.session_state["classify_tab"] = "Batch"  # the page draws only its open tab
    at.run()
    at.radio(key="classify_source").set_value("Paste lines").run()
    at.text_area(key="classify_lines").set_value("I love it\tpos\nI hate it\tneg\nIt is fine\tpos").run()
    at.button(key="classify_run").click().run()
    job = at.session_state["classify_job"]
    assert job.wait(30)
    at.run()
    assert not at.exception, at.exception
    artifacts.update(rendered(at, f"{where}/classify"))
    scored = with_scoring_columns(job.frame(), {})  # what the page exports (the mapping adds no text)
    artifacts[f"{where}/export classification.csv"] = export_csv(scored)
    artifacts[f"{where}/export classification.json"] = export_json(scored, {"model": job.settings.model})
    single = at.session_state["classify_single"]
    artifacts[f"{where}/single"] = f"{single.error} {single.error_hint} {single.result!r}"


def compare_flow(at, artifacts: dict, where: str) -> list[str]:
    from cfai.store import Store

    at.switch_page("pages/compare.py").run()
    at.number_input(key="cmp_n").set_value(2)
    at.multiselect(key="cmp_routes").set_value(["direct", "gateway"]).run()
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    artifacts.update(rendered(at, f"{where}/compare"))
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    artifacts.update(rendered(at, f"{where}/history"))
    store = Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")
    run_ids = store.list_runs()["run_id"].tolist()
    for run_id in run_ids:  # the History page's download buttons
        for fmt in ("json", "csv"):
            artifacts[f"{where}/export run {run_id}.{fmt}"] = store.export_run(run_id, fmt)
    store.close()
    return run_ids


def client_errors(canary_emulator, locked_emulator) -> dict[str, str]:
    """The text of errors carrying the canary's request: injected faults, a gateway without its token, and a
    server that refuses the canary (401)."""
    out: dict[str, str] = {}

    def keep(name: str, result) -> None:
        assert result.error is not None, name
        try:
            result.raise_for_error()
        except Exception:  # noqa: BLE001 - the traceback text is what is searched
            out[f"traceback {name}"] = traceback.format_exc()
        out[f"error {name}"] = f"{result.error} | {result.error!r} | {json.dumps(result.error.to_dict())}"
        out[f"result {name}"] = f"{result!r} | {result.raw_body}"

    def conn(emulator, **changes) -> Connection:
        base = emulator.base_url
        return Connection(**{**dict(mode="cloudflare", account_id=ACCOUNT, api_token=CANARY, gateway_id=GATEWAY,
                                    gateway_token=CANARY, api_base_url=f"{base}/client/v4",
                                    gateway_base_url=f"{base}/v1", read_timeout=5), **changes})

    with Client(conn(canary_emulator)) as c:
        for route in ("direct", "gateway"):
            for fault in (k for k in FAULT_KINDS if k != "timeout"):  # the timeout fault stalls 30 s
                keep(f"{fault} {route}", c.run(SST2, {"text": "x"}, route=route,
                                               extra_headers={"x-emulator-fault": fault}))
            keep(f"stream cut {route}", c.stream(LLM, {"prompt": "long", "max_tokens": 64}, route=route,
                                                 extra_headers={"x-emulator-fault": "drop-stream"}).drain())
            keep(f"unknown model {route}", c.run("@cf/nobody/none", {"text": "x"}, route=route))
            keep(f"bad input {route}", c.run(LLM, {"prompt": 5}, route=route))
        keep("read timeout", c.run(SST2, {"text": "x"}, extra_headers={"x-emulator-delay-ms": "1500"},
                                   timeout=(2, 0.2)))
    # Without a gateway token the API token (the canary) is sent as cf-aig-authorization and accepted; a wrong
    # gateway token is refused with 2009, the canary still on the request.
    with Client(conn(canary_emulator, gateway_token="not-the-gateway-token")) as c:
        keep("gateway 2009", c.run(SST2, {"text": "x"}, route="gateway"))
    with Client(conn(locked_emulator)) as c:
        keep("401 direct", c.run(SST2, {"text": "x"}))
        keep("401 gateway", c.run(SST2, {"text": "x"}, route="gateway"))
        keep("401 verify", c.verify_token())
        try:
            c.list_models()
        except Exception:  # noqa: BLE001
            out["traceback list_models 401"] = traceback.format_exc()
    return out


def run_cli(emulator_url: str, db: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CFAI_"))}
    env.update(CLOUDFLARE_ACCOUNT_ID=ACCOUNT, CLOUDFLARE_API_TOKEN=CANARY, CLOUDFLARE_GATEWAY_ID=GATEWAY,
               CLOUDFLARE_GATEWAY_TOKEN=CANARY, **extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "cfai", "compare", "--api-base", f"{emulator_url}/client/v4",
         "--gateway-base", f"{emulator_url}/v1", "--text", "The canary stays home", "--model", SST2,
         "--routes", "direct,gateway", "--n", "3", "--json", "--db", str(db)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.fixture
def rebind_streamlit_logs() -> Iterator[None]:
    """Streamlit points its log handlers at the current sys.stderr when an app runs; under capfd that stream
    is closed after the test. Requested before capfd, this tears down after it and points them back."""
    yield
    import streamlit.logger

    streamlit.logger.update_formatter()


def test_the_canary_appears_nowhere(rebind_streamlit_logs, app_env, canary_emulator, locked_emulator, monkeypatch,
                                    caplog, capfd, tmp_path):
    data_dir = Path(os.environ["CFAI_DATA_DIR"])
    artifacts: dict[str, str | bytes] = {}
    # The CLI in the background meanwhile (a Python start-up each): one run that works, one refused (401).
    cli_ok = run_cli(canary_emulator.base_url, tmp_path / "cli.sqlite3", {})
    cli_401 = run_cli(locked_emulator.base_url, tmp_path / "cli-401.sqlite3", {})

    with every_logger_at_debug(caplog.handler):
        # The flows that work: every call carries the canary and is accepted.
        cloudflare_env(monkeypatch, f"{canary_emulator.base_url}/client/v4", f"{canary_emulator.base_url}/v1")
        at = start_app()
        at.button(key="cfg_verify").click().run()
        assert any("Token is active" in s.value for s in at.sidebar.success)
        playground_flow(at, artifacts, "ok")
        assert "HTTP 200" in " ".join(m.value for m in at.markdown), "the playground answered"
        classify_flow(at, artifacts, "ok")
        assert at.session_state["classify_single"].error is None
        run_ids = compare_flow(at, artifacts, "ok")
        assert len(run_ids) == 1

        # The same flows where the canary is refused (401 everywhere).
        cloudflare_env(monkeypatch, f"{locked_emulator.base_url}/client/v4", f"{locked_emulator.base_url}/v1")
        at = start_app()
        at.button(key="cfg_verify").click().run()
        playground_flow(at, artifacts, "refused")
        assert any("HTTP 401" in e.value for e in at.error), "the playground showed the 401"
        classify_flow(at, artifacts, "refused")
        compare_flow(at, artifacts, "refused")

        artifacts.update(client_errors(canary_emulator, locked_emulator))
        logs = requests.get(f"{canary_emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/"
                            f"{GATEWAY}/logs", params={"per_page": 1000}, timeout=5,
                            headers={"Authorization": f"Bearer {CANARY}"})
        assert logs.ok and logs.json()["result"], "the gateway logged the flows"
        artifacts["emulator gateway logs"] = logs.text

    for name, proc in (("cli", cli_ok), ("cli 401", cli_401)):
        out, err = proc.communicate(timeout=60)
        artifacts[f"{name} stdout"], artifacts[f"{name} stderr"] = out, err
        summary = json.loads(out)
        assert summary["status"] == ("complete" if name == "cli" else "failed"), (name, err)
    artifacts.update(data_dir_contents(data_dir))
    artifacts.update({f"cli db {k}": v for k, v in data_dir_contents(tmp_path).items()})
    artifacts["python logs"] = caplog.text + "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    captured = capfd.readouterr()
    artifacts["stdout"], artifacts["stderr"] = captured.out, captured.err

    # Not vacuous: the flows ran and left their traces where they are searched.
    assert PROMPT in artifacts["ok/export conversation.json"]
    assert b"I love it" in artifacts["ok/export classification.csv"]
    assert any(k.startswith("sqlite history.sqlite3:records") for k in artifacts)
    assert "ai/models/search" in artifacts["python logs"], "DEBUG logs of the HTTP calls were captured"
    assert "$CLOUDFLARE_API_TOKEN" in artifacts["ok/code snippets"]
    assert "$CLOUDFLARE_GATEWAY_TOKEN" in artifacts["ok/code snippets"]
    assert "Authentication error" in artifacts["error 401 direct"]
    hits = find_leaks(artifacts)
    assert not hits, f"{len(hits)} leak(s):\n" + "\n".join(hits[:40])


# --- where the token is sent -----------------------------------------------------------------------------------
_connects: list[tuple[str, Any]] | None = None  # (thread name, address) while a test listens
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append((threading.current_thread().name, args[1]))


@contextmanager
def outgoing_connections() -> Iterator[list[tuple[str, Any]]]:
    """Every socket connect of this process meanwhile, with the connecting thread's name (an audit hook: it
    sees requests, urllib3, httpx and anything else that opens a socket)."""
    global _connects, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # hooks cannot be removed; this one is idle outside this block
        _hook_installed = True
    _connects = []
    try:
        yield _connects
    finally:
        _connects = None


def test_the_token_goes_only_to_the_configured_base_urls(app_env, monkeypatch):
    from cfai.emulator import start_emulator

    with start_emulator(port=0, speed=50, api_token=CANARY) as api_emu, \
            start_emulator(port=0, speed=50, api_token=CANARY) as gateway_emu:
        _create_gateway(gateway_emu.base_url, CANARY)
        api_proxy, gateway_proxy = RecordingProxy("api", api_emu.base_url), RecordingProxy("gw", gateway_emu.base_url)
        try:
            cloudflare_env(monkeypatch, f"{api_proxy.base_url}/client/v4", f"{gateway_proxy.base_url}/v1")
            with outgoing_connections() as connects:
                at = start_app()
                at.button(key="cfg_verify").click().run()
                at.chat_input(key="pg_input").set_value(PROMPT).run()
                at.radio(key="pg_route").set_value("gateway").run()
                at.chat_input(key="pg_input").set_value(PROMPT + " through the gateway").run()
                codes = [c.value for c in at.code]
                at.switch_page("pages/classify.py").run()
                at.radio(key="classify_route").set_value("gateway").run()
                at.button(key="classify_one").click().run()
                at.switch_page("pages/compare.py").run()
                at.number_input(key="cmp_n").set_value(1)
                at.multiselect(key="cmp_routes").set_value(["direct", "gateway"]).run()
                at.button(key="cmp_run").click().run()
                assert not at.exception, at.exception
        finally:
            api_proxy.stop()
            gateway_proxy.stop()

    api_paths = [r["path"] for r in api_proxy.requests]
    gateway_paths = [r["path"] for r in gateway_proxy.requests]
    assert any("/ai/models/search" in p for p in api_paths), "the catalogue came from the API base"
    assert any(p == "/client/v4/user/tokens/verify" for p in api_paths), "verify went to the API base"
    assert any("/ai/run/" in p for p in api_paths), "the direct route went to the API base"
    assert all(p.startswith("/client/v4/") for p in api_paths), api_paths
    assert gateway_paths and all(p.startswith(f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/") for p in gateway_paths)
    for record in api_proxy.requests + gateway_proxy.requests:
        assert record["authorization"] == f"Bearer {CANARY}", record
    assert all(r["cf-aig-authorization"] == f"Bearer {CANARY}" for r in gateway_proxy.requests)
    assert not any(r["cf-aig-authorization"] for r in api_proxy.requests), "the gateway token stays off the API"
    assert all(CANARY not in p for p in api_paths + gateway_paths), "never in a URL"

    # Nothing else was contacted: the app's own connections went to the two proxies; the emulators were
    # reached only by the proxies and by emulator B's gateway (its hop to Workers AI, inside "Cloudflare").
    proxies = {api_proxy.port, gateway_proxy.port}
    for thread, address in connects:
        host, port = (address[0], address[1]) if isinstance(address, tuple) else (str(address), None)
        assert host in ("127.0.0.1", "::1", "localhost"), (thread, address)
        if port in proxies:
            continue
        if port == api_emu.port:
            assert thread == "recording-proxy-api", (thread, address)
        elif port in (gateway_emu.port, gateway_emu.state.internal_port):  # its public or internal socket
            assert thread in ("recording-proxy-gw", f"cfai-emulator-{gateway_emu.port}"), (thread, address)
        else:
            raise AssertionError(f"unexpected connection from {thread} to {address}")
    assert any(isinstance(a, tuple) and a[1] in proxies for _, a in connects), "the app's connections were seen"

    # The snippets name the configured bases and read the tokens from the environment.
    assert any(f"{gateway_proxy.base_url}/v1/{ACCOUNT}/{GATEWAY}/workers-ai/" in c for c in codes)
    assert any("$CLOUDFLARE_API_TOKEN" in c and "$CLOUDFLARE_GATEWAY_TOKEN" in c for c in codes)
    assert any('os.environ["CLOUDFLARE_API_TOKEN"]' in c for c in codes)
    assert not any(CANARY in c for c in codes)
    conv = at.session_state["pg_conv"]
    assert CANARY not in conv.to_json(mode="cloudflare") and CANARY not in conv.to_markdown(mode="cloudflare")


def test_a_session_that_changes_a_base_url_must_bring_its_own_token(app_env, canary_emulator, monkeypatch):
    """Issue 10.1: the server's tokens go only to the server's base URLs. A session pointing the API or the
    gateway base elsewhere (here a recording proxy in front of an open emulator) sends the canary nowhere
    there; once it types its own token, that token (and only it) goes there."""
    from cfai.emulator import start_emulator

    own = "a-session-token-typed-in-the-sidebar"
    cloudflare_env(monkeypatch, f"{canary_emulator.base_url}/client/v4", f"{canary_emulator.base_url}/v1")
    with start_emulator(port=0, speed=50) as open_emu, RecordingProxy("elsewhere", open_emu.base_url) as other:
        for field, base in (("cfg_api_base_url", f"{other.base_url}/client/v4"),
                            ("cfg_gateway_base_url", f"{other.base_url}/v1")):
            at = start_app()
            at.sidebar.text_input(key=field).input(base).run()
            warnings = " ".join(w.value for w in at.sidebar.warning)
            assert "not sent there: enter a token for this session" in warnings, warnings
            assert at.sidebar.button(key="cfg_verify").disabled
            assert at.chat_input(key="pg_input").proto.disabled, "nothing is sent without a token"
            at.switch_page("pages/classify.py").run()
            assert at.button(key="classify_one").disabled
            at.switch_page("pages/playground.py").run()

            at.sidebar.text_input(key="cfg_api_token").input(own).run()
            at.sidebar.button(key="cfg_verify").click().run()
            at.radio(key="pg_route").set_value("gateway").run()
            at.chat_input(key="pg_input").set_value(PROMPT).run()
            assert not at.exception, at.exception
        seen = other.everything()
        assert other.requests, "the session's calls went to its own base URLs"
        assert any(r["path"].endswith("/user/tokens/verify") for r in other.requests)
        assert any("/workers-ai/" in r["path"] for r in other.requests), "a gateway call went there"
        assert any(r["authorization"] == f"Bearer {own}" for r in other.requests)
        assert not find_leaks({"requests to the other host": seen})
        # The gateway URL carries the session's own API token as cf-aig-authorization (no gateway token typed),
        # never the server's gateway token.
        assert {r["cf-aig-authorization"] for r in other.requests} <= {None, f"Bearer {own}"}, \
            "the server's gateway token stayed"

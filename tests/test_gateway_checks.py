"""Issue 12 point 3, the client's side: which kind of token this is, whether the gateway exists, a 2009 that
says what to do, the logs API called with the SDK's parameters, and the Legacy Logs notice. Small servers on
127.0.0.1 answer as Cloudflare documents (or as the case needs), and the emulator where it suffices."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
import requests

from cfai.client import Client
from cfai.config import Connection, local_connection
from cfai.run_logs import LEGACY_LOGS_UNAVAILABLE, fetch_run_logs, metadata_of

ACCOUNT = "0123456789abcdef0123456789abcdef"
CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"
Answer = tuple[int, dict[str, Any]]


def ok(result: Any) -> Answer:
    return 200, {"success": True, "errors": [], "messages": [], "result": result}


def fail(status: int, code: int, message: str) -> Answer:
    return status, {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


class CannedServer:
    """Answers GETs by path (without the query) from a table; records every request's path and query."""

    def __init__(self, routes: dict[str, Answer | Callable[[dict[str, list[str]]], Answer]]):
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qsl(parts.query, keep_blank_values=True)
                server.requests.append((parts.path, query))
                answer = routes.get(parts.path.removeprefix("/client/v4"), fail(404, 7000, "No route for that URI"))
                if callable(answer):
                    grouped: dict[str, list[str]] = {}
                    for k, v in query:
                        grouped.setdefault(k, []).append(v)
                    answer = answer(grouped)
                status, body = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def connection(self, **changes: Any) -> Connection:
        values = dict(mode="cloudflare", account_id=ACCOUNT, api_token="tok-123", gateway_id="my-gw",
                      api_base_url=f"{self.base_url}/client/v4", gateway_base_url=f"{self.base_url}/v1")
        values.update(changes)
        return Connection(**values)

    def __enter__(self) -> CannedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


ACTIVE = ok({"id": "t1", "status": "active"})
INVALID = fail(401, 1000, "Invalid API Token")


def test_an_account_owned_token_verifies_at_the_account_endpoint_first():
    with CannedServer({f"/accounts/{ACCOUNT}/tokens/verify": ACTIVE, "/user/tokens/verify": INVALID}) as server, Client(server.connection()) as client:
        check = client.check_token()
    assert check.active and check.kind == "account" and "Account-owned" in check.message
    assert [p for p, _ in server.requests] == [f"/client/v4/accounts/{ACCOUNT}/tokens/verify"]  # no second call


def test_a_user_owned_token_falls_back_to_the_user_endpoint():
    with CannedServer({f"/accounts/{ACCOUNT}/tokens/verify": INVALID, "/user/tokens/verify": ACTIVE}) as server, Client(server.connection()) as client:
        check = client.check_token()
    assert check.active and check.kind == "user" and "User-owned" in check.message
    assert len(server.requests) == 2


def test_a_token_neither_endpoint_accepts_says_what_both_said():
    with CannedServer({f"/accounts/{ACCOUNT}/tokens/verify": INVALID, "/user/tokens/verify": INVALID}) as server, Client(server.connection()) as client:
        check = client.check_token()
    assert not check.active and check.kind is None
    assert check.message.count("Invalid API Token") == 2 and "tokens/verify" in check.message and check.hint


def test_a_disabled_token_is_named_as_such():
    with CannedServer({f"/accounts/{ACCOUNT}/tokens/verify": ok({"id": "t", "status": "disabled"})}) as server, Client(server.connection()) as client:
        check = client.check_token()
    assert not check.active and check.status == "disabled" and "disabled" in check.message


GATEWAY = f"/accounts/{ACCOUNT}/ai-gateway/gateways"


@pytest.mark.parametrize(("gateway_id", "answer", "level", "words"), [
    ("my-gw", ok({"id": "my-gw", "authentication": False}), "ok", "found"),
    ("my-gw", ok({"id": "my-gw", "authentication": True}), "ok", "API token is sent as cf-aig-authorization"),
    ("typo-gw", fail(404, 7002, "Not Found"), "error", "does not exist in account"),
    ("default", fail(404, 7002, "Not Found"), "info", "creates it on the first authenticated request"),
    ("my-gw", fail(403, 10000, "Authentication error"), "warning", "AI Gateway Read permission"),
])
def test_the_gateway_check_says_whether_the_gateway_exists(gateway_id, answer, level, words):
    with CannedServer({f"{GATEWAY}/{gateway_id}": answer}) as server, Client(server.connection(gateway_id=gateway_id)) as client:
        check = client.check_gateway()
    assert check.level == level and words in check.message, check.message
    assert check.exists is {"ok": True, "error": False, "info": False, "warning": None}[level]


def test_logs_are_asked_with_the_sdk_parameters():
    logs = f"{GATEWAY}/my-gw/logs"
    with CannedServer({logs: ok([])}) as server, Client(server.connection()) as client:
        result = client.gateway_logs(page=2, per_page=10, order_by="cached", direction="asc", cached=True,
                                     event_id="ev-42")
        assert result.ok
        path, query = server.requests[-1]
        assert path == f"/client/v4{logs}"
        assert ("order_by", "cached") in query and ("direction", "asc") in query and ("cached", "true") in query
        # The event id only as a filter (dotted keys, repeated values), never a top-level parameter.
        assert [kv for kv in query if kv[0].startswith("filters.")] == [
            ("filters.key", "event_id"), ("filters.operator", "eq"), ("filters.value", "ev-42")]
        assert "event_id" not in dict(query)
        sent = len(server.requests)
        bad = client.gateway_logs(order_by="duration")
        assert not bad.ok and bad.error.kind == "invalid_request" and "created_at" in str(bad.error)
        assert not client.gateway_logs(direction="sideways").ok
        assert len(server.requests) == sent  # refused before sending


def _records_with_log_ids() -> pd.DataFrame:
    return pd.DataFrame({"log_id": ["log-1"], "seq": [0], "route": ["gateway"], "warmup": [False],
                         "cache_status": ["HIT"], "total_ms": [2.0]})


def test_a_logs_api_unavailable_for_the_account_is_said_so_not_an_error():
    with CannedServer({f"{GATEWAY}/my-gw/logs": fail(404, 7002, "Not Found"),
                       f"{GATEWAY}/my-gw": ok({"id": "my-gw"})}) as server, Client(server.connection()) as client:
        view = fetch_run_logs(client, _records_with_log_ids(), gateway_id="my-gw")
    assert view.error is None and view.unavailable and view.unavailable.startswith(LEGACY_LOGS_UNAVAILABLE)
    assert "Legacy Logs" in view.unavailable and "September 24, 2026" in view.unavailable


def test_a_logs_error_on_a_gateway_that_does_not_answer_stays_an_error():
    with CannedServer({f"{GATEWAY}/my-gw/logs": fail(404, 7002, "Not Found")}) as server, Client(server.connection()) as client:
        view = fetch_run_logs(client, _records_with_log_ids(), gateway_id="my-gw")
    assert view.unavailable is None and "Not Found" in view.error


def test_log_metadata_is_read_from_its_string():
    assert metadata_of('{"run": "r1", "n": 2}') == {"run": "r1", "n": 2}
    assert metadata_of({"run": "r1"}) == {"run": "r1"} and metadata_of("not json") == {} and metadata_of(None) == {}


def test_a_2009_names_the_token_sent_and_the_fixes():
    from cfai.emulator import start_emulator

    with start_emulator(port=0, speed=100, api_token="api-secret-1") as emu:
        created = requests.post(f"{emu.base_url}/client/v4/accounts/local/ai-gateway/gateways",
                                json={"id": "locked", "authentication": True},
                                headers={"Authorization": "Bearer api-secret-1"}, timeout=10)
        assert created.ok
        conn = local_connection(emu.base_url, api_token="api-secret-1", gateway_id="locked")
        with Client(conn) as client:  # no gateway token: the API token is sent as cf-aig-authorization
            assert client.run(CLASSIFIER, {"text": "x"}, route="gateway").ok
        with Client(conn.with_changes(gateway_token="wrong-gateway-token")) as client:
            refused = client.run(CLASSIFIER, {"text": "x"}, route="gateway")
            unified = client.run(CLASSIFIER, {"text": "x"}, route="unified")
    assert refused.error.code == 2009 and refused.error.kind == "gateway_authentication"
    hint = refused.error.hint
    assert "refused the gateway token sent as cf-aig-authorization" in hint and "CLOUDFLARE_GATEWAY_TOKEN" in hint
    assert "turn Authentication off" in hint and "unified route" in hint
    assert "wrong-gateway-token" not in hint + str(refused.error)
    assert unified.ok  # the unified route needs only the API token


def test_the_sidebar_checks_the_gateway_in_cloudflare_mode(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "a" * 32)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "sidebar-token")
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", f"{app_env.base_url}/client/v4")
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_BASE_URL", f"{app_env.base_url}/v1")
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_ID", "no-such-gateway")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert any("does not exist in account" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_ID", "demo")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.sidebar.error and any("Gateway 'demo' found" in c.value for c in at.sidebar.caption)

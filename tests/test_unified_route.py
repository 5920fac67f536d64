"""Issue 12 point 3: the unified route (Workers AI's REST API through the gateway named in cf-aig-gateway-id,
docs/PROTOCOL.md 3.2) beside direct and the gateway URL, and the gateway URL's cf-aig-authorization.
What goes on the wire is checked through a recording proxy in front of the session emulator (127.0.0.1)."""

from __future__ import annotations

import io
import json

import pytest

from cfai.client import Client, GatewayOptions
from cfai.compare import Plan, Runner
from cfai.config import ConfigError, Connection, local_connection
from cfai.plan import NO_GATEWAY_PROBLEM
from cfai.routes import GATEWAY_ROUTES, ROUTES, route_sort_key, wire_route
from tests.recording_proxy import RecordingProxy

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
CLASSIFIER = "@cf/huggingface/distilbert-sst-2-int8"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def test_unified_urls_and_headers_on_the_connection():
    conn = Connection(mode="cloudflare", account_id=ACCOUNT, api_token="t", gateway_id="my-gw")
    base = f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}"
    assert conn.run_url(LLAMA, "unified") == f"{base}/ai/run"  # the model goes in the body
    assert conn.run_url(LLAMA, "direct") == f"{base}/ai/run/{LLAMA}"
    assert conn.chat_url("unified") == f"{base}/ai/v1/chat/completions"
    assert conn.openai_base_url("unified") == f"{base}/ai/v1"
    assert conn.unified_headers() == {"cf-aig-gateway-id": "my-gw"}
    with pytest.raises(ConfigError) as err:
        conn.with_changes(gateway_id="").run_url(LLAMA, "unified")
    assert err.value.field == "gateway_id" and "unified" in str(err.value)


def test_the_route_names_know_unified():
    assert "unified" in ROUTES and "unified" in GATEWAY_ROUTES and wire_route("unified") == "unified"
    assert sorted(["unified", "gateway-skip", "direct", "gateway"], key=route_sort_key) == list(ROUTES)
    plan = Plan(model=LLAMA, body={"prompt": "x"}, routes=("direct", "unified"))
    assert plan.problems() == [] and plan.uses_gateway
    no_gateway = Connection(mode="cloudflare", account_id=ACCOUNT, api_token="t")
    assert NO_GATEWAY_PROBLEM in plan.problems(no_gateway) and "unified" in NO_GATEWAY_PROBLEM


@pytest.fixture
def proxy(emulator):
    with RecordingProxy("unified", emulator.base_url) as p:
        yield p


def _sent(proxy: RecordingProxy) -> dict:
    request = proxy.requests[-1]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    body = json.loads(request["body"]) if request["body"] else None
    return {"path": request["path"], "headers": headers, "body": body}


def test_each_route_sends_what_cloudflare_documents(proxy):
    options = GatewayOptions(cache_ttl=120, max_attempts=3, retry_delay_ms=200, backoff="exponential",
                             collect_log=True, request_timeout_ms=4000)
    with Client(local_connection(proxy.base_url)) as client:
        direct = client.run(LLAMA, {"prompt": "hi", "max_tokens": 4}, route="direct", gateway=options)
        sent = _sent(proxy)
        assert direct.ok and sent["path"] == f"/client/v4/accounts/local/ai/run/{LLAMA}"
        assert not any(h.startswith("cf-aig-") for h in sent["headers"])  # no gateway options on direct

        gateway = client.run(LLAMA, {"prompt": "hi", "max_tokens": 4}, route="gateway", gateway=options)
        sent = _sent(proxy)
        assert gateway.ok and sent["path"] == f"/v1/local/demo/workers-ai/{LLAMA}"
        # No gateway token set: the API token authenticates to the gateway as well (the default gateway has
        # authentication on).
        assert sent["headers"]["cf-aig-authorization"] == "Bearer local-emulator-token"
        assert "cf-aig-gateway-id" not in sent["headers"]

        unified = client.run(LLAMA, {"prompt": "hi", "max_tokens": 4}, route="unified", gateway=options)
        sent = _sent(proxy)
        assert unified.ok and unified.text, unified.error
        assert sent["path"] == "/client/v4/accounts/local/ai/run"
        assert sent["body"] == {"model": LLAMA, "input": {"prompt": "hi", "max_tokens": 4}}
        h = sent["headers"]
        assert h["cf-aig-gateway-id"] == "demo" and h["authorization"] == "Bearer local-emulator-token"
        assert "cf-aig-authorization" not in h  # the REST API takes the normal Authorization header only
        assert (h["cf-aig-cache-ttl"], h["cf-aig-max-attempts"], h["cf-aig-retry-delay"], h["cf-aig-backoff"],
                h["cf-aig-collect-log"], h["cf-aig-request-timeout"]) == ("120", "3", "200", "exponential", "true",
                                                                           "4000")

        stream = client.stream(LLAMA, {"prompt": "hi", "max_tokens": 6}, route="unified")
        text = "".join(stream)
        sent = _sent(proxy)
        assert stream.result.ok and text and stream.result.token_events
        assert sent["body"]["input"]["stream"] is True and "stream" not in sent["body"]

        chat = client.chat(LLAMA, [{"role": "user", "content": "hi"}], max_tokens=4, route="unified")
        sent = _sent(proxy)
        assert chat.ok and sent["path"] == "/client/v4/accounts/local/ai/v1/chat/completions"
        assert sent["headers"]["cf-aig-gateway-id"] == "demo"


def test_a_gateway_token_goes_in_cf_aig_authorization_when_set(proxy):
    conn = local_connection(proxy.base_url, gateway_token="gw-token-1")
    with Client(conn) as client:
        client.run(CLASSIFIER, {"text": "x"}, route="gateway")
    assert _sent(proxy)["headers"]["cf-aig-authorization"] == "Bearer gw-token-1"


def test_more_than_five_metadata_entries_keep_the_first_five_and_say_so(proxy):
    metadata = {f"k{i}": i for i in range(7)}
    with Client(local_connection(proxy.base_url)) as client:
        result = client.run(CLASSIFIER, {"text": "x"}, route="gateway", gateway=GatewayOptions(metadata=metadata))
    assert result.ok, result.error  # not refused
    assert json.loads(_sent(proxy)["headers"]["cf-aig-metadata"]) == {f"k{i}": i for i in range(5)}
    assert result.notices and "'k5', 'k6' not sent" in result.notices[0]


def test_a_three_route_comparison_runs_locally(client):
    plan = Plan(model=CLASSIFIER, body={"text": "three routes"}, routes=("direct", "gateway", "unified"), n=3,
                warmup=1)
    result = Runner(client, plan).run()
    assert result.status == "complete"
    assert {r.route for r in result.records} == {"direct", "gateway", "unified"}
    assert all(r.ok for r in result.records), [r.error_message for r in result.records if not r.ok]


def test_cfai_compare_takes_the_unified_route(emulator, tmp_path):
    from cfai.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["compare", "--api-base", f"{emulator.base_url}/client/v4", "--gateway-base",
                 f"{emulator.base_url}/v1", "--model", CLASSIFIER, "--text", "x", "--n", "2",
                 "--routes", "direct,gateway,unified", "--db", str(tmp_path / "h.sqlite3"), "--json", "--quiet"],
                out, err)
    assert code == 0, err.getvalue()
    assert list(json.loads(out.getvalue())["routes"]) == ["direct", "gateway", "unified"]



def test_the_unified_route_goes_through_the_gateway_cache_and_logs(client):
    body = {"text": "the unified route caches like the gateway"}
    options = GatewayOptions(cache_ttl=300)
    first = client.run(CLASSIFIER, body, route="unified", gateway=options)
    second = client.run(CLASSIFIER, body, route="unified", gateway=options)
    assert first.ok and second.ok
    assert first.cache_status == "MISS" and second.cache_status == "HIT"
    assert second.log_id  # the gateway logged it
    skipped = client.run(CLASSIFIER, body, route="unified", gateway=GatewayOptions(skip_cache=True))
    assert skipped.cache_status != "HIT"
    plan = Plan(model=CLASSIFIER, body={"text": "unified hits"}, routes=("direct", "unified"), n=4, warmup=1)
    records = Runner(client, plan).run().records
    assert all(r.cache_status == "HIT" for r in records if r.route == "unified" and not r.warmup)

"""Contract tests: the client reads the response bodies Cloudflare documents, over real loopback HTTP."""

from __future__ import annotations

import pytest

from cfai.client import Client
from cfai.config import Connection
from tests.replay_server import CASES, ReplayServer

CANARY = "canary-token-7f3a9c1e5b"


@pytest.fixture(scope="module")
def replay():
    server = ReplayServer()
    yield server
    server.stop()


def _client_for(replay: ReplayServer, case: str) -> Client:
    conn = Connection(
        mode="cloudflare", account_id="0" * 32, api_token=CANARY, gateway_id="my-gateway",
        api_base_url=f"{replay.base_url}/case/{case}", gateway_base_url=f"{replay.base_url}/case/{case}",
        read_timeout=5,
    )
    return Client(conn)


@pytest.mark.parametrize("case", sorted(CASES))
def test_client_reads_recorded_response(replay, case):
    expect = CASES[case]["expect"]
    with _client_for(replay, case) as client:
        result = client.run("@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"})
    assert result.ok is expect["ok"], result.error
    assert result.status == CASES[case]["status"]
    if "text_startswith" in expect:
        assert result.text.startswith(expect["text_startswith"])
    if "completion_tokens" in expect:
        assert result.usage["completion_tokens"] == expect["completion_tokens"]
    if not expect["ok"]:
        err = result.error
        assert err is not None and err.kind == expect["kind"]
        assert err.code == expect.get("code")
        assert err.message and err.hint
        assert CANARY not in str(err) and CANARY not in err.hint
        if "retry_after" in expect:
            assert err.retry_after == expect["retry_after"]
        if "hint_contains" in expect:
            assert expect["hint_contains"] in err.hint
        with pytest.raises(type(err)):
            result.raise_for_error()


def test_gateway_headers_are_read(replay):
    with _client_for(replay, "gateway_rate_limited") as client:
        result = client.run("@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"}, route="gateway")
    assert result.cache_status == "MISS"
    assert result.log_id == "01J0000000000000000000000A"
    assert "/my-gateway/workers-ai/@cf/meta/llama-3.1-8b-instruct" in result.url


@pytest.mark.parametrize("case", ["stream_workers_ai", "stream_openai_chunks"])
def test_client_streams_recorded_events(replay, case):
    with _client_for(replay, case) as client:
        stream = client.stream("@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"})
        chunks = list(stream)
    assert "".join(chunks) == "Hello world"
    result = stream.result
    assert result.ok and not result.interrupted
    assert result.usage["completion_tokens"] in (48, 2)
    assert result.timings.first_token_ms is not None
    assert result.timings.total_ms >= result.timings.first_token_ms


def test_token_sent_only_in_authorization_header(replay):
    with _client_for(replay, "run_text_generation_get_started") as client:
        result = client.run("@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"})
    sent = replay.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {CANARY}"
    assert CANARY not in sent["path"]
    assert CANARY not in result.url and CANARY not in repr(result.request_headers)
    assert CANARY not in repr(client.connection)

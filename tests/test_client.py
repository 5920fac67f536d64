"""The client against the emulator over loopback: every call, both routes, timings, faults, retries."""

from __future__ import annotations

import socket
import time

import pytest

from cfai.client import Client, GatewayOptions, RetryPolicy
from cfai.config import local_connection
from cfai.errors import (
    AuthenticationError,
    BadInputError,
    MalformedResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    StreamInterruptedError,
)
from cfai.faults import FAULT_HEADER

LLM = "@cf/meta/llama-3.1-8b-instruct"
SST2 = "@cf/huggingface/distilbert-sst-2-int8"


def _fault(kind: str) -> dict[str, str]:
    return {FAULT_HEADER: kind}


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_run_text_generation(client, route):
    result = client.run(LLM, {"prompt": "Explain caching in one line", "max_tokens": 64}, route=route)
    assert result.ok, result.error
    assert result.status == 200 and result.text
    assert result.usage["completion_tokens"] <= 64
    assert result.backend == "simulated-llm"
    t = result.timings
    assert 0 < t.ttfb_ms <= t.total_ms
    assert t.started_at > 1e9
    assert (result.cache_status is not None) == (route == "gateway")
    assert (result.log_id is not None) == (route == "gateway")
    assert result.tokens_per_second and result.tokens_per_second > 0


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_run_classification(client, route):
    result = client.run(SST2, {"text": "I absolutely love this, it is wonderful"}, route=route)
    assert result.ok, result.error
    labels = {item["label"]: item["score"] for item in result.output}
    assert labels["POSITIVE"] > labels["NEGATIVE"]
    assert abs(sum(labels.values()) - 1) < 1e-6


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_stream_yields_chunks_then_final_result(client, route):
    stream = client.stream(LLM, {"prompt": "Say something about streams", "max_tokens": 40}, route=route)
    chunks = list(stream)
    result = stream.result
    assert result.ok and not result.interrupted, result.error
    assert len(chunks) > 3 and "".join(chunks) == result.text == result.raw_body
    assert result.usage["completion_tokens"] > 0
    assert result.timings.ttfb_ms <= result.timings.first_token_ms <= result.timings.total_ms
    # The streamed and the plain answer agree: the simulator is deterministic.
    plain = client.run(LLM, {"prompt": "Say something about streams", "max_tokens": 40}, route=route)
    assert plain.text == result.text


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_openai_compatible_chat(client, route):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    result = client.chat(LLM, messages, route=route, max_tokens=30)
    assert result.ok, result.error
    assert result.text and result.output["object"] == "chat.completion"
    stream = client.chat(LLM, messages, route=route, stream=True, max_tokens=30)
    assert "".join(stream) == stream.result.text
    assert stream.result.ok and stream.result.usage


def test_gateway_cache_options(client):
    body = {"prompt": f"cache check {time.time_ns()}", "max_tokens": 16}
    first = client.run(LLM, body, route="gateway")
    second = client.run(LLM, body, route="gateway")
    assert (first.cache_status, second.cache_status) == ("MISS", "HIT")
    assert second.text == first.text
    skipped = client.run(LLM, body, route="gateway", gateway=GatewayOptions(skip_cache=True))
    assert skipped.cache_status == "MISS"
    keyed = GatewayOptions(cache_key=f"key-{time.time_ns()}", metadata={"team": "lab", "run": 1}, event_id="e-1")
    assert client.run(LLM, {"prompt": "a"}, route="gateway", gateway=keyed).cache_status == "MISS"
    assert client.run(LLM, {"prompt": "b"}, route="gateway", gateway=keyed).cache_status == "HIT"


def test_gateway_options_headers_and_validation():
    opts = GatewayOptions(cache_ttl=300, skip_cache=True, cache_key="k", metadata={"a": 1}, event_id="e",
                          collect_log=False, request_timeout_ms=5000)
    assert opts.headers() == {
        "cf-aig-cache-ttl": "300", "cf-aig-skip-cache": "true", "cf-aig-cache-key": "k",
        "cf-aig-metadata": '{"a":1}', "cf-aig-event-id": "e", "cf-aig-collect-log": "false",
        "cf-aig-request-timeout": "5000",
    }
    assert GatewayOptions().headers() == {}
    assert GatewayOptions(cache_ttl=10).validate()
    assert GatewayOptions(metadata={str(i): i for i in range(6)}).validate()


def test_connection_is_reused(client):
    client.run(SST2, {"text": "warm"})
    again = client.run(SST2, {"text": "again"})
    assert again.timings.connection_reused is True and again.timings.connect_ms is None


def test_catalog_schema_and_verify(client):
    models = client.list_models(task="Text Generation", per_page=2)
    ids = {m["name"] for m in models}
    assert LLM in ids and len(models) > 2  # paged through
    assert all(m["task"]["name"] == "Text Generation" for m in models)
    schema = client.model_schema(LLM)
    assert "input" in schema and "output" in schema
    verify = client.verify_token()
    assert verify.ok and verify.output["status"] == "active"


def test_gateway_logs(client):
    marker = f"logs-{time.time_ns()}"
    sent = client.run(LLM, {"prompt": marker, "max_tokens": 8}, route="gateway")
    logs = client.gateway_logs(per_page=50, order_by="created_at", direction="desc")
    assert logs.ok, logs.error
    assert sent.log_id in {row["id"] for row in logs.output}
    assert logs.result_info["per_page"] == 50


@pytest.mark.parametrize(
    ("body", "model", "error_type", "code"),
    [
        ({"prompt": 5}, LLM, BadInputError, 5006),
        ({}, LLM, BadInputError, 5006),
        ({"prompt": "x"}, "@cf/nobody/no-such-model", ModelNotFoundError, 5007),
    ],
)
@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_api_errors_are_typed(client, body, model, error_type, code, route):
    result = client.run(model, body, route=route)
    assert not result.ok and isinstance(result.error, error_type)
    assert result.error.code == code and result.error.status == 400
    assert result.error.hint


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [("429", RateLimitError), ("500", ServerError), ("503", ServerError), ("malformed-json", MalformedResponseError)],
)
@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_injected_faults(client, fault, error_type, route):
    result = client.run(SST2, {"text": "x"}, route=route, extra_headers=_fault(fault))
    assert isinstance(result.error, error_type), result.error
    if fault == "429":
        assert result.status == 429 and result.error.retry_after is not None


def test_read_timeout(client):
    start = time.perf_counter()
    result = client.run(SST2, {"text": "x"}, extra_headers=_fault("timeout"), timeout=(2, 0.5))
    assert isinstance(result.error, RequestTimeoutError) and result.status == 0
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_dropped_stream_keeps_partial_text(client, route):
    stream = client.stream(LLM, {"prompt": "a long answer please"}, route=route, extra_headers=_fault("drop-stream"))
    text = "".join(stream)
    result = stream.result
    assert result.interrupted and not result.ok
    assert isinstance(result.error, StreamInterruptedError)
    assert text and result.raw_body == text


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with Client(local_connection(f"http://127.0.0.1:{port}")) as c:
        result = c.run(SST2, {"text": "x"})
    assert isinstance(result.error, NetworkError) and "connection refused" in result.error.message


def test_bad_token_is_authentication_error():
    from cfai.emulator import start_emulator

    with start_emulator(port=0, speed=50, api_token="right-token") as emu:
        with Client(local_connection(emu.base_url, api_token="wrong-token")) as c:
            result = c.run(SST2, {"text": "x"})
            assert isinstance(result.error, AuthenticationError) and result.error.code == 10000
            assert "wrong-token" not in str(result.error) and "wrong-token" not in result.raw_body
            assert not c.verify_token().ok
        with Client(local_connection(emu.base_url, api_token="right-token")) as c:
            assert c.run(SST2, {"text": "x"}).ok


def test_retries_honour_retry_after_and_count_attempts(local_conn):
    policy = RetryPolicy(max_retries=2, backoff_s=0.01, max_retry_after_s=0.05)
    with Client(local_conn, retry=policy) as c:
        start = time.perf_counter()
        result = c.run(SST2, {"text": "x"}, extra_headers=_fault("429"))
        elapsed = time.perf_counter() - start
    assert result.attempts == 3 and isinstance(result.error, RateLimitError)
    assert elapsed >= 0.1  # two waits of min(Retry-After, cap)
    with Client(local_conn, retry=policy) as c:
        assert c.run(SST2, {"text": "x"}, extra_headers=_fault("malformed-json")).attempts == 1  # not retryable


def test_no_retries_by_default(client):
    assert client.run(SST2, {"text": "x"}, extra_headers=_fault("503")).attempts == 1


def test_a_cache_hit_has_no_generation_speed(client):
    body = {"prompt": f"speed {time.time_ns()}", "max_tokens": 16}
    miss = client.run(LLM, body, route="gateway")
    hit = client.run(LLM, body, route="gateway")
    assert miss.tokens_per_second and hit.cache_status == "HIT" and hit.tokens_per_second is None


def test_an_injected_fault_reaches_past_the_cache(client):
    body = {"text": f"cached {time.time_ns()}"}
    client.run(SST2, body, route="gateway")
    assert client.run(SST2, body, route="gateway").cache_status == "HIT"
    faulted = client.run(SST2, body, route="gateway", extra_headers=_fault("500"))
    assert isinstance(faulted.error, ServerError) and faulted.cache_status == "MISS"
    assert client.run(SST2, body, route="gateway").cache_status == "HIT"  # the failure was not cached


def test_a_stream_request_answered_with_a_cut_json_body_is_a_result_not_an_exception(client):
    # A model that does not stream answers whole JSON; cut mid-body, the Stream still ends in a typed error.
    stream = client.stream(SST2, {"text": "x"}, extra_headers=_fault("drop-stream"))
    assert list(stream) == []
    assert stream.result.error is not None and not stream.result.ok

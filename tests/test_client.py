"""The client against the emulator over loopback: every call, both routes, timings, faults, retries."""

from __future__ import annotations

import json
import socket
import time

import pandas as pd
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
    # More than five metadata entries: Cloudflare keeps the first five (custom-metadata.mdx), so do we, and say so.
    many = GatewayOptions(metadata={str(i): i for i in range(7)})
    assert many.validate() == []
    assert json.loads(many.headers()["cf-aig-metadata"]) == {str(i): i for i in range(5)}
    assert "'5', '6' not sent" in many.notices()[0]
    assert GatewayOptions(collect_log=True).headers() == {"cf-aig-collect-log": "true"}
    assert GatewayOptions(max_attempts=3, retry_delay_ms=500, backoff="linear").headers() == {
        "cf-aig-max-attempts": "3", "cf-aig-retry-delay": "500", "cf-aig-backoff": "linear"}
    assert GatewayOptions(max_attempts=6).validate() and GatewayOptions(backoff="random").validate()


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


# --- Misbehaving servers (tests/hostile_server.py): every call ends, by its deadline, in a typed error ------
from cfai.errors import (  # noqa: E402 - grouped with the tests that use them
    DeadlineExceededError,
    GatewayAuthError,
    InvalidRequestError,
    NotFoundError,
    RedirectError,
    ResponseTooLargeError,
)
from cfai.transport import MAX_BODY_BYTES  # noqa: E402
from tests.hostile_server import HostileServer  # noqa: E402

# Generous slack over a deadline: the point is that a call ends, not how fast (timings belong in bench/).
SLACK_S = 3.0


@pytest.fixture
def hostile():
    servers: list[HostileServer] = []

    def start(mode: str) -> tuple[HostileServer, Client]:
        server = HostileServer(mode)
        servers.append(server)
        client = Client(local_connection(server.base_url))
        server.client = client
        return server, client

    yield start
    for server in servers:
        server.client.close()
        server.stop()


def every_call(client: Client, **options):
    """(name, outcome) for every client call; outcome is a Result, or the CloudflareError a raising call
    raised. Streams are drained."""
    def catch(fn):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - typed errors are compared by the caller
            return exc

    messages = [{"role": "user", "content": "hi"}]
    return [
        ("run", client.run(SST2, {"text": "x"}, **options)),
        ("run gateway", client.run(SST2, {"text": "x"}, route="gateway", **options)),
        ("stream", client.stream(LLM, {"prompt": "x"}, **options).drain()),
        ("chat", client.chat(LLM, messages, **options)),
        ("chat stream", client.chat(LLM, messages, stream=True, **options).drain()),
        ("list_models", catch(lambda: client.list_models(deadline=options.get("deadline")))),
        ("model_schema", catch(lambda: client.model_schema(LLM, deadline=options.get("deadline")))),
        ("verify_token", client.verify_token(deadline=options.get("deadline"))),
        ("gateway_settings", client.gateway_settings(deadline=options.get("deadline"))),
        ("gateway_logs", client.gateway_logs(per_page=5, deadline=options.get("deadline"))),
    ]


def _error_of(outcome):
    return outcome if isinstance(outcome, Exception) else outcome.error


@pytest.mark.parametrize(("status", "error_type"), [
    (400, BadInputError), (401, AuthenticationError), (404, NotFoundError), (429, RateLimitError),
    (500, ServerError), (503, ServerError),
])
def test_an_empty_error_body_is_a_typed_error_naming_the_status_from_every_call(hostile, status, error_type):
    _, client = hostile(f"empty:{status}")
    for name, outcome in every_call(client):
        error = _error_of(outcome)
        assert isinstance(error, error_type), (name, repr(error))
        assert error.status == status and f"HTTP {status}" in error.message and "empty body" in error.message, name
        assert not isinstance(outcome, Exception) or name in ("list_models", "model_schema")  # those two raise


def test_gateway_auth_code_still_wins_over_the_status():
    # Regression guard for the empty-body fix: a body with a code keeps deciding the type.
    from cfai.errors import error_from_response

    err = error_from_response(401, b'{"success":false,"error":[{"code":2009,"message":"Unauthorized"}]}')
    assert isinstance(err, GatewayAuthError)


@pytest.mark.parametrize("mode", ["trickle:0.3", "trickle-headers:0.3", "stall"])
def test_a_slow_server_cannot_hold_a_call_past_its_deadline(hostile, mode):
    _, client = hostile(mode)
    start = time.perf_counter()
    result = client.run(SST2, {"text": "x"}, deadline=1.5)
    elapsed = time.perf_counter() - start
    assert isinstance(result.error, DeadlineExceededError), repr(result.error)
    assert "1.5 s deadline" in result.error.message and not result.ok
    assert 1.4 <= elapsed < 1.5 + SLACK_S
    if mode.startswith("trickle:"):  # the headers came, then a byte every 0.3 s: what arrived is kept
        assert result.status == 200 and result.bytes_received >= 3
        assert result.raw_body and '{"success": true'.startswith(result.raw_body[:16])
    else:
        assert result.status == 0


def test_the_connection_deadline_applies_to_every_call_and_a_single_timeout_number_is_a_deadline(hostile):
    server, _ = hostile("trickle:0.3")
    with Client(local_connection(server.base_url, deadline_s=0.5)) as client:
        start = time.perf_counter()
        outcomes = every_call(client)
        elapsed = time.perf_counter() - start
        for name, outcome in outcomes:
            assert isinstance(_error_of(outcome), DeadlineExceededError), (name, repr(_error_of(outcome)))
        assert elapsed < len(outcomes) * (0.5 + SLACK_S)
        # A (connect, read) pair keeps the per-read meaning: a trickle passes it, the deadline still ends it.
        result = client.run(SST2, {"text": "x"}, timeout=(5, 5))
        assert isinstance(result.error, DeadlineExceededError)
    with Client(local_connection(server.base_url)) as client:  # default deadline 120 s; one number: the total
        result = client.run(SST2, {"text": "x"}, timeout=1.0)
        assert isinstance(result.error, DeadlineExceededError) and "1 s deadline" in result.error.message


@pytest.mark.parametrize(("mode", "text"), [("sse-no-done:0.1", "w0 "), ("sse-keepalive:0.1", "first")])
def test_a_stream_that_never_finishes_ends_at_the_deadline_with_its_text(hostile, mode, text):
    _, client = hostile(mode)
    start = time.perf_counter()
    stream = client.stream(LLM, {"prompt": "x"}, deadline=1.5)
    chunks = list(stream)
    elapsed = time.perf_counter() - start
    result = stream.result
    assert isinstance(result.error, DeadlineExceededError), repr(result.error)
    assert result.interrupted and not result.ok and result.status == 200
    assert chunks and chunks[0] == text and result.raw_body == "".join(chunks)
    assert 1.4 <= elapsed < 1.5 + SLACK_S


def test_retries_stay_inside_the_deadline(hostile):
    server, _ = hostile("empty:503")
    with Client(local_connection(server.base_url), retry=RetryPolicy(max_retries=10, backoff_s=0.4)) as client:
        start = time.perf_counter()
        result = client.run(SST2, {"text": "x"}, deadline=1.0)
        elapsed = time.perf_counter() - start
    assert isinstance(result.error, ServerError) and 1 < result.attempts < 4
    assert elapsed < 1.0 + SLACK_S


@pytest.mark.parametrize("mode", ["endless", "huge-length", f"gzip-bomb:{2 * MAX_BODY_BYTES}"])
def test_a_body_past_the_cap_stops_with_a_clear_error(hostile, mode):
    _, client = hostile(mode)
    result = client.run(SST2, {"text": "x"}, deadline=20)
    assert isinstance(result.error, ResponseTooLargeError), repr(result.error)
    assert "32 MiB" in result.error.message and result.status == 200
    assert len(result.raw_body) <= 64 * 1024  # a sample is kept for the details, not the whole body
    stream = client.stream(LLM, {"prompt": "x"}, deadline=20)  # a stream request answered with the same body
    assert list(stream) == [] and isinstance(stream.result.error, ResponseTooLargeError)


@pytest.mark.parametrize("mode", ["sse-long-line:3000000", "sse-flood"])
def test_a_stream_past_the_line_or_size_cap_stops_with_a_clear_error(hostile, mode):
    _, client = hostile(mode)
    stream = client.stream(LLM, {"prompt": "x"}, deadline=30)
    list(stream)
    assert isinstance(stream.result.error, ResponseTooLargeError), repr(stream.result.error)
    assert stream.result.bytes_received <= MAX_BODY_BYTES + 1024 * 1024
    assert stream.result.interrupted


def test_absurdly_nested_json_and_non_http_answers_are_typed_errors(hostile):
    server, client = hostile("nested")
    assert isinstance(client.run(SST2, {"text": "x"}).error, MalformedResponseError)
    server.mode = "not-http"
    for name, outcome in every_call(client, deadline=5):
        assert isinstance(_error_of(outcome), MalformedResponseError), (name, repr(_error_of(outcome)))
        assert "not valid HTTP" in _error_of(outcome).message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_reported_and_not_followed(hostile, status):
    server, client = hostile(f"redirect:{status}")
    for name, outcome in every_call(client):
        error = _error_of(outcome)
        assert isinstance(error, RedirectError), (name, repr(error))
        assert "redirected to https://elsewhere.example/client/v4, not followed" in error.message
        assert error.status == status
    assert all(r["path"].startswith("/client/v4") or r["path"].startswith("/v1") for r in server.requests)


@pytest.mark.parametrize(("options", "words"), [
    ({"route": "gateway", "gateway": GatewayOptions(cache_key="a\r\nX-Injected: 1")}, "Cache key (cf-aig-cache-key) contains a line break"),
    ({"route": "gateway", "gateway": GatewayOptions(cache_key=" padded")}, "Cache key (cf-aig-cache-key) starts or ends with a space"),
    ({"route": "gateway", "gateway": GatewayOptions(event_id="e\n1")}, "Event id (cf-aig-event-id) contains a line break"),
    ({"route": "gateway", "gateway": GatewayOptions(event_id="trailing ")}, "Event id (cf-aig-event-id) starts or ends"),
    ({"extra_headers": {"x-note": "two\nlines"}}, "Header 'x-note' contains a line break"),
    ({"extra_headers": {"x-note": "\tlead"}}, "Header 'x-note' starts or ends with a space"),
    ({"extra_headers": {"x note": "v"}}, "Header name 'x note' is not valid"),
    ({"extra_headers": {"x-euro": "5 €"}}, "beyond Latin-1"),
    ({"extra_headers": {"x-n": 5}}, "must be text"),
])
def test_unsendable_header_values_are_refused_before_sending(hostile, options, words):
    server, client = hostile("ok")
    for outcome in (client.run(SST2, {"text": "x"}, **options), client.stream(LLM, {"prompt": "x"}, **options).drain(),
                    client.chat(LLM, [{"role": "user", "content": "x"}], **options)):
        assert isinstance(outcome.error, InvalidRequestError), repr(outcome.error)
        assert words in outcome.error.message and outcome.status == 0 and "Nothing was sent" in outcome.error.hint
    assert server.requests == []  # nothing went out
    if "gateway" in options:
        assert any(words in p for p in options["gateway"].validate())  # the UI shows the same sentence first


def test_gateway_options_round_trip_the_ui_rows():
    rows = [{"key": "user", "value": " ann "}, {"key": "n", "value": "2"}, {"key": "ok", "value": "true"},
            {"key": "r", "value": "0.5"}, {"key": " ", "value": "skipped"}, {"key": "empty", "value": float("nan")},
            {"key": "nan", "value": "nan"}, {"key": "na", "value": pd.NA}, {"key": pd.NA, "value": "x"}]
    options = GatewayOptions.from_rows(rows, cache_ttl=300, cache_key="  ")
    assert options.metadata == {"user": "ann", "n": 2, "ok": True, "r": 0.5, "empty": "", "nan": "nan", "na": ""}
    assert options.cache_key is None and options.cache_ttl == 300
    assert GatewayOptions.metadata_from_rows(options.metadata_rows()) == options.metadata
    assert GatewayOptions.from_rows([]).metadata is None

"""Contract tests for the newer response shapes (chat completion with reasoning, the Responses shape, R1's
inline reasoning), whole and streamed: the client's Result and Stream read text, reasoning and usage from
bodies taken from Cloudflare's documentation (tests/fixtures/shapes/), over real loopback HTTP."""

from __future__ import annotations

import pytest

from cfai.client import Client
from cfai.config import Connection
from cfai.shapes import STOPPED_WHILE_REASONING
from tests.replay_server import SHAPES, ReplayServer

WHOLE = sorted(n for n, f in SHAPES.items() if "body" in f and "text" in f.get("expect", {}))
STREAMED = sorted(n for n, f in SHAPES.items() if "events" in f)


@pytest.fixture(scope="module")
def replay():
    server = ReplayServer()
    yield server
    server.stop()


def _client(replay: ReplayServer, name: str) -> Client:
    base = f"{replay.base_url}/shape/{name}"
    return Client(Connection(mode="cloudflare", account_id="0" * 32, api_token="t", api_base_url=base,
                             gateway_base_url=base, read_timeout=5))


def _check_usage(usage: dict, expect: dict) -> None:
    if "prompt_tokens" in expect:
        assert usage["prompt_tokens"] == expect["prompt_tokens"]
    if "completion_tokens" in expect:
        assert usage["completion_tokens"] == expect["completion_tokens"]
    if "reasoning_tokens" in expect:
        assert usage["completion_tokens_details"]["reasoning_tokens"] == expect["reasoning_tokens"]
    if "cached_tokens" in expect:
        assert usage["prompt_tokens_details"]["cached_tokens"] == expect["cached_tokens"]


@pytest.mark.parametrize("name", WHOLE)
def test_a_whole_answer_in_any_shape(replay, name):
    expect = SHAPES[name]["expect"]
    reasoning_first = name.startswith("classic_r1")  # the catalogue says R1 reasons inline first
    with _client(replay, name) as client:
        result = client.run("@cf/some/model", {"prompt": "hi"}, reasoning_first=reasoning_first)
    assert result.ok, result.error
    assert result.text == expect["text"]
    assert result.reasoning == expect.get("reasoning", result.reasoning)
    if expect.get("stopped_while_reasoning"):
        assert result.answer.finish_note == STOPPED_WHILE_REASONING
    _check_usage(result.usage, expect)


@pytest.mark.parametrize("name", STREAMED)
def test_a_streamed_answer_in_any_shape(replay, name):
    expect = SHAPES[name]["expect"]
    with _client(replay, name) as client:
        stream = client.stream("@cf/some/model", {"prompt": "hi"})
        deltas = list(stream.deltas())
    result = stream.result
    assert result.ok and not result.interrupted, result.error
    assert "".join(d.text for d in deltas if d.kind == "answer") == expect["text"] == result.text
    assert "".join(d.text for d in deltas if d.kind == "reasoning") == expect["reasoning"] == result.reasoning
    kinds = [d.kind for d in deltas if d.text]
    assert kinds.index("reasoning") < kinds.index("answer")  # reasoning comes before the answer
    t = result.timings
    assert t.first_reasoning_ms is not None and t.first_answer_ms is not None
    assert t.first_token_ms == t.first_reasoning_ms <= t.first_answer_ms
    assert [e.kind for e in result.token_events] == kinds
    _check_usage(result.usage, expect)


def test_iterating_a_stream_gives_the_answer_only(replay):
    with _client(replay, "chat_completion_stream_reasoning") as client:
        chunks = list(client.stream("@cf/some/model", {"prompt": "hi"}))
    assert "".join(chunks) == SHAPES["chat_completion_stream_reasoning"]["expect"]["text"]

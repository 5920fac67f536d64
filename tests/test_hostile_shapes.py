"""Hostile bodies and streams in the newer response shapes (OpenAI chat, Responses, classic with usage), over
real HTTP on 127.0.0.1: a client call never raises on them, and junk never becomes a token count, a finish
reason or a tool call. (Python's json reads `1e400` as infinity and accepts `NaN`: both reach the readers.)"""

from __future__ import annotations

import json

import pytest

from cfai.client import Client
from cfai.config import local_connection
from tests.hostile_server import HostileServer

MODEL = "@cf/meta/llama-3.1-8b-instruct"
DEEP = "[" * 100_000 + "]" * 100_000

WHOLE = {
    "usage beyond a float": '{"success":true,"result":{"response":"hi","usage":{"prompt_tokens":1e400,'
                            '"completion_tokens":NaN,"total_tokens":-3}}}',
    "usage beyond SQLite": '{"success":true,"result":{"response":"hi","usage":{"prompt_tokens":' + "9" * 30 + "}}}",
    "responses content not a list": '{"object":"response","status":"completed","output":[{"type":"message",'
                                    '"content":5},{"type":"reasoning","summary":7,"content":"abc"}]}',
    "responses output not a list": '{"object":"response","output":5}',
    "chat with junk fields": '{"choices":[{"message":{"content":"hi","tool_calls":[5,"x",{"id":"t"}]},'
                             '"finish_reason":{"x":1}}],"usage":{"prompt_tokens":true}}',
    "chat choices not a list": '{"choices":"abc","usage":{"completion_tokens":"12"}}',
}

STREAMS = {
    "nested event": f'data: {{"response":{DEEP}}}\n\ndata: [DONE]\n\n',
    "usage beyond a float": 'data: {"response":"hi","usage":{"prompt_tokens":1e400}}\n\ndata: [DONE]\n\n',
    "chat finish not a word": 'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":{"a":1}}]}\n\n'
                              'data: [DONE]\n\n',
    "responses completed with junk": 'event: response.completed\ndata: {"type":"response.completed","response":'
                                     '{"object":"response","output":5,"status":"completed","usage":'
                                     '{"input_tokens":-5,"output_tokens":-1e308}}}\n\n',
    "responses failed with a text error": 'data: {"type":"response.failed","response":{"error":"boom"}}\n\n',
}


def _assert_sane_usage(usage):
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = (usage or {}).get(key)
        assert value is None or (isinstance(value, int) and 0 <= value < 2**63), usage


@pytest.mark.parametrize("name", list(WHOLE))
def test_a_hostile_whole_body_never_raises(name):
    with HostileServer("body:application/json", WHOLE[name].encode()) as server, \
            Client(local_connection(server.base_url)) as client:
        result = client.run(MODEL, {"prompt": "x"})
        answer = result.answer  # what the pages read
    _assert_sane_usage(result.usage)
    assert answer.finish_reason is None or isinstance(answer.finish_reason, str)
    assert all(isinstance(call, dict) for call in answer.tool_calls)


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_hostile_stream_never_raises(name):
    with HostileServer("body:text/event-stream", STREAMS[name].encode()) as server, \
            Client(local_connection(server.base_url)) as client:
        stream = client.stream(MODEL, {"prompt": "x"})
        for _ in stream:
            pass
        result = stream.result
        answer = result.answer
    _assert_sane_usage(result.usage)
    assert answer.finish_reason is None or isinstance(answer.finish_reason, str)
    if name == "nested event":
        assert "Unreadable stream event" in str(result.error)
    if name == "responses failed with a text error":
        assert "boom" in str(result.error)


def test_a_hostile_usage_is_stored_with_the_run(tmp_path):
    """A run whose every answer claims 10**30 tokens is stored (SQLite takes 64-bit integers), not lost."""
    from cfai.compare import Plan, Runner
    from cfai.store import Store

    body = json.dumps({"success": True, "result": {"response": "hi", "usage": {"prompt_tokens": 10**30}}})
    with HostileServer("body:application/json", body.encode()) as server, \
            Client(local_connection(server.base_url)) as client, Store(tmp_path / "h.sqlite3") as store:
        run = Runner(client, Plan(model=MODEL, body={"prompt": "x"}, routes=("direct",), n=2, warmup=0)).run()
        store.save_run(run, client.connection)
        frame = store.load_records(run.run_id)
    assert len(frame) == 2 and frame["ok"].all() and frame["tokens_in"].isna().all()


def test_a_last_event_with_no_blank_line_after_it_still_counts():
    """A server that closes the stream right after its last `data:` line (no blank line): that event is still
    read. Here it is a Responses stream's `response.completed`, so the stream ended properly (not cut)."""
    completed = {"type": "response.completed", "response": {"object": "response", "status": "completed",
                 "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hello"}]}]}}
    payload = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hello"}'
               b"\n\nevent: response.completed\ndata: " + json.dumps(completed).encode())
    with HostileServer("body:text/event-stream", body=payload) as server, \
            Client(local_connection(server.base_url)) as client:
        stream = client.stream(MODEL, {"input": "hi"})
        text = "".join(stream)
    assert text == "Hello" and stream.result.ok and not stream.result.interrupted, stream.result.error

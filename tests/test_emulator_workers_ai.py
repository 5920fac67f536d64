"""The Workers AI half of the emulator, over real loopback HTTP."""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from cfai.emulator import EmulatorHandle, embeddings, start_emulator
from cfai.emulator.textgen import count_tokens, first_tokens, generate, parse_gen_request
from tests.conftest import ROOT

ACCOUNT = "local"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
SST2 = "@cf/huggingface/distilbert-sst-2-int8"
TEXT_MODELS = [
    "@cf/meta/llama-3.1-8b-instruct",
    "@cf/meta/llama-3.1-8b-instruct-fast",
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    "@cf/meta/llama-3.2-3b-instruct",
    "@cf/mistral/mistral-7b-instruct-v0.1",
    "@hf/nousresearch/hermes-2-pro-mistral-7b",
]
TIMEOUT = 10


def api(handle: EmulatorHandle, path: str) -> str:
    return f"{handle.base_url}/client/v4{path}"


def run_url(handle: EmulatorHandle, model: str) -> str:
    return api(handle, f"/accounts/{ACCOUNT}/ai/run/{model}")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def post_run(session: requests.Session, handle: EmulatorHandle, model: str, body, **kw) -> requests.Response:
    return session.post(run_url(handle, model), json=body, timeout=TIMEOUT, **kw)


def sse_events(resp: requests.Response) -> list:
    """Parsed `data:` payloads of an event stream ("[DONE]" kept as a string)."""
    events = []
    for line in resp.iter_lines(chunk_size=None):
        if line.startswith(b"data: "):
            data = line[6:].decode()
            events.append(data if data == "[DONE]" else json.loads(data))
        else:
            assert line == b"", line
    return events


def assert_error(resp: requests.Response, status: int, code: int, prefix: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["message"].startswith(prefix)
    assert "Traceback" not in resp.text


# --- text generation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", TEXT_MODELS)
def test_text_generation_envelope_for_every_common_model(emulator, session, model):
    r = post_run(session, emulator, model, {"prompt": "Why does caching make gateways faster?"})
    assert r.status_code == 200
    assert r.headers["cf-emulator-backend"] == "simulated-llm"
    body = r.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    result = body["result"]
    assert set(result) == {"response", "tool_calls", "usage"} and result["tool_calls"] == []
    text = result["response"]
    assert isinstance(text, str) and text[0].isupper() and text.rstrip().endswith(".")
    usage = result["usage"]
    assert usage["completion_tokens"] == count_tokens(text)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 30 <= usage["completion_tokens"] <= 200


def test_text_mentions_prompt_key_words_and_reads_like_sentences(emulator, session):
    text = post_run(session, emulator, LLAMA, {"prompt": "Tell me about volcanoes and earthquakes"}).json()[
        "result"
    ]["response"]
    assert text == generate(LLAMA, parse_gen_request({"prompt": "Tell me about volcanoes and earthquakes"}),
                            emulator.state.options.seed).response  # exactly the deterministic simulator's text
    words = text.split()
    assert len(words) >= 10 and all(w.strip(".,;:!?").replace("-", "").replace("'", "").isalpha() for w in words)


def test_messages_input(emulator, session):
    body = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Explain photosynthesis"}]}
    result = post_run(session, emulator, LLAMA, body).json()["result"]
    assert "photosynthesis" in result["response"].lower()
    assert result["usage"]["prompt_tokens"] > count_tokens("Explain photosynthesis")


def test_same_request_same_text_and_seed_changes_it(emulator, session):
    body = {"prompt": "Compare rivers and lakes"}
    first = post_run(session, emulator, LLAMA, body).json()["result"]
    second = post_run(session, emulator, LLAMA, body).json()["result"]
    assert first == second
    texts = {post_run(session, emulator, LLAMA, {**body, "seed": s}).json()["result"]["response"] for s in (1, 2, 3)}
    assert len(texts) == 3  # every seed its own text
    other_model = post_run(session, emulator, "@cf/meta/llama-3.2-3b-instruct", body).json()["result"]
    assert other_model["response"] != first["response"]


def test_server_seed_is_the_default(session):
    body = {"prompt": "Compare rivers and lakes"}
    with start_emulator(speed=100, seed=7) as a, start_emulator(speed=100, seed=7) as b:
        text_a = post_run(session, a, LLAMA, body).json()["result"]["response"]
        assert post_run(session, b, LLAMA, body).json()["result"]["response"] == text_a
        assert post_run(session, a, LLAMA, {**body, "seed": 7}).json()["result"]["response"] == text_a


def test_max_tokens_caps_the_completion(emulator, session):
    result = post_run(session, emulator, LLAMA, {"prompt": "Write about oceans", "max_tokens": 5}).json()["result"]
    assert result["usage"]["completion_tokens"] == 5
    assert count_tokens(result["response"]) == 5


def test_natural_lengths_vary(emulator, session):
    lengths = {
        post_run(session, emulator, LLAMA, {"prompt": f"Question number {i} about gardens"}).json()["result"]["usage"][
            "completion_tokens"
        ]
        for i in range(8)
    }
    assert len(lengths) >= 3 and all(30 <= n <= 200 for n in lengths)


def test_json_object_response_format(emulator, session):
    body = {"prompt": "Describe a cat", "response_format": {"type": "json_object"}}
    result = post_run(session, emulator, LLAMA, body).json()["result"]
    assert isinstance(result["response"], dict) and result["response"]
    assert result["usage"]["completion_tokens"] == count_tokens(json.dumps(result["response"]))


def test_json_schema_response_format_matches_the_schema(emulator, session):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 1, "maximum": 20},
            "weight": {"type": "number"},
            "indoor": {"type": "boolean"},
            "toys": {"type": "array", "items": {"type": "string"}},
            "colour": {"type": "string", "enum": ["black", "white"]},
            "owner": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
        "required": ["name", "age"],
    }
    body = {"messages": [{"role": "user", "content": "Describe a cat"}],
            "response_format": {"type": "json_schema", "json_schema": schema}}
    obj = post_run(session, emulator, LLAMA, body).json()["result"]["response"]
    assert set(obj) == set(schema["properties"])
    assert isinstance(obj["name"], str) and isinstance(obj["age"], int) and 1 <= obj["age"] <= 20
    assert isinstance(obj["weight"], float) and isinstance(obj["indoor"], bool)
    assert isinstance(obj["toys"], list) and all(isinstance(t, str) for t in obj["toys"])
    assert obj["colour"] in ("black", "white") and "@" in obj["owner"]["email"]
    # OpenAI-style wrapper {"name", "schema"} is accepted too.
    wrapped = {**body, "response_format": {"type": "json_schema", "json_schema": {"name": "cat", "schema": schema}}}
    assert set(post_run(session, emulator, LLAMA, wrapped).json()["result"]["response"]) == set(schema["properties"])


# --- streaming --------------------------------------------------------------------------------------
def test_stream_format_and_consistency_with_plain(emulator, session):
    body = {"prompt": "How do tides work?"}
    plain = post_run(session, emulator, LLAMA, body).json()["result"]
    r = post_run(session, emulator, LLAMA, {**body, "stream": True}, stream=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("transfer-encoding") == "chunked"
    assert r.headers["cf-emulator-backend"] == "simulated-llm"
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    final = events[-2]
    assert final["response"] == "" and final["usage"] == plain["usage"]
    tokens = events[:-2]
    assert len(tokens) == plain["usage"]["completion_tokens"]
    for ev in tokens:
        assert set(ev) == {"response", "tool_calls", "p"} and ev["tool_calls"] == []
        assert isinstance(ev["p"], str) and ev["p"]
    assert len({len(ev["p"]) for ev in tokens}) > 3  # random-length padding
    assert "".join(ev["response"] for ev in tokens) == plain["response"]


def test_stream_max_tokens(emulator, session):
    r = post_run(session, emulator, LLAMA, {"prompt": "Rivers", "stream": True, "max_tokens": 7}, stream=True)
    events = sse_events(r)
    assert len(events) == 7 + 2 and events[-2]["usage"]["completion_tokens"] == 7


@pytest.fixture(scope="module")
def paced() -> Iterator[EmulatorHandle]:
    """Slow enough to measure: llama-3.1-8b at speed 4 is ~75 ms to first token, ~5 ms per token."""
    with start_emulator(speed=4, seed=3) as handle:
        yield handle


def test_stream_pace_follows_the_latency_model(paced, session):
    t0 = time.perf_counter()
    r = post_run(session, paced, LLAMA, {"prompt": "Explain volcanoes", "stream": True, "max_tokens": 30}, stream=True)
    arrivals = []
    for line in r.iter_lines(chunk_size=None):
        if line.startswith(b"data: {"):
            arrivals.append(time.perf_counter() - t0)
    first, last = arrivals[0], arrivals[-1]
    assert 0.035 <= first <= 1.0  # ~75 ms, jittered, plus generous scheduling slack
    assert last - first >= 0.07  # 29 further tokens at ~5 ms are spread out, not sent at once
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:-1], strict=False)]
    assert sum(g > 0.002 for g in gaps) >= len(gaps) // 3


def test_bigger_models_are_slower(paced, session):
    def total(model: str) -> float:
        t0 = time.perf_counter()
        post_run(session, paced, model, {"prompt": "Explain volcanoes", "max_tokens": 20}).raise_for_status()
        return time.perf_counter() - t0

    assert total("@cf/meta/llama-3.3-70b-instruct-fp8-fast") > total("@cf/meta/llama-3.1-8b-instruct-fast")


def test_streaming_with_response_format_is_refused(emulator, session):
    r = post_run(session, emulator, LLAMA, {"prompt": "x", "stream": True, "response_format": {"type": "json_object"}})
    assert_error(r, 400, 5006, "AiError: Bad input:")


# --- input errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": 5},
        {"prompt": ""},
        {"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
        {"messages": "hello"},
        {"messages": []},
        {"messages": [{"content": "no role"}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"prompt": "a", "temperature": "hot"},
        {"prompt": "a", "temperature": 5.5},
        {"prompt": "a", "top_p": -0.1},
        {"prompt": "a", "top_k": 0},
        {"prompt": "a", "top_k": 51},
        {"prompt": "a", "top_k": 2.5},
        {"prompt": "a", "seed": 0},
        {"prompt": "a", "seed": 10_000_000_000},
        {"prompt": "a", "max_tokens": "many"},
        {"prompt": "a", "max_tokens": 0},
        {"prompt": "a", "stream": "yes"},
        {"prompt": "a", "repetition_penalty": 3},
        {"prompt": "a", "frequency_penalty": True},
        {"prompt": "a", "presence_penalty": 2.5},
        {"prompt": "a", "raw": "true"},
        {"prompt": "a", "lora": 1},
        {"messages": [{"role": "user", "content": "b"}], "raw": True},
        {"prompt": "a", "response_format": {"type": "xml"}},
        {"prompt": "a", "response_format": {"type": "json_schema"}},
        ["not", "an", "object"],
    ],
)
def test_bad_text_generation_input(emulator, session, body):
    assert_error(post_run(session, emulator, LLAMA, body), 400, 5006, "AiError: Bad input: ")


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"\xff\xfe", b"null"])
def test_malformed_body(emulator, session, raw):
    r = session.post(run_url(emulator, LLAMA), data=raw, timeout=TIMEOUT)
    assert_error(r, 400, 5006, "AiError: Bad input: ")


def test_unknown_model(emulator, session):
    r = post_run(session, emulator, "@cf/nobody/no-such-model", {"prompt": "hi"})
    assert_error(r, 400, 5007, "AiError: No such model @cf/nobody/no-such-model")


def test_unknown_route_and_wrong_method(emulator, session):
    assert_error(session.get(api(emulator, "/nothing/here"), timeout=TIMEOUT), 404, 7000, "No route for that URI")
    assert_error(session.get(f"{emulator.base_url}/", timeout=TIMEOUT), 404, 7000)
    r = session.get(run_url(emulator, LLAMA), timeout=TIMEOUT)
    assert r.status_code == 405 and r.json()["success"] is False


def test_body_over_10_mb(emulator, session):
    big = b"x" * (10 * 1024 * 1024 + 1)
    assert_error(session.post(run_url(emulator, LLAMA), data=big, timeout=TIMEOUT), 413, 3006)

    def chunked():  # no Content-Length: counted while reading
        for _ in range(11):
            yield b"y" * (1024 * 1024)

    assert_error(session.post(run_url(emulator, LLAMA), data=chunked(), timeout=TIMEOUT), 413, 3006)


def test_internal_error_is_an_envelope_without_trace(emulator, session, monkeypatch):
    from cfai.emulator import text_tasks

    def boom(body):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(text_tasks, "translate", boom)
    r = post_run(session, emulator, "@cf/meta/m2m100-1.2b", {"text": "hi", "target_lang": "fr"})
    assert_error(r, 500, 5000)
    assert "secret" not in r.text


# --- other tasks ---------------------------------------------------------------------------------------
def sentiment(session, handle, text: str) -> dict[str, float]:
    r = post_run(session, handle, SST2, {"text": text})
    assert r.status_code == 200 and r.headers["cf-emulator-backend"] == "vader"
    result = r.json()["result"]
    assert {x["label"] for x in result} == {"NEGATIVE", "POSITIVE"}
    scores = {x["label"]: x["score"] for x in result}
    assert math.isclose(sum(scores.values()), 1.0, abs_tol=1e-9)
    return scores


def test_classification_polarity(emulator, session):
    assert sentiment(session, emulator, "I absolutely love this, it is wonderful and amazing!")["POSITIVE"] > 0.95
    assert sentiment(session, emulator, "This is terrible, awful, I hate it and it broke.")["NEGATIVE"] > 0.95
    neutral = sentiment(session, emulator, "The train leaves at noon.")
    assert 0.3 < neutral["POSITIVE"] < 0.7


@pytest.mark.parametrize("body", [{}, {"text": 3}, {"text": ""}, {"prompt": "hi"}])
def test_classification_bad_input(emulator, session, body):
    assert_error(post_run(session, emulator, SST2, body), 400, 5006, "AiError: Bad input: ")


@pytest.mark.parametrize(("model", "dims"), [
    ("@cf/baai/bge-small-en-v1.5", 384), ("@cf/baai/bge-base-en-v1.5", 768), ("@cf/baai/bge-large-en-v1.5", 1024),
])
def test_embeddings_dims_and_unit_norm(emulator, session, model, dims):
    r = post_run(session, emulator, model, {"text": ["first text", "second text", "first text"]})
    assert r.headers["cf-emulator-backend"] == "simulated-embeddings"
    result = r.json()["result"]
    assert result["shape"] == [3, dims] and result["pooling"] == "mean"
    for vec in result["data"]:
        assert len(vec) == dims and math.isclose(math.fsum(v * v for v in vec), 1.0, rel_tol=1e-9)
    assert result["data"][0] == result["data"][2] != result["data"][1]
    single = post_run(session, emulator, model, {"text": "first text"}).json()["result"]
    assert single["shape"] == [1, dims] and single["data"][0] == result["data"][0]


def test_embeddings_shared_words_are_closer(emulator, session):
    texts = ["the cat sat on the mat", "the cat sat on a rug", "quarterly revenue grew strongly"]
    a, b, c = post_run(session, emulator, "@cf/baai/bge-small-en-v1.5", {"text": texts}).json()["result"]["data"]

    def cos(x, y):
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, b) > cos(a, c) + 0.2


def test_embeddings_batch_limits(emulator, session):
    model = "@cf/baai/bge-small-en-v1.5"
    assert post_run(session, emulator, model, {"text": [f"t{i}" for i in range(100)]}).json()["result"]["shape"] == [
        100, 384,
    ]
    for body in ({"text": [f"t{i}" for i in range(101)]}, {"text": []}, {"text": 5}, {}, {"text": ["a", 1]}):
        assert_error(post_run(session, emulator, model, body), 400, 5006, "AiError: Bad input: ")


def test_summarization(emulator, session):
    article = ("The river flooded the town on Monday. Rescue teams arrived within hours. "
               "Nobody was hurt. Repairs will take weeks. The mayor thanked the volunteers.")
    r = post_run(session, emulator, "@cf/facebook/bart-large-cnn", {"input_text": article, "max_length": 1024})
    assert r.headers["cf-emulator-backend"] == "simulated-summarizer"
    summary = r.json()["result"]["summary"]
    assert summary.startswith("The river flooded the town on Monday.") and len(summary) < len(article)
    short = post_run(session, emulator, "@cf/facebook/bart-large-cnn", {"input_text": article, "max_length": 4})
    assert count_tokens(short.json()["result"]["summary"]) <= 4
    assert_error(post_run(session, emulator, "@cf/facebook/bart-large-cnn", {"text": "x"}), 400, 5006)


def test_translation(emulator, session):
    r = post_run(session, emulator, "@cf/meta/m2m100-1.2b", {"text": "Hello world", "source_lang": "en", "target_lang": "fr"})
    assert r.headers["cf-emulator-backend"] == "simulated-translator"
    assert r.json()["result"] == {"translated_text": "[fr] Hello world"}
    assert_error(post_run(session, emulator, "@cf/meta/m2m100-1.2b", {"text": "Hello"}), 400, 5006)


# --- OpenAI-compatible routes ---------------------------------------------------------------------------
def oai(handle: EmulatorHandle, what: str) -> str:
    return api(handle, f"/accounts/{ACCOUNT}/ai/v1/{what}")


def test_chat_completions_plain_and_stream(emulator, session):
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "Explain glaciers"}], "max_tokens": 40}
    r = session.post(oai(emulator, "chat/completions"), json=body, timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["cf-emulator-backend"] == "simulated-llm"
    answer = r.json()
    assert answer["object"] == "chat.completion" and answer["model"] == LLAMA and "success" not in answer
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 40 == count_tokens(choice["message"]["content"])

    r = session.post(oai(emulator, "chat/completions"), json={**body, "stream": True}, stream=True, timeout=TIMEOUT)
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == choice["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"] == answer["usage"]


def test_chat_completions_errors(emulator, session):
    url = oai(emulator, "chat/completions")
    msgs = [{"role": "user", "content": "hi"}]
    assert_error(session.post(url, json={"messages": msgs}, timeout=TIMEOUT), 400, 5006)
    assert_error(session.post(url, json={"model": "@cf/x/y", "messages": msgs}, timeout=TIMEOUT), 400, 5007)
    assert_error(session.post(url, json={"model": SST2, "messages": msgs}, timeout=TIMEOUT), 400, 5006)
    assert_error(session.post(url, json={"model": LLAMA}, timeout=TIMEOUT), 400, 5006)
    assert_error(session.post(url, data="{", timeout=TIMEOUT), 400, 5006)


def test_openai_embeddings(emulator, session):
    body = {"model": "@cf/baai/bge-base-en-v1.5", "input": ["alpha", "beta"]}
    answer = session.post(oai(emulator, "embeddings"), json=body, timeout=TIMEOUT).json()
    assert answer["object"] == "list" and [d["index"] for d in answer["data"]] == [0, 1]
    assert len(answer["data"][0]["embedding"]) == 768 and answer["usage"]["prompt_tokens"] == 2
    assert_error(session.post(oai(emulator, "embeddings"), json={"model": LLAMA, "input": "x"}, timeout=TIMEOUT), 400, 5006)


# --- catalog ------------------------------------------------------------------------------------------
def search(session, handle, **params) -> dict:
    r = session.get(api(handle, f"/accounts/{ACCOUNT}/ai/models/search"), params=params, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def test_models_search_entries_and_filters(emulator, session):
    everything = search(session, emulator)
    names = {m["name"] for m in everything["result"]}
    assert set(TEXT_MODELS) | {SST2, "@cf/baai/bge-small-en-v1.5", "@cf/facebook/bart-large-cnn"} <= names
    entry = next(m for m in everything["result"] if m["name"] == LLAMA)
    assert entry["task"]["name"] == "Text Generation" and {"id", "name", "description"} <= set(entry["task"])
    assert "Simulated by the local emulator" in entry["description"]
    assert {"property_id": "context_window", "value": "7968"} in entry["properties"]
    tg = search(session, emulator, task="Text Generation")["result"]
    assert tg and all(m["task"]["name"] == "Text Generation" for m in tg)
    assert {m["name"] for m in search(session, emulator, author="baai")["result"]} == {
        "@cf/baai/bge-small-en-v1.5", "@cf/baai/bge-base-en-v1.5", "@cf/baai/bge-large-en-v1.5",
    }
    assert [m["name"] for m in search(session, emulator, search="m2m100")["result"]] == ["@cf/meta/m2m100-1.2b"]
    assert search(session, emulator, task="No Such Task")["result"] == []


def test_models_search_pagination(emulator, session):
    total = search(session, emulator)["result_info"]["total_count"]
    seen = []
    for page in range(1, math.ceil(total / 5) + 1):
        body = search(session, emulator, page=page, per_page=5)
        info = body["result_info"]
        assert info["page"] == page and info["per_page"] == 5 and info["total_count"] == total
        assert info["count"] == len(body["result"]) <= 5
        seen += [m["name"] for m in body["result"]]
    assert len(seen) == len(set(seen)) == total
    assert search(session, emulator, page=99, per_page=5)["result"] == []
    bad = session.get(api(emulator, f"/accounts/{ACCOUNT}/ai/models/search"), params={"page": "x"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and bad.json()["success"] is False


def test_models_schema(emulator, session):
    url = api(emulator, f"/accounts/{ACCOUNT}/ai/models/schema")
    result = session.get(url, params={"model": LLAMA}, timeout=TIMEOUT).json()["result"]
    assert result["input"]["type"] == "object" and "response" in result["output"]["properties"]
    assert_error(session.get(url, params={"model": "@cf/x/y"}, timeout=TIMEOUT), 400, 5007)
    assert session.get(url, timeout=TIMEOUT).status_code == 400


# --- tokens and auth ----------------------------------------------------------------------------------
def test_token_verify_without_configured_token(emulator, session):
    for path in ("/user/tokens/verify", f"/accounts/{ACCOUNT}/tokens/verify"):
        body = session.get(api(emulator, path), headers={"Authorization": "Bearer anything"}, timeout=TIMEOUT).json()
        assert body["success"] is True and body["result"]["status"] == "active" and body["result"]["id"]


@pytest.fixture(scope="module")
def guarded() -> Iterator[EmulatorHandle]:
    with start_emulator(speed=100, api_token="s3cret-token") as handle:
        yield handle


def test_api_token_is_required_everywhere(guarded, session):
    good = {"Authorization": "Bearer s3cret-token"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        assert_error(session.get(api(guarded, "/user/tokens/verify"), headers=headers, timeout=TIMEOUT), 401, 10000)
        r = session.post(run_url(guarded, LLAMA), json={"prompt": "x"}, headers=headers, timeout=TIMEOUT)
        assert_error(r, 401, 10000, "Authentication error")
        r = session.get(api(guarded, f"/accounts/{ACCOUNT}/ai/models/search"), headers=headers, timeout=TIMEOUT)
        assert r.status_code == 401
    assert session.get(api(guarded, "/user/tokens/verify"), headers=good, timeout=TIMEOUT).json()["success"]
    assert post_run(session, guarded, LLAMA, {"prompt": "x", "max_tokens": 3}, headers=good).status_code == 200


def test_faults_ignored_unless_allowed(guarded, session):
    headers = {"Authorization": "Bearer s3cret-token", "x-emulator-fault": "500"}
    assert post_run(session, guarded, SST2, {"text": "fine"}, headers=headers).status_code == 200


# --- faults ---------------------------------------------------------------------------------------------
def fault(name: str) -> dict[str, str]:
    return {"x-emulator-fault": name}


def test_fault_429(emulator, session):
    r = post_run(session, emulator, LLAMA, {"prompt": "x"}, headers=fault("429"))
    assert_error(r, 429, 3040, "Capacity temporarily exceeded, please try again.")
    assert r.headers["Retry-After"] == "2"


@pytest.mark.parametrize("status", [500, 503])
def test_fault_5xx(emulator, session, status):
    r = post_run(session, emulator, SST2, {"text": "x"}, headers=fault(str(status)))
    assert r.status_code == status and r.json()["success"] is False and r.json()["errors"][0]["code"]


def test_fault_malformed_json(emulator, session):
    r = post_run(session, emulator, LLAMA, {"prompt": "x"}, headers=fault("malformed-json"))
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.text)


def test_fault_timeout_stalls_until_the_client_gives_up(emulator, session):
    t0 = time.perf_counter()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(run_url(emulator, LLAMA), json={"prompt": "x"}, headers=fault("timeout"), timeout=(5, 0.3))
    assert time.perf_counter() - t0 < 5
    assert post_run(session, emulator, SST2, {"text": "still alive"}).status_code == 200


def test_fault_drop_stream(emulator, session):
    r = requests.post(run_url(emulator, LLAMA), json={"prompt": "x", "stream": True}, headers=fault("drop-stream"),
                      stream=True, timeout=TIMEOUT)
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in r.iter_lines(chunk_size=None):
            received.append(line)
    assert any(line.startswith(b"data: {") for line in received)
    assert b"data: [DONE]" not in received
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(run_url(emulator, LLAMA), json={"prompt": "x"}, headers=fault("drop-stream"), timeout=TIMEOUT)


def test_fault_header_validation(emulator, session):
    assert_error(post_run(session, emulator, LLAMA, {"prompt": "x"}, headers=fault("explode")), 400, 5006)
    r = post_run(session, emulator, LLAMA, {"prompt": "x"}, headers={"x-emulator-delay-ms": "soon"})
    assert_error(r, 400, 5006)


def test_fixed_delay_header(emulator, session):
    for model, body in ((SST2, {"text": "ok"}), (LLAMA, {"prompt": "x"})):
        t0 = time.perf_counter()
        r = post_run(session, emulator, model, body, headers={"x-emulator-delay-ms": "250"})
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200 and 0.24 <= elapsed < 1.5


# --- concurrency ----------------------------------------------------------------------------------------
def test_32_concurrent_clients(emulator):
    def one(i: int) -> tuple[int, int]:
        with requests.Session() as s:
            plain = post_run(s, emulator, LLAMA, {"prompt": f"client {i}", "max_tokens": 30})
            streamed = post_run(s, emulator, LLAMA, {"prompt": f"client {i}", "stream": True, "max_tokens": 30}, stream=True)
            events = sse_events(streamed)
            assert events[-1] == "[DONE]"
            return plain.status_code, streamed.status_code

    with ThreadPoolExecutor(32) as pool:
        assert set(pool.map(one, range(32))) == {(200, 200)}


# --- upstream OpenAI-compatible server ------------------------------------------------------------------
class _StubOpenAI(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible chat server: answers 'stub says hi' (streamed as 3 chunks)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    seen: list = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _StubOpenAI.seen.append(body)
        usage = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
        if not body.get("stream"):
            data = json.dumps({
                "id": "x", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "stub says hi"},
                             "finish_reason": "stop"}],
                "usage": usage,
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, piece in enumerate(["stub", " says", " hi"]):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if i == 2 else None}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        tail = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": body["model"], "choices": [],
                "usage": usage}
        self.wfile.write(b"data: " + json.dumps(tail).encode() + b"\n\ndata: [DONE]\n\n")
        self.close_connection = True


@pytest.fixture(scope="module")
def stub_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_upstream_openai_forwarding(stub_upstream, session):
    with start_emulator(speed=100, upstream_openai=stub_upstream, upstream_model="tiny") as handle:
        r = post_run(session, handle, LLAMA, {"prompt": "hello"})
        assert r.headers["cf-emulator-backend"] == "upstream-openai"
        assert r.json()["result"]["response"] == "stub says hi"
        assert r.json()["result"]["usage"]["total_tokens"] == 7
        assert _StubOpenAI.seen[-1]["model"] == "tiny"
        assert _StubOpenAI.seen[-1]["messages"] == [{"role": "user", "content": "hello"}]

        events = sse_events(post_run(session, handle, LLAMA, {"prompt": "hello", "stream": True}, stream=True))
        assert "".join(e["response"] for e in events[:-1]) == "stub says hi" and events[-1] == "[DONE]"
        assert events[-2]["usage"]["total_tokens"] == 7

        body = {"model": LLAMA, "messages": [{"role": "user", "content": "hi"}]}
        answer = session.post(oai(handle, "chat/completions"), json=body, timeout=TIMEOUT).json()
        assert answer["choices"][0]["message"]["content"] == "stub says hi" and answer["model"] == LLAMA
        r = session.post(oai(handle, "chat/completions"), json={**body, "stream": True}, stream=True, timeout=TIMEOUT)
        chunks = sse_events(r)
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"]) == "stub says hi"

        # Other tasks stay simulated.
        assert post_run(session, handle, SST2, {"text": "good"}).headers["cf-emulator-backend"] == "vader"


def test_upstream_unreachable(session):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with start_emulator(speed=100, upstream_openai=dead) as handle:
        for body in ({"prompt": "x"}, {"prompt": "x", "stream": True}):
            r = post_run(session, handle, LLAMA, body)
            assert_error(r, 502, 4900, "AiError: upstream")
            assert r.headers["cf-emulator-backend"] == "upstream-openai"


# --- lifecycle and CLI --------------------------------------------------------------------------------
def test_handle_stop_is_idempotent_and_frees_the_port(session):
    handle = start_emulator(speed=100)
    assert handle.base_url == f"http://127.0.0.1:{handle.port}" and handle.state.base_url == handle.base_url
    assert session.get(api(handle, "/user/tokens/verify"), timeout=TIMEOUT).status_code == 200
    handle.stop()
    handle.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(api(handle, "/user/tokens/verify"), timeout=2)


def test_cli_prints_listening_answers_and_exits_on_sigterm(tmp_path):
    env = {**os.environ, "CFAI_EMULATOR_API_TOKEN": "cli-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfai.emulator", "--port", "0", "--speed", "100", "--seed", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()  # printed only once the socket accepts connections
        assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        base = line.split("listening on ", 1)[1].strip()
        url = f"{base}/client/v4/user/tokens/verify"
        assert requests.get(url, timeout=TIMEOUT).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer cli-token"}, timeout=TIMEOUT).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "cli-token" not in proc.stdout.read() + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- under abuse: slow clients, connection limits, hostile bodies, heavy work ------------------------------
def raw_connection(handle: EmulatorHandle, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", handle.port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def wait_until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    """Readiness check: poll `condition()` until true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def envelope_of(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
def strict():
    """A private emulator with short read deadlines."""
    with start_emulator(speed=100, header_timeout_s=0.3, body_timeout_s=0.3) as handle:
        yield handle


@pytest.fixture
def limited():
    """A private emulator that serves at most 4 client connections at once."""
    with start_emulator(speed=100, max_connections=4) as handle:
        yield handle


def test_a_client_that_sends_headers_too_slowly_is_answered_408_and_dropped(strict):
    with raw_connection(strict) as s:
        s.sendall(b"POST /client/v4/user/tokens/verify HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        status, body = envelope_of(read_until_closed(s))
    assert status == 408 and body["success"] is False and body["errors"][0]["code"] == 3007
    with raw_connection(strict) as silent:  # a connection that sends nothing at all is dropped too
        assert read_until_closed(silent).startswith(b"HTTP/1.1 408 ")
    assert requests.get(api(strict, "/user/tokens/verify"), timeout=TIMEOUT).status_code == 200


def test_a_body_that_stops_is_dropped_and_logs_no_traceback(strict, caplog):
    caplog.set_level(logging.WARNING)
    with raw_connection(strict) as s:
        s.sendall(b"POST /client/v4/accounts/local/ai/run/" + SST2.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text\": \"hel")
        assert read_until_closed(s) == b""  # closed by the server, after its body deadline
    wait_until(lambda: strict.active_requests == 0, what="the abandoned handler to finish")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text
    assert post_run(requests, strict, SST2, {"text": "still fine"}).status_code == 200


@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_a_client_leaving_mid_body_logs_no_unhandled_error(emulator, caplog, route):
    caplog.set_level(logging.WARNING)
    path = (f"/client/v4/accounts/{ACCOUNT}/ai/run/{SST2}" if route == "direct"
            else f"/v1/{ACCOUNT}/demo/workers-ai/{SST2}")
    with raw_connection(emulator) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                  "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"text\": ".encode())
        wait_until(lambda: emulator.active_requests >= 1, what="the handler to start")
    wait_until(lambda: emulator.active_requests == 0, what="the handler to see the client leave")
    assert "unhandled error" not in caplog.text and not [r for r in caplog.records if r.exc_info], caplog.text


def test_connections_beyond_the_limit_get_503_and_the_gateway_still_answers_its_misses(limited):
    held = [raw_connection(limited) for _ in range(3)]
    try:
        with requests.Session() as kept_alive:
            # The fourth client connection is allowed; its gateway miss makes a hop of its own (not counted).
            url = f"{limited.base_url}/v1/{ACCOUNT}/demo/workers-ai/{SST2}"
            miss = kept_alive.post(url, json={"text": f"miss {time.time_ns()}"},
                                   headers={"Authorization": "Bearer t"}, timeout=TIMEOUT)
            assert miss.status_code == 200 and miss.headers["cf-aig-cache-status"] == "MISS"
            assert limited.open_connections == 4
            with raw_connection(limited) as fifth:
                status, body = envelope_of(read_until_closed(fifth))
            assert status == 503 and body["errors"][0]["code"] == 3040
            assert "at most 4" in body["errors"][0]["message"]
    finally:
        for s in held:
            s.close()
    wait_until(lambda: limited.open_connections < 4, what="the held connections to close")
    assert requests.get(api(limited, "/user/tokens/verify"), timeout=TIMEOUT).status_code == 200


def test_out_of_file_descriptors_the_log_stays_small_and_the_server_recovers(tmp_path):
    """Hundreds of connections against a 128-descriptor limit: asyncio reports every failed accept; the
    emulator lets a few reports through per 10 s (a flood was 23 MB in 5 s) and serves again afterwards."""
    log_path = tmp_path / "emulator.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cfai.emulator", "--port", "0", "--speed", "100", "--max-connections", "1000"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)),
        )
    try:
        wait_until(lambda: b"listening on" in log_path.read_bytes() or proc.poll() is not None, 20, "startup")
        port = int(log_path.read_text().split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
        clients = []
        try:
            for _ in range(300):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            wait_until(lambda: b"out of system resource" in log_path.read_bytes(), 20, "descriptors to run out")
        finally:
            for c in clients:
                c.close()
        # asyncio retries accepting after 1 s; then the server answers again.
        wait_until(lambda: _verify_ok(port), 20, "the server to recover")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = log_path.read_text(errors="replace")
    assert text.count("out of system resource") <= 10, text[:2000]
    assert len(text) < 64 * 1024, f"{len(text)} bytes of log"


def _verify_ok(port: int) -> bool:
    try:
        r = requests.get(f"http://127.0.0.1:{port}/client/v4/user/tokens/verify", timeout=2)
    except requests.RequestException:
        return False
    return r.status_code == 200


def test_a_fast_request_completes_while_a_heavy_one_computes(monkeypatch):
    """Embedding 30 texts of 512 words takes about a second of CPU; a catalogue request sent meanwhile must
    not wait for it. Ordering, not time: the fast answer arrives before the heavy computation has ended."""
    real_embed = embeddings.embed
    started, last_end = threading.Event(), [0.0]

    def observed_embed(*args, **kwargs):
        started.set()
        try:
            return real_embed(*args, **kwargs)
        finally:
            last_end[0] = time.monotonic()

    monkeypatch.setattr(embeddings, "embed", observed_embed)
    rng = random.Random(time.time_ns())
    texts = [" ".join("".join(rng.choice("abcdefghijklmnop") for _ in range(8)) for _ in range(512))
             for _ in range(30)]
    with start_emulator(speed=100) as handle, ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(requests.post, run_url(handle, "@cf/baai/bge-large-en-v1.5"), json={"text": texts},
                            timeout=120)
        assert started.wait(60), "the heavy request never started computing"
        fast = requests.get(api(handle, f"/accounts/{ACCOUNT}/ai/models/search?per_page=1"), timeout=60)
        fast_done = time.monotonic()
        heavy_response = heavy.result()
    assert fast.status_code == 200 and heavy_response.status_code == 200
    assert heavy_response.json()["result"]["shape"] == [30, 1024]
    assert fast_done < last_end[0], "the fast request waited for the heavy computation"


def test_a_9_mb_classification_reads_the_first_512_tokens_and_answers(emulator, session):
    opening = "What a wonderful, happy day, I love it! "
    long_text = opening * 3 + "This is dreadful and awful. " * 330_000  # about 9 MB
    assert len(long_text) > 9_000_000
    r = post_run(session, emulator, SST2, {"text": long_text}, )
    assert r.status_code == 200, r.text[:300]
    window = first_tokens(long_text, 512)
    assert r.json()["result"] == post_run(session, emulator, SST2, {"text": window}).json()["result"]


DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
HOSTILE_BODIES = {
    "deep nesting": '{"prompt": "x", "extra": ' + DEEP_ARRAY + "}",
    "nesting over 64 levels": '{"prompt": "x", "extra": ' + "[" * 65 + "]" * 65 + "}",
    "lone surrogate": '{"prompt": "caf\\ud800e", "text": "caf\\udc00e"}',
    "NaN": '{"prompt": "x", "temperature": NaN}',
    "number beyond a float": '{"prompt": "x", "temperature": 1e400}',
    "invalid UTF-8": b'{"prompt": "\xff\xfe"}',
}


@pytest.mark.parametrize("kind", HOSTILE_BODIES)
@pytest.mark.parametrize("path", [f"/ai/run/{LLAMA}", f"/ai/run/{SST2}", "/ai/v1/chat/completions",
                                  "/ai/v1/embeddings"])
def test_hostile_json_bodies_answer_400_in_the_envelope(emulator, session, kind, path):
    r = session.post(api(emulator, f"/accounts/{ACCOUNT}{path}"), data=HOSTILE_BODIES[kind],
                     headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert_error(r, 400, 5006, "AiError: Bad input: ")


@pytest.mark.parametrize("model", ["..%2F..%2Fai-gateway%2Fgateways", "..%2f..%2fai-gateway%2fgateways",
                                   "%2E%2E%2F%2E%2E%2Fai-gateway%2Fgateways"])
def test_an_encoded_dot_segment_in_a_workers_ai_model_path_is_just_an_unknown_model(emulator, model):
    """Uvicorn decodes `%2F` before routing; the run route looks the model up and forwards nothing."""
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=TIMEOUT)
    try:
        conn.request("POST", f"/client/v4/accounts/{ACCOUNT}/ai/run/{model}", body=json.dumps({"id": "x"}),
                     headers={"Content-Type": "application/json"})  # sent as written, no client normalisation
        resp = conn.getresponse()
        status, body = resp.status, json.loads(resp.read())
    finally:
        conn.close()
    assert status == 400 and body["errors"][0]["code"] == 5007, body


def test_the_cli_takes_the_network_and_abuse_options():
    from cfai.emulator.__main__ import parse_args

    args = parse_args(["--network-rtt-ms", "40", "--network-jitter-ms", "10", "--header-timeout", "5",
                       "--body-timeout", "7", "--max-connections", "64"])
    assert (args.network_rtt_ms, args.network_jitter_ms, args.header_timeout, args.body_timeout,
            args.max_connections) == (40, 10, 5, 7, 64)
    defaults = parse_args([])
    assert defaults.network_rtt_ms == 0 and defaults.network_jitter_ms == 0
    for bad in (["--network-rtt-ms", "-1"], ["--header-timeout", "0"], ["--max-connections", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


# --- one definition of the fault kinds and headers ----------------------------------------------------------
def test_fault_kinds_and_headers_are_defined_once():
    """cfai/faults.py names them; the emulator, pages, components and the rest of the core import them: no
    other module spells a header name, or lists the kinds (three or more of them on one line)."""
    from cfai.faults import DELAY_HEADER, FAULT_HEADER, FAULT_KINDS

    sources = [p for folder in ("cfai", "components", "pages") for p in (ROOT / folder).rglob("*.py")]
    offenders = []
    for path in [*sources, ROOT / "app.py"]:
        if path == ROOT / "cfai" / "faults.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            headers = [h for h in (FAULT_HEADER, DELAY_HEADER) if f'"{h}"' in line or f"'{h}'" in line]
            kinds = [k for k in FAULT_KINDS if f'"{k}"' in line or f"'{k}'" in line]
            if headers or len(kinds) >= 3:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], offenders
    assert len(set(FAULT_KINDS)) == len(FAULT_KINDS) == 6


@pytest.mark.parametrize("kind", ["500", "503", "429", "malformed-json"])
def test_every_instant_fault_kind_is_honoured(emulator, session, kind):
    from cfai.faults import FAULT_HEADER, INSTANT_FAULT_KINDS

    assert kind in INSTANT_FAULT_KINDS
    r = post_run(session, emulator, SST2, {"text": "x"}, headers={FAULT_HEADER: kind})
    assert r.status_code == (200 if kind == "malformed-json" else int(kind))


def test_the_apps_embedded_emulator_simulates_a_network_round_trip():
    """components/connection.py starts it with the demo round trip; the test fixtures keep 0."""
    from cfai.emulator import DEMO_NETWORK_JITTER_MS, DEMO_NETWORK_RTT_MS
    from components.connection import _embedded_emulator

    handle = _embedded_emulator(100.0)
    try:
        opts = handle.state.options
        assert (opts.network_rtt_ms, opts.network_jitter_ms) == (DEMO_NETWORK_RTT_MS, DEMO_NETWORK_JITTER_MS)
        r = requests.get(api(handle, "/user/tokens/verify"), timeout=TIMEOUT)
        rtt = float(r.headers["cf-emulator-network-rtt-ms"])
        assert DEMO_NETWORK_RTT_MS - DEMO_NETWORK_JITTER_MS <= rtt <= DEMO_NETWORK_RTT_MS + DEMO_NETWORK_JITTER_MS
    finally:
        handle.stop()
        _embedded_emulator.clear()

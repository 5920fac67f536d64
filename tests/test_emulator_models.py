"""Each catalogued model in its own shape, per-model parameters, rate limits, rejectIfBusy, prompt caching,
`/ai/v1/responses`, `POST /ai/run {model, input}`: real HTTP against the emulator on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cfai.emulator import start_emulator
from cfai.emulator.workers_ai_limits import WINDOW_S, WorkersAILimits, limit_per_minute
from cfai.model_params import changed_params, check_values, param_specs
from cfai.shapes import STOPPED_WHILE_REASONING, StreamReader, read_answer
from cfai.sse import SSEParser

ACCOUNT = "local"
TIMEOUT = 15
SHAPES = Path(__file__).parent / "fixtures" / "shapes"
LLAMA31 = "@cf/meta/llama-3.1-8b-instruct"
LLAMA33 = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
LLAMA4 = "@cf/meta/llama-4-scout-17b-16e-instruct"
GLM = "@cf/zai-org/glm-4.7-flash"
R1 = "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b"
QWQ = "@cf/qwen/qwq-32b"
OSS120 = "@cf/openai/gpt-oss-120b"
OSS20 = "@cf/openai/gpt-oss-20b"
REASONING = [GLM, R1, QWQ, OSS120, OSS20]
QUESTION = [{"role": "user", "content": "Why do caches make gateways faster?"}]


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def api(emu, path: str) -> str:
    return f"{emu.base_url}/client/v4/accounts/{ACCOUNT}{path}"


def run(http, emu, model: str, body: dict, **kw) -> requests.Response:
    return http.post(api(emu, f"/ai/run/{model}"), json=body, timeout=TIMEOUT, **kw)


def model_body(model: str, **extra) -> dict:
    """The request each model documents: Responses `input` for gpt-oss, messages otherwise."""
    if model in (OSS120, OSS20):
        return {"input": QUESTION[0]["content"], "instructions": "Be brief.", **extra}
    return {"messages": QUESTION, **extra}


def stream_deltas(resp: requests.Response, reader: StreamReader) -> list:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    parser, deltas = SSEParser(), []
    for chunk in resp.iter_content(chunk_size=None):
        for event in parser.feed(chunk):
            deltas += reader.feed(event.data, event.event)
    for event in parser.close():
        deltas += reader.feed(event.data, event.event)
    return deltas


def error_of(resp: requests.Response) -> tuple[int, int, str]:
    body = resp.json()
    assert body["success"] is False and body["result"] is None, body
    return resp.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


# --- shapes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "shape"), [(LLAMA31, "classic"), (LLAMA4, "classic"), (R1, "classic"),
                                              (QWQ, "classic"), (GLM, "chat_completion"), (OSS120, "responses"),
                                              (OSS20, "responses")])
def test_run_answers_in_the_models_shape(emulator, http, model, shape):
    r = run(http, emulator, model, model_body(model))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    answer = read_answer(body, reasoning_first=model in (R1, QWQ), max_tokens=256)
    assert answer.shape == shape
    assert answer.text and answer.finish_reason == "stop"
    if model in REASONING:
        assert answer.reasoning and answer.text not in answer.reasoning
    else:
        assert answer.reasoning == ""


def test_r1_reasoning_is_inline_and_ends_with_think_close(emulator, http):
    result = run(http, emulator, R1, model_body(R1)).json()["result"]
    assert set(result) == {"response", "tool_calls", "usage"}
    assert "</think>" in result["response"] and not result["response"].startswith("<think>")
    assert set(result["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_glm_chat_completion_carries_reasoning_and_token_details(emulator, http):
    result = run(http, emulator, GLM, model_body(GLM)).json()["result"]
    message = result["choices"][0]["message"]
    assert result["object"] == "chat.completion" and message["reasoning_content"] and message["content"]
    usage = result["usage"]
    reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning_tokens < usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}


def test_responses_object_has_reasoning_then_message(emulator, http):
    result = run(http, emulator, OSS120, model_body(OSS120, reasoning={"effort": "low", "summary": "auto"})).json()["result"]
    fixture = json.loads((SHAPES / "responses_reasoning_message.json").read_text())["body"]
    assert result["object"] == "response" and result["status"] == "completed"
    assert [i["type"] for i in result["output"]] == [i["type"] for i in fixture["output"]]
    assert set(result["usage"]) == set(fixture["usage"])
    assert result["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_v1_responses_route_answers_without_envelope(emulator, http):
    r = http.post(api(emulator, "/ai/v1/responses"), json={"model": OSS20, **model_body(OSS20)}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "result" not in body and body["object"] == "response"
    answer = read_answer(body)
    assert answer.text and answer.reasoning
    refused = http.post(api(emulator, "/ai/v1/responses"), json={"model": LLAMA31, "input": "hi"}, timeout=TIMEOUT)
    assert error_of(refused)[:2] == (400, 5006)


@pytest.mark.parametrize("model", REASONING + [LLAMA31])
def test_stream_gives_reasoning_before_answer_and_matches_the_whole_answer(emulator, http, model):
    inline = model in (R1, QWQ)
    whole = read_answer(run(http, emulator, model, model_body(model)).json(), reasoning_first=inline, max_tokens=256)
    reader = StreamReader(reasoning_first=inline, max_tokens=256)
    deltas = stream_deltas(run(http, emulator, model, model_body(model, stream=True), stream=True), reader)
    kinds = [d.kind for d in deltas if d.text]
    if model in REASONING:
        first_answer = kinds.index("answer")
        assert kinds[0] == "reasoning" and "reasoning" not in kinds[first_answer:]
    else:
        assert set(kinds) == {"answer"}
    streamed = reader.answer()
    assert (streamed.text, streamed.reasoning) == (whole.text, whole.reasoning)
    assert streamed.usage.output_tokens == whole.usage.output_tokens


def test_responses_stream_uses_openai_event_names(emulator, http):
    r = http.post(api(emulator, "/ai/v1/responses"), json={"model": OSS120, **model_body(OSS120), "stream": True},
                  timeout=TIMEOUT, stream=True)
    names = [e.event for e in SSEParser().feed(r.content)]
    fixture = json.loads((SHAPES / "responses_stream_events.json").read_text())
    assert set(e["type"] for e in fixture["events"]) <= set(names)
    assert names[0] == "response.created" and names[-1] == "response.completed"


@pytest.mark.parametrize("model", REASONING)
def test_small_max_tokens_is_spent_on_reasoning(emulator, http, model):
    budget = 8
    extra = {"max_output_tokens": budget} if model in (OSS120, OSS20) else {"max_tokens": budget}
    body = run(http, emulator, model, model_body(model, **extra)).json()
    answer = read_answer(body, reasoning_first=model in (R1, QWQ), max_tokens=budget)
    assert answer.text == "" and answer.reasoning
    assert answer.finish_note == STOPPED_WHILE_REASONING
    assert answer.usage.output_tokens == budget


def test_glm_fixture_shape_when_cut_while_reasoning(emulator, http):
    result = run(http, emulator, GLM, model_body(GLM, max_completion_tokens=4)).json()["result"]
    choice = result["choices"][0]
    assert choice["message"]["content"] is None and choice["finish_reason"] == "length"
    assert result["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4


def test_reasoning_effort_changes_the_amount_of_reasoning(emulator, http):
    def reasoning_tokens(effort: str) -> int:
        body = run(http, emulator, OSS120, model_body(OSS120, reasoning={"effort": effort})).json()
        return body["result"]["usage"]["output_tokens_details"]["reasoning_tokens"]

    assert reasoning_tokens("low") < reasoning_tokens("high")
    assert reasoning_tokens("low") == reasoning_tokens("low")  # deterministic


def test_chat_completions_endpoint_splits_reasoning_for_every_reasoning_model(emulator, http):
    for model in (R1, OSS20, GLM):
        r = http.post(api(emulator, "/ai/v1/chat/completions"), json={"model": model, "messages": QUESTION},
                      timeout=TIMEOUT)
        message = r.json()["choices"][0]["message"]
        assert message["reasoning_content"] and "</think>" not in message["content"], model
    plain = http.post(api(emulator, "/ai/v1/chat/completions"), json={"model": LLAMA31, "messages": QUESTION},
                      timeout=TIMEOUT).json()
    assert "reasoning_content" not in plain["choices"][0]["message"]


def test_catalogue_says_shape_and_reasoning(emulator, http):
    r = http.get(api(emulator, "/ai/models/search"), params={"task": "Text Generation", "per_page": 100}, timeout=TIMEOUT)
    entries = {e["name"]: {p["property_id"]: p["value"] for p in e["properties"]} for e in r.json()["result"]}
    assert {LLAMA33, LLAMA4, GLM, R1, QWQ, OSS120, OSS20} <= set(entries)
    assert entries[GLM]["response_shape"] == "chat_completion" and entries[GLM]["reasoning"] == "true"
    assert entries[OSS120]["response_shape"] == "responses"
    fixture = json.loads((SHAPES / "models_search_entry_price.json").read_text())
    documented = {p["property_id"]: p["value"] for p in fixture["body"]["result"][1]["properties"]}
    assert entries[OSS120]["reasoning_effort"] == documented["reasoning_effort"]
    assert entries[LLAMA31]["response_shape"] == "classic" and "reasoning" not in entries[LLAMA31]


# --- parameters per model -------------------------------------------------------------------------------
def schema(http, emu, model: str) -> dict:
    r = http.get(api(emu, "/ai/models/schema"), params={"model": model}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def specs_by_name(http, emu, model: str) -> dict:
    return {s.name: s for s in param_specs(schema(http, emu, model))}


def test_schema_ranges_and_defaults_per_model(emulator, http):
    llama31, llama33 = specs_by_name(http, emulator, LLAMA31), specs_by_name(http, emulator, LLAMA33)
    assert (llama31["top_p"].minimum, llama31["top_p"].maximum) == (0, 2)
    assert (llama33["top_p"].minimum, llama33["top_p"].maximum) == (0.001, 1)
    assert (llama33["frequency_penalty"].minimum, llama33["presence_penalty"].maximum) == (-2, 2)
    assert llama31["temperature"].default == 0.6 and llama31["max_tokens"].default == 256
    assert specs_by_name(http, emulator, LLAMA4)["temperature"].default == 0.15
    glm = specs_by_name(http, emulator, GLM)
    assert (glm["temperature"].maximum, glm["temperature"].default, glm["top_p"].default) == (2, 1, 1)
    assert "top_k" not in glm and "repetition_penalty" not in glm
    assert glm["reasoning_effort"].choices == ("low", "medium", "high")
    oss = specs_by_name(http, emulator, OSS120)
    assert oss["reasoning.effort"].choices == ("low", "medium", "high")
    assert oss["reasoning.effort"].default == "medium" and oss["reasoning.effort"].branches == ("Responses",)
    assert oss["top_p"].maximum == 1


@pytest.mark.parametrize(("model", "body", "ok"), [
    (LLAMA31, {"top_p": 1.5}, True),
    (LLAMA33, {"top_p": 1.5}, False),
    (LLAMA33, {"frequency_penalty": -1.5}, True),
    (LLAMA31, {"frequency_penalty": -1.5}, False),
    (R1, {"presence_penalty": -2}, True),
    (GLM, {"temperature": 2.5}, False),
    (GLM, {"temperature": 1.5}, True),
    (GLM, {"top_k": 10}, False),
    (LLAMA4, {"temperature": 5.5}, False),
    (OSS120, {"reasoning": {"effort": "extreme"}}, False),
    (LLAMA31, {"reasoning": {"effort": "low"}}, False),
    (LLAMA31, {"options": {"rejectIfBusy": False}, "unknownKey": 1}, True),
    (LLAMA31, {"options": "yes"}, False),
])
def test_emulator_enforces_each_models_ranges(emulator, http, model, body, ok):
    r = run(http, emulator, model, {**model_body(model), **body, "max_tokens": 4})
    if ok:
        assert r.status_code == 200, r.text
    else:
        status, code, message = error_of(r)
        assert (status, code) == (400, 5006) and message.startswith("AiError: Bad input:")


def test_changed_params_sends_only_what_moved_and_the_emulator_takes_it(emulator, http):
    specs = param_specs(schema(http, emulator, OSS120))
    values = {"temperature": 0.6, "top_p": 0.5, "max_tokens": 256, "reasoning.effort": "high", "seed": None}
    body = changed_params(specs, values)
    assert body == {"top_p": 0.5, "reasoning": {"effort": "high"}}
    r = run(http, emulator, OSS120, {**model_body(OSS120), **body})
    assert r.status_code == 200, r.text
    glm = param_specs(schema(http, emulator, GLM))
    assert changed_params(glm, {"temperature": 1, "top_p": 1.0}) == {}  # glm's own defaults, not Llama's
    assert changed_params(glm, {"max_tokens": 64}) == {"max_tokens": 64}  # no schema default: sent when set
    assert check_values(glm, {"top_k": 5}) == {"top_k": "top_k is not a parameter of this model"}
    with pytest.raises(ValueError, match="temperature must be at most 2"):
        changed_params(glm, {"temperature": 3})


# --- rate limits and rejectIfBusy -----------------------------------------------------------------------
def test_rate_limit_per_model_per_minute_then_documented_429():
    """Limits on by default (the session emulator lifts them): the 301st text request in a minute is refused."""
    fixture = json.loads((SHAPES / "rate_limit_error.json").read_text())
    with start_emulator(port=0, speed=1000) as emu, requests.Session() as s:
        limit = 300
        for _ in range(limit):
            r = s.post(api(emu, f"/ai/run/{LLAMA31}"), json={"prompt": "hi", "max_tokens": 1}, timeout=TIMEOUT)
            assert r.status_code == 200, r.text
        refused = s.post(api(emu, f"/ai/run/{LLAMA31}"), json={"prompt": "hi", "max_tokens": 1}, timeout=TIMEOUT)
        assert refused.status_code == fixture["status"] and refused.json() == fixture["body"]
        chat = s.post(api(emu, "/ai/v1/chat/completions"), json={"model": LLAMA31, "messages": QUESTION}, timeout=TIMEOUT)
        assert chat.status_code == 429  # the same model's budget on every route
        other = s.post(api(emu, f"/ai/run/{LLAMA33}"), json={"prompt": "hi", "max_tokens": 1}, timeout=TIMEOUT)
        assert other.status_code == 200


def test_sliding_minute_and_the_flag_that_lifts_it():
    from cfai.emulator.models_catalog import get_model

    now = [0.0]
    spec = get_model("@cf/baai/bge-large-en-v1.5")
    limits = WorkersAILimits(enforce_rate=True, busy_threshold=1, clock=lambda: now[0])
    assert limit_per_minute(spec) == 1500 and limit_per_minute(get_model(LLAMA31)) == 300
    assert all(limits.take("a", spec) for _ in range(1500))
    assert not limits.take("a", spec) and limits.take("other-account", spec)
    now[0] = WINDOW_S + 0.001
    assert limits.take("a", spec)
    lifted = WorkersAILimits(enforce_rate=False, busy_threshold=1)
    assert all(lifted.take("a", spec) for _ in range(2000))


def test_reject_if_busy_answers_3040_while_the_model_is_busy():
    fixture = json.loads((SHAPES / "reject_if_busy_error.json").read_text())
    with start_emulator(port=0, speed=2, busy_threshold=1) as emu, requests.Session() as s:
        busy = requests.post(api(emu, f"/ai/run/{R1}"), json={"messages": QUESTION, "stream": True},
                             timeout=TIMEOUT, stream=True)
        chunks = busy.iter_content(chunk_size=None)  # kept referenced: dropping it closes the connection
        assert next(chunks).startswith(b"data: ")  # the first event: the request is in flight
        refused = s.post(api(emu, f"/ai/run/{R1}"), json=fixture["request"], timeout=TIMEOUT)
        assert refused.status_code == fixture["status"] and refused.json() == fixture["body"]
        queued = s.post(api(emu, f"/ai/run/{R1}"), json={**fixture["request"], "options": {}, "max_tokens": 2},
                        timeout=TIMEOUT)
        assert queued.status_code == 200  # without rejectIfBusy the request waits its turn
        busy.close()
        limits = emu.state.extras["workers_ai_limits"]
        deadline = time.monotonic() + 10
        while limits.in_flight(R1) and time.monotonic() < deadline:  # the server sees the disconnect
            time.sleep(0.01)
        assert limits.in_flight(R1) == 0
        again = s.post(api(emu, f"/ai/run/{R1}"), json={**fixture["request"], "max_tokens": 2}, timeout=TIMEOUT)
        assert again.status_code == 200


# --- prompt caching -------------------------------------------------------------------------------------
LONG_SYSTEM = " ".join(f"Rule {i}: answer carefully and cite the relevant section of the manual." for i in range(12))


def chat_usage(http, emu, question: str, session: str | None, model: str = GLM) -> dict:
    headers = {"x-session-affinity": session} if session else {}
    r = http.post(api(emu, "/ai/v1/chat/completions"), headers=headers, timeout=TIMEOUT,
                  json={"model": model, "messages": [{"role": "system", "content": LONG_SYSTEM},
                                                      {"role": "user", "content": question}], "max_tokens": 8})
    assert r.status_code == 200, r.text
    return r.json()["usage"]


def test_session_affinity_reports_cached_prefix_tokens(emulator, http):
    assert chat_usage(http, emulator, "first question?", "sess-a")["prompt_tokens_details"]["cached_tokens"] == 0
    warm = chat_usage(http, emulator, "second question?", "sess-a")
    cached = warm["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0 and cached % 16 == 0 and cached < warm["prompt_tokens"]
    assert chat_usage(http, emulator, "third?", None)["prompt_tokens_details"]["cached_tokens"] == 0
    assert chat_usage(http, emulator, "third?", "sess-b")["prompt_tokens_details"]["cached_tokens"] == 0


def test_classic_usage_carries_cached_tokens_only_with_a_session(emulator, http):
    body = {"messages": [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "q?"}], "max_tokens": 4}
    plain = run(http, emulator, LLAMA31, body).json()["result"]["usage"]
    assert "prompt_tokens_details" not in plain
    for _ in range(2):
        usage = run(http, emulator, LLAMA31, body, headers={"x-session-affinity": "classic-1"}).json()["result"]["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] > 0


def test_warm_prefix_reaches_the_first_token_sooner():
    """Relative, not a target: the same prompt cold and warm on one emulator at realistic speed."""
    with start_emulator(port=0, speed=1, rate_limits=False) as emu, requests.Session() as s:
        def ttft(session: str) -> float:
            started = time.perf_counter()
            r = s.post(api(emu, f"/ai/run/{R1}"), headers={"x-session-affinity": session}, stream=True, timeout=TIMEOUT,
                       json={"messages": [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "q?"}],
                             "stream": True, "max_tokens": 2})
            next(r.iter_content(chunk_size=None))
            elapsed = time.perf_counter() - started
            r.close()
            return elapsed

        cold = ttft("warm-test")
        warm = ttft("warm-test")
        assert warm < cold


# --- POST /ai/run with the model in the body, token verification ----------------------------------------
def test_run_with_model_in_body_needs_the_gateway_header(emulator, http):
    body = {"model": LLAMA31, "input": {"prompt": "Why is the sky blue?", "max_tokens": 8}}
    refused = http.post(api(emulator, "/ai/run"), json=body, timeout=TIMEOUT)
    status, code, message = error_of(refused)
    assert (status, code) == (400, 5006) and "cf-aig-gateway-id" in message
    # With the header it is the unified gateway route (tests/test_gateway_fidelity.py covers the gateway side).
    r = http.post(api(emulator, "/ai/run"), json=body, headers={"cf-aig-gateway-id": "demo"}, timeout=TIMEOUT)
    direct = run(http, emulator, LLAMA31, body["input"])
    assert r.status_code == 200, r.text
    assert read_answer(r.json()).text == read_answer(direct.json()).text
    bad = http.post(api(emulator, "/ai/run"), json={"model": LLAMA31}, headers={"cf-aig-gateway-id": "demo"},
                    timeout=TIMEOUT)
    assert error_of(bad)[:2] == (400, 5006)


def test_run_with_model_in_body_streams(emulator, http):
    body = {"model": GLM, "input": {"messages": QUESTION, "stream": True}}
    r = http.post(api(emulator, "/ai/run"), json=body, headers={"cf-aig-gateway-id": "demo"}, timeout=TIMEOUT,
                  stream=True)
    reader = StreamReader()
    stream_deltas(r, reader)
    answer = reader.answer()
    assert answer.shape == "chat_completion" and answer.text and answer.reasoning


def test_account_owned_token_verifies_at_the_account_endpoint():
    with start_emulator(port=0, speed=100, api_token="acct-token") as emu, requests.Session() as s:
        ok = s.get(f"{emu.base_url}/client/v4/accounts/{ACCOUNT}/tokens/verify",
                   headers={"Authorization": "Bearer acct-token"}, timeout=TIMEOUT)
        assert ok.status_code == 200 and ok.json()["result"]["status"] == "active"
        bad = s.get(f"{emu.base_url}/client/v4/accounts/{ACCOUNT}/tokens/verify",
                    headers={"Authorization": "Bearer wrong"}, timeout=TIMEOUT)
        assert error_of(bad)[:2] == (401, 10000)


def test_cli_flag_lifts_rate_limits():
    from cfai.emulator.__main__ import parse_args

    assert parse_args([]).no_rate_limits is False
    assert parse_args(["--no-rate-limits"]).no_rate_limits is True
    with start_emulator(port=0, rate_limits=False) as emu:
        assert emu.state.options.rate_limits is False


def test_busy_threshold_must_be_positive():
    with pytest.raises(ValueError):
        start_emulator(port=0, busy_threshold=0)


"""The conversation model: history, request bodies, parameter checks, outcomes and exports."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfai.chat import (
    DEFAULT_JSON_SCHEMA,
    EXAMPLE_PROMPT,
    PARAM_SPECS,
    Conversation,
    TurnMetrics,
    build_request_body,
    default_params,
    error_advice,
    metrics_summary,
    pair_to_json,
    pair_to_markdown,
    parse_json_answer,
    parse_json_schema,
    record_result,
    resend_conversation,
    response_format,
    validate_params,
)
from cfai.client import Result, Timings
from cfai.errors import RateLimitError, StreamInterruptedError

MODEL = "@cf/meta/llama-3.1-8b-instruct"
CANARY = "canary-token-7f3a9c1e5b"


def _ok_result(text: str = "Hello there", **extra) -> Result:
    return Result(
        ok=True, status=200, url="http://127.0.0.1/x", route="direct", model=MODEL,
        output={"response": text, "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}},
        usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        timings=Timings(started_at=1.0, ttfb_ms=40.0, total_ms=100.0), raw_body="{}", **extra,
    )


# --- parameters -----------------------------------------------------------------------------------------
def test_defaults_are_the_documented_ones():
    assert default_params() == {"max_tokens": 256, "temperature": 0.6}
    assert validate_params(default_params()) == []


@pytest.mark.parametrize(
    ("name", "bad"),
    [("temperature", 5.1), ("temperature", -0.1), ("top_p", 2.5), ("top_k", 0), ("top_k", 51),
     ("seed", 0), ("seed", 10_000_000_000), ("repetition_penalty", 2.1), ("presence_penalty", -1),
     ("frequency_penalty", 3), ("max_tokens", 0), ("top_k", 2.5)],
)
def test_out_of_range_values_are_named(name, bad):
    problems = validate_params({name: bad})
    assert problems and PARAM_SPECS[name].label in problems[0]


def test_unknown_and_non_numeric_parameters_are_reported():
    assert "Unknown parameter 'temprature'." in validate_params({"temprature": 1})
    assert validate_params({"temperature": "hot"}) == ["Temperature must be a number."]
    assert validate_params({"temperature": True}) == ["Temperature must be a number."]


@given(st.sampled_from(sorted(PARAM_SPECS)), st.floats(allow_nan=False, allow_infinity=False))
def test_validation_agrees_with_the_ranges(name, value):
    spec = PARAM_SPECS[name]
    if spec.kind == "int":
        value = round(value)
    ok = spec.minimum <= value <= spec.maximum
    assert (validate_params({name: value}) == []) == ok


def test_response_format_checks():
    assert validate_params({"response_format": response_format("json_object")}) == []
    assert validate_params({"response_format": response_format("json_schema", DEFAULT_JSON_SCHEMA)}) == []
    assert validate_params({"response_format": response_format("json_schema", "{not json")})
    assert validate_params({"response_format": {"type": "xml"}})
    assert response_format("off") is None


def test_json_schema_editor_parsing():
    assert parse_json_schema(json.dumps(DEFAULT_JSON_SCHEMA)) == (DEFAULT_JSON_SCHEMA, None)
    schema, problem = parse_json_schema('{"type": "object",')
    assert schema is None and "not valid JSON" in problem
    assert parse_json_schema("[]")[0] is None


# --- request bodies -------------------------------------------------------------------------------------
def test_messages_body_has_system_prompt_history_and_params():
    conv = Conversation(system_prompt="Be brief.")
    conv.add_user("Hi")
    record_result(conv, conv.turns[-1], _ok_result("Hello!"), body={"messages": []})
    conv.add_user("Tell me a joke")
    body = build_request_body(conv, {"max_tokens": 64, "temperature": 0.2, "top_k": None}, stream=True)
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a joke"},
        ],
        "max_tokens": 64, "temperature": 0.2, "stream": True,
    }


def test_prompt_mode_sends_only_the_latest_prompt_with_raw():
    conv = Conversation(system_prompt="ignored in prompt mode")
    conv.add_user("first")
    conv.add_user("second")
    body = build_request_body(conv, default_params(), input_mode="prompt", raw=True)
    assert body == {"prompt": "second", "raw": True, "max_tokens": 256, "temperature": 0.6}


def test_json_mode_never_streams():
    conv = Conversation()
    conv.add_user("Give me JSON")
    body = build_request_body(conv, {"response_format": {"type": "json_object"}}, stream=True)
    assert "stream" not in body and body["response_format"] == {"type": "json_object"}


# --- outcomes -------------------------------------------------------------------------------------------
def test_answer_is_recorded_with_metrics():
    conv = Conversation()
    user = conv.add_user("Hi")
    turn = record_result(conv, user, _ok_result(), body={"messages": [], "max_tokens": 10})
    assert turn is conv.turns[-1] and turn.content == "Hello there"
    assert turn.params == {"max_tokens": 10}
    m = turn.metrics
    assert (m.status, m.prompt_tokens, m.completion_tokens, m.ttfb_ms, m.total_ms) == (200, 12, 3, 40.0, 100.0)
    assert m.time_to_first_token_ms == 40.0
    assert m.tokens_per_second == pytest.approx(30.0)
    summary = metrics_summary(m)
    assert "12 in / 3 out" in summary and "HTTP 200" in summary and "route direct" in summary


def test_failed_turn_keeps_the_prompt_and_is_left_out_of_the_next_request():
    conv = Conversation()
    user = conv.add_user("Keep me")
    failed = Result(ok=False, status=429, url="u", route="gateway", model=MODEL,
                    error=RateLimitError("Rate limited", status=429, code=2003, retry_after=7))
    assert record_result(conv, user, failed, body={"messages": []}) is None
    assert conv.turns == [user] and user.failed and user.content == "Keep me"
    assert user.error["retry_after"] == 7
    assert "Retry after 7 s." in error_advice(user.error)
    assert conv.can_retry() and not conv.can_regenerate()
    assert conv.messages() == []
    resent = conv.prepare_resend()
    assert resent is user and not user.failed and user.error is None
    assert conv.messages() == [{"role": "user", "content": "Keep me"}]


def test_interrupted_stream_keeps_the_partial_answer():
    conv = Conversation()
    user = conv.add_user("Long story please")
    cut = Result(ok=False, status=200, url="u", route="direct", model=MODEL, interrupted=True,
                 output={"response": "Once upon a", "usage": None}, raw_body="Once upon a",
                 error=StreamInterruptedError("The stream was cut", status=200))
    turn = record_result(conv, user, cut, body={"messages": [], "stream": True}, streamed=True)
    assert turn.content == "Once upon a" and turn.interrupted and turn.error["kind"] == "stream_interrupted"
    assert not user.failed
    assert "Interrupted" in conv.to_markdown()


def test_regenerate_drops_the_last_answer():
    conv = Conversation()
    user = conv.add_user("Hi")
    record_result(conv, user, _ok_result(), body={})
    assert conv.can_regenerate()
    assert conv.prepare_resend() is user
    assert conv.turns == [user]


def test_json_answers_are_parsed():
    assert parse_json_answer({"response": {"a": 1}}, "") == ({"a": 1}, None)
    assert parse_json_answer({"response": '{"a": 2}'}, "") == ({"a": 2}, None)
    parsed, problem = parse_json_answer({"response": "nope"}, "nope")
    assert parsed is None and "not valid JSON" in problem
    conv = Conversation()
    user = conv.add_user("json")
    turn = record_result(conv, user, _ok_result(text={"answer": "yes"}),  # type: ignore[arg-type]
                         body={"messages": [], "response_format": {"type": "json_object"}})
    assert turn.parsed == {"answer": "yes"} and json.loads(turn.content) == {"answer": "yes"}


def test_exports_carry_model_params_metrics_and_never_the_token():
    conv = Conversation(system_prompt="sys")
    user = conv.add_user("Hi")
    record_result(conv, user, _ok_result(), body={"messages": [], "temperature": 0.2}, gateway={"cache_ttl": 60})
    exported = json.loads(conv.to_json(mode="local"))
    answer = exported["turns"][1]
    assert answer["model"] == MODEL and answer["params"] == {"temperature": 0.2}
    assert answer["metrics"]["completion_tokens"] == 3 and answer["gateway"] == {"cache_ttl": 60}
    md = conv.to_markdown(mode="local")
    assert "## Assistant (@cf/meta/llama-3.1-8b-instruct, direct)" in md and "`temperature=0.2`" in md
    assert CANARY not in conv.to_json() + md


def test_metrics_from_a_real_call(client):
    conv = Conversation()
    user = conv.add_user("Say hello")
    body = build_request_body(conv, {"max_tokens": 16})
    result = client.run(MODEL, body)
    turn = record_result(conv, user, result, body=body)
    assert turn is not None and turn.content and isinstance(turn.metrics, TurnMetrics)
    assert turn.metrics.status == 200 and turn.metrics.completion_tokens


def test_resend_conversation_is_what_regenerate_sends():
    empty, is_example = resend_conversation(Conversation())
    assert is_example and empty.messages() == [{"role": "user", "content": EXAMPLE_PROMPT}]
    conv = Conversation(system_prompt="sys")
    user = conv.add_user("Hi")
    record_result(conv, user, _ok_result(), body={})
    preview, is_example = resend_conversation(conv)
    assert not is_example
    assert preview.messages() == [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi"}]
    assert len(conv.turns) == 2, "the real conversation is untouched"
    user.failed = True  # a failed prompt is what Retry would send
    conv.turns.pop()
    assert resend_conversation(conv)[0].messages()[-1] == {"role": "user", "content": "Hi"}
    assert conv.turns[0].failed


def test_side_by_side_exports_name_both_sides():
    a, b = Conversation(), Conversation()
    record_result(a, a.add_user("Q"), _ok_result("from A"), body={})
    record_result(b, b.add_user("Q"), _ok_result("from B"), body={})
    data = json.loads(pair_to_json(a, b))
    assert data["a"]["turns"][1]["content"] == "from A" and data["b"]["turns"][1]["content"] == "from B"
    md = pair_to_markdown(a, b)
    assert md.index("## A") < md.index("from A") < md.index("## B") < md.index("from B")


# --- request shapes, budgets, hints (issue 12 / 13) ------------------------------------------------------
def test_a_responses_shaped_model_gets_input_reasoning_and_max_output_tokens():
    from cfai.chat import ChatRequest, request_shape

    schema = {"input": {"oneOf": [{"title": "Prompt", "required": ["prompt"]},
                                  {"title": "Responses", "required": ["input"]}]}}
    assert request_shape(schema) == "responses" and request_shape({"input": {}}, None) == "classic"
    conv = Conversation("Be brief.")
    conv.add_user("Hi")
    req = ChatRequest("@cf/openai/gpt-oss-120b", {"reasoning": {"effort": "high"}, "max_tokens": 64},
                      shape="responses")
    body = req.body(conv)
    assert body == {"input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                    "reasoning": {"effort": "high"}, "max_output_tokens": 64}
    assert "messages" in ChatRequest(MODEL, {}).body(conv)


def test_options_pass_validation_and_reject_if_busy_is_sent():
    from cfai.chat import ChatRequest

    assert validate_params({"options": {"rejectIfBusy": True}}) == []
    assert validate_params({"options": "yes"}), "options must be an object"
    conv = Conversation()
    conv.add_user("Hi")
    assert ChatRequest(MODEL, {}, reject_if_busy=True).body(conv)["options"] == {"rejectIfBusy": True}


def test_values_outside_the_models_own_ranges_are_refused():
    from cfai.chat import ChatRequest
    from cfai.model_params import ParamSpec

    specs = (ParamSpec("top_p", "float", 0.001, 1.0),)
    assert ChatRequest(MODEL, {"top_p": 1.5}, specs=specs).problems()
    assert ChatRequest(MODEL, {"top_k": 5}, specs=specs).problems(), "not a parameter of this model"
    assert ChatRequest(MODEL, {"top_p": 0.5}, specs=specs).problems() == []


def test_a_classic_answer_cut_at_the_default_budget_is_read_as_cut():
    """max_tokens is not sent when left at its default: the budget in force still decides."""
    from cfai.chat import read_with_budget

    cut = Result(ok=True, status=200, url="u", route="direct", model=MODEL, request_body={"messages": []},
                 output={"response": "Thinking about it", "usage": {"prompt_tokens": 3, "completion_tokens": 256}},
                 reasoning_first=True)
    answer = read_with_budget(cut, 256)
    assert (answer.text, answer.reasoning, answer.finish_note) == ("", "Thinking about it",
                                                                   "stopped at max_tokens while reasoning")
    plain = Result(ok=True, status=200, url="u", route="direct", model=MODEL, request_body={"messages": []},
                   output={"response": "Once upon", "usage": {"prompt_tokens": 3, "completion_tokens": 256}})
    assert read_with_budget(plain, 256).finish_note == "stopped at max_tokens"
    assert read_with_budget(plain, 1000).finish_note is None


def test_more_tokens_than_the_budget_is_said():
    conv = Conversation()
    user = conv.add_user("JSON please")
    result = _ok_result('{"a": 1}')
    result.usage = {"prompt_tokens": 5, "completion_tokens": 63}
    turn = record_result(conv, user, result, body={"messages": [], "max_tokens": 40,
                                                   "response_format": {"type": "json_object"}})
    assert "63 tokens out is more than max_tokens 40" in turn.budget_note and "JSON mode" in turn.budget_note


@pytest.mark.parametrize(("error", "says", "never"), [
    ({"kind": "rate_limited", "status": 429}, "wait a moment", "concurrency"),
    ({"kind": "timeout", "status": 408}, "server's own timeout", "raise the read timeout"),
    ({"kind": "timeout", "status": 0}, "read timeout fired", "server's own"),
    ({"kind": "deadline", "status": 200}, "total deadline fired", "read timeout fired"),
])
def test_chat_hints_name_what_applies(error, says, never):
    advice = error_advice(error)
    assert says in advice and never not in advice


def test_an_answer_cut_while_reasoning_is_not_sent_back_as_an_empty_message():
    conv = Conversation()
    conv.add_user("Q1")
    conv.turns.append(__import__("cfai.chat", fromlist=["Turn"]).Turn("assistant", "", reasoning="hmm"))
    conv.add_user("Q2")
    assert [m["content"] for m in conv.messages()] == ["Q1", "Q2"]

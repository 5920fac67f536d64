"""cfai.shapes reads every response shape: the contract fixtures, the older captured bodies, SSE streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfai.shapes import STOPPED_WHILE_REASONING, StreamReader, read_answer, split_inline_reasoning
from tests.sse_payload import parse_all

FIXTURES = Path(__file__).parent / "fixtures"
SHAPES = FIXTURES / "shapes"


def load(name: str) -> dict:
    return json.loads((SHAPES / name).read_text())


WHOLE = ["chat_completion_reasoning.json", "chat_completion_length_while_reasoning.json",
         "classic_r1_inline_think.json", "responses_reasoning_message.json"]
STREAMS = ["chat_completion_stream_reasoning.json", "responses_stream_events.json"]


def test_every_shape_fixture_is_covered():
    """A new response-shape fixture must be added to this test (error/admin fixtures are read elsewhere)."""
    shaped = {p.name for p in SHAPES.glob("*.json") if "text" in load(p.name).get("expect", {})}
    assert shaped == set(WHOLE + STREAMS)


def check_expect(answer, expect: dict) -> None:
    assert answer.text == expect["text"]
    if "reasoning" in expect:
        assert answer.reasoning == expect["reasoning"]
    if "prompt_tokens" in expect:
        assert answer.usage.input_tokens == expect["prompt_tokens"]
    if "completion_tokens" in expect:
        assert answer.usage.output_tokens == expect["completion_tokens"]
    if "cached_tokens" in expect:
        assert answer.usage.cached_input_tokens == expect["cached_tokens"]
    if "reasoning_tokens" in expect:
        assert answer.usage.reasoning_tokens == expect["reasoning_tokens"]
    assert answer.stopped_while_reasoning is expect.get("stopped_while_reasoning", False)


@pytest.mark.parametrize("name", WHOLE)
def test_whole_fixture(name):
    fixture = load(name)
    answer = read_answer(fixture["body"])
    check_expect(answer, fixture["expect"])


def test_shapes_are_recognised_from_the_body():
    assert read_answer(load("chat_completion_reasoning.json")["body"]).shape == "chat_completion"
    assert read_answer(load("classic_r1_inline_think.json")["body"]).shape == "classic"
    responses = read_answer(load("responses_reasoning_message.json")["body"])
    assert responses.shape == "responses" and responses.finish_reason == "stop"


def test_stopped_while_reasoning_is_said():
    answer = read_answer(load("chat_completion_length_while_reasoning.json")["body"])
    assert answer.finish_reason == "length" and answer.finish_note == STOPPED_WHILE_REASONING
    assert answer.reasoning.startswith("Let me think")
    normal = read_answer(load("chat_completion_reasoning.json")["body"])
    assert normal.finish_note is None


def test_responses_bare_and_in_envelope_read_alike():
    body = load("responses_reasoning_message.json")["body"]
    wrapped = {"result": body, "success": True, "errors": [], "messages": []}
    assert read_answer(wrapped) == read_answer(body)


def test_responses_incomplete_while_reasoning():
    body = {"object": "response", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "reasoning", "content": [{"type": "reasoning_text", "text": "Hmm"}], "summary": []}],
            "usage": {"input_tokens": 5, "output_tokens": 16, "output_tokens_details": {"reasoning_tokens": 16}}}
    answer = read_answer(body)
    assert answer.finish_reason == "length" and answer.stopped_while_reasoning and answer.text == ""


def test_responses_summary_used_when_no_reasoning_text():
    body = {"object": "response", "status": "completed", "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Short summary."}], "content": []},
        {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]}
    answer = read_answer(body)
    assert answer.reasoning == "Short summary." and answer.text == "Hi"


def test_openai_reasoning_field_name_is_read_too():
    body = {"choices": [{"message": {"content": "4", "reasoning": "2+2"}, "finish_reason": "stop"}]}
    assert read_answer(body).reasoning == "2+2"


@pytest.mark.parametrize(("text", "reasoning_first", "cut", "expected"), [
    ("a\n</think>\n\nb", False, False, ("a", "b")),
    ("<think>a</think>b", False, False, ("a", "b")),
    ("<think>still going", False, True, ("still going", "")),
    ("just an answer", False, False, ("", "just an answer")),
    ("thinking and cut", True, True, ("thinking and cut", "")),
    ("ended normally", True, False, ("", "ended normally")),
])
def test_split_inline_reasoning(text, reasoning_first, cut, expected):
    assert split_inline_reasoning(text, reasoning_first=reasoning_first, cut=cut) == expected


def test_classic_cut_at_max_tokens_while_reasoning():
    body = {"result": {"response": "Let me think about", "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
            "success": True, "errors": []}
    answer = read_answer(body, reasoning_first=True, max_tokens=4)
    assert answer.reasoning == "Let me think about" and answer.text == ""
    assert answer.finish_note == STOPPED_WHILE_REASONING
    plain = read_answer(body, max_tokens=4)  # a model not known to reason: the text is the answer, cut
    assert plain.text == "Let me think about" and plain.finish_note == "stopped at max_tokens"


# --- the older captured bodies --------------------------------------------------------------------------
CAPTURED = json.loads((FIXTURES / "cloudflare_responses.json").read_text())
TEXT_ROWS = [k for k, v in CAPTURED.items() if not k.startswith("_") and "text_startswith" in v.get("expect", {})]


@pytest.mark.parametrize("name", TEXT_ROWS)
def test_captured_text_rows(name):
    case = CAPTURED[name]
    answer = read_answer(case["body"])
    assert answer.text.startswith(case["expect"]["text_startswith"])
    assert answer.reasoning == ""
    if "completion_tokens" in case["expect"]:
        assert answer.usage.output_tokens == case["expect"]["completion_tokens"]


def test_captured_rows_without_text_read_as_empty():
    assert read_answer(CAPTURED["run_text_classification"]["body"]).text == ""


# --- streams --------------------------------------------------------------------------------------------
def feed_events(fixture: dict, **kw) -> tuple[StreamReader, list]:
    reader = StreamReader(**kw)
    deltas = []
    for i, event in enumerate(fixture["events"]):
        data = event if isinstance(event, str) else json.dumps(event)
        name = event.get("type") if isinstance(event, dict) else None
        for d in reader.feed(data, name):
            deltas.append((i, d))
    return reader, deltas


@pytest.mark.parametrize("name", STREAMS)
def test_stream_fixture(name):
    fixture = load(name)
    reader, deltas = feed_events(fixture)
    expect = fixture["expect"]
    check_expect(reader.answer(), expect)
    assert "".join(d.text for _, d in deltas if d.kind == "reasoning") == expect["reasoning"]
    assert "".join(d.text for _, d in deltas if d.kind == "answer") == expect["text"]
    if "first_reasoning_event" in expect:
        assert next(i for i, d in deltas if d.kind == "reasoning" and d.text) == expect["first_reasoning_event"]
        assert next(i for i, d in deltas if d.kind == "answer" and d.text) == expect["first_answer_event"]


@pytest.mark.parametrize("name", ["stream_workers_ai.txt", "stream_openai_chunks.txt"])
def test_sse_text_fixtures(name):
    reader = StreamReader()
    for event in parse_all((FIXTURES / name).read_bytes()):
        reader.feed(event.data, event.event)
    answer = reader.answer()
    assert answer.text == "Hello world" and answer.reasoning == ""
    assert answer.usage.output_tokens in (2, 48)


def classic_stream(pieces: list[str], usage: dict) -> list[str]:
    return [json.dumps({"response": p, "p": "xx"}) for p in pieces] + [json.dumps({"response": "", "usage": usage}), "[DONE]"]


def test_classic_inline_stream_split_across_events():
    pieces = ["Two", " plus", " two.", "\n</th", "ink>\n\n", "4"]
    reader = StreamReader(reasoning_first=True, max_tokens=256)
    deltas = [d for data in classic_stream(pieces, {"prompt_tokens": 3, "completion_tokens": 6}) for d in reader.feed(data)]
    assert "".join(d.text for d in deltas if d.kind == "reasoning").strip() == "Two plus two."
    assert "".join(d.text for d in deltas if d.kind == "answer") == "4"
    answer = reader.answer()
    assert (answer.reasoning, answer.text, answer.finish_reason) == ("Two plus two.", "4", "stop")


def test_classic_stream_opening_think_tag_without_hint():
    pieces = ["<thi", "nk>", "Hmm", "</think>", "Yes"]
    reader = StreamReader()
    deltas = [d for data in classic_stream(pieces, {"completion_tokens": 5}) for d in reader.feed(data)]
    assert [(d.kind, d.text) for d in deltas if d.text] == [("reasoning", "Hmm"), ("answer", "Yes")]


def test_classic_stream_cut_while_reasoning():
    reader = StreamReader(reasoning_first=True, max_tokens=3)
    for data in classic_stream(["I", " wonder", " whether"], {"prompt_tokens": 2, "completion_tokens": 3}):
        reader.feed(data)
    answer = reader.answer()
    assert answer.text == "" and answer.reasoning == "I wonder whether"
    assert answer.finish_note == STOPPED_WHILE_REASONING


def test_plain_classic_stream_is_all_answer():
    reader = StreamReader()
    deltas = [d for data in classic_stream(["Hi", " there"], {"completion_tokens": 2}) for d in reader.feed(data)]
    assert all(d.kind == "answer" for d in deltas)
    assert reader.answer().text == "Hi there"


def test_stream_errors_and_garbage():
    reader = StreamReader()
    assert reader.feed(json.dumps({"errors": [{"code": 3040, "message": "busy"}]}))[0].error == "busy"
    assert reader.feed("not json")[0].error.startswith("Unreadable")
    assert reader.feed(json.dumps({"errors": []})) == []  # an empty error list is no error

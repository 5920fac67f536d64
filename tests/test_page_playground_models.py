"""The playground with reasoning models, per-model parameters, prompt caching, cost, settings that survive a
page switch and "send this turn again": AppTest against the session emulator (local mode)."""

from __future__ import annotations

import uuid

import pytest

from cfai.shapes import STOPPED_WHILE_REASONING
from components.chat_view import REASONING_LABEL, WHY_FOLLOW_UPS_MISS
from tests.playground_steps import PAGE, ask, metric_lines, texts

LLAMA31 = "@cf/meta/llama-3.1-8b-instruct"
LLAMA33 = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
LLAMA4 = "@cf/meta/llama-4-scout-17b-16e-instruct"
OSS = "@cf/openai/gpt-oss-120b"
R1 = "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b"
GLM = "@cf/zai-org/glm-4.7-flash"


@pytest.fixture
def page(app):
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def key(model: str, name: str) -> str:
    return f"pg_p_{model}_{name}"


def cost_lines(at) -> list[str]:
    return [m for m in texts(at.markdown) if "cost **" in m]


def pick(at, model: str, *, stream: bool = True):
    at.selectbox(key="pg_model").set_value(model).run()
    at.toggle(key="pg_stream").set_value(stream).run()
    assert not at.exception, at.exception
    return at


def last_turn(at):
    return at.session_state["pg_conv"].turns[-1]


@pytest.mark.parametrize("model", [OSS, R1, GLM])
@pytest.mark.parametrize("stream", [True, False])
def test_reasoning_models_show_reasoning_collapsed_above_the_answer(page, model, stream):
    pick(page, model, stream=stream)
    ask(page, f"Why do caches make gateways faster? [{uuid.uuid4().hex[:6]}]")
    turn = last_turn(page)
    assert turn.role == "assistant" and turn.reasoning and turn.content, (turn.reasoning, turn.content)
    assert "</think>" not in turn.content and turn.reasoning not in turn.content
    answer = page.chat_message[1]
    [block] = [e for e in answer.expander if e.label == REASONING_LABEL]
    assert not block.proto.expanded, "collapsed"
    labels = [e.label for e in answer.expander]
    assert labels.index(REASONING_LABEL) < labels.index("Raw request and response")
    [line] = metric_lines(page)
    assert "reasoning included" in line, line
    if turn.metrics.reasoning_tokens:  # the chat-completion and Responses shapes count them apart
        assert f"({turn.metrics.reasoning_tokens} reasoning)" in line
    if stream:
        assert "first reasoning token **" in line and "first answer token **" in line, line
        m = turn.metrics
        assert m.first_reasoning_ms < m.first_answer_ms
    if model == OSS:  # the Responses request shape
        assert "input" in turn.request_body and "messages" not in turn.request_body


def test_gpt_oss_offers_reasoning_effort_sent_as_reasoning_effort_object(page):
    pick(page, OSS, stream=False)
    effort = page.selectbox(key=key(OSS, "reasoning.effort"))
    assert effort.value == "medium" and effort.options == ["low", "medium", "high"]
    ask(page, "Default effort")
    assert "reasoning" not in last_turn(page).request_body, "the default is not sent"
    page.selectbox(key=key(OSS, "reasoning.effort")).set_value("high").run()
    page.number_input(key=key(OSS, "max_tokens")).set_value(900).run()
    ask(page, "High effort")
    body = last_turn(page).request_body
    assert body["reasoning"] == {"effort": "high"} and body["max_output_tokens"] == 900 and "input" in body


def test_glm_offers_reasoning_effort_from_its_schema(page):
    pick(page, GLM, stream=False)
    effort = page.selectbox(key=key(GLM, "reasoning_effort"))
    assert effort.value is None, "glm's schema names no default: nothing sent unless set"
    effort.set_value("low").run()
    ask(page, "Low effort")
    assert last_turn(page).request_body["reasoning_effort"] == "low"
    assert page.get("selectbox") and not any(e.key == key(LLAMA31, "reasoning_effort")
                                             for e in page.selectbox)


@pytest.mark.parametrize("stream", [True, False])
def test_a_budget_spent_on_reasoning_says_so_instead_of_an_empty_answer(page, stream):
    pick(page, R1, stream=stream)
    page.number_input(key=key(R1, "max_tokens")).set_value(8).run()
    ask(page, f"Think hard [{uuid.uuid4().hex[:6]}]")
    turn = last_turn(page)
    assert turn.finish_note == STOPPED_WHILE_REASONING and turn.content == "" and turn.reasoning
    assert any("Stopped at max_tokens while reasoning" in w for w in texts(page.warning))


def test_a_plain_model_cut_at_its_default_budget_is_marked(page):
    pick(page, LLAMA31, stream=False)
    page.number_input(key=key(LLAMA31, "max_tokens")).set_value(5).run()
    ask(page, "Write a long story about the sea")
    assert last_turn(page).finish_note == "stopped at max_tokens"
    assert any("Stopped at max_tokens." in w for w in texts(page.warning))


def test_parameters_come_from_each_models_schema(page):
    pick(page, LLAMA33)
    top_p = page.number_input(key=key(LLAMA33, "top_p"))
    assert (top_p.min, top_p.max) == (0.001, 1.0)
    assert page.number_input(key=key(LLAMA33, "presence_penalty")).min == -2.0
    pick(page, LLAMA4)
    assert page.slider(key=key(LLAMA4, "temperature")).value == pytest.approx(0.15)
    pick(page, GLM)
    assert not any(e.key == key(GLM, "top_k") for e in page.number_input), "glm's schema has no top_k"
    pick(page, LLAMA31, stream=False)
    assert page.number_input(key=key(LLAMA31, "top_p")).max == 2.0


def test_only_what_changed_from_the_models_defaults_is_sent(page):
    pick(page, LLAMA31, stream=False)
    ask(page, "Defaults only")
    body = last_turn(page).request_body
    assert set(body) == {"messages"}, body
    page.slider(key=key(LLAMA31, "temperature")).set_value(1.2).run()
    ask(page, "A warmer one")
    body = last_turn(page).request_body
    assert body["temperature"] == pytest.approx(1.2) and "max_tokens" not in body


def test_reject_if_busy_is_sent_as_options(page):
    pick(page, LLAMA31, stream=False)
    page.checkbox(key="pg_reject_if_busy").check().run()
    ask(page, "Only if you are free")
    turn = last_turn(page)
    assert turn.role == "assistant" and turn.request_body["options"] == {"rejectIfBusy": True}


def test_session_affinity_shows_cached_prompt_tokens(page):
    pick(page, GLM, stream=False)
    page.toggle(key="pg_affinity").set_value(True).run()
    page.text_input(key="pg_affinity_key").set_value(f"test-{uuid.uuid4().hex[:8]}").run()
    long = "Here is a long context about caching. " * 12
    ask(page, long + "First question?")
    ask(page, "And a follow-up?")
    turn = last_turn(page)
    assert turn.request_headers.get("x-session-affinity", "").startswith("test-")
    assert turn.metrics.session_affinity and turn.metrics.cached_tokens > 0
    assert "prompt tokens cached (session affinity sent)" in metric_lines(page)[-1]


def test_every_answer_shows_its_cost(page):
    pick(page, R1, stream=False)
    ask(page, "What does it cost?")
    [line] = cost_lines(page)
    assert "cost **\\$" in line and "output" in line and "input" in line, line
    page.toggle(key="pg_price_on_" + R1).set_value(True).run()
    page.number_input(key="pg_price_input_" + R1).set_value(1.0).run()
    page.number_input(key="pg_price_output_" + R1).set_value(2.0).run()
    ask(page, "And with my price?")
    assert "custom price" in cost_lines(page)[-1]


def test_settings_survive_a_visit_to_another_page(page):
    pick(page, LLAMA33, stream=False)
    page.radio(key="pg_route").set_value("gateway").run()
    page.number_input(key=key(LLAMA33, "top_p")).set_value(0.5).run()
    page.text_area(key="pg_system").set_value("You are terse.").run()
    ask(page, "Before the detour")
    page.switch_page("pages/compare.py").run()
    assert not page.exception
    page.switch_page(PAGE).run()
    assert page.selectbox(key="pg_model").value == LLAMA33
    assert page.radio(key="pg_route").value == "gateway"
    assert page.number_input(key=key(LLAMA33, "top_p")).value == 0.5
    assert page.text_area(key="pg_system").value == "You are terse."
    assert page.toggle(key="pg_stream").value is False
    ask(page, "After the detour")
    turn = last_turn(page)
    assert (turn.model, turn.route, turn.request_body["top_p"]) == (LLAMA33, "gateway", 0.5)
    assert turn.request_body["messages"][0] == {"role": "system", "content": "You are terse."}


def test_send_this_turn_again_keeps_both_answers_miss_then_hit(page):
    pick(page, LLAMA31, stream=False)
    page.radio(key="pg_route").set_value("gateway").run()
    ask(page, f"Cache me [{uuid.uuid4().hex[:8]}]")
    assert WHY_FOLLOW_UPS_MISS in texts(page.caption)
    turn = last_turn(page)
    page.button(key=f"again_main_{turn.id}").click().run()
    assert not page.exception
    turn = last_turn(page)
    assert turn.again is not None and turn.again.request_body == turn.request_body
    assert (turn.metrics.cache_status, turn.again.metrics.cache_status) == ("MISS", "HIT")
    lines = metric_lines(page)
    assert len(lines) == 2 and "cache MISS" in lines[0] and "cache HIT" in lines[1]
    assert "Sent again (the identical request)" in texts(page.caption)
    assert len(page.session_state["pg_conv"].turns) == 2, "the history holds one answer"
    assert any("$0 (cache hit)" in c for c in cost_lines(page))


def test_json_mode_says_when_more_tokens_came_back_than_max_tokens(page):
    pick(page, LLAMA31, stream=False)
    page.radio(key="pg_response_format").set_value("json_schema").run()
    page.number_input(key=key(LLAMA31, "max_tokens")).set_value(10).run()
    ask(page, "Describe a cat as JSON")
    turn = last_turn(page)
    # The emulator does not cut a JSON object at max_tokens (a cut object would not parse): said, not hidden.
    assert turn.metrics.completion_tokens > 10
    assert turn.budget_note and "more than max_tokens 10" in turn.budget_note
    assert any("tokens out is more than max" in c for c in texts(page.caption))


def test_side_by_side_shows_cost_on_each_side_and_b_takes_its_own_ranges(page):
    page.toggle(key="pg_side_by_side").set_value(True).run()
    page.selectbox(key="pg_model_b").set_value(GLM).run()
    page.number_input(key=key(LLAMA31, "top_k")).set_value(10).run()
    ask(page, f"Compare me [{uuid.uuid4().hex[:8]}]")
    a, b = page.session_state["pg_pair"]
    assert a.turns[1].request_body["top_k"] == 10 and "top_k" not in b.turns[1].request_body
    assert b.turns[1].reasoning, "glm reasons"
    assert len(cost_lines(page)) == 2

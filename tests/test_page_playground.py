"""The playground page in AppTest, local mode against the session emulator (faults allowed)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from cfai.chat.export import CHAT_RATE_LIMIT_HINT, READ_TIMEOUT_HINT
from cfai.config import LOCAL_API_TOKEN
from cfai.errors import ServerError
from tests.playground_steps import PAGE, ask, metric_lines, texts

ROOT = Path(__file__).resolve().parent.parent
CANARY = "canary-9b8c7d6e5f4a3b2c1d0e"
GATEWAY_CANARY = "gw-canary-0a1b2c3d4e5f"
ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def page(app):
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def unique(text: str) -> str:
    """The emulator's gateway cache lives for the whole session: a fresh prompt cannot be a stale hit."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def chat_roles(at) -> list[str]:
    return [m.name for m in at.chat_message]


def test_a_streamed_turn_renders_the_answer_and_its_metrics(page):
    ask(page, "Say hello in one sentence")
    assert chat_roles(page) == ["user", "assistant"]
    answer = page.chat_message[1]
    assert answer.markdown[0].value.strip(), "the answer text is rendered"
    [line] = metric_lines(page)
    assert "first token **" in line and "HTTP 200" in line and "Direct" in line and "tok/s" in line
    assert "→" in line and "–" not in line.split("tokens **")[1].split("**")[0], "tokens in and out are known"
    assert any(e.label == "Raw request and response" for e in page.expander)
    shown = [json.loads(j.proto.body) for j in page.json]
    assert {"Content-Type": "application/json", "Authorization": "Bearer ****",
            "Accept": "text/event-stream"} in shown, "request headers, authorization masked"
    assert any(isinstance(b, dict) and b.get("stream") is True and b.get("messages") for b in shown)


def test_a_non_streamed_turn_keeps_the_conversation_across_settings(page):
    page.toggle(key="pg_stream").set_value(False).run()
    ask(page, "First question")
    [line] = metric_lines(page)
    assert "first byte **" in line
    page.radio(key="pg_route").set_value("gateway").run()  # changing route keeps the conversation
    page.selectbox(key="pg_model").set_value("@cf/meta/llama-3.2-3b-instruct").run()
    assert chat_roles(page) == ["user", "assistant"]
    ask(page, "Second question")
    assert chat_roles(page) == ["user", "assistant"] * 2
    conv = page.session_state["pg_conv"]
    second = conv.turns[-1]
    assert second.model == "@cf/meta/llama-3.2-3b-instruct" and second.route == "gateway"
    assert [m["content"] for m in second.request_body["messages"]][:2] == ["First question", conv.turns[1].content]


def test_gateway_shows_miss_then_hit_for_the_same_request(page):
    page.toggle(key="pg_stream").set_value(False).run()
    page.radio(key="pg_route").set_value("gateway").run()
    ask(page, unique("What is a cache?"))
    assert "cache MISS" in metric_lines(page)[0]
    page.button(key="pg_regenerate").click().run()  # the identical body again
    assert not page.exception
    [line] = metric_lines(page)
    assert "cache HIT" in line and "AI Gateway" in line
    assert chat_roles(page) == ["user", "assistant"]


def test_json_mode_turns_streaming_off_and_shows_the_parsed_object(page):
    page.radio(key="pg_response_format").set_value("json_schema").run()
    shown = page.toggle(key="pg_stream_json_off")
    assert shown.disabled and shown.value is False, "the toggle shows what happens: off"
    assert any("streaming is off" in c for c in texts(page.caption))
    ask(page, "Describe a cat as JSON")
    turn = page.session_state["pg_conv"].turns[-1]
    assert isinstance(turn.parsed, dict) and "stream" not in turn.request_body
    assert turn.request_body["response_format"]["type"] == "json_schema"
    assert page.chat_message[1].json, "the parsed object is shown with st.json"


def test_invalid_schema_blocks_sending(page):
    page.radio(key="pg_response_format").set_value("json_schema").run()
    page.text_area(key="pg_json_schema").set_value("{not json").run()
    assert any("not valid JSON" in e for e in texts(page.error))
    assert page.chat_input(key="pg_input").disabled


@pytest.mark.parametrize("fault", ["429", "500"])
def test_an_injected_fault_shows_the_error_and_keeps_the_prompt(page, fault):
    page.toggle(key="pg_stream").set_value(False).run()
    page.selectbox(key="pg_fault").set_value(fault).run()
    ask(page, "Please keep this prompt")
    assert chat_roles(page) == ["user", "assistant"]
    assert page.chat_message[0].markdown[0].value == "Please keep this prompt"
    [error] = [e for e in texts(page.error) if f"HTTP {fault}" in e]
    expected = {"429": CHAT_RATE_LIMIT_HINT, "500": ServerError.default_hint}[fault]
    assert expected in error and "concurrency" not in error, "a chat sends one request: no run advice"
    assert page.selectbox(key="pg_fault").value == "none", "a fault applies to one request only"
    page.button(key=f"retry_{page.session_state['pg_conv'].turns[0].id}").click().run()
    assert not page.exception
    assert not page.error and metric_lines(page) and "HTTP 200" in metric_lines(page)[0]


def test_a_stream_cut_midway_keeps_the_partial_answer_marked_interrupted(page):
    page.selectbox(key="pg_fault").set_value("drop-stream").run()
    ask(page, "Tell me a long story")
    turn = page.session_state["pg_conv"].turns[-1]
    assert turn.role == "assistant" and turn.interrupted and turn.content
    assert any("Interrupted" in w for w in texts(page.warning))
    assert page.chat_message[1].markdown[0].value == turn.content


def test_a_timeout_is_reported_with_what_to_do(page):
    page.number_input(key="pg_timeout").set_value(1.0).run()
    page.selectbox(key="pg_fault").set_value("timeout").run()
    ask(page, "Slow please")
    [error] = texts(page.error)
    assert READ_TIMEOUT_HINT in error, "says that our read timeout fired"
    assert page.session_state["pg_conv"].turns[0].failed


def test_prompt_mode_sends_prompt_and_raw(page):
    page.radio(key="pg_input_mode").set_value("prompt").run()
    page.checkbox(key="pg_raw").check().run()
    ask(page, "Complete this: the sky is")
    body = page.session_state["pg_conv"].turns[-1].request_body
    assert body["prompt"] == "Complete this: the sky is" and body["raw"] is True and "messages" not in body


def test_clear_chat(page):
    ask(page, "Hello")
    page.button(key="pg_clear").click().run()
    assert chat_roles(page) == [] and page.session_state["pg_conv"].turns == []


def test_local_snippets_use_placeholders(page):
    ask(page, "Hi")
    page.radio(key="pg_route").set_value("gateway").run()
    codes = texts(page.code)
    assert len([c for c in codes if "$CLOUDFLARE_API_TOKEN" in c or "os.environ" in c]) == 3
    assert len([c for c in codes if "env.AI.run(" in c]) == 1
    assert not any(LOCAL_API_TOKEN in c for c in codes)
    assert any(f"{page.session_state['pg_conv'].turns[0].content}" in c for c in codes), "the real history"


def cloudflare_mode_app(monkeypatch, base_url: str, token: str):
    """The app in Cloudflare mode from env vars, with the URLs pointed at an emulator on loopback."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_ID", "my-gw")
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_TOKEN", GATEWAY_CANARY)
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", f"{base_url}/client/v4")
    monkeypatch.setenv("CLOUDFLARE_GATEWAY_BASE_URL", f"{base_url}/v1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def everything_rendered(at) -> str:
    conv = at.session_state["pg_conv"]
    return "\n".join(texts(at.code) + texts(at.markdown) + texts(at.caption) + texts(at.error)
                     + texts(at.warning) + [j.proto.body for j in at.json]) + conv.to_json() + conv.to_markdown()


def test_code_snippets_never_contain_the_token(app_env, monkeypatch):
    """Cloudflare mode with a canary token (pointed at the emulator): the token is nowhere on the page."""
    at = cloudflare_mode_app(monkeypatch, app_env.base_url, CANARY)
    at.radio(key="pg_route").set_value("gateway").run()
    ask(at, "Hello through the gateway")
    codes = texts(at.code)
    assert any(f"{app_env.base_url}/v1/{ACCOUNT}/my-gw/workers-ai/" in c for c in codes)
    assert any("$CLOUDFLARE_GATEWAY_TOKEN" in c for c in codes)
    everything = everything_rendered(at)
    assert "Hello through the gateway" in everything
    assert CANARY not in everything and GATEWAY_CANARY not in everything


@pytest.fixture(scope="module")
def strict_emulator():
    from cfai.emulator import start_emulator

    handle = start_emulator(host="127.0.0.1", port=0, speed=50, api_token="the-right-token")
    yield handle
    handle.stop()


def test_a_bad_token_says_what_to_do_and_is_never_shown(app_env, strict_emulator, monkeypatch):
    at = cloudflare_mode_app(monkeypatch, strict_emulator.base_url, CANARY)
    assert any("Model catalogue unavailable" in c for c in texts(at.caption)), "built-in list instead"
    ask(at, "Hello with a bad token")
    [error] = texts(at.error)
    assert "HTTP 401" in error and "API token" in error
    assert at.session_state["pg_conv"].turns[0].failed
    assert CANARY not in everything_rendered(at)


def test_side_by_side_sends_the_turn_to_both_columns(page):
    page.toggle(key="pg_side_by_side").set_value(True).run()
    assert page.radio(key="pg_b_route").value == "gateway"
    ask(page, unique("Compare me"))
    a, b = page.session_state["pg_pair"]
    assert [t.role for t in a.turns] == [t.role for t in b.turns] == ["user", "assistant"]
    assert (a.turns[1].route, b.turns[1].route) == ("direct", "gateway")
    assert len(metric_lines(page)) == 2
    page.toggle(key="pg_side_by_side").set_value(False).run()
    assert page.session_state["pg_conv"].turns == [], "the single chat is separate"


def test_export_has_model_params_and_metrics(page):
    page.number_input(key="pg_p_@cf/meta/llama-3.1-8b-instruct_max_tokens").set_value(300).run()
    ask(page, "Export me")
    conv = page.session_state["pg_conv"]
    data = json.loads(conv.to_json(mode="local"))
    answer = data["turns"][1]
    assert answer["model"] == "@cf/meta/llama-3.1-8b-instruct" and answer["params"]["max_tokens"] == 300
    assert answer["metrics"]["status"] == 200
    assert len(page.get("download_button")) == 2


def test_a_typed_unknown_model_shows_what_to_do(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    # As if typed into the picker: AppTest cannot type a new option, but the picker keeps a typed id.
    at.session_state["pg_model"] = "@cf/nobody/no-such-model"
    at.run()
    assert at.selectbox(key="pg_model").value == "@cf/nobody/no-such-model"
    assert any("Not in the catalogue" in c for c in texts(at.caption))
    ask(at, "Hello?")
    [error] = texts(at.error)
    assert "HTTP 400" in error and "catalogue" in error, error
    assert at.session_state["pg_conv"].turns[0].failed


def test_gateway_metadata_rows_are_typed():
    from components.route_options import metadata_from_rows

    rows = [{"key": "user", "value": "ann"}, {"key": " n ", "value": "2"}, {"key": "", "value": "x"},
            {"key": "ok", "value": "TRUE"}, {"key": "r", "value": "0.5"}, {"key": "empty", "value": None}]
    assert metadata_from_rows(rows) == {"user": "ann", "n": 2, "ok": True, "r": 0.5, "empty": ""}

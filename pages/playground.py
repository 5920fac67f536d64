"""Prompt playground: chat with a Workers AI model and see, under every answer, the route, the cache status
and the timings. Thin: widgets from components/, conversation and requests from cfai/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import streamlit as st

from cfai import jobs
from cfai.catalog import DEFAULT_TEXT_GENERATION_MODEL, TEXT_GENERATION
from cfai.chat import (
    ChatRequest,
    Conversation,
    Turn,
    is_json_mode,
    pair_to_json,
    pair_to_markdown,
    record_result,
    resend_conversation,
)
from cfai.client import GatewayOptions, Result, Route
from cfai.faults import FAULT_HEADER, FAULT_KINDS
from components.app_shell import require_app_shell
from components.chat_view import PENDING_KEY, queue_resend, render_history, render_turn, write_markdown_stream
from components.code_panel import code_panel
from components.connection import connection_ready, get_client, get_connection
from components.model_picker import model_picker
from components.params import text_generation_params
from components.route_options import ROUTE_LABELS, route_options

require_app_shell()

FAULTS = ("none", *FAULT_KINDS)
EXAMPLES = (
    "Explain AI Gateway caching in two sentences.",
    "Write a haiku about the edge.",
    "List three uses of text embeddings.",
)
INPUT_MODES = {"messages": "Messages (chat)", "prompt": "Prompt"}

state = st.session_state
conn = get_connection()
client = get_client()
state.setdefault("pg_conv", Conversation())
state.setdefault("pg_pair", (Conversation(), Conversation()))
if state.pop("pg_fault_used", False):
    state["pg_fault"] = "none"  # a fault is injected into one request only, then the select resets


# --- settings ---------------------------------------------------------------------------------------------
with st.sidebar:
    st.divider()
    st.subheader("Playground")
    model = model_picker(TEXT_GENERATION, key="pg_model", default=DEFAULT_TEXT_GENERATION_MODEL)
    route, gateway = route_options("pg")
    with st.expander("Parameters", icon=":material/tune:"):
        params = text_generation_params("pg")
    json_mode = is_json_mode(params)
    stream = st.toggle("Stream the answer", value=True, key="pg_stream", disabled=json_mode,
                       help="Show the answer as it is generated (server-sent events).") and not json_mode
    if json_mode:
        st.caption("JSON mode answers in one piece, so streaming is off.")
    elif stream and route == "gateway":
        st.caption("AI Gateway never caches streamed requests: turn streaming off to see cache hits.")
    with st.expander("System prompt and input", icon=":material/edit_note:"):
        system_prompt = st.text_area("System prompt", key="pg_system", placeholder="You are a helpful assistant.")
        input_mode = st.radio("Send as", list(INPUT_MODES), format_func=INPUT_MODES.get, key="pg_input_mode",
                              horizontal=True, help="Messages sends the whole chat. Prompt sends only your "
                              "latest message as `prompt`, without the system prompt.")
        raw = st.checkbox("raw (skip the chat template)", key="pg_raw", disabled=input_mode != "prompt")
    with st.expander("Advanced", icon=":material/build:"):
        read_timeout = st.number_input("Read timeout (s)", min_value=1.0, max_value=600.0,
                                       value=float(conn.read_timeout), step=5.0, key="pg_timeout")
        fault = "none"
        if conn.is_local:
            fault = st.selectbox("Inject a fault (emulator)", FAULTS, key="pg_fault",
                                 help=f"Adds {FAULT_HEADER} to the next request, to see how errors look.")

conversation: Conversation = state["pg_conv"]
pair: tuple[Conversation, Conversation] = state["pg_pair"]
for conv in (conversation, *pair):
    conv.system_prompt = system_prompt

request = ChatRequest(model, params, route=route, gateway=gateway, input_mode=input_mode, raw=raw,
                      stream=stream)
problems = request.problems(conn)
request_headers = {FAULT_HEADER: fault} if fault != "none" else None
timeout = (conn.connect_timeout, float(read_timeout))


# --- rendering --------------------------------------------------------------------------------------------
def gateway_dict(route_name: str, options: GatewayOptions) -> dict[str, Any] | None:
    if route_name != "gateway":
        return None
    return {k: v for k, v in asdict(options).items() if v is not None and v is not False}


def clear(conversations: list[Conversation]) -> None:
    for conv in conversations:
        conv.clear()


def send(conv: Conversation, user_turn: Turn) -> None:
    """One answer into the page: streamed with st.write_stream, or whole; then recorded in `conv`."""
    body = request.body(conv)
    with st.chat_message("assistant"):
        if body.get("stream"):
            answer = client.stream(model, body, route=route, gateway=gateway, extra_headers=request_headers,
                                   timeout=timeout)
            write_markdown_stream(answer)  # not st.write_stream: model output is made safe first
            result = answer.result
        else:
            with st.spinner("Waiting for the answer..."):
                result = client.run(model, body, route=route, gateway=gateway, extra_headers=request_headers,
                                    timeout=timeout)
    record_result(conv, user_turn, result, body=body, gateway=gateway_dict(route, gateway),
                  streamed=bool(body.get("stream")))


def send_concurrently(turns: list[tuple[Conversation, Turn, str, Route, GatewayOptions]]) -> None:
    """Side by side: the same turn to each column at once, whole answers (no streaming), so both are timed
    under the same conditions."""
    bodies = [request.body(conv, stream=False) for conv, *_ in turns]

    def call(m: str, body: dict[str, Any], r: Route, g: GatewayOptions) -> Callable[[], Result]:
        return lambda: client.run(m, body, route=r, gateway=g, extra_headers=request_headers, timeout=timeout)

    with st.spinner("Waiting for both answers..."):
        results = jobs.gather([call(m, body, r, g) for (_, _, m, r, g), body in zip(turns, bodies, strict=True)],
                              name="cfai-side-by-side")
    for (conv, user_turn, _, r, g), body, result in zip(turns, bodies, results, strict=True):
        record_result(conv, user_turn, result, body=body, gateway=gateway_dict(r, g))


def finish_turn() -> None:
    if request_headers:
        state["pg_fault_used"] = True
    st.rerun()  # render the recorded turn from history, with fresh export data and buttons


# --- page ---------------------------------------------------------------------------------------------------
st.title("Playground")
if not connection_ready():  # it says itself, once, what is needed or wrong; "" keeps sending off
    problems.append("")
st.caption("Try a model on a prompt. Under every answer: time to first token, total time, tokens, tokens per "
           "second, the route and the AI Gateway cache status.")

side_by_side = st.toggle("Side by side", key="pg_side_by_side",
                         help="Send each turn to two models, or to the direct and the gateway route.")
visible = list(pair) if side_by_side else [conversation]
targets = ("a", "b") if side_by_side else ("main",)
by_target = {"main": conversation, "a": pair[0], "b": pair[1]}

tools = st.columns([1, 1.4, 1, 3], vertical_alignment="center")
tools[0].button("Clear chat", icon=":material/delete_sweep:", key="pg_clear",
                disabled=not any(c.turns for c in visible), on_click=clear, args=(visible,))
tools[1].button("Regenerate last answer", icon=":material/autorenew:", key="pg_regenerate",
                disabled=not any(c.can_regenerate() for c in visible), on_click=queue_resend, args=(targets,))
with tools[2].popover("Export", icon=":material/download:", disabled=not any(c.turns for c in visible)):
    if side_by_side:
        json_text, md_text = pair_to_json(*pair, mode=conn.mode), pair_to_markdown(*pair, mode=conn.mode)
    else:
        json_text, md_text = conversation.to_json(mode=conn.mode), conversation.to_markdown(mode=conn.mode)
    st.download_button("JSON", json_text, file_name="conversation.json", mime="application/json",
                       on_click="ignore", icon=":material/data_object:", width="stretch")
    st.download_button("Markdown", md_text, file_name="conversation.md", mime="text/markdown",
                       on_click="ignore", icon=":material/article:", width="stretch")

with st.expander("View as code", icon=":material/code:"):
    preview, is_example = resend_conversation(conversation if not side_by_side else pair[0])
    preview_body = request.body(preview)
    st.caption("The example prompt stands in for your first message." if is_example
               else "The request that regenerating the last answer would send, with the current settings.")
    code_panel(conn, route, model, preview_body, gateway if route == "gateway" else None)

for problem in filter(None, problems):
    st.error(problem, icon=":material/error:")

queued = state.pop("pg_example", None)
prompt = st.chat_input("Message the model", key="pg_input", disabled=bool(problems)) or queued
pending = [t for t in state.pop(PENDING_KEY, ()) if t in targets]  # a mode switch voids a queued resend

if not side_by_side:
    render_history(conversation, "main")
    if not conversation.turns and not prompt:
        st.caption("Or start with an example:")
        for i, example in enumerate(EXAMPLES):
            st.button(example, key=f"pg_example_{i}", on_click=state.__setitem__, args=("pg_example", example))
    if prompt and not problems:
        user_turn = conversation.add_user(prompt)
        render_turn(user_turn, retry_target=None)
        send(conversation, user_turn)
        finish_turn()
    elif pending and not problems and (user_turn := conversation.prepare_resend()) is not None:
        send(conversation, user_turn)
        finish_turn()
else:
    head_a, head_b = st.columns(2, gap="medium")
    with head_a, st.container(border=True):
        st.markdown(f"**A** · `{model}` · {ROUTE_LABELS[route]}")
        st.caption("Model and route from the sidebar.")
    with head_b, st.container(border=True):
        st.markdown("**B**")
        model_b = model_picker(TEXT_GENERATION, key="pg_model_b", default=model)
        route_b, gateway_b = route_options("pg_b", default="gateway" if route == "direct" else "direct")
    specs = {"a": (model, route, gateway), "b": (model_b, route_b, gateway_b)}
    problems_b = gateway_b.validate() if route_b == "gateway" else []
    for problem in problems_b:
        st.error(f"B: {problem}", icon=":material/error:")
    history_a, history_b = st.columns(2, gap="medium")  # a row of its own, so both histories line up
    with history_a:
        render_history(pair[0], "a")
    with history_b:
        render_history(pair[1], "b")
    st.caption("Side by side sends both requests at the same time and waits for whole answers (no streaming).")
    pending_turns: list[tuple[Conversation, Turn, str, Route, GatewayOptions]] = []
    if prompt and not problems and not problems_b:
        for target, conv in zip(targets, pair, strict=True):
            pending_turns.append((conv, conv.add_user(prompt), *specs[target]))
    elif pending and not problems and not problems_b:
        for target in pending:
            conv = by_target[target]
            if (user_turn := conv.prepare_resend()) is not None:
                pending_turns.append((conv, user_turn, *specs[target]))
    if pending_turns:
        send_concurrently(pending_turns)
        finish_turn()

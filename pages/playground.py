"""Prompt playground: chat with a Workers AI model and see, under every answer, the route, the cache status
and the timings. Thin: widgets from components/, conversation and requests from cfai/."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import streamlit as st

from cfai import jobs
from cfai.catalog import DEFAULT_TEXT_GENERATION_MODEL, TEXT_GENERATION, ModelInfo
from cfai.chat import (
    ChatRequest,
    Conversation,
    Turn,
    is_json_mode,
    pair_to_json,
    pair_to_markdown,
    record_result,
    request_branch,
    resend_conversation,
)
from cfai.client import GatewayOptions, Result, Route
from cfai.faults import FAULT_HEADER, FAULT_KINDS
from cfai.model_params import for_branch
from cfai.pricing import ModelPrice
from components.app_shell import require_app_shell
from components.chat_view import (
    AGAIN_KEY,
    PENDING_KEY,
    queue_resend,
    render_history,
    render_turn,
    write_deltas,
)
from components.code_panel import code_panel
from components.connection import connection_ready, get_client, get_connection
from components.cost_view import price_override_editor
from components.model_picker import catalogue, model_picker
from components.params import (
    BUDGET_NAMES,
    budget_in_force,
    fragment_for,
    load_model_params,
    model_params_form,
)
from components.route_options import ROUTE_LABELS, route_options

require_app_shell()

FAULTS = ("none", *FAULT_KINDS)
EXAMPLES = (
    "Explain AI Gateway caching in two sentences.",
    "Write a haiku about the edge.",
    "List three uses of text embeddings.",
)
INPUT_MODES = {"messages": "Messages (chat)", "prompt": "Prompt"}
# route_options' widgets are not kept across pages by Streamlit: the page keeps a copy and restores it.
ROUTE_KEYS = ("pg_route", "pg_cache_ttl", "pg_skip_cache", "pg_cache_key", "pg_b_route", "pg_b_cache_ttl",
              "pg_b_skip_cache", "pg_b_cache_key")
SAVED_ROUTE_KEY = "_pg_saved_route"
KEEP = "session"  # persist_state: the playground's settings survive a visit to another page

state = st.session_state
conn = get_connection()
client = get_client()
state.setdefault("pg_conv", Conversation())
state.setdefault("pg_pair", (Conversation(), Conversation()))
if state.pop("pg_fault_used", False):
    state["pg_fault"] = "none"  # a fault is injected into one request only, then the select resets
saved_route: dict[str, Any] = state.setdefault(SAVED_ROUTE_KEY, {})
for _key in ROUTE_KEYS:
    if _key not in state and _key in saved_route:
        state[_key] = saved_route[_key]
for _key, _default in (("pg_stream", True), ("pg_input_mode", "messages"), ("pg_affinity", False),
                       ("pg_affinity_key", f"playground-{uuid.uuid4().hex[:8]}")):
    state.setdefault(_key, _default)


@dataclass(frozen=True)
class Target:
    """Everything one column's next answer needs: the request and how to read and price its answer."""

    request: ChatRequest
    reasoning_first: bool
    budget: int | None
    price: ModelPrice | None

    @property
    def price_dict(self) -> dict[str, Any] | None:
        return self.price.to_dict() if self.price is not None else None


def model_info(model_id: str) -> ModelInfo | None:
    return catalogue(TEXT_GENERATION).get(model_id)


# --- settings ---------------------------------------------------------------------------------------------
with st.sidebar:
    st.divider()
    st.subheader("Playground")
    model = model_picker(TEXT_GENERATION, key="pg_model", default=DEFAULT_TEXT_GENERATION_MODEL)
    info = model_info(model)
    with st.container():  # a fixed slot: the gateway options come and go without moving what follows
        route, gateway = route_options("pg")
    input_mode = state.get("pg_input_mode", "messages")
    model_params = load_model_params(model, info.response_shape if info else None)
    branch = request_branch(model_params.shape, input_mode)
    with st.expander("Parameters", icon=":material/tune:", key="pg_exp_params"):
        params, param_problems = model_params_form("pg", model, model_params, branch)
    json_mode = is_json_mode(params)
    with st.container():
        if json_mode:  # shown off, as it is: a JSON answer comes in one piece
            st.toggle("Stream the answer", value=False, disabled=True, key="pg_stream_json_off",
                      help="JSON mode answers in one piece.")
            st.caption("JSON mode answers in one piece, so streaming is off.")
            stream = False
        else:
            stream = st.toggle("Stream the answer", key="pg_stream", persist_state=KEEP,
                               help="Show the answer as it is generated (server-sent events).")
            if stream and route == "gateway":
                st.caption("AI Gateway never caches streamed requests: turn streaming off to see cache hits.")
    with st.expander("System prompt and input", icon=":material/edit_note:", key="pg_exp_system"):
        system_prompt = st.text_area("System prompt", key="pg_system", placeholder="You are a helpful assistant.",
                                     persist_state=KEEP)
        input_mode = st.radio("Send as", list(INPUT_MODES), format_func=INPUT_MODES.get, key="pg_input_mode",
                              horizontal=True, persist_state=KEEP,
                              help="Messages sends the whole chat. Prompt sends only your latest message as "
                                   "`prompt`, without the system prompt.")
        raw = st.checkbox("raw (skip the chat template)", key="pg_raw", disabled=input_mode != "prompt",
                          persist_state=KEEP)
    with st.expander("Prompt caching", icon=":material/cached:", key="pg_exp_caching"):
        affinity = st.toggle("Session affinity (x-session-affinity)", key="pg_affinity", persist_state=KEEP,
                             help="Sends this key with every turn, so the conversation reaches the instance "
                                  "that holds its cached prompt prefix: later turns show cached prompt tokens "
                                  "and a shorter time to first token.")
        affinity_key = st.text_input("Session key", key="pg_affinity_key", disabled=not affinity,
                                     persist_state=KEEP, max_chars=128)
        st.caption("Cached prompt tokens show under each answer (usage.prompt_tokens_details.cached_tokens).")
    with st.expander("Cost", icon=":material/payments:", key="pg_exp_cost"):
        price = price_override_editor(model, info.price if info else None, key="pg_price")
    with st.expander("Advanced", icon=":material/build:", key="pg_exp_advanced"):
        state.setdefault("pg_timeout", float(conn.read_timeout))
        read_timeout = st.number_input("Read timeout (s)", min_value=1.0, max_value=600.0, step=5.0,
                                       key="pg_timeout", persist_state=KEEP,
                                       help="The longest wait for the next bytes of an answer.")
        reject_if_busy = st.checkbox("Reject if busy (options.rejectIfBusy)", key="pg_reject_if_busy",
                                     persist_state=KEEP,
                                     help="Ask Workers AI to answer 429 at once instead of queueing when the "
                                          "model is at capacity.")
        fault = "none"
        if conn.is_local:
            fault = st.selectbox("Inject a fault (emulator)", FAULTS, key="pg_fault",
                                 help=f"Adds {FAULT_HEADER} to the next request, to see how errors look.")
saved_route.update({k: state[k] for k in ROUTE_KEYS if k in state})

conversation: Conversation = state["pg_conv"]
pair: tuple[Conversation, Conversation] = state["pg_pair"]
for conv in (conversation, *pair):
    conv.system_prompt = system_prompt

request = ChatRequest(model, params, route=route, gateway=gateway, input_mode=input_mode, raw=raw,
                      stream=stream, shape=model_params.shape,
                      specs=tuple(for_branch(list(model_params.specs), branch, keep=BUDGET_NAMES)),
                      session_affinity=affinity_key if affinity else None, reject_if_busy=reject_if_busy)
problems = param_problems + request.problems(conn)
main_target = Target(request, info.reasoning_first if info else False, budget_in_force(params, model_params), price)
fault_headers = {FAULT_HEADER: fault} if fault != "none" else {}
timeout = (conn.connect_timeout, float(read_timeout))


# --- rendering --------------------------------------------------------------------------------------------
def gateway_dict(route_name: str, options: GatewayOptions) -> dict[str, Any] | None:
    if route_name != "gateway":
        return None
    return {k: v for k, v in asdict(options).items() if v is not None and v is not False}


def clear(conversations: list[Conversation]) -> None:
    for conv in conversations:
        conv.clear()


def headers_for(target: Target) -> dict[str, str] | None:
    return {**target.request.headers(), **fault_headers} or None


def call(target: Target, body: dict[str, Any], *, route_name: Route, options: GatewayOptions,
         model_id: str) -> Result:
    """A whole answer (a stream drained when the body asks for one)."""
    common: dict[str, Any] = {"route": route_name, "gateway": options, "extra_headers": headers_for(target),
                              "timeout": timeout, "reasoning_first": target.reasoning_first}
    if body.get("stream"):
        return client.stream(model_id, body, **common).drain()
    return client.run(model_id, body, **common)


def send(conv: Conversation, user_turn: Turn, target: Target) -> None:
    """One answer into the page: streamed (reasoning into its collapsed block, the answer below), or
    whole; then recorded in `conv`."""
    req = target.request
    body = req.body(conv)
    with st.chat_message("assistant"):
        if body.get("stream"):
            answer = client.stream(req.model, body, route=req.route, gateway=req.gateway,
                                   extra_headers=headers_for(target), timeout=timeout,
                                   reasoning_first=target.reasoning_first)
            write_deltas(answer.deltas())  # not st.write_stream: model output is made safe first
            result = answer.result
        else:
            with st.spinner("Waiting for the answer..."):
                result = call(target, body, route_name=req.route, options=req.gateway, model_id=req.model)
    record_result(conv, user_turn, result, body=body, gateway=gateway_dict(req.route, req.gateway),
                  streamed=bool(body.get("stream")), max_tokens=target.budget, price=target.price_dict)


def send_again(conv: Conversation, target: Target) -> None:
    """The last answer's exact request once more (same body, model, route and gateway options); the new
    answer is kept beside the first, so a MISS and a HIT can be read side by side."""
    last, user_turn = conv.last_answer(), conv.last_user()
    if last is None or user_turn is None or last.request_body is None:
        return
    body = dict(last.request_body)
    route_name: Route = "gateway" if last.route == "gateway" else "direct"
    options = GatewayOptions(**(last.gateway or {})) if route_name == "gateway" else GatewayOptions()
    with st.spinner("Sending the same request again..."):
        result = call(target, body, route_name=route_name, options=options, model_id=last.model or target.request.model)
    record_result(conv, user_turn, result, body=body, gateway=last.gateway, streamed=bool(body.get("stream")),
                  max_tokens=target.budget, price=target.price_dict, again_of=last)


def send_concurrently(turns: list[tuple[Conversation, Turn, Target]]) -> None:
    """Side by side: the same turn to each column at once, whole answers (no streaming), so both are timed
    under the same conditions."""
    bodies = [target.request.body(conv, stream=False) for conv, _, target in turns]

    def one(target: Target, body: dict[str, Any]) -> Callable[[], Result]:
        req = target.request
        return lambda: call(target, body, route_name=req.route, options=req.gateway, model_id=req.model)

    with st.spinner("Waiting for both answers..."):
        results = jobs.gather([one(target, body) for (_, _, target), body in zip(turns, bodies, strict=True)],
                              name="cfai-side-by-side")
    for (conv, user_turn, target), body, result in zip(turns, bodies, results, strict=True):
        req = target.request
        record_result(conv, user_turn, result, body=body, gateway=gateway_dict(req.route, req.gateway),
                      max_tokens=target.budget, price=target.price_dict)


def finish_turn() -> None:
    if fault_headers:
        state["pg_fault_used"] = True
    st.rerun()  # render the recorded turn from history, with fresh export data and buttons


# --- page ---------------------------------------------------------------------------------------------------
st.title("Playground")
if not connection_ready():  # it says itself, once, what is needed or wrong; "" keeps sending off
    problems.append("")
st.caption("Try a model on a prompt. Under every answer: time to first token (first reasoning and first answer "
           "token for reasoning models), total time, tokens, tokens per second, cached prompt tokens, the cost, "
           "the route and the AI Gateway cache status.")

side_by_side = st.toggle("Side by side", key="pg_side_by_side", persist_state=KEEP,
                         help="Send each turn to two models, or to the direct and the gateway route.")
visible = list(pair) if side_by_side else [conversation]
targets = ("a", "b") if side_by_side else ("main",)
by_target = {"main": conversation, "a": pair[0], "b": pair[1]}

# A row sized by its buttons: fixed columns cut the labels to "Cl…" and "Regener…" at 1024 px.
tools = st.container(horizontal=True, gap="small", vertical_alignment="center")
tools.button("Clear chat", icon=":material/delete_sweep:", key="pg_clear",
             disabled=not any(c.turns for c in visible), on_click=clear, args=(visible,))
tools.button("Regenerate last answer", icon=":material/autorenew:", key="pg_regenerate",
             disabled=not any(c.can_regenerate() for c in visible), on_click=queue_resend, args=(targets,))
with tools.popover("Export", icon=":material/download:", disabled=not any(c.turns for c in visible)):
    if side_by_side:
        json_text, md_text = pair_to_json(*pair, mode=conn.mode), pair_to_markdown(*pair, mode=conn.mode)
    else:
        json_text, md_text = conversation.to_json(mode=conn.mode), conversation.to_markdown(mode=conn.mode)
    st.download_button("JSON", json_text, file_name="conversation.json", mime="application/json",
                       on_click="ignore", icon=":material/data_object:", width="stretch")
    st.download_button("Markdown", md_text, file_name="conversation.md", mime="text/markdown",
                       on_click="ignore", icon=":material/article:", width="stretch")

with st.expander("View as code", icon=":material/code:", key="pg_exp_code"):
    preview, is_example = resend_conversation(conversation if not side_by_side else pair[0])
    preview_body = request.body(preview)
    st.caption("The example prompt stands in for your first message." if is_example
               else "The request that regenerating the last answer would send, with the current settings.")
    code_panel(conn, route, model, preview_body, gateway if route == "gateway" else None)

with st.container():  # a fixed slot: problems come and go without moving the chat below
    for problem in filter(None, problems):
        st.error(problem, icon=":material/error:")

queued = state.pop("pg_example", None)
prompt = st.chat_input("Message the model", key="pg_input", disabled=bool(problems)) or queued
pending = [t for t in state.pop(PENDING_KEY, ()) if t in targets]  # a mode switch voids a queued resend
again = state.pop(AGAIN_KEY, None)

if not side_by_side:
    render_history(conversation, "main")
    if not conversation.turns and not prompt:
        st.caption("Or start with an example:")
        for i, example in enumerate(EXAMPLES):
            st.button(example, key=f"pg_example_{i}", on_click=state.__setitem__, args=("pg_example", example))
    if prompt and not problems:
        user_turn = conversation.add_user(prompt)
        render_turn(user_turn, retry_target=None)
        send(conversation, user_turn, main_target)
        finish_turn()
    elif pending and not problems and (user_turn := conversation.prepare_resend()) is not None:
        send(conversation, user_turn, main_target)
        finish_turn()
    elif again == "main":
        send_again(conversation, main_target)
        finish_turn()
else:
    head_a, head_b = st.columns(2, gap="medium")
    with head_a, st.container(border=True):
        st.markdown(f"**A** · `{model}` · {ROUTE_LABELS[route]}")
        st.caption("Model, route, parameters and price from the sidebar.")
    with head_b, st.container(border=True):
        st.markdown("**B**")
        model_b = model_picker(TEXT_GENERATION, key="pg_model_b", default=model)
        with st.container():
            route_b, gateway_b = route_options("pg_b", default="gateway" if route == "direct" else "direct")
        info_b = model_info(model_b)
        params_b = load_model_params(model_b, info_b.response_shape if info_b else None)
        branch_b = request_branch(params_b.shape, input_mode)
        specs_b = tuple(for_branch(list(params_b.specs), branch_b, keep=BUDGET_NAMES))
        fragment_b = fragment_for(specs_b, dict(params))
        with st.popover("B's price", icon=":material/payments:"):
            price_b = price_override_editor(model_b, info_b.price if info_b else None, key="pg_b_price")
        st.caption("B takes the sidebar's parameters that its own schema has, within its ranges.")
    saved_route.update({k: state[k] for k in ROUTE_KEYS if k in state})
    request_b = replace(request, model=model_b, params=fragment_b, route=route_b, gateway=gateway_b,
                        shape=params_b.shape, specs=specs_b)
    by_column = {"a": main_target,
                 "b": Target(request_b, info_b.reasoning_first if info_b else False,
                             budget_in_force(fragment_b, params_b), price_b)}
    problems_b = gateway_b.validate() if route_b == "gateway" else []
    for problem in problems_b:
        st.error(f"B: {problem}", icon=":material/error:")
    st.caption("Side by side sends both requests at the same time and waits for whole answers (no streaming).")
    pending_turns: list[tuple[Conversation, Turn, Target]] = []
    if prompt and not problems and not problems_b:  # the prompt shows in both columns at once
        for target, conv in zip(targets, pair, strict=True):
            pending_turns.append((conv, conv.add_user(prompt), by_column[target]))
    elif pending and not problems and not problems_b:
        for target in pending:
            conv = by_target[target]
            if (user_turn := conv.prepare_resend()) is not None:
                pending_turns.append((conv, user_turn, by_column[target]))
    history_a, history_b = st.columns(2, gap="medium")  # a row of its own, so both histories line up
    with history_a:
        render_history(pair[0], "a")
    with history_b:
        render_history(pair[1], "b")
    if pending_turns:
        send_concurrently(pending_turns)
        finish_turn()
    elif again in ("a", "b"):
        send_again(by_target[again], by_column[again])
        finish_turn()

"""Chat history rendering for the playground: messages, errors with what to do next, metrics, raw exchange."""

from __future__ import annotations

import time
from collections.abc import Iterable

import streamlit as st

from cfai import shapes
from cfai.chat import Conversation, Turn, error_advice, error_summary
from cfai.cost import answer_cost
from cfai.safe_markdown import escape_markdown, safe_markdown
from components.cost_view import answer_cost_line, stored_price
from components.metrics import request_details, result_metrics

PENDING_KEY = "pg_pending"
AGAIN_KEY = "pg_again"
REASONING_LABEL = "Reasoning"
WHY_FOLLOW_UPS_MISS = (
    "A follow-up turn cannot be a cache hit: the whole conversation so far is part of its request body, so "
    "every new turn is a request the gateway has never seen. Sending the same turn again repeats the exact "
    "request, which the gateway can answer from its cache (streamed requests are not cached)."
)


STREAM_REDRAW_S = 0.05  # redraw a streaming answer at most this often (each redraw re-renders it all)


def queue_resend(targets: tuple[str, ...]) -> None:
    st.session_state[PENDING_KEY] = targets


def queue_again(target: str) -> None:
    st.session_state[AGAIN_KEY] = target


def write_deltas(deltas: Iterable[shapes.Delta]) -> str:
    """Stream a reasoning model's thoughts into a collapsed "Reasoning" block above the answer, and the
    answer below it, as they arrive (each made safe on every redraw); returns the answer text."""
    block = st.expander(REASONING_LABEL, expanded=False, icon=":material/psychology:")
    with block:
        thoughts = st.empty()
    status = st.empty()
    placeholder = st.empty()
    reasoning, text, last_draw = "", "", 0.0
    for delta in deltas:
        if delta.kind == "reasoning":
            reasoning += delta.text
        else:
            text += delta.text
        now = time.monotonic()
        if now - last_draw >= STREAM_REDRAW_S:
            if reasoning:
                thoughts.markdown(safe_markdown(reasoning) + (" ▌" if not text else ""))
                if not text:
                    status.caption(f":material/psychology: Reasoning… {len(reasoning):,} characters so far "
                                   "(open the block above to follow it)")
            if text:
                status.empty()
                placeholder.markdown(safe_markdown(text) + " ▌")
            last_draw = now
    thoughts.markdown(safe_markdown(reasoning) if reasoning else "_No reasoning in this answer._")
    status.empty()
    placeholder.markdown(safe_markdown(text))
    return text


def write_markdown_stream(chunks: Iterable[str]) -> str:
    """Show text as it streams in, made safe as a whole on each redraw (an image split across chunks is
    caught once it is complete); returns the full text. Use instead of st.write_stream for model output."""
    placeholder = st.empty()
    text, last_draw = "", 0.0
    for chunk in chunks:
        text += str(chunk)
        now = time.monotonic()
        if now - last_draw >= STREAM_REDRAW_S:
            placeholder.markdown(safe_markdown(text) + " ▌")
            last_draw = now
    placeholder.markdown(safe_markdown(text))
    return text


def _error_text(error: dict) -> tuple[str, str]:
    """A server's error message as literal text; our own advice keeps its formatting, made safe."""
    return escape_markdown(error_summary(error)), safe_markdown(error_advice(error))


def render_reasoning(turn: Turn) -> None:
    if turn.reasoning:
        with st.expander(REASONING_LABEL, expanded=False, icon=":material/psychology:"):
            st.markdown(safe_markdown(turn.reasoning))


def render_cost(turn: Turn) -> None:
    """The answer's cost: input, cached input and output tokens × price (reasoning billed as output)."""
    if turn.metrics is None:
        return
    price = stored_price(turn.price)
    usage = turn.metrics.usage
    answer_cost_line(answer_cost(usage, price, cache_hit=turn.metrics.cache_status == "HIT"), usage, price)


def _answer_body(turn: Turn) -> None:
    """An answer's text (or JSON), its reasoning above it, and its markers and numbers below."""
    render_reasoning(turn)
    if turn.parsed is not None:
        st.json(turn.parsed)
    elif turn.content:
        st.markdown(safe_markdown(turn.content))
    if turn.finish_note:
        advice = ("The whole budget went to reasoning, so there is no answer yet: raise max_tokens "
                  "(or lower the reasoning effort) and regenerate."
                  if turn.finish_note == shapes.STOPPED_WHILE_REASONING
                  else "The answer may be cut short: raise max_tokens and regenerate for the rest.")
        st.warning(f"**{turn.finish_note.capitalize()}.** {advice}", icon=":material/block:")
    if turn.budget_note:
        st.caption(f":material/info: {escape_markdown(turn.budget_note)}")
    if turn.interrupted:
        reason = (turn.error or {}).get("message") or "The stream stopped before the answer finished."
        st.warning(f"**Interrupted:** {escape_markdown(reason)} The text above is what arrived; regenerate "
                   "to try again.", icon=":material/content_cut:")
    elif turn.error:
        summary, advice = _error_text(turn.error)
        if turn.content or turn.reasoning:
            st.warning(f"{summary} {advice}", icon=":material/warning:")
        else:
            st.error(f"**{summary}**\n\n{advice}", icon=":material/error:")
    if turn.metrics:
        result_metrics(turn.metrics)
        render_cost(turn)
    request_details(url=turn.url, request_body=turn.request_body, request_headers=turn.request_headers,
                    response_headers=turn.response_headers, response_body=turn.response_body)


def render_turn(turn: Turn, *, retry_target: str | None, again_target: str | None = None) -> None:
    """One message from history, with its error, metrics and raw exchange."""
    if turn.role == "user":
        with st.chat_message("user"):
            st.markdown(safe_markdown(turn.content))
        if turn.failed and turn.error:
            with st.chat_message("assistant", avatar=":material/error:"):
                summary, advice = _error_text(turn.error)
                st.error(f"**{summary}**\n\n{advice}", icon=":material/error:")
                if turn.metrics:
                    result_metrics(turn.metrics)
                request_details(url=turn.url, request_body=turn.request_body, request_headers=turn.request_headers,
                                response_headers=turn.response_headers, response_body=turn.response_body)
                if retry_target:
                    st.button("Retry", key=f"retry_{turn.id}", icon=":material/replay:",
                              on_click=queue_resend, args=((retry_target,),))
        return
    with st.chat_message("assistant"):
        if turn.again is None:
            _answer_body(turn)
        else:  # the same request twice: both answers side by side, with their timings (MISS, then HIT)
            first, second = st.columns(2, gap="medium")
            with first:
                st.caption("Sent first")
                _answer_body(turn)
            with second:
                st.caption("Sent again (the identical request)")
                _answer_body(turn.again)
        if again_target:
            st.button("Send this turn again", key=f"again_{again_target}_{turn.id}", icon=":material/replay:",
                      on_click=queue_again, args=(again_target,),
                      help="Send exactly the same request once more and keep both answers side by side: "
                           "through AI Gateway, the second one can come from the cache (turn Stream off: "
                           "streamed answers are not cached).")
            if turn.route == "gateway":
                st.caption(WHY_FOLLOW_UPS_MISS)


def render_history(conv: Conversation, target: str) -> None:
    for turn in conv.turns:
        last = turn is conv.turns[-1]
        render_turn(turn, retry_target=target if (last and conv.can_retry()) else None,
                    again_target=target if (last and turn.role == "assistant") else None)

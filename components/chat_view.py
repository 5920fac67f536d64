"""Chat history rendering for the playground: messages, errors with what to do next, metrics, raw exchange."""

from __future__ import annotations

import time
from collections.abc import Iterable

import streamlit as st

from cfai.chat import Conversation, Turn, error_advice, error_summary
from cfai.safe_markdown import escape_markdown, safe_markdown
from components.metrics import request_details, result_metrics

PENDING_KEY = "pg_pending"


STREAM_REDRAW_S = 0.05  # redraw a streaming answer at most this often (each redraw re-renders it all)


def queue_resend(targets: tuple[str, ...]) -> None:
    st.session_state[PENDING_KEY] = targets


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


def render_turn(turn: Turn, *, retry_target: str | None) -> None:
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
        if turn.parsed is not None:
            st.json(turn.parsed)
        else:
            st.markdown(safe_markdown(turn.content))
        if turn.interrupted:
            reason = (turn.error or {}).get("message") or "The stream stopped before the answer finished."
            st.warning(f"**Interrupted:** {escape_markdown(reason)} The text above is what arrived; regenerate "
                       "to try again.", icon=":material/content_cut:")
        elif turn.error:
            summary, advice = _error_text(turn.error)
            st.warning(f"{summary} {advice}", icon=":material/warning:")
        if turn.metrics:
            result_metrics(turn.metrics)
        request_details(url=turn.url, request_body=turn.request_body, request_headers=turn.request_headers,
                        response_headers=turn.response_headers, response_body=turn.response_body)


def render_history(conv: Conversation, target: str) -> None:
    for turn in conv.turns:
        render_turn(turn, retry_target=target if (turn is conv.turns[-1] and conv.can_retry()) else None)

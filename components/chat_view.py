"""Chat history rendering for the playground: messages, errors with what to do next, metrics, raw exchange."""

from __future__ import annotations

import streamlit as st

from cfai.chat import Conversation, Turn, error_advice, error_summary
from components.metrics import request_details, result_metrics

PENDING_KEY = "pg_pending"


def queue_resend(targets: tuple[str, ...]) -> None:
    st.session_state[PENDING_KEY] = targets


def render_turn(turn: Turn, *, retry_target: str | None) -> None:
    """One message from history, with its error, metrics and raw exchange."""
    if turn.role == "user":
        with st.chat_message("user"):
            st.markdown(turn.content)
        if turn.failed and turn.error:
            with st.chat_message("assistant", avatar=":material/error:"):
                st.error(f"**{error_summary(turn.error)}**\n\n{error_advice(turn.error)}", icon=":material/error:")
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
            st.markdown(turn.content)
        if turn.interrupted:
            reason = (turn.error or {}).get("message") or "The stream stopped before the answer finished."
            st.warning(f"**Interrupted:** {reason} The text above is what arrived; regenerate to try again.",
                       icon=":material/content_cut:")
        elif turn.error:
            st.warning(f"{error_summary(turn.error)} {error_advice(turn.error)}", icon=":material/warning:")
        if turn.metrics:
            result_metrics(turn.metrics)
        request_details(url=turn.url, request_body=turn.request_body, request_headers=turn.request_headers,
                        response_headers=turn.response_headers, response_body=turn.response_body)


def render_history(conv: Conversation, target: str) -> None:
    for turn in conv.turns:
        render_turn(turn, retry_target=target if (turn is conv.turns[-1] and conv.can_retry()) else None)

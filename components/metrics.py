"""What is shown under an answer: the metric row and the raw request/response; reusable.

`result_metrics` takes a client `Result` or the `TurnMetrics` kept in a conversation, so live answers and
history render the same way.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from cfai.chat import TurnMetrics, cached_summary, first_label, rate_label
from cfai.client import Result
from cfai.format import MISSING, format_count, format_ms
from cfai.safe_markdown import escape_markdown, inline_code

CACHE_COLOURS = {"HIT": "green", "MISS": "orange"}


def _as_metrics(source: Result | TurnMetrics) -> TurnMetrics:
    if isinstance(source, TurnMetrics):
        return source
    return TurnMetrics.from_result(source, streamed=bool(getattr(source, "streamed", False)))


def _tokens(m: TurnMetrics) -> str:
    out = f"{format_count(m.prompt_tokens)} → {format_count(m.completion_tokens)}"
    return out + (f" ({format_count(m.reasoning_tokens)} reasoning)" if m.reasoning_tokens else "")


def _firsts(m: TurnMetrics) -> str:
    """Time to first token, split into reasoning and answer for a reasoning model's stream."""
    if m.first_reasoning_ms is not None:
        return (f"first reasoning token **{format_ms(m.first_reasoning_ms)}** · "
                f"first answer token **{format_ms(m.first_answer_ms)}**")
    return f"{first_label(m)} **{format_ms(m.time_to_first_token_ms)}**"


def result_metrics(source: Result | TurnMetrics, *, compact: bool = True) -> TurnMetrics:
    """Render time to first token (or byte), total time, tokens in → out, tokens per second, route, cache
    status and HTTP status. `compact` is one line for a chat bubble; otherwise a grid of st.metric."""
    m = _as_metrics(source)
    tps = rate_label(m)
    if not m.tokens_per_second and m.cache_status == "HIT":
        tps += " (from cache)"
    status_colour = "green" if isinstance(m.status, int) and 200 <= m.status < 300 else "red"
    # Header values come from the server: escaped, so they show as text and cannot close the badge.
    cache = escape_markdown(m.cache_status or MISSING, max_length=40)
    badges = [
        f":blue-badge[{'AI Gateway' if m.route == 'gateway' else 'Direct'}]",
        f":{CACHE_COLOURS.get(m.cache_status or '', 'gray')}-badge[cache {cache}]",
        f":{status_colour}-badge[HTTP {escape_markdown(m.status or MISSING)}]",
    ]
    if m.backend:
        badges.append(f":gray-badge[{escape_markdown(m.backend, max_length=80)}]")
    if compact:
        cached = f" · {cached_summary(m)}" if m.cached_tokens is not None or m.session_affinity else ""
        st.markdown(
            f":material/timer: {_firsts(m)} · total **{format_ms(m.total_ms)}** · tokens **{_tokens(m)}** · "
            f"**{tps}**{cached}  " + " ".join(badges),
            help="First token: until the first streamed text. First byte: until the response headers of a "
                 "whole answer. A reasoning model's stream shows its first reasoning token and its first "
                 "answer token apart. Total: until the last byte. Tokens per second counts every generated "
                 "token, reasoning included: after the first token when streamed, over the whole call "
                 "otherwise. Cached: prompt tokens served from the prompt cache "
                 "(usage.prompt_tokens_details.cached_tokens); send a session affinity key (Advanced) so "
                 "follow-up turns reach the instance that holds them.",
        )
        return m
    cols = st.columns(4)
    cols[0].metric(first_label(m).capitalize(), format_ms(m.time_to_first_token_ms))
    cols[1].metric("Total", format_ms(m.total_ms))
    cols[2].metric("Tokens in → out", _tokens(m))
    cols[3].metric("Tokens/s", tps.replace(" tok/s", ""))
    st.markdown(" ".join(badges))
    return m


def request_details(
    *,
    url: str | None,
    request_body: Any,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    response_body: str | None = None,
    label: str = "Raw request and response",
) -> None:
    """An expander with what went over the wire. Authorization is shown masked, never the token."""
    with st.expander(label, icon=":material/data_object:"):
        st.markdown(f"**POST** {inline_code(url or MISSING)}")
        if request_headers:
            safe = {k: ("Bearer ****" if "authorization" in k.lower() else v) for k, v in request_headers.items()}
            st.caption("Request headers")
            st.json(safe, expanded=False)
        st.caption("Request body")
        st.json(request_body or {}, expanded=True)
        if response_headers:
            st.caption("Response headers")
            st.json(response_headers, expanded=False)
        st.caption("Response body")
        st.code(_pretty(response_body), language="json", wrap_lines=True)


def _pretty(body: str | None) -> str:
    if not body:
        return "(empty)"
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body  # a stream's concatenated text, or a non-JSON error page

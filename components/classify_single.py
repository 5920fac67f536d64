"""Classify one text: the text box, the answer's label, confidence, latency and cache status, and the scores."""

from __future__ import annotations

import streamlit as st

from cfai.classify import Classification, classify_text
from cfai.client import Client, GatewayOptions, Route
from cfai.format import MISSING, format_ms, format_percent
from cfai.ingest import LONG_TEXT_CHARS
from cfai.safe_markdown import escape_markdown
from components.classify_charts import scores_chart
from components.classify_state import seed

DEFAULT_TEXT = "The staff were friendly, but the room was noisy and the breakfast was cold."


def single_text_panel(client: Client, model: str, route: Route, gateway: GatewayOptions, *,
                      disabled: bool = False) -> None:
    seed("classify_text", DEFAULT_TEXT)
    text = st.text_area("Text to classify", key="classify_text", height=100)
    if len(text) > LONG_TEXT_CHARS:
        st.warning(f"This text is {len(text):,} characters long (over {LONG_TEXT_CHARS:,}): the model may "
                   "truncate or refuse it.", icon=":material/warning:")
    if st.button("Classify", key="classify_one", type="primary", disabled=disabled or not text.strip() or not model):
        with st.spinner("Classifying..."):
            st.session_state["classify_single"] = classify_text(client, model, text.strip(), route=route,
                                                                gateway=gateway)
    answer: Classification | None = st.session_state.get("classify_single")
    if answer is not None:
        show_classification(answer)


def show_classification(answer: Classification) -> None:
    if answer.error:
        # The server's words are shown as text: a message can hold Markdown (links, images) it did not mean.
        hint = f"\n\n{escape_markdown(answer.error_hint)}" if answer.error_hint else ""
        st.error(escape_markdown(answer.error) + hint, icon=":material/error:")
        return
    top = answer.top
    cols = st.columns(4)
    cols[0].metric("Label", top.label)
    cols[1].metric("Confidence", format_percent(top.score, 1))
    cols[2].metric("Latency", format_ms(answer.latency_ms), help="Until the last byte of the response.")
    cols[3].metric("Cache", answer.cache_status or MISSING,
                   help="cf-aig-cache-status from AI Gateway; '–' on the direct route.")
    st.altair_chart(scores_chart(answer.scores), width="stretch")

"""The presenter view (a toggle, or `?presenter=1` in the URL): large headline numbers that never truncate,
charts with axis text readable from across a room, and nothing else on screen (no sidebar, no editors).

Also the headline cards' layout for the normal view: cards wrap onto another row instead of cutting their
numbers short ("3,84..."), at 1024 px and at 800 px.
"""

from __future__ import annotations

import streamlit as st

QUERY_PARAM = "presenter"
_ON = ("1", "true", "yes")  # `?presenter=` values that turn the view on
TOGGLE_KEY = "presenter_view"
CARDS_KEY = "cfai_cards"  # st.container key: its elements carry the CSS class st-key-cfai_cards

# Metric values wrap instead of ending in "...", and the cards wrap onto a new row before they get narrow.
_CARDS_CSS = """
<style>
div[class*="st-key-cfai_cards"] [data-testid="stMetric"] { min-width: 11.5rem; }
div[class*="st-key-cfai_cards"] [data-testid="stMetricValue"],
div[class*="st-key-cfai_cards"] [data-testid="stMetricValue"] > div,
div[class*="st-key-cfai_cards"] [data-testid="stMetricDelta"] > div {
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
}
div[class*="st-key-cfai_cards"] [data-testid="stMetricValue"] { font-size: clamp(1.6rem, 2.6vw, 2.25rem); }
</style>
"""
# Presenter: no sidebar or header, room-sized numbers; cards take whole rows as the screen narrows.
_PRESENTER_CSS = """
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stSidebarNav"] { display: none !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 1rem !important; max-width: 100% !important; }
div[class*="st-key-cfai_cards"] [data-testid="stMetric"] { min-width: 17rem; }
div[class*="st-key-cfai_cards"] [data-testid="stMetricValue"] { font-size: clamp(2.6rem, 6vw, 4.5rem) !important;
  line-height: 1.1; }
div[class*="st-key-cfai_cards"] [data-testid="stMetricLabel"] p { font-size: clamp(1.2rem, 2.2vw, 1.8rem) !important; }
div[class*="st-key-cfai_cards"] [data-testid="stMetricDelta"] { font-size: clamp(1rem, 1.8vw, 1.4rem) !important; }
</style>
"""


def presenter_requested() -> bool:
    """The presenter view is on or asked for by the URL, without touching any state (for the app shell)."""
    return bool(st.session_state.get(TOGGLE_KEY)) or st.query_params.get(QUERY_PARAM) in _ON


def presenter_mode() -> bool:
    """Whether the presenter view is on: `?presenter=1` turns it on at load; the toggle (`presenter_toggle`)
    keeps the URL in step, so a reload or a shared link keeps the view."""
    wanted = st.query_params.get(QUERY_PARAM) in _ON
    if TOGGLE_KEY not in st.session_state or st.session_state.get("_presenter_url") != wanted:
        st.session_state[TOGGLE_KEY] = wanted
        st.session_state["_presenter_url"] = wanted
    return bool(st.session_state[TOGGLE_KEY])


def _sync_url() -> None:
    on = bool(st.session_state.get(TOGGLE_KEY))
    st.session_state["_presenter_url"] = on
    if on:
        st.query_params[QUERY_PARAM] = "1"
    else:
        st.query_params.pop(QUERY_PARAM, None)


def presenter_toggle(container=None) -> bool:
    where = container if container is not None else st
    return bool(where.toggle("Presenter view", key=TOGGLE_KEY, on_change=_sync_url,
                             help="Large headline numbers and charts for a projector, nothing else on screen "
                                  "(or open the page with ?presenter=1)."))


def page_css(presenter: bool) -> None:
    """The cards' CSS (always) and the presenter view's (when on)."""
    st.html(_CARDS_CSS + (_PRESENTER_CSS if presenter else ""))


def cards_row(key: str = CARDS_KEY):
    """A horizontal container for headline cards that wraps them onto new rows instead of truncating."""
    return st.container(horizontal=True, key=key, gap="small")

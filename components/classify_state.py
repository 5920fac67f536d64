"""The Classify page's session memory: settings that survive a visit to another page, and derived data
computed once per input.

Streamlit forgets a widget's value when a run does not draw it (another page was open), so the page's
settings are copied to plain session keys at the end of every run and put back before the widgets are
drawn again. Derived data (the parsed file, the batch, the evaluation, chart data, costs) is kept per name
with the key it was computed from; a new key replaces the old entry, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
_MEMO = "_classify_memo"
_KEPT = "_classify_kept"
# Widgets whose values the page keeps for the browser session. Prefixes cover widgets keyed per file, per
# model labels or per model (column choices, the label mapping, a custom price).
KEPT_KEYS = (
    "classify_tab", "classify_model", "classify_route", "classify_cache_ttl", "classify_skip_cache",
    "classify_cache_key", "classify_text", "classify_source", "classify_lines", "classify_delimiter",
    "classify_header", "classify_concurrency", "classify_rpm", "classify_fault_every", "classify_fault_kind",
    "classify_show", "classify_results_tab", "classify_threshold", "classify_table_page",
)
KEPT_PREFIXES = ("classify_text_col_", "classify_label_col_", "classify_map_", "classify_price_")


def _kept_names() -> list[str]:
    return [k for k in st.session_state if isinstance(k, str) and (k in KEPT_KEYS or k.startswith(KEPT_PREFIXES))]


def restore_settings() -> None:
    """Put back every kept setting whose widget was forgotten (call before drawing any widget). Values the
    browser just sent are kept first: a run cut short by a click elsewhere never reaches its end."""
    remember_settings()
    kept: dict[str, Any] = st.session_state.get(_KEPT, {})
    for name, value in kept.items():
        if name not in st.session_state:
            st.session_state[name] = value


def remember_settings() -> None:
    """Copy the current settings aside (call at the end of the page's run)."""
    kept: dict[str, Any] = st.session_state.setdefault(_KEPT, {})
    for name in _kept_names():
        kept[name] = st.session_state[name]


def seed(name: str, default: Any) -> None:
    """A widget's default, given through session state (a widget given both a default and a session value
    warns), so a restored value and the default never clash."""
    if name not in st.session_state:
        st.session_state[name] = default


def memo(name: str, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` once per `key` for `name`; the entry of an older key is dropped."""
    store: dict[str, tuple[Hashable, Any]] = st.session_state.setdefault(_MEMO, {})
    entry = store.get(name)
    if entry is not None and entry[0] == key:
        return entry[1]
    value = compute()
    store[name] = (key, value)
    return value


def forget(*names: str) -> None:
    """Drop memoised entries (a new upload replaces what was derived from the old one)."""
    store: dict[str, tuple[Hashable, Any]] = st.session_state.get(_MEMO, {})
    for name in names:
        store.pop(name, None)

"""Keep a page's settings for the browser session across page changes.

Streamlit forgets a widget's value when a run of another page does not draw it, so a plan went back to its
defaults after a visit to another page. `keep_settings(prefix)` at the top of a page copies the values of
the page's widgets (keys starting with `prefix`) aside on every run, and puts back the ones Streamlit
dropped. Buttons and other keys that cannot be set are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

_SAVED = "_settings_memory"


def keep_settings(prefix: str, exclude_prefixes: Iterable[str] = (), exclude_suffixes: Iterable[str] = ()) -> None:
    excluded_starts = tuple(exclude_prefixes)
    excluded_ends = ("_run", "_cancel", "_reload", "_retry", "_csv", "_json", "_button", *exclude_suffixes)
    saved: dict = st.session_state.setdefault(_SAVED, {}).setdefault(prefix, {})

    def kept(key: str) -> bool:
        return key.startswith(prefix) and not key.startswith(excluded_starts) and not key.endswith(excluded_ends)

    for key in list(st.session_state.keys()):
        if isinstance(key, str) and kept(key):
            saved[key] = st.session_state[key]
    for key, value in saved.items():
        if key not in st.session_state:
            st.session_state[key] = value

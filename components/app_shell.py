"""Every page runs inside app.py, even the first visit to a page's URL on a fresh server.

Streamlit keeps a legacy multipage mode for apps with a `pages/` folder beside the entry point. A server
starts in that mode and leaves it only when app.py's `st.navigation` first runs, so the very first visit to
`/classify` on a fresh server would run pages/classify.py alone: no connection sidebar, no emulator. A page
that finds itself run that way turns the legacy mode off and reruns; the rerun goes through app.py and lands
on the same page (both modes name a page by its URL path).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def require_app_shell() -> None:
    """Call first in every page: reruns through app.py when Streamlit ran the page on its own."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()

"""The one way a page follows background work (`cfai.jobs`): a fragment that redraws itself on a timer while
the work runs, so only that part of the page reruns; when the work ends, the whole page reruns once so
everything that depends on the result is drawn."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

POLL_SECONDS = 0.5


def poll_while_running(is_running: Callable[[], bool], draw: Callable[[], None], *, key: str,
                       every_s: float = POLL_SECONDS) -> bool:
    """Draw `draw()` now, and again every `every_s` seconds while `is_running()`. Returns whether the work
    was running when the page (not the fragment) was drawn."""
    flag = f"_polling_{key}"
    running_now = is_running()

    @st.fragment(run_every=every_s if running_now else None)
    def panel() -> None:
        running = is_running()  # sampled before drawing: what is drawn is never newer than this
        draw()
        if not running and st.session_state.get(flag):
            st.session_state[flag] = False
            st.rerun()  # the work ended while only this fragment was rerunning: redraw the page
        st.session_state[flag] = running

    panel()
    return running_now

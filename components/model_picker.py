"""A searchable model picker over the live catalogue of one task, reusable by every page.

The catalogue is read once per connection and task and kept in the session (a "Reload" button reads it
again); when it cannot be read, the built-in list is offered and the reason is shown. Any model id can also
be typed: the selectbox accepts new options.
"""

from __future__ import annotations

import streamlit as st

from cfai.catalog import (
    DEFAULT_TEXT_GENERATION_MODEL,
    FALLBACK_MODELS,
    TEXT_GENERATION,
    Catalogue,
    ModelInfo,
    load_catalogue,
)
from cfai.config import ConfigError, check_model_id
from cfai.safe_markdown import escape_markdown
from components.connection import get_client, get_connection

_CACHE_KEY = "_cfai_catalogues"


def catalogue(task: str = TEXT_GENERATION, *, refresh: bool = False) -> Catalogue:
    """The session's catalogue for `task` on the current connection (read on first use)."""
    conn = get_connection()
    if conn.validate():  # no request (with the token) to a URL built from a malformed setting
        return Catalogue(task, FALLBACK_MODELS.get(task, ()), error="Fix the connection to read the live catalogue.")
    cache: dict = st.session_state.setdefault(_CACHE_KEY, {})
    key = (conn, task)  # the connection is hashable; the token stays server-side
    if refresh or key not in cache:
        cache[key] = load_catalogue(get_client(), task)
    return cache[key]


def model_picker(task: str = TEXT_GENERATION, key: str = "model", default: str = DEFAULT_TEXT_GENERATION_MODEL,
                 *, label: str = "Model") -> str:
    """Render the picker and return the chosen (or typed) model id, stripped. Shows the model's description
    and context window when the catalogue knows them, and a warning for an unusual id."""
    cat = catalogue(task)
    ids = cat.ids
    if default and default not in ids:
        ids = [default, *ids]
    current = st.session_state.get(key)
    if isinstance(current, str) and current and current not in ids:
        ids = [*ids, current]  # a typed id stays selectable after reruns
    if key not in st.session_state:
        st.session_state[key] = default if default in ids else (ids[0] if ids else None)

    # Options are shown as their bare ids (details go in the caption below): a label that changed with the
    # catalogue (say, after a connection change) no longer matched its option and came back as a typed id.
    chosen = st.selectbox(
        label, ids, key=key, accept_new_options=True, persist_state="session",
        placeholder="Search or type a model id",
        help="Type to search the catalogue, or type any model id (e.g. @cf/meta/llama-3.1-8b-instruct).",
    )
    model = (chosen or "").strip()
    _describe(cat, cat.get(model), model, key)
    return model


def _describe(cat: Catalogue, info: ModelInfo | None, model: str, key: str) -> None:
    try:
        warning = check_model_id(model)
    except ConfigError as e:
        st.error(str(e), icon=":material/error:")
        return
    if warning:
        st.warning(warning, icon=":material/warning:")
    if info is not None:
        # The catalogue's words are shown as text (a description could hold Markdown or a remote image).
        details = [escape_markdown(info.description)] if info.description else []
        if info.context_window:
            details.append(f"Context window: {info.context_window:,} tokens.")
        if details:
            st.caption(" ".join(details))
    elif not warning:
        st.caption("Not in the catalogue: it will be sent as typed.")
    if cat.from_fallback:
        st.caption(f":orange[{cat.error} Showing the built-in list.]")
        if st.button("Reload catalogue", key=f"{key}_reload", icon=":material/refresh:"):
            catalogue(cat.task, refresh=True)
            st.rerun()

"""The current request as copyable code (curl, Python requests, openai SDK, Worker binding), in tabs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from cfai.catalog import TEXT_GENERATION
from cfai.client import GatewayOptions
from cfai.codegen import GATEWAY_TOKEN_ENV, LANGUAGES, TITLES, TOKEN_ENV, all_snippets
from cfai.config import ConfigError, Connection


def _catalogue_shape(model: str) -> str | None:
    """The model's response shape as the session's catalogue says (the emulator's does; Cloudflare's has
    no such property, and then the snippets go by the body)."""
    from components.model_picker import catalogue  # the session's cached catalogue, read once

    info = catalogue(TEXT_GENERATION).get(model)
    return info.response_shape if info else None


def code_panel(connection: Connection, route: str, model: str, body: Mapping[str, Any],
               gateway: GatewayOptions | None = None, *, shape: str | None = None) -> dict[str, str]:
    """Render one tab per snippet (Streamlit's code blocks have a copy button) and return the snippets.
    `route` is direct, gateway or unified; `shape` the model's response shape (looked up in the catalogue
    when not given). The token is never in them: they read it from the environment or the Worker's env."""
    try:
        snippets = all_snippets(connection, route, model, body, gateway,
                                shape=shape if shape is not None else _catalogue_shape(model))
    except ConfigError as e:  # e.g. a gateway route without a gateway id: say so instead of failing
        st.info(f"No code to show yet: {e}", icon=":material/info:")
        return {}
    tabs = st.tabs([TITLES[name] for name in snippets])
    for tab, (name, text) in zip(tabs, snippets.items(), strict=True):
        with tab:
            st.code(text, language=LANGUAGES[name], wrap_lines=False)
    gateway_note = (f" and, on the AI Gateway URL route, `cf-aig-authorization` from `${GATEWAY_TOKEN_ENV}` (or "
                    f"`${TOKEN_ENV}` when no separate gateway token is set)" if route == "gateway" else "")
    st.caption(f"The token is read from `${TOKEN_ENV}`{gateway_note}; it is never written into a snippet."
               + (" These snippets point at the local emulator; each says what to change for Cloudflare."
                  if connection.is_local else ""))
    return snippets

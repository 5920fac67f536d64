"""The current request as copyable code (curl, Python requests, openai SDK, Worker binding), in tabs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from cfai.client import GatewayOptions, Route
from cfai.codegen import LANGUAGES, TITLES, all_snippets
from cfai.config import Connection


def code_panel(connection: Connection, route: Route, model: str, body: Mapping[str, Any],
               gateway: GatewayOptions | None = None) -> dict[str, str]:
    """Render one tab per snippet (Streamlit's code blocks have a copy button) and return the snippets.
    The token is never in them: they read it from $CLOUDFLARE_API_TOKEN or the Worker's env."""
    snippets = all_snippets(connection, route, model, body, gateway)
    tabs = st.tabs([TITLES[name] for name in snippets])
    for tab, (name, text) in zip(tabs, snippets.items(), strict=True):
        with tab:
            st.code(text, language=LANGUAGES[name], wrap_lines=False)
    st.caption("The token is read from `$CLOUDFLARE_API_TOKEN` (and `$CLOUDFLARE_GATEWAY_TOKEN` for an "
               "authenticated gateway); it is never written into a snippet.")
    return snippets

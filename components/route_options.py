"""Direct or through AI Gateway, with the gateway's per-request options; reusable.

The gateway route needs a gateway id on the connection; without one the choice is locked to direct and
the panel says where to set it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cfai.client import MAX_CACHE_TTL, MIN_CACHE_TTL, GatewayOptions, Route
from components.connection import get_connection

ROUTE_LABELS = {"direct": "Direct", "gateway": "AI Gateway"}
MAX_METADATA = 5


# The rows' conversion lives on GatewayOptions (the core); this name stays for existing callers.
metadata_from_rows = GatewayOptions.metadata_from_rows


def route_options(key_prefix: str, default: Route = "direct") -> tuple[Route, GatewayOptions]:
    """Render the route choice (and the gateway options when it is the gateway) in the current container.
    Returns the route and the options; invalid options are reported under the widgets."""
    conn = get_connection()
    key = f"{key_prefix}_route"
    if not conn.has_gateway:
        st.session_state[key] = "direct"
    elif key not in st.session_state:
        st.session_state[key] = default
    route: Route = st.radio(
        "Route", list(ROUTE_LABELS), format_func=ROUTE_LABELS.get, horizontal=True, key=key,
        disabled=not conn.has_gateway,
        help="Direct calls Workers AI; AI Gateway adds caching, logs and rate limits in front of it.",
    )
    if not conn.has_gateway:
        st.caption("Set a Gateway ID in the connection panel to use the gateway route.")
        return "direct", GatewayOptions()
    if route != "gateway":
        return route, GatewayOptions()

    with st.expander(f"Gateway `{conn.gateway_id}` options", icon=":material/tune:"):
        ttl = st.number_input(
            "Cache TTL (s)", min_value=MIN_CACHE_TTL, max_value=MAX_CACHE_TTL, value=None, step=60,
            placeholder="gateway default", key=f"{key_prefix}_cache_ttl",
            help="cf-aig-cache-ttl: cache this response for so many seconds (60 to 2592000).",
        )
        skip = st.checkbox("Skip cache", key=f"{key_prefix}_skip_cache",
                           help="cf-aig-skip-cache: always ask the model, never answer from the cache.")
        cache_key = st.text_input("Cache key", key=f"{key_prefix}_cache_key", placeholder="optional",
                                  help="cf-aig-cache-key: requests with the same key share a cache entry.")
        edited = st.data_editor(
            pd.DataFrame({"key": pd.Series(dtype="string"), "value": pd.Series(dtype="string")}),
            num_rows="dynamic", hide_index=True, width="stretch", key=f"{key_prefix}_metadata",
            column_config={"key": st.column_config.TextColumn("Metadata key"),
                           "value": st.column_config.TextColumn("Value")},
        )
        rows = edited.to_dict("records") if len(edited) else []
    options = GatewayOptions.from_rows(rows, cache_ttl=int(ttl) if ttl is not None else None, skip_cache=skip,
                                       cache_key=cache_key)
    st.caption(options_summary(options))
    for problem in options.validate():
        st.error(problem, icon=":material/error:")
    return route, options


def options_summary(options: GatewayOptions) -> str:
    """One line saying which gateway options are on, so a collapsed panel hides nothing."""
    parts = [f"cache TTL {options.cache_ttl} s" if options.cache_ttl else "default cache TTL"]
    if options.skip_cache:
        parts.append("skip cache")
    if options.cache_key:
        parts.append(f"cache key `{options.cache_key}`")
    if options.metadata:
        parts.append(f"{len(options.metadata)} metadata entr{'y' if len(options.metadata) == 1 else 'ies'}")
    return "Gateway options: " + ", ".join(parts) + "."

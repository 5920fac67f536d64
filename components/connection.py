"""The sidebar connection panel and the per-session client every page uses.

Credentials come from env vars or `.streamlit/secrets.toml` (prefilled) or the sidebar. Without an account
id and token the app runs against the local emulator, started once per server process. The token lives
only in session state and a password field; it is never rendered.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from cfai.client import Client
from cfai.config import (
    ENV_EMULATOR_URL,
    LOCAL_GATEWAY_ID,
    ConfigError,
    Connection,
    cloudflare_settings,
    connection_from_settings,
    local_connection,
)

_CLIENT_KEY = "_cfai_client"
_FIELDS = ("account_id", "api_token", "gateway_id", "gateway_token")
MODE_LOCAL, MODE_CLOUDFLARE = "Local emulator", "Cloudflare"


@st.cache_resource(show_spinner="Starting the local Workers AI emulator...")
def _embedded_emulator(speed: float) -> Any:
    """One emulator per server process, on a free loopback port. Faults are allowed so the pages can
    demonstrate error handling on request."""
    from cfai.emulator import start_emulator

    return start_emulator(host="127.0.0.1", port=0, speed=speed, allow_faults=True)


def emulator_base_url() -> str:
    """An emulator the user started (CFAI_EMULATOR_URL), else the embedded one."""
    external = os.environ.get(ENV_EMULATOR_URL, "").strip()
    if external:
        return external.rstrip("/")
    return _embedded_emulator(float(os.environ.get("CFAI_EMULATOR_SPEED", "1"))).base_url


def _configured_settings() -> dict[str, str]:
    try:
        secrets: Any = st.secrets if len(st.secrets) else None
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal case
        secrets = None
    return cloudflare_settings(secrets=secrets)


def _init_state() -> None:
    if "cfg_initialised" in st.session_state:
        return
    settings = _configured_settings()
    for name in _FIELDS:
        st.session_state[f"cfg_{name}"] = settings.get(name, "")
    st.session_state["cfg_api_base_url"] = settings.get("api_base_url", "")
    st.session_state["cfg_gateway_base_url"] = settings.get("gateway_base_url", "")
    has_credentials = connection_from_settings(settings) is not None
    st.session_state["cfg_mode"] = MODE_CLOUDFLARE if has_credentials else MODE_LOCAL
    st.session_state["cfg_local_gateway_id"] = LOCAL_GATEWAY_ID
    st.session_state["cfg_initialised"] = True


def _cloudflare_connection() -> Connection:
    values = {name: str(st.session_state.get(f"cfg_{name}") or "").strip() for name in _FIELDS}
    values["api_base_url"] = st.session_state.get("cfg_api_base_url", "")
    values["gateway_base_url"] = st.session_state.get("cfg_gateway_base_url", "")
    conn = connection_from_settings(values)
    if conn is None:  # incomplete: still build one so validation can name the missing field
        conn = Connection(mode="cloudflare", account_id=values["account_id"], api_token=values["api_token"],
                          gateway_id=values["gateway_id"])
    return conn


def get_connection() -> Connection:
    _init_state()
    if st.session_state["cfg_mode"] == MODE_CLOUDFLARE:
        return _cloudflare_connection()
    gateway_id = str(st.session_state.get("cfg_local_gateway_id") or LOCAL_GATEWAY_ID).strip()
    return local_connection(emulator_base_url(), gateway_id=gateway_id)


def connection_problems() -> list[ConfigError]:
    return get_connection().validate()


def get_client() -> Client:
    """The session's client, rebuilt when the connection settings change (keep-alive otherwise)."""
    conn = get_connection()
    cached = st.session_state.get(_CLIENT_KEY)
    if cached is not None and cached[0] == conn:
        return cached[1]
    if cached is not None:
        cached[1].close()
    client = Client(conn)
    st.session_state[_CLIENT_KEY] = (conn, client)
    return client


def _show_problems(problems: list[ConfigError], field_name: str) -> None:
    for problem in problems:
        if problem.field == field_name:
            st.error(str(problem), icon=":material/error:")


def connection_sidebar() -> Connection:
    """Render the connection panel in the sidebar and return the active connection."""
    _init_state()
    with st.sidebar:
        st.subheader("Connection")
        st.radio("Mode", (MODE_LOCAL, MODE_CLOUDFLARE), key="cfg_mode", horizontal=True,
                 help="Local emulator needs no account and no network. Cloudflare uses your account.")
        conn = get_connection()
        if conn.is_local:
            st.markdown(":green-badge[:material/computer: Local emulator]")
            st.caption(f"Simulated Workers AI and AI Gateway at `{conn.api_base_url.rsplit('/client', 1)[0]}`. "
                       "Enter an account ID and token under Cloudflare mode to use the real service.")
            st.text_input("Gateway ID", key="cfg_local_gateway_id",
                          help="'demo' has caching on; 'default' has it off, as on Cloudflare.")
            problems = conn.validate()
            _show_problems(problems, "gateway_id")
        else:
            st.markdown(":blue-badge[:material/cloud: Cloudflare]")
            st.text_input("Account ID", key="cfg_account_id", placeholder="32 hex characters")
            problems = conn.validate()
            _show_problems(problems, "account_id")
            st.text_input("API token", key="cfg_api_token", type="password",
                          help="A token with the Workers AI permission. Kept in this browser session only.")
            _show_problems(problems, "api_token")
            st.text_input("Gateway ID", key="cfg_gateway_id", placeholder="optional, e.g. my-gateway",
                          help="Needed for the gateway route (AI Gateway dashboard).")
            _show_problems(problems, "gateway_id")
            with st.expander("Advanced"):
                st.text_input("Gateway token", key="cfg_gateway_token", type="password",
                              help="Only for an authenticated gateway (sent as cf-aig-authorization).")
                st.text_input("API base URL", key="cfg_api_base_url", placeholder="https://api.cloudflare.com/client/v4")
                st.text_input("Gateway base URL", key="cfg_gateway_base_url",
                              placeholder="https://gateway.ai.cloudflare.com/v1")
        if st.button("Verify token", icon=":material/verified_user:", disabled=bool(problems), width="stretch"):
            _verify(get_client())
    return conn


def _verify(client: Client) -> None:
    result = client.verify_token()
    if result.ok and isinstance(result.output, dict) and result.output.get("status") == "active":
        st.sidebar.success("Token is active.", icon=":material/check_circle:")
    elif result.ok:
        status = (result.output or {}).get("status", "unknown") if isinstance(result.output, dict) else "unknown"
        st.sidebar.warning(f"Token status: {status}. Create a new token with the Workers AI permission.")
    else:
        err = result.error
        st.sidebar.error(f"{err}\n\n{err.hint}" if err else "Verification failed.", icon=":material/error:")

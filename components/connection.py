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
# Tokens configured on the server (env vars, secrets.toml) stay on the server: a widget's value is sent to
# the browser, so these are kept apart and the password fields only ever hold what the user typed there.
_SERVER_SECRETS = {"cfg_api_token": "server_api_token", "cfg_gateway_token": "server_gateway_token"}
MODE_LOCAL, MODE_CLOUDFLARE = "Local emulator", "Cloudflare"


@st.cache_resource(show_spinner="Starting the local Workers AI emulator...")
def _embedded_emulator(speed: float) -> Any:
    """One emulator per server process, on a free loopback port. Faults are allowed so the pages can
    demonstrate error handling on request."""
    from cfai.emulator import DEMO_NETWORK_JITTER_MS, DEMO_NETWORK_RTT_MS, start_emulator

    return start_emulator(host="127.0.0.1", port=0, speed=speed, allow_faults=True,
                          network_rtt_ms=DEMO_NETWORK_RTT_MS, network_jitter_ms=DEMO_NETWORK_JITTER_MS)


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


_SAVED = "_cfg_saved"  # survives pages and runs where a widget is not drawn (Streamlit drops widget keys)


def _init_state() -> None:
    if _SAVED in st.session_state:
        return
    settings = _configured_settings()
    saved = {f"cfg_{name}": settings.get(name, "") for name in (*_FIELDS, "api_base_url", "gateway_base_url")}
    for field_key, server_key in _SERVER_SECRETS.items():
        saved[server_key] = saved.pop(field_key)
        saved[field_key] = ""
    has_credentials = connection_from_settings(settings) is not None
    saved["cfg_mode"] = MODE_CLOUDFLARE if has_credentials else MODE_LOCAL
    saved["cfg_local_gateway_id"] = LOCAL_GATEWAY_ID
    st.session_state[_SAVED] = saved


def _value(key: str) -> str:
    return str(st.session_state[_SAVED].get(key) or "")


def _bind(key: str) -> str:
    """Give the widget `key` its saved value (before drawing it); `_save` copies edits back."""
    if key not in st.session_state:
        st.session_state[key] = _value(key)
    return key


def _save(*keys: str) -> None:
    for key in keys:
        if key in st.session_state:
            st.session_state[_SAVED][key] = st.session_state[key]


def _cloudflare_connection() -> Connection:
    values = {name: _value(f"cfg_{name}").strip() for name in (*_FIELDS, "api_base_url", "gateway_base_url")}
    for field_key, server_key in _SERVER_SECRETS.items():  # typed in the sidebar wins over the server's
        name = field_key.removeprefix("cfg_")
        values[name] = values[name] or _value(server_key).strip()
    conn = connection_from_settings(values)
    if conn is None:  # incomplete: still build one so validation can name the missing field
        conn = Connection(mode="cloudflare", account_id=values["account_id"], api_token=values["api_token"],
                          gateway_id=values["gateway_id"])
    return conn


def get_connection() -> Connection:
    _init_state()
    if _value("cfg_mode") == MODE_CLOUDFLARE:
        return _cloudflare_connection()
    gateway_id = _value("cfg_local_gateway_id").strip()
    return local_connection(emulator_base_url(), gateway_id=gateway_id)


def connection_problems() -> list[ConfigError]:
    return get_connection().validate()


def connection_ready() -> bool:
    """Pages call this before offering to send: a malformed setting is named here, once, and sending stays
    off until it is fixed (rather than letting Cloudflare answer with a routing error)."""
    problems = connection_problems()
    if problems:
        st.error("Fix the connection in the sidebar before sending: " + " ".join(str(p) for p in problems),
                 icon=":material/settings_alert:")
    return not problems


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


def _server_placeholder(server_key: str, env_name: str) -> str:
    return f"set on the server ({env_name})" if _value(server_key) else ""


def _show_problems(problems: list[ConfigError], field_name: str) -> None:
    for problem in problems:
        if problem.field == field_name:
            st.error(str(problem), icon=":material/error:")


def connection_sidebar() -> Connection:
    """Render the connection panel in the sidebar and return the active connection."""
    _init_state()
    with st.sidebar:
        st.subheader("Connection")
        st.radio("Mode", (MODE_LOCAL, MODE_CLOUDFLARE), key=_bind("cfg_mode"), horizontal=True,
                 help="Local emulator needs no account and no network. Cloudflare uses your account.")
        _save("cfg_mode")
        if _value("cfg_mode") == MODE_LOCAL:
            st.markdown(":green-badge[:material/computer: Local emulator]")
            st.text_input("Gateway ID", key=_bind("cfg_local_gateway_id"),
                          help="'demo' has caching on; 'default' has it off, as on Cloudflare.")
            _save("cfg_local_gateway_id")
            conn = get_connection()
            st.caption(f"Simulated Workers AI and AI Gateway at `{conn.api_base_url.rsplit('/client', 1)[0]}`. "
                       "Switch to Cloudflare mode and enter an account ID and token to use the real service.")
            problems = conn.validate()
            _show_problems(problems, "gateway_id")
        else:
            st.markdown(":blue-badge[:material/cloud: Cloudflare]")
            st.text_input("Account ID", key=_bind("cfg_account_id"), placeholder="32 hex characters")
            st.text_input("API token", key=_bind("cfg_api_token"), type="password",
                          placeholder=_server_placeholder("server_api_token", "CLOUDFLARE_API_TOKEN"),
                          help="A token with the Workers AI permission. Typed here, it is kept for this "
                               "session only; one set on the server is used but never sent to the browser.")
            st.text_input("Gateway ID", key=_bind("cfg_gateway_id"), placeholder="optional, e.g. my-gateway",
                          help="Needed for the gateway route (AI Gateway dashboard).")
            with st.expander("Advanced"):
                st.text_input("Gateway token", key=_bind("cfg_gateway_token"), type="password",
                              placeholder=_server_placeholder("server_gateway_token", "CLOUDFLARE_GATEWAY_TOKEN"),
                              help="Only for an authenticated gateway (sent as cf-aig-authorization).")
                st.text_input("API base URL", key=_bind("cfg_api_base_url"),
                              placeholder="https://api.cloudflare.com/client/v4")
                st.text_input("Gateway base URL", key=_bind("cfg_gateway_base_url"),
                              placeholder="https://gateway.ai.cloudflare.com/v1")
            _save(*(f"cfg_{name}" for name in (*_FIELDS, "api_base_url", "gateway_base_url")))
            conn = get_connection()
            problems = conn.validate()
            for field_name in ("account_id", "api_token", "gateway_id"):
                _show_problems(problems, field_name)
        if st.button("Verify token", key="cfg_verify", icon=":material/verified_user:", disabled=bool(problems),
                     width="stretch"):
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

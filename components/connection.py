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
    CLOUDFLARE_API_BASE,
    CLOUDFLARE_GATEWAY_BASE,
    ENV_ALLOW_REMOTE_SERVER_TOKEN,
    ENV_EMULATOR_URL,
    LOCAL_GATEWAY_ID,
    WITHHELD_REMOTE_CLIENT,
    ConfigError,
    Connection,
    ScopedSettings,
    cloudflare_settings,
    connection_from_settings,
    local_connection,
    scope_server_tokens,
    server_tokens_allowed_for,
)
from components.presenter import presenter_requested

_CLIENT_KEY = "_cfai_client"
_GATEWAY_CHECK_KEY = "_cfai_gateway_check"  # (account, gateway, api base) -> GatewayCheck, checked once each
_FIELDS = ("account_id", "api_token", "gateway_id", "gateway_token")
# Tokens configured on the server (env vars, secrets.toml) stay on the server: a widget's value is sent to
# the browser, so these are kept apart and the password fields only ever hold what the user typed there.
_SERVER_SECRETS = {"cfg_api_token": "server_api_token", "cfg_gateway_token": "server_gateway_token"}
# The base URLs the server was configured with: its tokens go there and nowhere else.
_SERVER_BASES = {"cfg_api_base_url": "server_api_base_url", "cfg_gateway_base_url": "server_gateway_base_url"}
_ENV_NAMES = {"api_token": "CLOUDFLARE_API_TOKEN", "gateway_token": "CLOUDFLARE_GATEWAY_TOKEN"}
_BASE_FIELDS = ("api_base_url", "gateway_base_url")
MODE_LOCAL, MODE_CLOUDFLARE = "Local emulator", "Cloudflare"
DEADLINE_KEY = "cfg_deadline_s"
DEFAULT_DEADLINE_S = Connection.__dataclass_fields__["deadline_s"].default
_NOTICE_DISMISSED = "_cfg_local_notice_dismissed"
_NOTICE_PAGE = "_cfg_local_notice_page"


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
    saved = {f"cfg_{name}": settings.get(name, "") for name in (*_FIELDS, *_BASE_FIELDS)}
    for field_key, server_key in _SERVER_SECRETS.items():
        saved[server_key] = saved.pop(field_key)
        saved[field_key] = ""
    for field_key, server_key in _SERVER_BASES.items():
        saved[server_key] = saved[field_key]
    saved[DEADLINE_KEY] = float(DEFAULT_DEADLINE_S)
    has_credentials = connection_from_settings(settings) is not None
    saved["cfg_mode"] = MODE_CLOUDFLARE if has_credentials else MODE_LOCAL
    saved["cfg_local_gateway_id"] = LOCAL_GATEWAY_ID
    st.session_state[_SAVED] = saved


def _value(key: str) -> str:
    return str(st.session_state[_SAVED].get(key) or "")


def _bind(key: str) -> str:
    """Give the widget `key` its saved value (before drawing it); `_save` copies edits back."""
    if key not in st.session_state:
        saved = st.session_state[_SAVED].get(key)
        st.session_state[key] = "" if saved is None else saved
    return key


def _save(*keys: str) -> None:
    for key in keys:
        if key in st.session_state:
            st.session_state[_SAVED][key] = st.session_state[key]


def _client_address() -> str | None:
    """The browser's address as Streamlit saw the connection (None for one on this machine, or in AppTest)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no client context outside a browser session
        return None
    return address if isinstance(address, str) else None  # AppTest's stand-in client is no address


def _scoped_settings() -> ScopedSettings:
    """The session's settings, with the server's tokens only where cfai.config's rule lets them go."""
    server = {name.removeprefix("server_"): _value(name) for name in (*_SERVER_SECRETS.values(), *_SERVER_BASES.values())}
    session = {name: _value(f"cfg_{name}") for name in (*_FIELDS, *_BASE_FIELDS)}
    return scope_server_tokens(server, session, server_tokens_allowed=server_tokens_allowed_for(_client_address()))


def _deadline() -> float:
    try:
        return max(1.0, float(st.session_state[_SAVED].get(DEADLINE_KEY) or DEFAULT_DEADLINE_S))
    except (TypeError, ValueError):
        return float(DEFAULT_DEADLINE_S)


def _cloudflare_connection() -> Connection:
    values = _scoped_settings().settings
    conn = connection_from_settings(values)
    if conn is None:  # incomplete: still build one so validation can name the missing field
        conn = Connection(mode="cloudflare", account_id=values["account_id"], api_token=values["api_token"],
                          gateway_id=values["gateway_id"],
                          api_base_url=values["api_base_url"] or CLOUDFLARE_API_BASE,
                          gateway_base_url=values["gateway_base_url"] or CLOUDFLARE_GATEWAY_BASE)
    return conn


def get_connection() -> Connection:
    _init_state()
    if _value("cfg_mode") == MODE_CLOUDFLARE:
        conn = _cloudflare_connection()
    else:
        conn = local_connection(emulator_base_url(), gateway_id=_value("cfg_local_gateway_id").strip())
    return conn.with_changes(deadline_s=_deadline())


def connection_problems() -> list[ConfigError]:
    return get_connection().validate()


def connection_ready() -> bool:
    """Pages call this before offering to send: a malformed setting is named here, once, and sending stays
    off until it is fixed (rather than letting Cloudflare answer with a routing error). Settings that are
    only not filled in yet are asked for calmly."""
    problems = connection_problems()
    malformed = [p for p in problems if not p.missing]
    if malformed:
        st.error("Fix the connection in the sidebar before sending: " + " ".join(str(p) for p in malformed),
                 icon=":material/settings_alert:")
    elif problems:
        st.info(_needed_text(problems) + " Sending starts once they are in the sidebar.", icon=":material/cloud:")
    return not problems


def _needed_text(problems: list[ConfigError]) -> str:
    names = {"account_id": "your account ID", "api_token": "an API token"}
    needed = [names.get(p.field, p.field) for p in problems if p.missing]
    return "To use Cloudflare, enter " + " and ".join(needed) + "."


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
            with st.expander("Advanced"):
                _deadline_input()
            conn = get_connection()
            st.caption(f"Simulated Workers AI and AI Gateway at `{conn.api_base_url.rsplit('/client', 1)[0]}`. "
                       "Switch to Cloudflare mode and enter an account ID and token to use the real service.")
            problems = conn.validate()
            _show_problems(problems, "gateway_id")
            verify_label = "Check the emulator"
        else:
            st.markdown(":blue-badge[:material/cloud: Cloudflare]")
            st.text_input("Account ID", key=_bind("cfg_account_id"), placeholder="32 hex characters")
            st.text_input("API token", key=_bind("cfg_api_token"), type="password",
                          placeholder=_server_placeholder("server_api_token", "CLOUDFLARE_API_TOKEN"),
                          help="A token with the Workers AI permission. Typed here, it is kept for this "
                               "session only; one set on the server is used but never sent to the browser.")
            st.text_input("Gateway ID", key=_bind("cfg_gateway_id"), placeholder="optional, e.g. my-gateway",
                          help="Needed for the gateway route (AI Gateway dashboard).")
            server_tokens = bool(_value("server_api_token") or _value("server_gateway_token"))
            base_help = ("The server's token is only sent to the base URL the server was configured with: "
                         "change this and enter your own token above.") if server_tokens else None
            with st.expander("Advanced"):
                st.text_input("Gateway token", key=_bind("cfg_gateway_token"), type="password",
                              placeholder=_server_placeholder("server_gateway_token", "CLOUDFLARE_GATEWAY_TOKEN"),
                              help="Only for an authenticated gateway (sent as cf-aig-authorization).")
                st.text_input("API base URL", key=_bind("cfg_api_base_url"), placeholder=CLOUDFLARE_API_BASE,
                              help=base_help)
                st.text_input("Gateway base URL", key=_bind("cfg_gateway_base_url"),
                              placeholder=CLOUDFLARE_GATEWAY_BASE, help=base_help)
                if server_tokens:
                    st.caption(":material/lock: A token set on the server goes only to the base URLs set on the "
                               "server. Change a base URL and the session needs its own token.")
                _deadline_input()
            _save(*(f"cfg_{name}" for name in (*_FIELDS, *_BASE_FIELDS)))
            _show_withheld(_scoped_settings())
            conn = get_connection()
            problems = conn.validate()
            missing = [p for p in problems if p.missing]
            if missing:
                st.info(_needed_text(missing), icon=":material/key:")
            for field_name in ("account_id", "api_token", "gateway_id"):
                _show_problems([p for p in problems if not p.missing], field_name)
            if not problems and conn.gateway_id:
                _show_gateway_check(conn)
            verify_label = "Verify token"
        if st.button(verify_label, key="cfg_verify", icon=":material/verified_user:", disabled=bool(problems),
                     width="stretch"):
            _verify(get_client())
    return conn


def _deadline_input() -> None:
    st.number_input("Request deadline (s)", min_value=1.0, max_value=3600.0, step=5.0, key=_bind(DEADLINE_KEY),
                    help="The longest one call may take in total, whole or streamed; it then ends with a "
                         "timeout error that keeps what arrived. Read timeouts alone never end a slow trickle.")
    _save(DEADLINE_KEY)


def _show_withheld(scoped: ScopedSettings) -> None:
    """Say where a server-held token is not used, and why, next to the fields."""
    for name, reason in scoped.withheld.items():
        what = "API token" if name == "api_token" else "gateway token"
        if reason == WITHHELD_REMOTE_CLIENT:
            st.warning(f"The server's {what} ({_ENV_NAMES[name]}) is only used by browsers on the server's own "
                       f"machine; enter a token for this session. (The operator can allow remote browsers with "
                       f"{ENV_ALLOW_REMOTE_SERVER_TOKEN}=1.)", icon=":material/lock:")
        else:
            st.warning(f"A base URL differs from the server's, so the server's {what} ({_ENV_NAMES[name]}) is "
                       "not sent there: enter a token for this session.", icon=":material/lock:")


def _verify(client: Client) -> None:
    conn = client.connection
    result = client.verify_token()
    if conn.is_local:
        base = conn.api_base_url.rsplit("/client", 1)[0]
        if result.ok:
            st.sidebar.success(f"The local emulator at `{base}` is up and answering. Local mode uses no "
                               "Cloudflare token, so there is none to check; switch to Cloudflare mode to "
                               "verify yours.", icon=":material/check_circle:")
        else:
            err = result.error
            st.sidebar.error(f"The local emulator at `{base}` did not answer: {err}", icon=":material/error:")
        return
    source = "the token you typed" if _value("cfg_api_token").strip() else "the server's token"
    check = client.check_token()
    if check.active:
        st.sidebar.success(f"Token is active ({source}, checked at {conn.api_base_url}). {check.message}",
                           icon=":material/check_circle:")
    elif check.status is not None:
        st.sidebar.warning(f"{check.message} ({source})", icon=":material/warning:")
    else:
        st.sidebar.error(f"{check.message} ({source})" + (f"\n\n{check.hint}" if check.hint else ""),
                         icon=":material/error:")


def _show_gateway_check(conn: Connection) -> None:
    """Cloudflare mode: does the gateway exist (and is its authentication on)? Asked once per account, gateway
    and base URL, so a typo in the Gateway ID shows here instead of failing at the first request."""
    key = (conn.account_id, conn.gateway_id, conn.api_base_url)
    checks = st.session_state.setdefault(_GATEWAY_CHECK_KEY, {})
    if key not in checks:
        checks[key] = get_client().check_gateway(deadline=min(conn.deadline_s, 10.0))
    check = checks[key]
    show = {"ok": st.caption, "info": st.info, "warning": st.warning, "error": st.error}[check.level]
    if check.level == "ok":
        show(f":material/check: {check.message}")
    else:
        show(check.message, icon=":material/hub:")


def local_mode_notice(page: str) -> None:
    """On first load in local mode, say in the main area where answers come from and how to switch: on the
    first page opened, until dismissed or until another page is opened (so it never crowds a later view)."""
    _init_state()
    first_page = st.session_state.setdefault(_NOTICE_PAGE, page)
    if first_page != page:
        st.session_state[_NOTICE_DISMISSED] = True
    if _value("cfg_mode") != MODE_LOCAL or st.session_state.get(_NOTICE_DISMISSED) or presenter_requested():
        return  # the presenter view shows nothing but the numbers
    with st.container(border=True, key="cfg_local_notice"):
        text, button = st.columns([8, 1], vertical_alignment="center")
        text.markdown(":material/computer: **Answers come from the local emulator**: simulated models on this "
                      "machine, no account needed. To use Cloudflare, pick **Cloudflare** in the sidebar and "
                      "enter your account ID and an API token, or start the app with `CLOUDFLARE_ACCOUNT_ID` "
                      "and `CLOUDFLARE_API_TOKEN` set.")
        button.button("Dismiss", key="cfg_local_notice_dismiss", icon=":material/close:", on_click=_dismiss_notice,
                      help="Hide this for the rest of the session.")


def _dismiss_notice() -> None:
    st.session_state[_NOTICE_DISMISSED] = True

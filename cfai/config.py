"""Where to send requests and with which credentials.

A `Connection` is immutable and cheap to build. It is read from environment variables, a mapping such as
`st.secrets`, or explicit values (the sidebar). The API token is never part of `repr`/`str`, so a
connection can be logged or shown in an error without leaking it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote, urlsplit

Mode = Literal["local", "cloudflare"]
# Wire routes: `direct` Workers AI, `gateway` the AI Gateway URL, `unified` Workers AI's REST API through
# the gateway named in the cf-aig-gateway-id header (docs/PROTOCOL.md 3.2). cfai.routes names the comparison's.
Route = Literal["direct", "gateway", "unified"]
GATEWAY_WIRE_ROUTES: tuple[Route, ...] = ("gateway", "unified")

CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4"
CLOUDFLARE_GATEWAY_BASE = "https://gateway.ai.cloudflare.com/v1"

# What local mode uses: the emulator accepts any account id; its "demo" gateway has caching on.
LOCAL_ACCOUNT_ID = "local"
LOCAL_GATEWAY_ID = "demo"
LOCAL_API_TOKEN = "local-emulator-token"

ENV_ACCOUNT_ID = "CLOUDFLARE_ACCOUNT_ID"
ENV_API_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_GATEWAY_ID = "CLOUDFLARE_GATEWAY_ID"
ENV_GATEWAY_TOKEN = "CLOUDFLARE_GATEWAY_TOKEN"
ENV_API_BASE = "CLOUDFLARE_API_BASE_URL"
ENV_GATEWAY_BASE = "CLOUDFLARE_GATEWAY_BASE_URL"
# Point local mode at an emulator that is already running instead of starting one in-process.
ENV_EMULATOR_URL = "CFAI_EMULATOR_URL"
# The operator's explicit yes to browsers on other machines using the token the server holds.
ENV_ALLOW_REMOTE_SERVER_TOKEN = "CFAI_ALLOW_REMOTE_SERVER_TOKEN"

ACCOUNT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
GATEWAY_ID_RE = re.compile(r"^(?!-)(?!.*--)[a-z0-9_-]{1,64}(?<!-)$")
MODEL_ID_RE = re.compile(r"^@(cf|hf)/[A-Za-z0-9._-]+/[A-Za-z0-9._:-]+$")
KNOWN_MODEL_PREFIXES = ("@cf/", "@hf/")


class ConfigError(ValueError):
    """A setting is malformed or missing. `field` names the setting so the UI can point at it; `missing`
    says it is simply not filled in yet (the UI asks for it calmly instead of showing an error)."""

    def __init__(self, field_name: str, message: str, *, missing: bool = False):
        super().__init__(message)
        self.field = field_name
        self.missing = missing


def validate_account_id(value: str) -> str:
    value = (value or "").strip()
    if not ACCOUNT_ID_RE.match(value):
        raise ConfigError(
            "account_id",
            "Account ID must be 32 lowercase hexadecimal characters (dashboard > Workers AI > "
            "'Use REST API', or the URL dash.cloudflare.com/<account id>).",
        )
    return value


def validate_gateway_id(value: str) -> str:
    value = (value or "").strip()
    if not GATEWAY_ID_RE.match(value):
        raise ConfigError(
            "gateway_id",
            "Gateway ID must be 1-64 characters of a-z, 0-9, '_' and '-', "
            "not starting or ending with '-' and without '--'.",
        )
    return value


def check_model_id(model: str) -> str | None:
    """Return a warning for an unusual model id, or None. Raises only for an empty or unusable one.

    Naming has changed before (`@cloudflare/...`), so an unfamiliar prefix is a warning, never a refusal.
    """
    model = (model or "").strip()
    if not model or any(c.isspace() for c in model) or "?" in model or "#" in model:
        raise ConfigError("model", "Model ID must be non-empty, without spaces, e.g. @cf/meta/llama-3.1-8b-instruct.")
    if MODEL_ID_RE.match(model):
        return None
    if not model.startswith(KNOWN_MODEL_PREFIXES):
        return f"Model ID {model!r} does not start with @cf/ or @hf/; it will be sent as typed."
    return f"Model ID {model!r} is not of the usual form @cf/<author>/<name>; it will be sent as typed."


def mask_secret(secret: str | None) -> str:
    """A fixed-size placeholder: reveals neither the token nor its length."""
    return "****" if secret else "<none>"


@dataclass(frozen=True)
class Connection:
    mode: Mode
    account_id: str
    api_token: str = field(default="", repr=False)
    gateway_id: str = ""
    gateway_token: str | None = field(default=None, repr=False)
    api_base_url: str = CLOUDFLARE_API_BASE
    gateway_base_url: str = CLOUDFLARE_GATEWAY_BASE
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    deadline_s: float = 120.0  # total time one call may take, whole or streamed (issue 10.6)

    def __repr__(self) -> str:
        return (
            f"Connection(mode={self.mode!r}, account_id={self.account_id!r}, "
            f"api_token={mask_secret(self.api_token)}, gateway_id={self.gateway_id!r}, "
            f"gateway_token={mask_secret(self.gateway_token)}, api_base_url={self.api_base_url!r}, "
            f"gateway_base_url={self.gateway_base_url!r})"
        )

    __str__ = __repr__

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    @property
    def has_gateway(self) -> bool:
        return bool(self.gateway_id)

    def validate(self) -> list[ConfigError]:
        """All problems at once, so the sidebar can show each next to its field."""
        problems: list[ConfigError] = []
        if self.mode == "cloudflare":
            if not self.account_id.strip():
                problems.append(ConfigError("account_id", "Account ID is needed: 32 hexadecimal characters "
                                            "(dashboard > Workers AI > 'Use REST API').", missing=True))
            else:
                try:
                    validate_account_id(self.account_id)
                except ConfigError as e:
                    problems.append(e)
            if not self.api_token:
                problems.append(ConfigError("api_token", "API token is required for Cloudflare mode: one with "
                                            "the Workers AI permission.", missing=True))
        if self.gateway_id:
            try:
                validate_gateway_id(self.gateway_id)
            except ConfigError as e:
                problems.append(e)
        return problems

    def with_changes(self, **changes: Any) -> Connection:
        return replace(self, **changes)

    # --- URLs -------------------------------------------------------------------------------------
    def account_url(self, path: str) -> str:
        return f"{self.api_base_url.rstrip('/')}/accounts/{self.account_id}/{path.lstrip('/')}"

    def gateway_url(self, path: str) -> str:
        self._require_gateway("gateway")
        return f"{self.gateway_base_url.rstrip('/')}/{self.account_id}/{self.gateway_id}/{path.lstrip('/')}"

    def unified_url(self, path: str) -> str:
        """A Workers AI REST URL sent through the gateway (the cf-aig-gateway-id header names it)."""
        self._require_gateway("unified")
        return self.account_url(path)

    def _require_gateway(self, route: str) -> None:
        if not self.gateway_id:
            raise ConfigError("gateway_id", f"Set a Gateway ID to use the {route} route.")

    def run_url(self, model: str, route: Route = "direct") -> str:
        """Where a model runs. The unified route posts `{model, input}` to `ai/run` (the model is in the
        body: the path form `ai/run/{model}` is the direct route and ignores the gateway)."""
        model_path = quote(model.strip(), safe="@/:._-")  # the model id goes raw in the path, slashes included
        if route == "gateway":
            return self.gateway_url(f"workers-ai/{model_path}")
        if route == "unified":
            return self.unified_url("ai/run")
        return self.account_url(f"ai/run/{model_path}")

    def chat_url(self, route: Route = "direct") -> str:
        if route == "gateway":
            return self.gateway_url("workers-ai/v1/chat/completions")
        if route == "unified":
            return self.unified_url("ai/v1/chat/completions")
        return self.account_url("ai/v1/chat/completions")

    def openai_base_url(self, route: Route = "direct") -> str:
        """The `base_url` to give the `openai` SDK (for `unified`, also send the cf-aig-gateway-id header:
        `unified_headers()`)."""
        if route == "gateway":
            return self.gateway_url("workers-ai/v1")
        if route == "unified":
            return self.unified_url("ai/v1")
        return self.account_url("ai/v1")

    def unified_headers(self) -> dict[str, str]:
        """The header that sends a Workers AI REST request through the gateway (the unified route)."""
        self._require_gateway("unified")
        return {"cf-aig-gateway-id": self.gateway_id}


def local_connection(emulator_base_url: str, **overrides: Any) -> Connection:
    """A connection to the emulator at `emulator_base_url` (e.g. http://127.0.0.1:8787)."""
    base = emulator_base_url.rstrip("/")
    values: dict[str, Any] = dict(
        mode="local",
        account_id=LOCAL_ACCOUNT_ID,
        api_token=LOCAL_API_TOKEN,
        gateway_id=LOCAL_GATEWAY_ID,
        api_base_url=f"{base}/client/v4",
        gateway_base_url=f"{base}/v1",
    )
    values.update({k: v for k, v in overrides.items() if v not in (None, "")})
    return Connection(**values)


def _lookup(source: Mapping[str, Any] | None, *keys: str) -> str:
    if not source:
        return ""
    for key in keys:
        try:
            value = source.get(key)  # st.secrets supports .get
        except Exception:  # noqa: BLE001 - st.secrets raises when no secrets file exists
            return ""
        if value:
            return str(value).strip()
    return ""


def cloudflare_settings(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Credentials from st.secrets (flat or under [cloudflare]) then env vars; empty strings when unset."""
    env = os.environ if env is None else env
    section: Mapping[str, Any] | None = None
    if secrets:
        try:
            section = secrets.get("cloudflare")
        except Exception:  # noqa: BLE001
            section = None

    def pick(env_key: str, short: str) -> str:
        return _lookup(section, short, env_key) or _lookup(secrets, env_key, short) or _lookup(env, env_key)

    return {
        "account_id": pick(ENV_ACCOUNT_ID, "account_id"),
        "api_token": pick(ENV_API_TOKEN, "api_token"),
        "gateway_id": pick(ENV_GATEWAY_ID, "gateway_id"),
        "gateway_token": pick(ENV_GATEWAY_TOKEN, "gateway_token"),
        "api_base_url": pick(ENV_API_BASE, "api_base_url"),
        "gateway_base_url": pick(ENV_GATEWAY_BASE, "gateway_base_url"),
    }


def connection_from_settings(settings: Mapping[str, str]) -> Connection | None:
    """A Cloudflare connection when an account id and token are present, else None (use local mode)."""
    if not (settings.get("account_id") and settings.get("api_token")):
        return None
    return Connection(
        mode="cloudflare",
        account_id=settings["account_id"].strip(),
        api_token=settings["api_token"].strip(),
        gateway_id=(settings.get("gateway_id") or "").strip(),
        gateway_token=(settings.get("gateway_token") or None),
        api_base_url=settings.get("api_base_url") or CLOUDFLARE_API_BASE,
        gateway_base_url=settings.get("gateway_base_url") or CLOUDFLARE_GATEWAY_BASE,
    )


# --- where a server-held token may go --------------------------------------------------------------------
TOKEN_FIELDS = ("api_token", "gateway_token")
WITHHELD_BASE_CHANGED = "base_url_changed"
WITHHELD_REMOTE_CLIENT = "remote_client"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def base_url_identity(url: str) -> tuple[str, str, int | None, str] | None:
    """What makes two base URLs the same destination: scheme, host, port and path (case of scheme and host,
    a default port and trailing slashes do not matter). None for anything that is not a plain http(s) URL
    (user info, query or fragment included), which then matches nothing."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")


def same_base_url(a: str, b: str) -> bool:
    ident = base_url_identity(a)
    return ident is not None and ident == base_url_identity(b)


def is_loopback_address(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for names and anything unparsable."""
    try:
        ip = ipaddress.ip_address((address or "").strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def server_tokens_allowed_for(client_address: str | None, env: Mapping[str, str] | None = None) -> bool:
    """May a browser at `client_address` use the tokens the server holds? Yes for a browser on this machine
    (loopback; None is what Streamlit reports for one), otherwise only when the operator said so."""
    env = os.environ if env is None else env
    if client_address is None or is_loopback_address(client_address):
        return True
    return (env.get(ENV_ALLOW_REMOTE_SERVER_TOKEN) or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ScopedSettings:
    """Settings for one session: what it typed over what the server holds. `withheld` names each token the
    server holds but this session may not use, with the reason (WITHHELD_*)."""

    settings: dict[str, str]
    withheld: dict[str, str]


def scope_server_tokens(
    server: Mapping[str, str], session: Mapping[str, str], *, server_tokens_allowed: bool = True
) -> ScopedSettings:
    """Merge a session's settings over the server's, keeping the server's tokens to the server's base URLs.

    The API token goes to both bases (the gateway forwards it to Workers AI), so the server's API token is
    used only while both base URLs are the ones the server was configured with; its gateway token only
    while the gateway base URL is. A token the session typed itself is used wherever the session points.
    """
    def pick(name: str) -> str:
        return (session.get(name) or "").strip() or (server.get(name) or "").strip()

    merged = {name: pick(name) for name in ("account_id", "gateway_id", "api_base_url", "gateway_base_url")}
    api_base = merged["api_base_url"] or CLOUDFLARE_API_BASE
    gateway_base = merged["gateway_base_url"] or CLOUDFLARE_GATEWAY_BASE
    api_home = same_base_url(api_base, (server.get("api_base_url") or "").strip() or CLOUDFLARE_API_BASE)
    gateway_home = same_base_url(gateway_base,
                                 (server.get("gateway_base_url") or "").strip() or CLOUDFLARE_GATEWAY_BASE)
    at_home = {"api_token": api_home and gateway_home, "gateway_token": gateway_home}
    withheld: dict[str, str] = {}
    for name in TOKEN_FIELDS:
        typed, held = (session.get(name) or "").strip(), (server.get(name) or "").strip()
        merged[name] = typed
        if typed or not held:
            continue
        if not server_tokens_allowed:
            withheld[name] = WITHHELD_REMOTE_CLIENT
        elif not at_home[name]:
            withheld[name] = WITHHELD_BASE_CHANGED
        else:
            merged[name] = held
    return ScopedSettings(merged, withheld)

"""What the connection checks say: which kind of API token this is, whether the gateway exists, and the logs
API's query parameters as the SDK sends them. Pure functions over `Result`s; `cfai.client.Client` makes the
calls (`check_token`, `check_gateway`, `gateway_logs`) and the sidebar shows the messages.

Sources: docs/PROTOCOL.md 1 (token verification: account-owned tokens at `/accounts/{id}/tokens/verify`,
user-owned ones at `/user/tokens/verify`), 3.3 (only `default` is created on first use, with authentication
on), 3.8 (the gateway object) and 3.9 (`LogListParams`: `order_by`, `direction`, `filters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cfai.result import Result

TokenKind = Literal["account", "user"]
CheckLevel = Literal["ok", "info", "warning", "error"]
DEFAULT_GATEWAY_ID = "default"
LOG_ORDER_FIELDS = ("created_at", "provider", "model", "model_type", "success", "cached")
LOG_DIRECTIONS = ("asc", "desc")
TOKEN_KIND_WORDS = {"account": "account-owned", "user": "user-owned"}
_VERIFY_PATHS = {"account": "/accounts/{id}/tokens/verify", "user": "/user/tokens/verify"}


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of verifying the API token: `active`, its `kind` (which endpoint accepted it), its status
    and a sentence for the user (`message`; `hint` on failure)."""

    active: bool
    kind: TokenKind | None
    status: str | None
    message: str
    result: Result
    hint: str = ""


def token_check_from(result: Result, kind: TokenKind, account_attempt: Result | None) -> TokenCheck:
    """`result` is the answer of the `kind` endpoint; `account_attempt` the account endpoint's failed answer
    when the user endpoint was asked next."""
    output = result.output if isinstance(result.output, dict) else {}
    status = output.get("status") if isinstance(output.get("status"), str) else None
    words, path = TOKEN_KIND_WORDS[kind], _VERIFY_PATHS[kind]
    if result.ok and status == "active":
        expires = output.get("expires_on")
        tail = f", expires {expires}" if isinstance(expires, str) and expires else ""
        return TokenCheck(True, kind, status, f"{words.capitalize()} API token, active (verified at {path}{tail}).",
                          result)
    if result.ok:
        return TokenCheck(False, kind, status or "unknown",
                          f"The {words} API token is {status or 'in an unknown state'} (said {path}): create a "
                          "new token with the Workers AI permission.", result)
    error = result.error
    said = str(error) if error is not None else f"HTTP {result.status}"
    if account_attempt is not None and account_attempt.error is not None:
        message = (f"Neither token endpoint accepted the API token: {_VERIFY_PATHS['account']} said "
                   f"{account_attempt.error}; {path} said {said}.")
    else:
        message = f"The API token did not verify at {path}: {said}."
    return TokenCheck(False, None, None, message, result, hint=error.hint if error is not None else "")


@dataclass(frozen=True)
class GatewayCheck:
    """Whether the gateway exists (None: could not tell), whether its authentication is on, and what to
    say about it (`level` picks the sidebar's box)."""

    gateway_id: str
    exists: bool | None
    authentication: bool | None
    level: CheckLevel
    message: str


def gateway_check_from(result: Result, gateway_id: str, account_id: str, *, has_gateway_token: bool) -> GatewayCheck:
    """Read `GET /accounts/{id}/ai-gateway/gateways/{gateway_id}`'s answer."""
    gid = repr(gateway_id)
    if result.ok and isinstance(result.output, dict):
        auth = result.output.get("authentication")
        auth = auth if isinstance(auth, bool) else None
        if auth and has_gateway_token:
            tail = " Its authentication is on: the gateway token is sent as cf-aig-authorization."
        elif auth:
            tail = (" Its authentication is on and no gateway token is set: the API token is sent as "
                    "cf-aig-authorization, so it needs the AI Gateway Run permission (or set a gateway token "
                    "under Advanced).")
        else:
            tail = ""
        return GatewayCheck(gateway_id, True, auth, "ok", f"Gateway {gid} found.{tail}")
    error = result.error
    if result.status == 404:
        if gateway_id == DEFAULT_GATEWAY_ID:
            return GatewayCheck(gateway_id, False, True, "info",
                                "Gateway 'default' does not exist yet: Cloudflare creates it on the first "
                                "authenticated request, with authentication on (the API token is sent as "
                                "cf-aig-authorization unless a gateway token is set), logs on and caching off.")
        return GatewayCheck(gateway_id, False, None, "error",
                            f"Gateway {gid} does not exist in account {account_id}: requests through it would "
                            "fail. Create it (dashboard > AI > AI Gateway > Create Gateway), fix the Gateway ID, "
                            "or use 'default', which Cloudflare creates on first use.")
    said = str(error) if error is not None else f"HTTP {result.status}"
    if result.status in (401, 403):
        return GatewayCheck(gateway_id, None, None, "warning",
                            f"Could not check gateway {gid}: the token may lack the AI Gateway Read permission "
                            f"({said}). Requests will still be sent; their errors will say more.")
    return GatewayCheck(gateway_id, None, None, "warning", f"Could not check gateway {gid}: {said}.")


def logs_query(params: Mapping[str, Any], *, order_by: str | None = None, direction: str | None = None,
               event_id: str | None = None, filters: list[Mapping[str, Any]] | None = None) -> list[tuple[str, str]]:
    """The logs API's query string as the SDK builds it: booleans as true/false, `filters` with dotted keys
    and repeated values (`filters.key=event_id&filters.operator=eq&filters.value=abc`); an event id only as
    such a filter (the API has no top-level `event_id`). Raises ValueError for a bad direction."""
    query: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        query.append((key, _text(value)))
    if order_by is not None:
        query.append(("order_by", order_by))
    if direction is not None:
        if direction not in LOG_DIRECTIONS:
            raise ValueError(f"direction must be asc or desc, not {direction!r}")
        query.append(("direction", direction))
    all_filters = list(filters or [])
    if event_id:
        all_filters.append({"key": "event_id", "operator": "eq", "value": [event_id]})
    for item in all_filters:
        query.append(("filters.key", str(item["key"])))
        query.append(("filters.operator", str(item.get("operator", "eq"))))
        values = item.get("value", [])
        for value in values if isinstance(values, list | tuple) else [values]:
            query.append(("filters.value", _text(value)))
    return query


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)

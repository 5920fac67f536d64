"""Typed errors for Workers AI and AI Gateway calls, read from both Cloudflare error shapes.

Workers AI answers `{"success": false, "errors": [{"code", "message"}]}`; AI Gateway answers the same
with the key `error` (singular) plus `name` and `httpCode`. Each error carries the HTTP status, the
Cloudflare code and message, and a plain-language hint saying what to do next. Error text never contains
the API token: messages come from the server or from us, and are scrubbed of the token on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any


class CloudflareError(Exception):
    """Base class. `status` is the HTTP status (0 when no response arrived)."""

    kind = "error"
    default_hint = "See the message above; the raw response is in the request details."

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: int | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
        url: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.hint = hint or self.default_hint
        self.retry_after = retry_after
        self.url = url

    def __str__(self) -> str:
        named = self.message.startswith(f"HTTP {self.status}")  # the message already names the status
        parts = [f"HTTP {self.status}" if self.status and not named else "", f"code {self.code}" if self.code else ""]
        prefix = ", ".join(p for p in parts if p)
        return f"{self.message} ({prefix})" if prefix else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "retry_after": self.retry_after,
        }


class BadInputError(CloudflareError):
    kind = "bad_input"
    default_hint = "The model refused the request body: check the parameters against the model's schema."


class AuthenticationError(CloudflareError):
    kind = "authentication"
    default_hint = (
        "Check the API token: it must be active and have the 'Workers AI' permission (Read and Edit) "
        "for this account. Use 'Verify token' in the sidebar."
    )


class GatewayAuthError(AuthenticationError):
    kind = "gateway_authentication"
    default_hint = (
        "This gateway has authentication on (the 'default' gateway starts with it on): send "
        "cf-aig-authorization: Bearer <a token with the AI Gateway Run permission> (the Gateway token under "
        "Advanced, CLOUDFLARE_GATEWAY_TOKEN), turn Authentication off in the dashboard (AI > AI Gateway > "
        "the gateway > Settings), or use the unified route, which needs only the API token."
    )


class NotFoundError(CloudflareError):
    kind = "not_found"
    default_hint = "Check the account ID (32 hex characters) and the gateway ID; the URL could not be routed."


class ModelNotFoundError(CloudflareError):
    kind = "model_not_found"
    default_hint = "No such model: pick one from the catalogue, or check the spelling (@cf/author/name)."


class RequestTooLargeError(CloudflareError):
    kind = "too_large"
    default_hint = "The request body is too large: shorten the input or split it into several requests."


class RateLimitError(CloudflareError):
    kind = "rate_limited"
    default_hint = "Rate limited: wait and try again (Retry-After says how long), or lower the concurrency."


class ServerError(CloudflareError):
    kind = "server_error"
    default_hint = "The service had a problem answering (an HTTP 5xx): try again in a moment."


class RequestTimeoutError(CloudflareError):
    kind = "timeout"
    default_hint = "No answer in time: try again, use a smaller max_tokens, or raise the read timeout."


class DeadlineExceededError(RequestTimeoutError):
    """The call's total deadline passed (however steadily bytes were trickling in); what arrived is kept."""

    kind = "deadline"
    default_hint = (
        "The call did not finish within its total deadline; what arrived is kept. Ask for less (a smaller "
        "max_tokens) or raise the deadline (Connection.deadline_s, `cfai compare --timeout`)."
    )


class NetworkError(CloudflareError):
    kind = "network"
    default_hint = "Could not connect: check the network and the base URL (is the emulator running?)."


class ConnectionDroppedError(NetworkError):
    kind = "connection_dropped"
    default_hint = "The connection broke before the whole answer arrived: try again."


class StreamInterruptedError(CloudflareError):
    kind = "stream_interrupted"
    default_hint = "The stream stopped before it finished; the text received so far is kept. Try again."


class MalformedResponseError(CloudflareError):
    kind = "malformed_response"
    default_hint = "The server answered with something that is not the expected JSON; try again."


class ResponseTooLargeError(MalformedResponseError):
    """A body or a stream line beyond the client's caps (`cfai.transport.MAX_BODY_BYTES`, `cfai.sse`)."""

    kind = "response_too_large"
    default_hint = (
        "The answer was larger than the client accepts, so reading stopped there: check the base URL "
        "points at Workers AI or AI Gateway, or ask for less."
    )


class RedirectError(CloudflareError):
    """A 3xx answer. Redirects are not followed: the token must not travel to wherever one points."""

    kind = "redirect"
    default_hint = (
        "The server sent the request elsewhere: set the base URL to the final address (often https:// "
        "instead of http://, or a missing path such as /client/v4)."
    )


class InvalidRequestError(CloudflareError):
    """Refused before sending: nothing went on the wire (e.g. a header value with a line break)."""

    kind = "invalid_request"
    default_hint = "Nothing was sent: correct the value named above and send again."


def _all_error_types(cls: type[CloudflareError] = CloudflareError) -> list[type[CloudflareError]]:
    return [cls] + [t for sub in cls.__subclasses__() for t in _all_error_types(sub)]


# An error's hint by its kind, for failures stored without their error object (comparison records, batch
# rows). Derived from the classes, so a new error type cannot be forgotten here.
_HINTS_BY_KIND: dict[str, str] = {cls.kind: cls.default_hint for cls in _all_error_types()}


def hint_for_kind(kind: str | None) -> str | None:
    """The plain-language hint of an error kind (e.g. a stored record's `error_kind`), None if unknown."""
    return _HINTS_BY_KIND.get(kind or "")


# Cloudflare codes that decide the type regardless of the HTTP status.
_BY_CODE: dict[int, type[CloudflareError]] = {
    5006: BadInputError,
    5007: ModelNotFoundError,
    3042: ModelNotFoundError,
    10000: AuthenticationError,
    2009: GatewayAuthError,
    7000: NotFoundError,
    7003: NotFoundError,
    2001: NotFoundError,
    3006: RequestTooLargeError,
    3007: RequestTimeoutError,
    3021: RateLimitError,  # Workers AI's per-minute limit (observed, docs/PROTOCOL.md 4.1)
    3036: RateLimitError,
    3040: RateLimitError,
    4006: RateLimitError,
    2003: RateLimitError,
}

_BY_STATUS: dict[int, type[CloudflareError]] = {
    400: BadInputError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


def gateway_auth_hint(sent: str | None, route: str, gateway_id: str) -> str:
    """What to do about a 2009 (the gateway refused its cf-aig-authorization), given which token was sent
    in that header: "gateway_token", "api_token" (no gateway token set) or None."""
    where = f"Gateway {gateway_id!r}" if gateway_id else "The gateway"
    if sent == "gateway_token":
        first = (f"{where} has authentication on and refused the gateway token sent as cf-aig-authorization: "
                 "check it (CLOUDFLARE_GATEWAY_TOKEN, or the Gateway token under Advanced) is active and has the "
                 "AI Gateway Run permission for this account.")
    elif sent == "api_token":
        first = (f"{where} has authentication on, and no gateway token is set, so the API token was sent as "
                 "cf-aig-authorization and refused: give that token the AI Gateway Run permission, or set a "
                 "separate gateway token (CLOUDFLARE_GATEWAY_TOKEN, or the Gateway token under Advanced).")
    else:
        first = (f"{where} has authentication on and no token was sent as cf-aig-authorization: set a gateway "
                 "token (CLOUDFLARE_GATEWAY_TOKEN, or the Gateway token under Advanced).")
    rest = (" Or turn Authentication off in the dashboard (AI > AI Gateway > the gateway > Settings;"
            " the 'default' gateway starts with it on).")
    if route == "gateway":
        rest += " The unified route needs no cf-aig-authorization: only the API token."
    return first + rest


def error_entries(body: Any) -> list[dict[str, Any]]:
    """The error list from either shape (`errors` or the gateway's `error`), or an OpenAI `error` object."""
    if not isinstance(body, dict):
        return []
    for key in ("errors", "error"):
        value = body.get(key)
        if isinstance(value, list) and value:
            return [e if isinstance(e, dict) else {"message": str(e)} for e in value]
        if isinstance(value, dict) and value:  # OpenAI-compatible routes: {"error": {"message", "code"}}
            return [value]
        if isinstance(value, str) and value:
            return [{"message": value}]
    return []


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare here and ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)


SECRET_PLACEHOLDER = "****"
# Request headers that carry a credential: never shown, stored or exported as they are.
SECRET_HEADERS = frozenset({"authorization", "cf-aig-authorization", "proxy-authorization", "x-auth-key",
                            "cf-api-token"})


def scrub_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """Replace each secret (4+ characters) in text: server messages can echo what we sent. The one
    definition of scrubbing: the client, the runner and the live run import it."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, SECRET_PLACEHOLDER)
    return text


def is_secret_header(name: str) -> bool:
    return name.strip().lower() in SECRET_HEADERS


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy safe to show or store: credential headers keep their scheme only ("Bearer ****")."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if is_secret_header(name):
            scheme = str(value).split(" ", 1)[0] if " " in str(value) else ""
            out[name] = f"{scheme} {SECRET_PLACEHOLDER}" if scheme else SECRET_PLACEHOLDER
        else:
            out[name] = value
    return out


def _status_words(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_from_response(
    status: int,
    body: bytes | str | Any,
    *,
    headers: dict[str, str] | None = None,
    url: str = "",
    secrets: tuple[str, ...] = (),
) -> CloudflareError:
    """Build the typed error for a failed HTTP response (status >= 400 or `success: false`)."""
    raw = ""
    if isinstance(body, bytes | str):
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            parsed: Any = json.loads(body) if body else None
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON from a hostile server
            parsed = None
    else:
        parsed = body
    entries = error_entries(parsed)
    code: int | None = None
    message = ""
    if entries:
        first = entries[0]
        raw_code = first.get("code")
        try:
            code = int(raw_code) if raw_code is not None else None
        except (TypeError, ValueError):
            code = None
        message = "; ".join(str(e.get("message", "")).strip() for e in entries if e.get("message"))
    if not message:
        snippet = raw.strip()[:200] if parsed is None else ""
        if not raw.strip():
            message = f"{_status_words(status)}, with an empty body"
        else:
            message = _status_words(status) + (f": {snippet}" if snippet else "")
    if status >= 500:
        cls: type[CloudflareError] = ServerError  # a 5xx is the server's problem whatever code it carries
    else:
        cls = _BY_CODE.get(code or -1) or _BY_STATUS.get(status) or CloudflareError
    retry_after = parse_retry_after((headers or {}).get("retry-after") or (headers or {}).get("Retry-After"))
    return cls(scrub_secrets(message, secrets), status=status, code=code, retry_after=retry_after, url=url)

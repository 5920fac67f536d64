"""JSON responses in Cloudflare's API envelope (see PROTOCOL.md), shared by every emulator route.

`cf_success(result)` -> `{"result", "success": true, "errors": [], "messages": []}`;
`cf_error(status, code, message)` -> `{"result": null, "success": false, "errors": [{code, message}], ...}`.
Both return a Starlette `JSONResponse`; the `*_body` variants return the plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

# Codes used by the emulator (the real API's, where one exists; see PROTOCOL.md "Errors").
BAD_INPUT = 5006
NO_SUCH_MODEL = 5007
AUTH_ERROR = 10000
NO_ROUTE = 7000
COULD_NOT_ROUTE = 7003
METHOD_NOT_ALLOWED = 7001
TOO_LARGE = 3006
TIMEOUT = 3007
CAPACITY = 3040
INTERNAL = 5000
# Emulator-only codes (docs/PROTOCOL.md section 6): one block, 4900-4909, that no Cloudflare table uses, so a
# code never means two things and never reads as one of Cloudflare's (5016 is "Model agreement", 7001
# "Method not allowed", 7000-7003 the v4 routing errors).
UPSTREAM_UNAVAILABLE = 4900  # the configured upstream OpenAI-compatible server failed
ADMIN_BAD_REQUEST = 4901  # a gateway management / logs API request with a bad field or parameter
ADMIN_NOT_FOUND = 4902  # no such gateway or log in the management / logs API
LOGS_UNAVAILABLE = 4903  # the logs API on an account without Legacy Logs (emulator option)

BACKEND_HEADER = "cf-emulator-backend"
# The simulated network round trip this response paid, in ms (only the emulator sends it; see middleware).
NETWORK_RTT_HEADER = "cf-emulator-network-rtt-ms"


def cf_success_body(result: Any, messages: list[Any] | None = None) -> dict[str, Any]:
    return {"result": result, "success": True, "errors": [], "messages": messages or []}


def cf_error_body(code: int, message: str, result: Any = None) -> dict[str, Any]:
    return {"result": result, "success": False, "errors": [{"code": code, "message": message}], "messages": []}


def cf_success(
    result: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    messages: list[Any] | None = None,
) -> JSONResponse:
    return JSONResponse(cf_success_body(result, messages), status_code=status, headers=dict(headers or {}))


def cf_error(
    status: int,
    code: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    result: Any = None,
) -> JSONResponse:
    return JSONResponse(cf_error_body(code, message, result), status_code=status, headers=dict(headers or {}))


def bad_input(detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """400 / 5006 in the Workers AI wording."""
    return cf_error(400, BAD_INPUT, f"AiError: Bad input: {detail}", headers=headers)


def no_such_model(model: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return cf_error(400, NO_SUCH_MODEL, f"AiError: No such model {model} or task", headers=headers)


def auth_error() -> JSONResponse:
    return cf_error(401, AUTH_ERROR, "Authentication error")


def no_route() -> JSONResponse:
    return cf_error(404, NO_ROUTE, "No route for that URI")


def could_not_route(path: str) -> JSONResponse:
    """A malformed object identifier (e.g. the account id) in the path: 7003 then 7000, as observed."""
    body = cf_error_body(COULD_NOT_ROUTE, f"Could not route to {path}, perhaps your object identifier is invalid?")
    body["errors"].append({"code": NO_ROUTE, "message": "No route for that URI"})
    return JSONResponse(body, status_code=404)


class InputError(ValueError):
    """Raised by validators; routes turn it into `bad_input(str(exc))`."""

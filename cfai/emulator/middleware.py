"""ASGI middleware for the whole emulator: bearer-token check on the Cloudflare API paths, body size cap."""

from __future__ import annotations

import hmac
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cfai.emulator.envelope import INTERNAL, TOO_LARGE, auth_error, cf_error, could_not_route
from cfai.emulator.state import EmulatorState

MAX_BODY_BYTES = 10 * 1024 * 1024
API_PREFIX = "/client/v4/"
ACCOUNTS_PREFIX = "/client/v4/accounts/"
ACCOUNT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
log = logging.getLogger("cfai.emulator")


def token_ok(authorization: str | None, expected: str | None) -> bool:
    """True when no token is configured, or the header is `Bearer <expected>` (constant-time compare)."""
    if not expected:
        return True
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), expected.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class EmulatorMiddleware:
    """Refuses bad tokens (401/10000) under /client/v4/, malformed account ids (404/7003) there when
    `strict_accounts` is on, and bodies over 10 MB (413/3006) everywhere.

    The gateway routes (/v1/...) do their own auth: they forward the token to the Workers AI routes.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState, max_body: int = MAX_BODY_BYTES):
        self.app, self.state, self.max_body = app, state, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(API_PREFIX) and not token_ok(
            _header(scope, b"authorization"), self.state.options.api_token
        ):
            await auth_error()(scope, receive, send)
            return
        if self.state.options.strict_accounts and scope["path"].startswith(ACCOUNTS_PREFIX):
            account = scope["path"][len(ACCOUNTS_PREFIX):].split("/", 1)[0]
            if not ACCOUNT_ID_RE.match(account):
                await could_not_route(scope["path"])(scope, receive, send)
                return
        too_large = cf_error(413, TOO_LARGE, f"Request is too large (limit {self.max_body} bytes)")
        length = _header(scope, b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_body:
                await too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # Chunked body of unknown length: buffer it (up to the cap) and replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class ErrorEnvelopeMiddleware:
    """Turns an unexpected exception into a 500 envelope and keeps the connection open.

    Starlette's own server-error handler re-raises after answering, which makes uvicorn close the
    keep-alive connection under the client's feet; here the error stops. Once a response has started
    (a stream), re-raising is the only honest option: the server then aborts the connection.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await cf_error(500, INTERNAL, "Internal server error")(scope, receive, send)

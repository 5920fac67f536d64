"""ASGI middleware for the whole emulator: the simulated network round trip, bearer-token check on the
Cloudflare API paths, body size cap, and Cloudflare-shaped answers to unexpected errors."""

from __future__ import annotations

import asyncio
import hmac
import re

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cfai.emulator.envelope import (
    INTERNAL,
    NETWORK_RTT_HEADER,
    TOO_LARGE,
    auth_error,
    cf_error,
    could_not_route,
)
from cfai.emulator.logs import rate_limited_logger
from cfai.emulator.state import EmulatorState

MAX_BODY_BYTES = 10 * 1024 * 1024
API_PREFIX = "/client/v4/"
ACCOUNTS_PREFIX = "/client/v4/accounts/"
ACCOUNT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
log = rate_limited_logger("cfai.emulator")
_RTT_HEADER = NETWORK_RTT_HEADER.encode("ascii")


def is_internal(scope: Scope, state: EmulatorState) -> bool:
    """True for the gateway's own hop to the Workers AI routes (it arrives on the internal socket)."""
    server = scope.get("server")
    return state.internal_port is not None and server is not None and server[1] == state.internal_port


def draw_rtt_ms(state: EmulatorState) -> float:
    """One simulated round trip: network_rtt_ms, uniformly jittered by +- network_jitter_ms, never below 0."""
    opts = state.options
    jitter = state.network_rng.uniform(-opts.network_jitter_ms, opts.network_jitter_ms) if opts.network_jitter_ms else 0.0
    return max(0.0, opts.network_rtt_ms + jitter)


class NetworkDelayMiddleware:
    """Adds the simulated internet round trip to every request from outside, once, before it is handled,
    and says so in the `cf-emulator-network-rtt-ms` response header (0 when none is configured).

    A real client pays one round trip per request on a kept-alive connection: half on the way in, half on the
    way out; delaying the start by the whole of it shifts the first byte and the last alike. Gateway cache hits
    pay it too, as on Cloudflare; the gateway's own hop to Workers AI does not (it stays inside the data centre).
    """

    def __init__(self, app: ASGIApp, state: EmulatorState):
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_internal(scope, self.state):
            await self.app(scope, receive, send)
            return
        rtt_ms = draw_rtt_ms(self.state)
        label = (_RTT_HEADER, f"{rtt_ms:.1f}".encode("ascii"))

        async def labelled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != _RTT_HEADER]
                message = {**message, "headers": [*headers, label]}
            await send(message)

        if rtt_ms > 0:
            await asyncio.sleep(rtt_ms / 1000.0)
        await self.app(scope, receive, labelled_send)


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
        except ClientDisconnect:
            return  # the client left while sending its body: nobody is left to answer, and nothing went wrong
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await cf_error(500, INTERNAL, "Internal server error")(scope, receive, send)

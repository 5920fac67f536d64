"""The gateway's proxy routes: a real caching, rate-limiting, logging proxy in front of Workers AI.

Cache misses go over HTTP (one keep-alive httpx pool) to this same server's Workers AI routes at
`state.upstream_base` (its internal socket); streams are relayed chunk by chunk as they arrive and never cached.
Path parts are checked before they go into the upstream URL, so no encoded `..` reaches another route.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cfai.emulator import jsonbody
from cfai.emulator.envelope import InputError
from cfai.emulator.faults import DroppedConnection
from cfai.emulator.gateway.admin import admin_routes
from cfai.emulator.gateway.cache import cache_key, canonical_body
from cfai.emulator.gateway.config import GatewayConfig
from cfai.emulator.gateway.headers import (
    HeaderError,
    RequestOptions,
    StreamUsage,
    body_usage,
    parse_request_options,
)
from cfai.emulator.gateway.logs import LogEntry, new_log_id
from cfai.emulator.gateway.runtime import EXTRAS_KEY, GatewayRuntime, get_runtime
from cfai.emulator.state import EmulatorState
from cfai.faults import DELAY_HEADER, FAULT_HEADER

T = TypeVar("T")

__all__ = ["close_gateway", "gateway_error", "gateway_routes", "get_runtime", "GatewayRuntime"]

# Gateway error codes. 2001, 2003 and 2009 are Cloudflare's; the others are this emulator's choice.
CODE_BAD_GATEWAY_ID = 2001
CODE_BAD_HEADER = 2002
CODE_RATE_LIMITED = 2003
CODE_UPSTREAM_UNREACHABLE = 2005
CODE_TIMEOUT = 2008
CODE_UNAUTHORIZED = 2009
CODE_BAD_PATH = 2010
KEY_TTL_WHEN_CACHE_OFF = 300  # a cf-aig-cache-key request is cached 5 minutes even with caching off
# What may reach the upstream URL. Uvicorn percent-decodes the path before routing, so `..%2F` arrives as
# `../`; a dot segment, a '%' left by double encoding, a backslash or a control character is refused here.
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MODEL_RE = re.compile(r"^[A-Za-z0-9@_][A-Za-z0-9@._:+,=-]*(?:/[A-Za-z0-9@._:+,=-]+)*$")
MAX_MODEL_LEN = 256

# Not relayed from upstream: connection-level headers, and ones the server sets itself.
_DROP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "content-length", "date", "server", "content-encoding",
})
_FORWARD = frozenset({"authorization", "content-type", "accept", "user-agent"})


def gateway_error(
    status: int, code: int, message: str, log_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error in the gateway's own shape (key `error`, singular), with the usual cf-aig-* headers."""
    body = {
        "success": False,
        "result": [],
        "messages": [],
        "error": [{"code": code, "message": message}],
        "name": "AiGatewayError",
        "httpCode": status,
    }
    h = {"cf-aig-cache-status": "MISS", "cf-aig-log-id": log_id, "cf-aig-step": "0", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=h)


@dataclass
class _Call:
    """One proxied request: what its log row needs, written once the response is complete."""

    rt: GatewayRuntime
    gw: GatewayConfig
    log_id: str
    created: float
    started: float
    model: str
    path: str
    request_type: str
    opts: RequestOptions | None = None

    def log(self, status: int, *, cached: bool = False, tokens: tuple[int | None, int | None] = (None, None),
            completed: bool = True) -> None:
        if not self.gw.collect_logs or (self.opts is not None and not self.opts.collect_log):
            return
        self.rt.logs.add(self.gw.key, LogEntry(
            id=self.log_id,
            created_ts=self.created,
            gateway_id=self.gw.id,
            model=self.model,
            path=self.path,
            request_type=self.request_type,
            cached=cached,
            success=completed and 200 <= status < 300,
            status_code=status,
            duration=round((time.perf_counter() - self.started) * 1000),
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            metadata=self.opts.metadata if self.opts else {},
            event_id=self.opts.event_id if self.opts else None,
        ))


def _gateway_authorized(state: EmulatorState, header: str | None) -> bool:
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    expected = state.options.api_token
    return expected is None or hmac.compare_digest(token.encode(), expected.encode())


def _effective_ttl(gw: GatewayConfig, opts: RequestOptions) -> int:
    """Seconds to cache this request's response, 0 for not at all."""
    if opts.skip_cache:
        return 0
    if opts.cache_ttl is not None:
        return opts.cache_ttl
    if gw.cache_ttl > 0:
        return gw.cache_ttl
    return KEY_TTL_WHEN_CACHE_OFF if opts.cache_key is not None else 0


def path_problem(account: str, model: str | None) -> str | None:
    """Why this account id or model id cannot be forwarded, or None when it can."""
    if not ACCOUNT_RE.match(account):
        return "Invalid account id in the path: use letters, digits, '_' and '-'"
    if model is not None and (
        len(model) > MAX_MODEL_LEN or not MODEL_RE.match(model)
        or any(part in (".", "..") for part in model.split("/"))
    ):
        return ("Invalid model name in the path: a model id is '/'-separated names of letters, digits and "
                "@ . _ - : + , = (no '.' or '..' segments)")
    return None


def _relayed_headers(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _DROP]


async def _send(rt: GatewayRuntime, url: str, body: bytes, headers: dict[str, str],
                opts: RequestOptions) -> httpx.Response:
    """POST upstream with the request's timeout-to-first-byte and retries; returns a streaming response.

    Raises TimeoutError or httpx.HTTPError when the last attempt fails.
    """
    client = rt.client()
    timeout = opts.request_timeout_ms / 1000 if opts.request_timeout_ms else None
    for attempt in range(1, opts.max_attempts + 1):
        last = attempt == opts.max_attempts
        try:
            async with asyncio.timeout(timeout):
                resp = await client.send(client.build_request("POST", url, content=body, headers=headers),
                                         stream=True)
        except (TimeoutError, httpx.HTTPError):
            if last:
                raise
        else:
            if resp.status_code < 500 or last:
                return resp
            await resp.aclose()
        await asyncio.sleep(opts.retry_wait_s(attempt))
    raise AssertionError("unreachable")  # the loop returns or raises on its last attempt


def _parse_or_none(body: bytes) -> Any:
    try:
        return jsonbody.loads(body)
    except InputError:
        return None  # forwarded as it is: Workers AI answers it with its own 400


def _key(scope: str, path: str, model: str, body: bytes, parsed: Any, authorization: str,
         custom_key: str | None) -> str:
    return cache_key(scope=scope, path=path, model=model, body=canonical_body(body, parsed),
                     authorization=authorization, custom_key=custom_key)


class _ClientGone(Exception):
    """The caller disconnected while we waited for Workers AI."""


async def _unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, but give up once the caller disconnects (say, after its own read timeout), so a miss
    nobody waits for does not keep an upstream request open."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise _ClientGone
    finally:
        if not task.done():
            task.cancel()


async def _proxy(state: EmulatorState, request: Request, chat: bool) -> Response:
    started = time.perf_counter()
    rt = get_runtime(state)
    now = rt.clock()
    log_id = new_log_id(now)
    account = request.path_params["account"]
    gateway_id = request.path_params["gateway"]
    problem = path_problem(account, None if chat else request.path_params["model"])
    if problem is not None:
        return gateway_error(400, CODE_BAD_PATH, problem, log_id)

    gw = rt.store.resolve(account, gateway_id, create=not state.options.strict_gateways)
    if gw is None:
        return gateway_error(400, CODE_BAD_GATEWAY_ID, f"Invalid gateway: {gateway_id!r} does not exist", log_id)
    if gw.authentication and not _gateway_authorized(state, request.headers.get("cf-aig-authorization")):
        return gateway_error(401, CODE_UNAUTHORIZED, "Unauthorized", log_id)

    body = await request.body()
    parsed: Any = await state.cpu.run(len(body), _parse_or_none, body)
    is_dict = isinstance(parsed, dict)
    if chat:
        model = str(parsed.get("model", "")) if is_dict else ""
        sub_path = "v1/chat/completions"
        upstream = f"/client/v4/accounts/{quote(account, safe='')}/ai/v1/chat/completions"
    else:
        model = sub_path = request.path_params["model"]
        upstream = f"/client/v4/accounts/{quote(account, safe='')}/ai/run/{quote(model, safe='/@:+,=')}"
    streamed = is_dict and parsed.get("stream") is True
    call = _Call(rt, gw, log_id, now, started, model, sub_path,
                 ("chat.completions" if chat else "run") + (".stream" if streamed else ""))

    try:
        # Only the cf-aig-* headers, copied once: cheaper than a scan of all headers per option.
        call.opts = opts = parse_request_options(
            {k: v for k, v in request.headers.items() if k.startswith("cf-aig-")})
    except HeaderError as exc:
        call.log(400)
        return gateway_error(400, CODE_BAD_HEADER, str(exc), log_id)

    if gw.rate_limiting_limit > 0 and gw.rate_limiting_interval > 0:
        decision = rt.limiter.check(gw.key, gw.rate_limiting_limit, gw.rate_limiting_interval,
                                    gw.rate_limiting_technique)
        if not decision.allowed:
            call.log(429)
            return gateway_error(429, CODE_RATE_LIMITED, "Rate limited", log_id,
                                 {"retry-after": str(decision.retry_after)})

    authorization = request.headers.get("authorization", "")
    # An injected fault must reach Workers AI even when the answer is cached: it demonstrates error handling.
    faulted = state.options.allow_faults and FAULT_HEADER in request.headers
    ttl = 0 if streamed or faulted else _effective_ttl(gw, opts)
    key = None
    if ttl > 0:
        key = await state.cpu.run(len(body), _key, f"{account}\0{gw.id}\0{gw.generation}", sub_path, model,
                                  body, parsed, authorization, opts.cache_key)
        hit = rt.cache.get(key)
        if hit is not None:
            call.log(hit.status, cached=True, tokens=(hit.tokens_in, hit.tokens_out))
            headers = dict(hit.headers)
            headers.update({"cf-aig-cache-status": "HIT", "cf-aig-log-id": log_id, "cf-aig-step": "0"})
            return Response(hit.body, status_code=hit.status, headers=headers)

    forward = {k: v for k, v in request.headers.items() if k in _FORWARD or k in (FAULT_HEADER, DELAY_HEADER)}
    forward["accept-encoding"] = "identity"  # relay bytes as they are; no re-encoding on the way through
    try:
        resp = await _unless_client_leaves(
            request, _send(rt, state.upstream_base.rstrip("/") + upstream, body, forward, opts))
    except _ClientGone:
        call.log(499)  # nginx's "client closed request": nobody is left to answer
        return Response(status_code=499)
    except TimeoutError:
        call.log(408)
        return gateway_error(408, CODE_TIMEOUT,
                             f"Request timeout: no response within {opts.request_timeout_ms} ms", log_id)
    except httpx.HTTPError as exc:
        call.log(502)
        return gateway_error(502, CODE_UPSTREAM_UNREACHABLE,
                             f"Could not reach Workers AI: {type(exc).__name__}", log_id)

    headers = _relayed_headers(resp)
    aig = [("cf-aig-cache-status", "MISS"), ("cf-aig-log-id", log_id), ("cf-aig-step", "0")]
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        return _relay_stream(call, resp, headers + aig)

    try:
        content = await resp.aread()
    except httpx.HTTPError as exc:
        call.log(502)
        return gateway_error(502, CODE_UPSTREAM_UNREACHABLE, f"Workers AI broke off: {type(exc).__name__}", log_id)
    finally:
        await resp.aclose()
    tokens = body_usage(content, resp.headers.get("content-type", ""))
    if key is not None and 200 <= resp.status_code < 300:
        rt.cache.put(key, resp.status_code, content, tuple(headers), ttl, tokens)
    call.log(resp.status_code, tokens=tokens)
    out = Response(content, status_code=resp.status_code)
    for k, v in headers + aig:
        out.headers.append(k, v)
    return out


def _relay_stream(call: _Call, resp: httpx.Response, headers: list[tuple[str, str]]) -> StreamingResponse:
    async def chunks():
        usage = StreamUsage()
        completed = False
        try:
            async for chunk in resp.aiter_raw():
                usage.feed(chunk)
                yield chunk
            completed = True
        except httpx.HTTPError as exc:
            # Upstream broke off: break the client's connection the same way, so it sees the truncation.
            raise DroppedConnection(f"upstream stream broke off: {type(exc).__name__}") from exc
        finally:
            with anyio.CancelScope(shield=True):  # also close upstream when the client went away
                await resp.aclose()
            call.log(resp.status_code, tokens=usage.tokens, completed=completed)

    out = StreamingResponse(chunks(), status_code=resp.status_code)
    for k, v in headers:
        out.headers.append(k, v)
    return out


def gateway_routes(state: EmulatorState) -> list[BaseRoute]:
    """The gateway proxy routes and its management API (gateways and logs), for `create_app` to mount."""
    get_runtime(state)

    async def run(request: Request) -> Response:
        return await _proxy(state, request, chat=False)

    async def chat(request: Request) -> Response:
        return await _proxy(state, request, chat=True)

    base = "/v1/{account}/{gateway}/workers-ai"
    return [
        # The chat route first: `{model:path}` would also match "v1/chat/completions".
        Route(base + "/v1/chat/completions", chat, methods=["POST"]),
        Route(base + "/{model:path}", run, methods=["POST"]),
        *admin_routes(state),
    ]


async def close_gateway(state: EmulatorState) -> None:
    """Close the upstream connection pool; call on server shutdown."""
    rt = state.extras.get(EXTRAS_KEY)
    if rt is not None:
        await rt.aclose()

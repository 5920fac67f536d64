"""The gateway's proxy routes: a real caching, rate-limiting, logging proxy in front of Workers AI.

One pipeline serves both ways in (docs/PROTOCOL.md 3.1, 3.2): the provider URLs
`/v1/{account}/{gateway}/workers-ai/...` (gateway authentication by `cf-aig-authorization`) and the unified
route, `api.cloudflare.com`'s Workers AI endpoints with a `cf-aig-gateway-id` header (`unified.py`; gateway
authentication by the ordinary `Authorization` header).

Cache misses go over HTTP (one keep-alive httpx pool) to this same server's Workers AI routes at
`state.upstream_base` (its internal socket); streams are relayed chunk by chunk as they arrive and never cached.
Path parts are checked before they go into the upstream URL, so no encoded `..` reaches another route.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cfai.emulator import jsonbody
from cfai.emulator.envelope import InputError, bad_input
from cfai.emulator.faults import DroppedConnection
from cfai.emulator.gateway.admin import admin_routes
from cfai.emulator.gateway.cache import cache_key, canonical_body
from cfai.emulator.gateway.config import DEFAULT_GATEWAY_ID, GatewayConfig
from cfai.emulator.gateway.headers import (
    HeaderError,
    RequestOptions,
    RetryDefaults,
    StreamUsage,
    body_usage,
    option_headers,
    parse_request_options,
)
from cfai.emulator.gateway.logs import LogEntry, new_log_id
from cfai.emulator.gateway.runtime import EXTRAS_KEY, GatewayRuntime, get_runtime
from cfai.emulator.models_catalog import get_model
from cfai.emulator.prompt_cache import SESSION_HEADER
from cfai.emulator.state import EmulatorState
from cfai.faults import DELAY_HEADER, FAULT_HEADER

T = TypeVar("T")

__all__ = ["ENDPOINTS", "GatewayRuntime", "Target", "close_gateway", "gateway_error", "gateway_routes",
           "get_runtime", "proxy_request"]

# Gateway error codes. 2003 and 2009 are Cloudflare's (observed); 2001 and the rest are this emulator's choice
# (docs/PROTOCOL.md 3.6 and 6).
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
# Relayed to Workers AI. x-session-affinity too, so prompt caching works through the gateway (PROTOCOL.md 4.2).
_FORWARD = frozenset({"authorization", "content-type", "accept", "user-agent", SESSION_HEADER})
PROVIDER_AUTH_HEADER = "cf-aig-authorization"
UNIFIED_AUTH_HEADER = "authorization"


@dataclass(frozen=True)
class Endpoint:
    """One Workers AI endpoint the gateway fronts: its log path (None: the model id), upstream path and
    request type, and whether the model comes from the path, the OpenAI body, or `{model, input}`."""

    log_path: str | None
    upstream: str  # under /client/v4/accounts/{account}; "{model}" is filled in
    request_type: str
    model_from: str  # "path" | "body" | "model_input"


ENDPOINTS = {
    "run": Endpoint(None, "/ai/run/{model}", "run", "path"),
    "run_model_in_body": Endpoint(None, "/ai/run/{model}", "run", "model_input"),
    "chat": Endpoint("v1/chat/completions", "/ai/v1/chat/completions", "chat.completions", "body"),
    "responses": Endpoint("v1/responses", "/ai/v1/responses", "responses", "body"),
    "embeddings": Endpoint("v1/embeddings", "/ai/v1/embeddings", "embeddings", "body"),
}


@dataclass(frozen=True)
class Target:
    """Where a proxied request goes: account, gateway, endpoint, and which header authenticates it."""

    account: str
    gateway_id: str
    endpoint: Endpoint
    path_model: str | None
    auth_header: str


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
    request_content_type: str | None = None
    response_content_type: str | None = None

    def log(self, status: int, *, cached: bool = False, tokens: tuple[int | None, int | None] = (None, None),
            completed: bool = True) -> None:
        # cf-aig-collect-log overrides the gateway's setting either way (logging/index.mdx).
        wanted = self.opts.collect_log if self.opts is not None else None
        if not (self.gw.collect_logs if wanted is None else wanted):
            return
        spec = get_model(self.model)
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
            model_type=spec.task.lower().replace(" ", "-") if spec else None,
            request_content_type=self.request_content_type,
            response_content_type=self.response_content_type,
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
    if gw.ttl > 0:
        return gw.ttl
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
        # "On the final retry attempt, your gateway will wait until the request completes, regardless of how
        # long it takes" (request-handling.mdx); a request without retries keeps its timeout.
        limit = None if last and opts.max_attempts > 1 else timeout
        try:
            async with asyncio.timeout(limit):
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


def _retry_defaults(gw: GatewayConfig) -> RetryDefaults:
    return RetryDefaults(gw.retry_max_attempts or 1, gw.retry_delay or 0, gw.retry_backoff or "constant")


def _model_input_body(parsed: Any) -> tuple[str, bytes, dict[str, Any]]:
    """`{model, input[, options]}` -> (model, the `ai/run/{model}` body, that body parsed). Raises InputError."""
    if not isinstance(parsed, dict):
        raise InputError("the body must be a JSON object with 'model' and 'input'")
    model, model_input = parsed.get("model"), parsed.get("input")
    if not isinstance(model, str) or not model:
        raise InputError("required property 'model' is missing or not a string")
    if not isinstance(model_input, dict):
        raise InputError("required property 'input' is missing or not an object")
    if isinstance(parsed.get("options"), dict) and "options" not in model_input:
        model_input = {**model_input, "options": parsed["options"]}
    return model, json.dumps(model_input).encode(), model_input


async def proxy_request(state: EmulatorState, request: Request, target: Target) -> Response:
    """The gateway pipeline for one request: gateway lookup and authentication, options, rate limit, cache,
    forwarding with timeout and retries, logging."""
    started = time.perf_counter()
    rt = get_runtime(state)
    now = rt.clock()
    log_id = new_log_id(now)
    account, gateway_id, endpoint = target.account, target.gateway_id, target.endpoint
    problem = path_problem(account, target.path_model)
    if problem is not None:
        return gateway_error(400, CODE_BAD_PATH, problem, log_id)

    authorized = _gateway_authorized(state, request.headers.get(target.auth_header))
    gw = rt.store.get(account, gateway_id)
    if gw is None:
        if gateway_id == DEFAULT_GATEWAY_ID and not authorized:
            # `default` is created by the first authenticated request only, and with authentication on.
            return gateway_error(401, CODE_UNAUTHORIZED, "Unauthorized", log_id)
        gw = rt.store.resolve(account, gateway_id, lenient=state.options.lenient_gateways)
    if gw is None:
        return gateway_error(400, CODE_BAD_GATEWAY_ID,
                             f"Invalid gateway: {gateway_id!r} does not exist (only 'default' is created on "
                             f"first use; create this one first)", log_id)
    if gw.authentication and not authorized:
        return gateway_error(401, CODE_UNAUTHORIZED, "Unauthorized", log_id)

    body = await request.body()
    parsed: Any = await state.cpu.run(len(body), _parse_or_none, body)
    forward_body, forward_parsed = body, parsed
    if endpoint.model_from == "model_input":
        try:
            model, forward_body, forward_parsed = _model_input_body(parsed)
        except InputError as exc:
            return bad_input(str(exc))
        problem = path_problem(account, model)
        if problem is not None:
            return gateway_error(400, CODE_BAD_PATH, problem.replace("in the path", "in the body"), log_id)
    elif endpoint.model_from == "body":
        model = str(parsed.get("model", "")) if isinstance(parsed, dict) else ""
    else:
        model = target.path_model or ""
    sub_path = endpoint.log_path or model
    upstream = (f"/client/v4/accounts/{quote(account, safe='')}"
                + endpoint.upstream.replace("{model}", quote(model, safe="/@:+,=")))
    streamed = isinstance(forward_parsed, dict) and forward_parsed.get("stream") is True
    call = _Call(rt, gw, log_id, now, started, model, sub_path,
                 endpoint.request_type + (".stream" if streamed else ""),
                 request_content_type=request.headers.get("content-type"))

    try:
        # Only the option headers, copied once: cheaper than a scan of all headers per option.
        call.opts = opts = parse_request_options(option_headers(request.headers), _retry_defaults(gw))
    except HeaderError as exc:
        call.log(400)
        return gateway_error(400, CODE_BAD_HEADER, str(exc), log_id)

    if gw.rate_limited:
        decision = rt.limiter.check(gw.key, gw.rate_limiting_limit or 0, gw.rate_limiting_interval or 0,
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
                                  forward_body, forward_parsed, authorization, opts.cache_key)
        hit = rt.cache.get(key)
        if hit is not None:
            call.response_content_type = dict(hit.headers).get("content-type")
            call.log(hit.status, cached=True, tokens=(hit.tokens_in, hit.tokens_out))
            hit_headers = dict(hit.headers)
            hit_headers.update({"cf-aig-cache-status": "HIT", "cf-aig-log-id": log_id, "cf-aig-step": "0"})
            return Response(hit.body, status_code=hit.status, headers=hit_headers)

    forward = {k: v for k, v in request.headers.items() if k in _FORWARD or k in (FAULT_HEADER, DELAY_HEADER)}
    forward["accept-encoding"] = "identity"  # relay bytes as they are; no re-encoding on the way through
    try:
        resp = await _unless_client_leaves(
            request, _send(rt, state.upstream_base.rstrip("/") + upstream, forward_body, forward, opts))
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
    call.response_content_type = resp.headers.get("content-type")
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
    """The gateway's provider-URL routes and its management API (gateways and logs), for `create_app`."""
    get_runtime(state)

    def provider_route(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            p = request.path_params
            return await proxy_request(state, request, Target(p["account"], p["gateway"], ENDPOINTS[kind],
                                                              p.get("model"), PROVIDER_AUTH_HEADER))
        return handle

    base = "/v1/{account}/{gateway}/workers-ai"
    return [
        # The OpenAI-compatible routes first: `{model:path}` would also match "v1/chat/completions".
        Route(base + "/v1/chat/completions", provider_route("chat"), methods=["POST"]),
        Route(base + "/v1/responses", provider_route("responses"), methods=["POST"]),
        Route(base + "/v1/embeddings", provider_route("embeddings"), methods=["POST"]),
        Route(base + "/{model:path}", provider_route("run"), methods=["POST"]),
        *admin_routes(state),
    ]


async def close_gateway(state: EmulatorState) -> None:
    """Close the upstream connection pool; call on server shutdown."""
    rt = state.extras.get(EXTRAS_KEY)
    if rt is not None:
        await rt.aclose()

"""Assembles the emulator's Starlette app: Workers AI routes, the AI Gateway routes, Cloudflare-shaped errors
for every failure, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from cfai.emulator import classification
from cfai.emulator.envelope import INTERNAL, METHOD_NOT_ALLOWED, cf_error, no_route
from cfai.emulator.gateway import close_gateway, gateway_routes, get_runtime
from cfai.emulator.gateway.unified import with_unified_route
from cfai.emulator.logs import install_loop_handler
from cfai.emulator.middleware import EmulatorMiddleware, ErrorEnvelopeMiddleware, NetworkDelayMiddleware
from cfai.emulator.state import EmulatorState
from cfai.emulator.workers_ai import WorkersAI


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return no_route()
    if status == 405:
        return cf_error(405, METHOD_NOT_ALLOWED, "Method not allowed")
    return cf_error(status, INTERNAL, str(getattr(exc, "detail", "")) or "Error")


async def _server_error(request: Request, exc: Exception) -> Response:
    # Reached only when a response had already started (ErrorEnvelopeMiddleware answers the rest).
    return cf_error(500, INTERNAL, "Internal server error")


def create_app(state: EmulatorState) -> Starlette:
    workers_ai = WorkersAI(state)
    routes: list[BaseRoute] = [*with_unified_route(state, workers_ai.routes()), *gateway_routes(state)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_loop_handler(asyncio.get_running_loop())
        classification.warm_up()
        get_runtime(state).client()  # the gateway's upstream pool, before the first miss needs it
        try:
            yield
        finally:
            await workers_ai.aclose()
            await close_gateway(state)
            state.cpu.close()

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: _http_error,
        Exception: _server_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(NetworkDelayMiddleware, state=state),  # outermost: every answer pays the round trip
            Middleware(ErrorEnvelopeMiddleware),
            Middleware(EmulatorMiddleware, state=state),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app

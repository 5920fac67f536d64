"""The unified gateway route: Workers AI's own endpoints at api.cloudflare.com with a `cf-aig-gateway-id`
header go through the gateway (docs/PROTOCOL.md 3.2), authenticated by the ordinary `Authorization` header.

`with_unified_route` wraps the Workers AI routes that Cloudflare documents for it; a request without the header
(or the gateway's own hop to Workers AI, which never carries it) goes to the direct handler as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cfai.emulator.gateway.headers import GATEWAY_ID_HEADER
from cfai.emulator.gateway.proxy import ENDPOINTS, UNIFIED_AUTH_HEADER, Target, proxy_request
from cfai.emulator.middleware import is_internal
from cfai.emulator.state import EmulatorState

ACCOUNT_BASE = "/client/v4/accounts/{account}"
# Workers AI route (under the account) -> the gateway endpoint it becomes with the header.
UNIFIED_PATHS = {
    "/ai/run/{model:path}": "run",
    "/ai/run": "run_model_in_body",
    "/ai/v1/chat/completions": "chat",
    "/ai/v1/responses": "responses",
    "/ai/v1/embeddings": "embeddings",
}

Handler = Callable[[Request], Awaitable[Response]]


def _dispatch(state: EmulatorState, direct: Handler, kind: str) -> Handler:
    async def endpoint(request: Request) -> Response:
        gateway_id = request.headers.get(GATEWAY_ID_HEADER)
        if gateway_id is None or is_internal(request.scope, state):
            return await direct(request)
        p = request.path_params
        target = Target(p["account"], gateway_id.strip(), ENDPOINTS[kind], p.get("model"), UNIFIED_AUTH_HEADER)
        return await proxy_request(state, request, target)

    return endpoint


def with_unified_route(state: EmulatorState, routes: list[BaseRoute]) -> list[BaseRoute]:
    """`routes` with the unified-route paths answering through the gateway when `cf-aig-gateway-id` is sent."""
    out: list[BaseRoute] = []
    for route in routes:
        kind = None
        if isinstance(route, Route) and route.path.startswith(ACCOUNT_BASE):
            kind = UNIFIED_PATHS.get(route.path[len(ACCOUNT_BASE):])
        if kind is None:
            out.append(route)
        else:
            assert isinstance(route, Route)  # only a Route has a path a kind was found for
            out.append(Route(route.path, _dispatch(state, route.endpoint, kind), methods=sorted(route.methods or ())))
    return out

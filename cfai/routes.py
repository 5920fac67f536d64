"""The comparison's route names, their display order, and how records are sorted by route.

- `direct`: the Workers AI REST API (`api.cloudflare.com/.../ai/run/{model}`), no gateway.
- `gateway`: the AI Gateway URL (`gateway.ai.cloudflare.com/v1/{account}/{gateway}/workers-ai/{model}`),
  with `cf-aig-cache-ttl`.
- `gateway-skip`: the gateway URL with `cf-aig-skip-cache: true` (the gateway's own overhead).
- `unified`: Workers AI's REST API through a gateway (`api.cloudflare.com/.../ai/run` with `{model, input}`
  and the `cf-aig-gateway-id` header; docs/PROTOCOL.md 3.2), with the same cache options as `gateway`.

The client has three wire routes (`cfai.config.Route`): direct, gateway and unified; both gateway-URL routes
go over its `gateway` route with different options.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

CompareRoute = Literal["direct", "gateway", "gateway-skip", "unified"]
WireRoute = Literal["direct", "gateway", "unified"]
DIRECT: CompareRoute = "direct"
GATEWAY: CompareRoute = "gateway"
GATEWAY_SKIP: CompareRoute = "gateway-skip"
UNIFIED: CompareRoute = "unified"
ROUTES: tuple[CompareRoute, ...] = (DIRECT, GATEWAY, GATEWAY_SKIP, UNIFIED)
# Routes that go through AI Gateway (and so need a gateway id).
GATEWAY_ROUTES: tuple[CompareRoute, ...] = (GATEWAY, GATEWAY_SKIP, UNIFIED)
# Routes sent with the plan's cache options (cf-aig-cache-ttl, a unique cf-aig-cache-key): their hits are the
# cache's effect.
CACHING_ROUTES: tuple[CompareRoute, ...] = (GATEWAY, UNIFIED)
ROUTE_DESCRIPTIONS: dict[str, str] = {
    DIRECT: "Workers AI REST API, no gateway",
    GATEWAY: "AI Gateway URL (gateway.ai.cloudflare.com), cached",
    GATEWAY_SKIP: "AI Gateway URL with cf-aig-skip-cache (the gateway's overhead)",
    UNIFIED: "Workers AI REST API through the gateway (cf-aig-gateway-id), cached",
}


def route_sort_key(route: Any) -> tuple[int, str]:
    """Canonical order first (direct, gateway, gateway-skip, unified), then any other name alphabetically."""
    name = str(route)
    order: tuple[str, ...] = ROUTES
    return (order.index(name) if name in order else len(order), name)


def sorted_routes(routes: Iterable[Any]) -> list[str]:
    """Distinct route names in the canonical order."""
    return sorted({str(r) for r in routes}, key=route_sort_key)


def uses_gateway(routes: Iterable[str]) -> bool:
    """Whether any of `routes` goes through AI Gateway (and so needs a gateway id)."""
    return any(r in GATEWAY_ROUTES for r in routes)


def wire_route(route: str) -> WireRoute:
    """The client route a comparison route is sent over."""
    if route == DIRECT:
        return "direct"
    return "unified" if route == UNIFIED else "gateway"

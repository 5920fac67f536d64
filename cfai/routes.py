"""The comparison's route names, their display order, and how records are sorted by route.

`direct` is the Workers AI REST API, `gateway` is AI Gateway (with `cf-aig-cache-ttl`), `gateway-skip` is
AI Gateway with `cf-aig-skip-cache: true`. The client only knows two wire routes (`cfai.client.Route`);
both gateway routes go over its `gateway` route with different options.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

CompareRoute = Literal["direct", "gateway", "gateway-skip"]
DIRECT: CompareRoute = "direct"
GATEWAY: CompareRoute = "gateway"
GATEWAY_SKIP: CompareRoute = "gateway-skip"
ROUTES: tuple[CompareRoute, ...] = (DIRECT, GATEWAY, GATEWAY_SKIP)
GATEWAY_ROUTES: tuple[CompareRoute, ...] = (GATEWAY, GATEWAY_SKIP)


def route_sort_key(route: Any) -> tuple[int, str]:
    """Canonical order first (direct, gateway, gateway-skip), then any other name alphabetically."""
    name = str(route)
    order: tuple[str, ...] = ROUTES
    return (order.index(name) if name in order else len(order), name)


def sorted_routes(routes: Iterable[Any]) -> list[str]:
    """Distinct route names in the canonical order."""
    return sorted({str(r) for r in routes}, key=route_sort_key)


def uses_gateway(routes: Iterable[str]) -> bool:
    """Whether any of `routes` goes through AI Gateway (and so needs a gateway id)."""
    return any(r in GATEWAY_ROUTES for r in routes)


def wire_route(route: str) -> Literal["direct", "gateway"]:
    """The client route a comparison route is sent over."""
    return "direct" if route == DIRECT else "gateway"

"""The AI Gateway management API: gateway CRUD and the logs API, in the Cloudflare v4 envelope."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cfai.emulator import jsonbody
from cfai.emulator.envelope import (
    ADMIN_BAD_REQUEST,
    ADMIN_NOT_FOUND,
    AUTH_ERROR,
    LOGS_UNAVAILABLE,
    InputError,
    cf_error,
    cf_success_body,
)
from cfai.emulator.gateway.config import ConfigError
from cfai.emulator.gateway.logs import (
    FILTER_KEYS,
    FILTER_OPERATORS,
    ORDER_FIELDS,
    LogFilter,
    LogQuery,
    parse_time,
)
from cfai.emulator.gateway.runtime import GatewayRuntime, get_runtime
from cfai.emulator.params import QueryParamError, bool_param, int_param
from cfai.emulator.state import EmulatorState

MAX_PER_PAGE = 1000  # Cloudflare pages logs more narrowly; a local lab may fetch more at once

# Emulator-only codes where Cloudflare's exact ones are not documented (docs/PROTOCOL.md section 6).
CODE_BAD_REQUEST = ADMIN_BAD_REQUEST
CODE_NOT_FOUND = ADMIN_NOT_FOUND
LOGS_UNAVAILABLE_MESSAGE = (
    "The AI Gateway logs API is part of Legacy Logs, which applies only to accounts created before "
    "September 24, 2026; this account's gateway logs are in Workers Observability (emulated answer)")
_RANGE_PARAMS = ("duration", "cost", "tokens_in", "tokens_out", "total_tokens")


def ok(result: Any, result_info: dict[str, int] | None = None) -> JSONResponse:
    body = cf_success_body(result)
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body)


def fail(status: int, code: int, message: str) -> JSONResponse:
    return cf_error(status, code, message)


def _authorized(state: EmulatorState, request: Request) -> bool:
    token = state.options.api_token
    if not token:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = jsonbody.loads(raw) if raw.strip() else {}
    except InputError as exc:
        raise ConfigError(f"the body must be a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError("the body must be a JSON object")
    return data


def _float(params: Any, name: str) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _filter(key: str | None, operator: str | None, values: list[str]) -> LogFilter:
    if key not in FILTER_KEYS:
        raise ConfigError(f"filters key must be one of {', '.join(sorted(FILTER_KEYS))}, got {key!r}")
    if operator not in FILTER_OPERATORS:
        raise ConfigError(f"filters operator must be one of {', '.join(FILTER_OPERATORS)}, got {operator!r}")
    if not values:
        raise ConfigError(f"filters on {key!r} needs at least one value")
    return LogFilter(key, operator, tuple(values))


def parse_filters(params: Any) -> list[LogFilter]:
    """The `filters` list in the SDK's form, `filters.key=K&filters.operator=OP&filters.value=V...` (dotted
    keys, repeated values; each `filters.key` starts the next filter), or leniently a JSON list in `filters`."""
    out: list[LogFilter] = []
    raw_json = params.get("filters")
    if raw_json:
        try:
            data = jsonbody.loads(raw_json)
        except InputError:
            raise ConfigError("filters must be the SDK's filters.key/.operator/.value form or a JSON list") from None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict):
                raise ConfigError("each filter must be an object with key, operator and value")
            value = item.get("value")
            values = value if isinstance(value, list) else [value]
            out.append(_filter(item.get("key"), item.get("operator"),
                               [str(v).lower() if isinstance(v, bool) else str(v) for v in values if v is not None]))
    current: dict[str, Any] | None = None
    for name, value in params.multi_items():
        if name == "filters.key":
            if current is not None:
                out.append(_filter(current["key"], current["operator"], current["values"]))
            current = {"key": value, "operator": None, "values": []}
        elif name in ("filters.operator", "filters.value"):
            if current is None:
                raise ConfigError(f"{name} must follow a filters.key")
            if name == "filters.operator":
                current["operator"] = value
            else:
                current["values"].append(value)
    if current is not None:
        out.append(_filter(current["key"], current["operator"], current["values"]))
    return out


def log_query(params: Any) -> LogQuery:
    """A LogQuery from the logs API's query string (SDK 5.9 `LogListParams`); raises ConfigError or
    QueryParamError on a bad value. There is no top-level `event_id`: the event id is a `filters` key."""
    direction = (params.get("direction") or params.get("order_by_direction") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ConfigError("direction must be asc or desc")
    q = LogQuery(
        page=int_param(params.get("page"), "page", 1, 1, 10**9),
        per_page=int_param(params.get("per_page"), "per_page", 20, 1, MAX_PER_PAGE),
        order_by=params.get("order_by") or "created_at",
        direction=direction,
        cached=bool_param(params.get("cached"), "cached"),
        success=bool_param(params.get("success"), "success"),
        model=params.get("model") or None,
        provider=params.get("provider") or None,
        model_type=params.get("model_type") or None,
        search=params.get("search") or None,
        filters=parse_filters(params),
    )
    if q.order_by not in ORDER_FIELDS:
        raise ConfigError(f"order_by must be one of {', '.join(ORDER_FIELDS)}")
    for name in _RANGE_PARAMS:
        low, high = _float(params, f"min_{name}"), _float(params, f"max_{name}")
        if low is not None or high is not None:
            q.ranges[name] = (low, high)
    try:
        if params.get("start_date"):
            q.start_ts = parse_time(params["start_date"])
        if params.get("end_date"):
            q.end_ts = parse_time(params["end_date"])
    except ValueError:
        raise ConfigError("start_date/end_date must be ISO 8601 dates") from None
    return q


def admin_routes(state: EmulatorState) -> list[BaseRoute]:
    base = "/client/v4/accounts/{account}/ai-gateway/gateways"

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if not _authorized(state, request):
                return fail(401, AUTH_ERROR, "Authentication error")
            try:
                return await handler(get_runtime(state), request, **request.path_params)
            except (ConfigError, QueryParamError) as exc:
                return fail(400, CODE_BAD_REQUEST, str(exc))

        return endpoint

    async def list_gateways(rt: GatewayRuntime, request: Request, account: str) -> Response:
        gateways = rt.store.list(account)
        search = request.query_params.get("search")
        if search:
            gateways = [g for g in gateways if search.lower() in g.id]
        page = int_param(request.query_params.get("page"), "page", 1, 1, 10**9)
        per_page = int_param(request.query_params.get("per_page"), "per_page", 20, 1, 1000)
        rows = gateways[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(rows), "total_count": len(gateways)}
        return ok([g.to_api() for g in rows], result_info=info)

    async def create_gateway(rt: GatewayRuntime, request: Request, account: str) -> Response:
        data = await _json_object(request)
        gw = rt.store.create(account, data.get("id"), data)  # type: ignore[arg-type]  # the store checks the type
        return ok(gw.to_api())

    async def get_gateway(rt: GatewayRuntime, request: Request, account: str, gateway_id: str) -> Response:
        gw = rt.store.get(account, gateway_id)
        if gw is None:
            return fail(404, CODE_NOT_FOUND, f"Gateway {gateway_id!r} not found")
        return ok(gw.to_api())

    async def update_gateway(rt: GatewayRuntime, request: Request, account: str, gateway_id: str) -> Response:
        gw = rt.store.update(account, gateway_id, await _json_object(request))
        if gw is None:
            return fail(404, CODE_NOT_FOUND, f"Gateway {gateway_id!r} not found")
        rt.limiter.forget(gw.key)  # new limits start with a fresh window
        return ok(gw.to_api())

    async def delete_gateway(rt: GatewayRuntime, request: Request, account: str, gateway_id: str) -> Response:
        gw = rt.store.delete(account, gateway_id)
        if gw is None:
            return fail(404, CODE_NOT_FOUND, f"Gateway {gateway_id!r} not found")
        rt.limiter.forget(gw.key)
        rt.logs.drop_gateway(gw.key)
        return ok({"id": gw.id})

    def logs_unavailable() -> Response | None:
        if state.options.legacy_logs:
            return None
        return fail(404, LOGS_UNAVAILABLE, LOGS_UNAVAILABLE_MESSAGE)

    async def list_logs(rt: GatewayRuntime, request: Request, account: str, gateway_id: str) -> Response:
        gw = rt.store.get(account, gateway_id)
        if gw is not None and (refused := logs_unavailable()) is not None:
            return refused
        if gw is None:
            return fail(404, CODE_NOT_FOUND, f"Gateway {gateway_id!r} not found")
        q = log_query(request.query_params)
        rows, total = rt.logs.query(gw.key, q)
        info = {"page": q.page, "per_page": q.per_page, "count": len(rows), "total_count": total}
        return ok([e.to_api() for e in rows], result_info=info)

    async def get_log(
        rt: GatewayRuntime, request: Request, account: str, gateway_id: str, log_id: str
    ) -> Response:
        if rt.store.get(account, gateway_id) is not None and (refused := logs_unavailable()) is not None:
            return refused
        entry = rt.logs.get((account, gateway_id), log_id)
        if entry is None:
            return fail(404, CODE_NOT_FOUND, f"Log {log_id!r} not found")
        return ok(entry.to_api())

    async def collection(rt: GatewayRuntime, request: Request, account: str) -> Response:
        handler = list_gateways if request.method == "GET" else create_gateway
        return await handler(rt, request, account)

    async def item(rt: GatewayRuntime, request: Request, account: str, gateway_id: str) -> Response:
        handler = {"GET": get_gateway, "PUT": update_gateway, "DELETE": delete_gateway}[request.method]
        return await handler(rt, request, account, gateway_id)

    return [
        Route(base, guarded(collection), methods=["GET", "POST"]),
        Route(base + "/{gateway_id}", guarded(item), methods=["GET", "PUT", "DELETE"]),
        Route(base + "/{gateway_id}/logs", guarded(list_logs), methods=["GET"]),
        Route(base + "/{gateway_id}/logs/{log_id}", guarded(get_log), methods=["GET"]),
    ]

"""Workers AI routes added for issue 12: `POST /ai/v1/responses` and `POST /ai/run` with the model in the body.

`/ai/run` with `{"model", "input"}` (docs/PROTOCOL.md 1 and 3.2) needs `cf-aig-gateway-id` for `@cf/` models:
it is the unified gateway route, served by the gateway (`cfai.emulator.gateway.unified` takes every request
carrying the header). What reaches this handler has no header: a `@cf/` model is refused with 400 (Cloudflare's
answer is undocumented; emulator choice), any other model is run as `ai/run/{model}` would run it.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from cfai.emulator.envelope import InputError, bad_input, no_such_model
from cfai.emulator.gateway.headers import GATEWAY_ID_HEADER
from cfai.emulator.models_catalog import TEXT_GENERATION, get_model
from cfai.emulator.workers_ai_limits import admitted

if TYPE_CHECKING:
    from cfai.emulator.workers_ai import WorkersAI



def extra_routes(wa: WorkersAI, base: str) -> list[BaseRoute]:
    return [
        Route(base + "/ai/run", partial(run_model_in_body, wa), methods=["POST"]),
        Route(base + "/ai/v1/responses", partial(responses, wa), methods=["POST"]),
    ]


async def _read_object(wa: WorkersAI, request: Request) -> dict[str, Any]:
    body, _size = await wa.read_json(request)  # the one JSON-body reader (400 on hostile or malformed JSON)
    return body


async def run_model_in_body(wa: WorkersAI, request: Request) -> Response:
    """POST /ai/run {"model", "input"}: replayed as POST /ai/run/{model} with `input` as the body."""
    try:
        body = await _read_object(wa, request)
        model, model_input = body.get("model"), body.get("input")
        if not isinstance(model, str) or not model:
            raise InputError("required property 'model' is missing or not a string")
        if not isinstance(model_input, dict):
            raise InputError("required property 'input' is missing or not an object")
        if model.startswith("@cf/") and not request.headers.get(GATEWAY_ID_HEADER):
            raise InputError(f"the {GATEWAY_ID_HEADER} header is required for Workers AI models on /ai/run "
                             f"(or use /ai/run/{model})")
    except InputError as exc:
        return bad_input(str(exc))
    if isinstance(body.get("options"), dict) and "options" not in model_input:
        model_input = {**model_input, "options": body["options"]}
    payload = json.dumps(model_input).encode()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return await request.receive()

    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(payload)).encode()))
    scope = {**request.scope, "headers": headers,
             "path_params": {**request.path_params, "model": model}}
    return await wa.run(Request(scope, receive))


async def responses(wa: WorkersAI, request: Request) -> Response:
    """POST /ai/v1/responses: OpenAI Responses for Responses-shaped models (gpt-oss), no envelope."""
    started = asyncio.get_running_loop().time()
    faults, headers, early = await wa._prelude(request, "simulated-llm")
    if early is not None:
        return early
    try:
        body = await _read_object(wa, request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InputError("required property 'model' is missing or not a string")
        spec = get_model(model)
        if spec is None:
            return no_such_model(model, headers)
        if spec.task != TEXT_GENERATION or spec.response_shape != "responses":
            raise InputError(f"{model} does not take the Responses API; use /ai/v1/chat/completions or /ai/run")
    except InputError as exc:
        return bad_input(str(exc), headers)
    return await admitted(wa.state, request, spec, body, headers,
                          lambda: wa.shaped.responses(request, spec, body, started, faults, headers))

"""The Workers AI routes: ai/run, the OpenAI-compatible endpoints, the model catalog, token verification."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cfai.emulator import classification, embeddings, jsonbody, text_tasks
from cfai.emulator.envelope import (
    BACKEND_HEADER,
    UPSTREAM_UNAVAILABLE,
    InputError,
    bad_input,
    cf_error,
    cf_success,
    cf_success_body,
    no_such_model,
)
from cfai.emulator.extra_routes import extra_routes
from cfai.emulator.faults import Faults, TruncatedResponse, immediate_fault, read_faults
from cfai.emulator.latency import fixed_latency, sleep_until
from cfai.emulator.model_params import input_schema
from cfai.emulator.model_shapes import ShapedTextGen
from cfai.emulator.models_catalog import (
    SUMMARIZATION,
    TEXT_CLASSIFICATION,
    TEXT_EMBEDDINGS,
    TEXT_GENERATION,
    TRANSLATION,
    ModelSpec,
    get_model,
    model_entry,
    search_models,
)
from cfai.emulator.params import QueryParamError, int_param
from cfai.emulator.state import EmulatorState
from cfai.emulator.textgen import GenRequest, count_tokens, parse_gen_request, tokenize
from cfai.emulator.upstream import Upstream, UpstreamError, chunk_text, message_text
from cfai.emulator.workers_ai_limits import admitted

UPSTREAM_BACKEND = "upstream-openai"
DROP_AFTER_EVENTS = 3  # the drop-stream fault aborts after this many token events
_PAD = "abcdefghijklmnopqrstuvwxyz0123456789"
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


_DONE = b"data: [DONE]\n\n"


EMBEDDING_BYTES_PER_DIM = 20  # rendered JSON per float, to judge whether rendering an answer is heavy


class WorkersAI:
    """Route handlers bound to one emulator's state."""

    def __init__(self, state: EmulatorState):
        self.state = state
        opts = state.options
        self.upstream = Upstream(opts.upstream_openai, opts.upstream_model) if opts.upstream_openai else None
        self.shaped = ShapedTextGen(self)  # each model's own response shape (cfai.emulator.model_shapes)

    @property
    def speed(self) -> float:
        return max(self.state.options.speed, 1e-6)

    async def read_json(self, request: Request) -> tuple[dict[str, Any], int]:
        """The body as a JSON object (InputError otherwise) and its size in bytes; big ones parse off the loop."""
        raw = await request.body()
        return await self.state.cpu.run(len(raw), jsonbody.loads_object, raw), len(raw)

    def routes(self) -> list[BaseRoute]:
        base = "/client/v4/accounts/{account}"
        return [
            Route(base + "/ai/run/{model:path}", self.run, methods=["POST"]),
            Route(base + "/ai/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route(base + "/ai/v1/embeddings", self.openai_embeddings, methods=["POST"]),
            Route(base + "/ai/models/search", self.models_search, methods=["GET"]),
            Route(base + "/ai/models/schema", self.models_schema, methods=["GET"]),
            Route("/client/v4/user/tokens/verify", self.verify_token, methods=["GET"]),
            Route(base + "/tokens/verify", self.verify_token, methods=["GET"]),
            *extra_routes(self, base),
        ]

    async def aclose(self) -> None:
        if self.upstream is not None:
            await self.upstream.aclose()

    # --- shared steps -----------------------------------------------------------------------------------
    async def _prelude(self, request: Request, backend: str) -> tuple[Faults, dict[str, str], Response | None]:
        """Read fault headers and answer the faults that replace the whole response."""
        headers = {BACKEND_HEADER: backend}
        try:
            faults = read_faults(request, self.state.options.allow_faults)
        except InputError as exc:
            return Faults(), headers, bad_input(str(exc), headers)
        return faults, headers, await immediate_fault(request, faults, headers)

    async def _wait(self, started: float, faults: Faults, natural_s: float) -> None:
        due = faults.delay_ms / 1000.0 if faults.delay_ms is not None else natural_s
        await sleep_until(started, due)

    def _respond(self, body: Any, headers: dict[str, str], faults: Faults, status: int = 200) -> Response:
        if faults.drop:
            return TruncatedResponse(json.dumps(body).encode(), status, headers, "application/json")
        return JSONResponse(body, status_code=status, headers=headers)

    def _pad(self) -> str:
        return _PAD[: self.state.latency_rng.randint(1, len(_PAD))]

    # --- POST ai/run/{model} ----------------------------------------------------------------------------
    async def run(self, request: Request) -> Response:
        started = asyncio.get_running_loop().time()
        model = request.path_params["model"]
        spec = get_model(model)
        backend = spec.backend if spec else "simulated-llm"
        if spec and spec.task == TEXT_GENERATION and self.upstream is not None:
            backend = UPSTREAM_BACKEND
        faults, headers, early = await self._prelude(request, backend)
        if early is not None:
            return early
        if spec is None:
            return no_such_model(model, headers)
        cpu = self.state.cpu
        try:
            body, size = await self.read_json(request)
            if spec.task == TEXT_GENERATION:
                if self.upstream is not None:
                    req = parse_gen_request(body)
                    return await admitted(self.state, request, spec, body, headers,
                                          lambda: self._run_upstream(model, req, headers))
                return await admitted(self.state, request, spec, body, headers,
                                      lambda: self.shaped.run(request, spec, body, started, faults, headers))
            result, units = await cpu.run(size, self._run_other, spec, body)
        except InputError as exc:
            return bad_input(str(exc), headers)

        async def answer() -> Response:
            await self._wait(started, faults, fixed_latency(spec, self.state.latency_rng, self.speed, units))
            out_size = max(size, units * spec.dims * EMBEDDING_BYTES_PER_DIM)
            return await cpu.run(out_size, self._respond, cf_success_body(result), headers, faults)

        return await admitted(self.state, request, spec, body, headers, answer)

    def _run_other(self, spec: ModelSpec, body: dict[str, Any]) -> tuple[Any, int]:
        if spec.task == TEXT_CLASSIFICATION:
            return classification.classify(classification.parse_classification(body)), 1
        if spec.task == TEXT_EMBEDDINGS:
            if "text" not in body:
                raise InputError("required properties at '/' are 'text'")
            texts = embeddings.parse_texts(body["text"])
            pooling = body.get("pooling", "mean")
            if pooling not in ("mean", "cls"):
                raise InputError("'/pooling' must be one of 'mean', 'cls'")
            data = [embeddings.embed(t, spec.dims) for t in texts]
            return {"shape": [len(data), spec.dims], "data": data, "pooling": pooling}, len(texts)
        if spec.task == SUMMARIZATION:
            return text_tasks.summarize(body), 1
        if spec.task == TRANSLATION:
            return text_tasks.translate(body), 1
        raise InputError(f"task {spec.task} is not supported")  # pragma: no cover - catalog is closed

    # --- the upstream OpenAI-compatible server ----------------------------------------------------------
    def _upstream_body(self, model: str, req: GenRequest) -> dict[str, Any]:
        messages = req.messages if req.messages is not None else [{"role": "user", "content": req.prompt or ""}]
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": req.max_tokens}
        body.update(req.sampling)
        if req.seed is not None:
            body["seed"] = req.seed
        if req.response_format is not None:
            body["response_format"] = req.response_format
        return body

    def _upstream_failed(self, exc: UpstreamError, headers: dict[str, str]) -> Response:
        return cf_error(502, UPSTREAM_UNAVAILABLE, f"AiError: {exc}", headers=headers)

    async def _run_upstream(self, model: str, req: GenRequest, headers: dict[str, str]) -> Response:
        assert self.upstream is not None
        body = self._upstream_body(model, req)
        prompt_tokens = req.prompt_tokens()
        try:
            if not req.stream:
                answer = await self.upstream.chat(body)
                text = message_text(answer)
                usage = answer.get("usage") or _usage(prompt_tokens, count_tokens(text))
                response: Any = text
                if req.response_format is not None:
                    with contextlib.suppress(ValueError):  # keep the text if it is not JSON
                        response = json.loads(text)
                return cf_success({"response": response, "tool_calls": [], "usage": usage}, headers=headers)
            chunks = await self.upstream.open_stream(body)
        except UpstreamError as exc:
            return self._upstream_failed(exc, headers)

        async def events() -> AsyncIterator[bytes]:
            pieces, usage = 0, None
            async for chunk in chunks:
                usage = chunk.get("usage") or usage
                text = chunk_text(chunk)
                if text:
                    pieces += len(tokenize(text))
                    yield _sse({"response": text, "tool_calls": [], "p": self._pad()})
            yield _sse({"response": "", "usage": usage or _usage(prompt_tokens, pieces)})
            yield _DONE

        return StreamingResponse(events(), media_type="text/event-stream", headers={**headers, **_SSE_HEADERS})

    # --- POST ai/v1/chat/completions (OpenAI format, no envelope) ---------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        started = asyncio.get_running_loop().time()
        backend = UPSTREAM_BACKEND if self.upstream is not None else "simulated-llm"
        faults, headers, early = await self._prelude(request, backend)
        if early is not None:
            return early
        try:
            body, size = await self.read_json(request)
            spec = _openai_model(body, TEXT_GENERATION, "text generation")
            model = body["model"]
            if spec is None:
                return no_such_model(model, headers)
            req = parse_gen_request(body, openai=True)
        except InputError as exc:
            return bad_input(str(exc), headers)
        if self.upstream is not None:
            return await admitted(self.state, request, spec, body, headers,
                                  lambda: self._chat_upstream(model, body, req, headers))
        return await admitted(self.state, request, spec, body, headers,
                              lambda: self.shaped.chat_completions(request, spec, body, started, faults, headers))

    async def _chat_upstream(
        self, model: str, body: dict[str, Any], req: GenRequest, headers: dict[str, str]
    ) -> Response:
        assert self.upstream is not None
        try:
            if not req.stream:
                answer = await self.upstream.chat(body)
                answer["model"] = model
                return JSONResponse(answer, headers=headers)
            chunks = await self.upstream.open_stream(body)
        except UpstreamError as exc:
            return self._upstream_failed(exc, headers)

        async def events() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                chunk["model"] = model
                yield _sse(chunk)
            yield _DONE

        return StreamingResponse(events(), media_type="text/event-stream", headers={**headers, **_SSE_HEADERS})

    # --- POST ai/v1/embeddings (OpenAI format) ----------------------------------------------------------
    async def openai_embeddings(self, request: Request) -> Response:
        started = asyncio.get_running_loop().time()
        faults, headers, early = await self._prelude(request, "simulated-embeddings")
        if early is not None:
            return early
        try:
            body, size = await self.read_json(request)
            spec = _openai_model(body, TEXT_EMBEDDINGS, "text embeddings")
            model = body["model"]
            if spec is None:
                return no_such_model(model, headers)
            if "input" not in body:
                raise InputError("required property 'input' is missing")
            texts = embeddings.parse_texts(body["input"], "input")
        except InputError as exc:
            return bad_input(str(exc), headers)
        answer = await self.state.cpu.run(max(size, len(texts) * spec.dims * EMBEDDING_BYTES_PER_DIM),
                                          _openai_embeddings, model, spec, texts)

        async def respond() -> Response:
            await self._wait(started, faults, fixed_latency(spec, self.state.latency_rng, self.speed, len(texts)))
            return await self.state.cpu.run(len(texts) * spec.dims * EMBEDDING_BYTES_PER_DIM,
                                            self._respond, answer, headers, faults)

        return await admitted(self.state, request, spec, body, headers, respond)

    # --- the catalog ------------------------------------------------------------------------------------
    async def models_search(self, request: Request) -> Response:
        q = request.query_params
        try:
            page = int_param(q.get("page"), "page", 1, 1, 10**6)
            per_page = int_param(q.get("per_page"), "per_page", 50, 1, 1000)
        except QueryParamError as exc:
            return cf_error(400, 1001, str(exc))
        found = search_models(q.get("task", ""), q.get("search", ""), q.get("author", ""))
        items = found[(page - 1) * per_page : page * per_page]
        info = {
            "count": len(items),
            "page": page,
            "per_page": per_page,
            "total_count": len(found),
            "total_pages": max(1, math.ceil(len(found) / per_page)),
        }
        body = cf_success_body([model_entry(s) for s in items])
        body["result_info"] = info
        return JSONResponse(body)

    async def models_schema(self, request: Request) -> Response:
        model = request.query_params.get("model", "")
        if not model:
            return cf_error(400, 1001, "query parameter 'model' is required")
        spec = get_model(model)
        if spec is None:
            return no_such_model(model)
        return cf_success(input_schema(spec))

    async def verify_token(self, request: Request) -> Response:
        # Reaching here means the middleware accepted the token (or no token is configured).
        auth = request.headers.get("authorization", "")
        token_id = hashlib.sha256(auth.encode()).hexdigest()[:32]
        result = {"id": token_id, "status": "active"}
        return cf_success(result, messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}])


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _openai_embeddings(model: str, spec: ModelSpec, texts: list[str]) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": embeddings.embed(t, spec.dims)}
        for i, t in enumerate(texts)
    ]
    tokens = sum(count_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _openai_model(body: dict, task: str, task_label: str) -> ModelSpec | None:
    """The model named by an OpenAI-compatible body, checked for `task`; None when no such model exists."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("required property 'model' is missing or not a string")
    spec = get_model(model)
    if spec is None:
        return None
    if spec.task != task:
        raise InputError(f"{model} is not a {task_label} model")
    return spec

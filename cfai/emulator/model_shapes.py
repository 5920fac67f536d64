"""Simulated text generation answered in each model's documented shape (docs/PROTOCOL.md section 2).

- classic `{response, tool_calls, usage}`; reasoning models of this shape (R1-distill, QwQ) put their
  reasoning inline, ending in `</think>` without the opening tag;
- OpenAI chat completion (glm-4.7-flash on ai/run; every model on /ai/v1/chat/completions) with
  `reasoning_content`, `completion_tokens_details.reasoning_tokens`, `prompt_tokens_details.cached_tokens`;
- OpenAI Responses (gpt-oss with `input`, and /ai/v1/responses) with `reasoning` and `message` items.
Reasoning comes before the answer, is deterministic, counts against `max_tokens` (a small budget is spent
entirely on reasoning) and against the latency model, token by token.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cfai.emulator.envelope import InputError, bad_input, cf_success_body
from cfai.emulator.faults import DroppedConnection, Faults
from cfai.emulator.latency import sleep_until, token_schedule
from cfai.emulator.model_params import check_params, effort_of
from cfai.emulator.models_catalog import ModelSpec
from cfai.emulator.prompt_cache import SESSION_HEADER, cached_tokens, ttft_saving_s
from cfai.emulator.textgen import (
    GenRequest,
    _keywords,
    compose_text,
    generate,
    parse_gen_request,
    request_rng,
    tokenize,
)

if TYPE_CHECKING:
    from cfai.emulator.workers_ai import WorkersAI

THINK_END = "\n</think>\n\n"  # one token, as in the real tokenizers
DROP_AFTER_EVENTS = 3
NO_DEFAULT_BUDGET = 4096  # models whose schema has no max_tokens default (glm-4.7-flash)
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# Reasoning length in tokens (min, max, mode) per effort.
_EFFORT_TOKENS = {"low": (20, 45, 30), "medium": (45, 120, 75), "high": (110, 240, 160)}

_THOUGHTS = (
    "The user is asking about {a}.",
    "I should explain what {a} is before going into {b}.",
    "Let me recall the key facts about {a}.",
    "A concrete example would make {a} easier to follow.",
    "Maybe compare {a} with {b}, since people often confuse them.",
    "Is there a common misconception about {a}? Probably that it always helps {b}.",
    "I need to keep the answer clear and not too long.",
    "Wait, the question may also be about how {a} is measured.",
    "Check the trade-offs: {a} costs something, and {b} changes the picture.",
    "So the structure is: the idea, an example, then a short summary.",
    "Hmm, I should mention the limits of {a} as well.",
    "Okay, that covers {a}; now make sure {b} is addressed.",
)


def sse_frame(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


# --- requests -------------------------------------------------------------------------------------------
def _part_text(content: Any) -> str:
    if isinstance(content, list):  # Responses / OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def responses_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """A Responses `input` (+ `instructions`) as chat messages."""
    raw = body.get("input")
    messages: list[dict[str, str]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InputError("Type mismatch of '/instructions', 'string' expected")
        messages.append({"role": "system", "content": instructions})
    if isinstance(raw, str):
        if not raw:
            raise InputError("'/input' must not be empty")
        return [*messages, {"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise InputError("Type mismatch of '/input', 'string' or non-empty 'array' expected")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant", "system", "developer"):
            raise InputError(f"'/input/{i}/role' must be one of 'user', 'assistant', 'system', 'developer'")
        role = "system" if item["role"] == "developer" else item["role"]
        messages.append({"role": role, "content": _part_text(item.get("content"))})
    return messages


def is_responses_request(body: dict[str, Any]) -> bool:
    return "input" in body and "prompt" not in body and "messages" not in body


def parse_shaped_request(spec: ModelSpec, body: dict[str, Any], *, openai: bool = False) -> GenRequest:
    """Validate `body` against the model's schema, then as text generation (Responses input included)."""
    check_params(spec, body)
    if is_responses_request(body):
        rest = {k: v for k, v in body.items() if k not in ("input", "instructions", "reasoning", "model")}
        if rest.get("max_tokens") is None and body.get("max_output_tokens") is not None:
            rest["max_tokens"] = body["max_output_tokens"]  # the Responses API's name for the budget
        req = parse_gen_request({**rest, "messages": responses_messages(body)})
    else:
        req = parse_gen_request(body, openai=openai or spec.response_shape == "chat_completion")
    if spec.params == "glm" and body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        req.max_tokens = NO_DEFAULT_BUDGET
    return req


# --- generation -----------------------------------------------------------------------------------------
def compose_reasoning(rng: random.Random, user_text: str, effort: str) -> str:
    words = _keywords(user_text) or ["this question", "the answer"]
    lo, hi, mode = _EFFORT_TOKENS.get(effort, _EFFORT_TOKENS["medium"])
    target = int(rng.triangular(lo, hi, mode))
    thoughts = list(_THOUGHTS[1:])
    rng.shuffle(thoughts)
    out = [_THOUGHTS[0].format(a=words[0], b=words[-1])]
    used = len(tokenize(out[0]))
    for t in thoughts * 3:
        a = rng.choice(words)
        b = rng.choice([w for w in words if w != a] or ["the wider context"])
        s = t.format(a=a, b=b)
        if used + len(tokenize(s)) > target and len(out) > 1:
            break
        out.append(s)
        used += len(tokenize(s))
    return " ".join(out)


@dataclass
class ShapedGeneration:
    """Reasoning pieces, answer pieces and the counts every shape reports."""

    reasoning: list[str]
    answer: list[str]
    answer_value: Any  # str, or an object with response_format
    prompt_tokens: int
    cached_tokens: int
    finish_reason: str
    inline: bool  # classic reasoning model: reasoning, THINK_END, answer in one text

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def answer_text(self) -> str:
        return self.answer_value if isinstance(self.answer_value, str) else "".join(self.answer)

    @property
    def pieces(self) -> list[tuple[str, str]]:
        """(kind, piece) in emission order; the inline separator counts as one reasoning token."""
        out = [("reasoning", p) for p in self.reasoning]
        if self.inline and self.reasoning and (self.answer or self.finish_reason == "stop"):
            out.append(("reasoning", THINK_END))
        return out + [("answer", p) for p in self.answer]

    @property
    def reasoning_tokens(self) -> int:
        return sum(1 for kind, _ in self.pieces if kind == "reasoning")

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)

    def classic_text(self) -> str:
        return "".join(p for _, p in self.pieces) if self.inline else self.answer_text

    def usage(self, *, details: bool, session: bool = False) -> dict[str, Any]:
        """Chat-completion / classic usage; `details` adds the token breakdowns (classic: only with a session)."""
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if details or session:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if details and self.reasoning:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out

    def responses_usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def generate_shaped(spec: ModelSpec, req: GenRequest, body: dict[str, Any], seed: int, cached: int) -> ShapedGeneration:
    inline = spec.reasoning and spec.response_shape == "classic"
    if not spec.reasoning or req.response_format is not None:  # JSON mode: no reasoning (emulator choice)
        gen = generate(spec.name, req, seed)
        return ShapedGeneration([], gen.pieces, gen.response, gen.prompt_tokens, cached, gen.finish_reason, False)
    effort = effort_of(spec, body)
    rng = request_rng(spec.name + "#reasoning:" + effort, req, seed)
    reasoning = tokenize(compose_reasoning(rng, req.last_user_text(), effort))
    budget = req.max_tokens
    if len(reasoning) >= budget:  # the whole budget goes to reasoning: no answer at all
        return ShapedGeneration(reasoning[:budget], [], "", req.prompt_tokens(), cached, "length", inline)
    budget -= len(reasoning) + (1 if inline else 0)
    answer = tokenize(compose_text(request_rng(spec.name, req, seed), req.last_user_text()))
    finish = "stop"
    if len(answer) > budget:
        answer, finish = answer[: max(budget, 0)], "length"
    return ShapedGeneration(reasoning, answer, "".join(answer), req.prompt_tokens(), cached, finish, inline)


# --- the shapes -----------------------------------------------------------------------------------------
def classic_result(gen: ShapedGeneration, session: bool) -> dict[str, Any]:
    value = gen.classic_text() if isinstance(gen.answer_value, str) else gen.answer_value
    return {"response": value, "tool_calls": [], "usage": gen.usage(details=False, session=session)}


def chat_completion(gen: ShapedGeneration, model: str, completion_id: str, created: int) -> dict[str, Any]:
    content: str | None = gen.answer_text
    if not content and gen.finish_reason == "length":
        content = None  # as reported for reasoning models that spent max_tokens (PROTOCOL.md 2.2)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if gen.reasoning:
        message["reasoning_content"] = gen.reasoning_text
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}],
        "usage": gen.usage(details=True),
    }


def _reasoning_item(text: str) -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}] if text else []
    return {"type": "reasoning", "id": "rs_1", "summary": [], "content": content}


def _message_item(text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text or status == "completed" else []
    return {"type": "message", "id": "msg_1", "role": "assistant", "status": status, "content": content}


def responses_object(gen: ShapedGeneration, model: str, response_id: str, created: int) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if gen.reasoning:
        output.append(_reasoning_item(gen.reasoning_text))
    complete = gen.finish_reason == "stop"
    if gen.answer or complete:
        output.append(_message_item(gen.answer_text, "completed" if complete else "incomplete"))
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "model": model,
        "status": "completed" if complete else "incomplete",
        "output": output,
        "usage": gen.responses_usage(),
    }
    if not complete:
        body["incomplete_details"] = {"reason": "max_output_tokens"}
    return body


# --- serving --------------------------------------------------------------------------------------------
class ShapedTextGen:
    """Text-generation answers for the Workers AI routes, bound to one WorkersAI's state and helpers."""

    def __init__(self, wa: WorkersAI):
        self.wa = wa

    def _generate(self, request: Request, spec: ModelSpec, req: GenRequest, body: dict[str, Any]) -> ShapedGeneration:
        session = request.headers.get(SESSION_HEADER)
        cached = cached_tokens(self.wa.state, session, spec.name, req)
        return generate_shaped(spec, req, body, self.wa.state.options.seed, cached)

    def _schedule(self, spec: ModelSpec, gen: ShapedGeneration, faults: Faults) -> list[float]:
        n = gen.completion_tokens
        if faults.delay_ms is not None:
            return [faults.delay_ms / 1000.0] * max(n, 1)
        schedule = token_schedule(spec, max(n, 1), self.wa.state.latency_rng, self.wa.speed)
        saving = ttft_saving_s(schedule.ttft_s, gen.cached_tokens, gen.prompt_tokens)
        return [due - saving for due in schedule.token_due_s]

    def _stream(self, frames: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
        return StreamingResponse(frames, media_type="text/event-stream", headers={**headers, **_SSE_HEADERS})

    async def run(self, request: Request, spec: ModelSpec, body: dict[str, Any], started: float,
                  faults: Faults, headers: dict[str, str]) -> Response:
        """POST ai/run/{model}: the model's own shape."""
        try:
            req = parse_shaped_request(spec, body)
        except InputError as exc:
            return bad_input(str(exc), headers)
        gen = self._generate(request, spec, req, body)
        due = self._schedule(spec, gen, faults)
        if spec.response_shape == "responses" and is_responses_request(body):
            return await self._responses(spec, gen, due, req.stream, started, faults, headers, envelope=True)
        if spec.response_shape != "classic":  # chat_completion; responses-shaped models asked with prompt/messages
            return await self._chat(spec, gen, due, req.stream, started, faults, headers, envelope=True)
        session = bool(request.headers.get(SESSION_HEADER))
        if not req.stream:
            await sleep_until(started, due[-1])
            return self.wa._respond(cf_success_body(classic_result(gen, session)), headers, faults)

        async def frames() -> AsyncIterator[bytes]:
            for i, (_, piece) in enumerate(gen.pieces):
                await sleep_until(started, due[i])
                yield sse_frame({"response": piece, "tool_calls": [], "p": self.wa._pad()})
                if faults.drop and i + 1 >= DROP_AFTER_EVENTS:
                    raise DroppedConnection("drop-stream fault")
            yield sse_frame({"response": "", "usage": gen.usage(details=False, session=session)})
            yield b"data: [DONE]\n\n"

        return self._stream(frames(), headers)

    async def chat_completions(self, request: Request, spec: ModelSpec, body: dict[str, Any], started: float,
                               faults: Faults, headers: dict[str, str]) -> Response:
        """POST ai/v1/chat/completions: OpenAI chat completion for every model, reasoning in reasoning_content."""
        try:
            req = parse_shaped_request(spec, body, openai=True)
        except InputError as exc:
            return bad_input(str(exc), headers)
        gen = self._generate(request, spec, req, body)
        if gen.inline:  # the OpenAI-compatible layer splits inline reasoning out (emulator choice)
            gen.inline = False
        return await self._chat(spec, gen, self._schedule(spec, gen, faults), req.stream, started, faults, headers,
                                envelope=False)

    async def responses(self, request: Request, spec: ModelSpec, body: dict[str, Any], started: float,
                        faults: Faults, headers: dict[str, str]) -> Response:
        """POST ai/v1/responses (OpenAI Responses, no envelope)."""
        if not is_responses_request(body):
            return bad_input("required property 'input' is missing", headers)
        try:
            req = parse_shaped_request(spec, body)
        except InputError as exc:
            return bad_input(str(exc), headers)
        gen = self._generate(request, spec, req, body)
        gen.inline = False
        due = self._schedule(spec, gen, faults)
        return await self._responses(spec, gen, due, req.stream, started, faults, headers, envelope=False)

    async def _chat(self, spec: ModelSpec, gen: ShapedGeneration, due: list[float], stream: bool, started: float,
                    faults: Faults, headers: dict[str, str], *, envelope: bool) -> Response:
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not stream:
            await sleep_until(started, due[-1])
            answer = chat_completion(gen, spec.name, completion_id, created)
            return self.wa._respond(cf_success_body(answer) if envelope else answer, headers, faults)

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
            obj: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                   "model": spec.name,
                                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if usage is not None:
                obj["usage"] = usage
            return sse_frame(obj)

        async def frames() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            for i, (kind, piece) in enumerate(gen.pieces):
                await sleep_until(started, due[i])
                yield chunk({"reasoning_content": piece} if kind == "reasoning" else {"content": piece})
                if faults.drop and i + 1 >= DROP_AFTER_EVENTS:
                    raise DroppedConnection("drop-stream fault")
            yield chunk({}, gen.finish_reason, gen.usage(details=True))
            yield b"data: [DONE]\n\n"

        return self._stream(frames(), headers)

    async def _responses(self, spec: ModelSpec, gen: ShapedGeneration, due: list[float], stream: bool, started: float,
                         faults: Faults, headers: dict[str, str], *, envelope: bool) -> Response:
        response_id, created = f"resp_{uuid.uuid4().hex}", int(time.time())
        final = responses_object(gen, spec.name, response_id, created)
        if not stream:
            await sleep_until(started, due[-1])
            return self.wa._respond(cf_success_body(final) if envelope else final, headers, faults)

        seq = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(seq), **fields}
            return f"event: {kind}\n".encode() + sse_frame(payload)

        async def frames() -> AsyncIterator[bytes]:
            yield event("response.created", response={"id": response_id, "object": "response", "created_at": created,
                                                      "status": "in_progress", "model": spec.name, "output": []})
            current: str | None = None
            index = -1
            for i, (kind, piece) in enumerate(gen.pieces):
                await sleep_until(started, due[i])
                if kind != current:
                    if current == "reasoning":
                        yield event("response.output_item.done", output_index=index,
                                    item=_reasoning_item(gen.reasoning_text))
                    current, index = kind, index + 1
                    item = _reasoning_item("") if kind == "reasoning" else _message_item("", "in_progress")
                    yield event("response.output_item.added", output_index=index, item=item)
                if kind == "reasoning":
                    yield event("response.reasoning_text.delta", item_id="rs_1", output_index=index, content_index=0,
                                delta=piece)
                else:
                    yield event("response.output_text.delta", item_id="msg_1", output_index=index, content_index=0,
                                delta=piece, logprobs=[])
                if faults.drop and i + 1 >= DROP_AFTER_EVENTS:
                    raise DroppedConnection("drop-stream fault")
            if final["output"] and current is not None:
                yield event("response.output_item.done", output_index=index, item=final["output"][-1])
            done_kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
            yield event(done_kind, response=final)

        return self._stream(frames(), headers)

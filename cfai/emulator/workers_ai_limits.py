"""Workers AI's per-minute request limits per task (and per model where documented), and `rejectIfBusy`.

Figures from `platform/limits.mdx` (docs/PROTOCOL.md 4.1). Over the limit: 429 / 3021 (observed wording).
The window is a sliding minute per (account, model): limits.mdx says "per task type" with per-model
exceptions, which we read as each model having its task's budget. Busy (`options.rejectIfBusy`, PROTOCOL.md
4.3) is emulator-defined: a model is busy when it already has `busy_threshold` requests in flight.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cfai.emulator.envelope import CAPACITY, cf_error
from cfai.emulator.models_catalog import (
    SUMMARIZATION,
    TEXT_CLASSIFICATION,
    TEXT_EMBEDDINGS,
    TEXT_GENERATION,
    TRANSLATION,
    ModelSpec,
)
from cfai.emulator.state import EmulatorState

RATE_LIMITED = 3021
RATE_LIMIT_MESSAGE = "3021: rate limiting: inference request per min rate reached"
BUSY_MESSAGE = "Capacity temporarily exceeded, please try again."
WINDOW_S = 60.0

TASK_LIMITS_PER_MIN: dict[str, int] = {
    TEXT_GENERATION: 300,
    TEXT_EMBEDDINGS: 3000,
    TEXT_CLASSIFICATION: 2000,
    SUMMARIZATION: 1500,
    TRANSLATION: 720,
}
MODEL_LIMITS_PER_MIN: dict[str, int] = {
    "@cf/baai/bge-large-en-v1.5": 1500,
    "@cf/mistral/mistral-7b-instruct-v0.1-awq": 400,
    "@cf/microsoft/phi-2": 720,
    "@cf/qwen/qwen1.5-0.5b-chat": 1500,
    "@cf/qwen/qwen1.5-1.8b-chat": 720,
    "@cf/qwen/qwen1.5-14b-chat-awq": 150,
    "@cf/tinyllama/tinyllama-1.1b-chat-v1.0": 720,
}


def limit_per_minute(spec: ModelSpec) -> int:
    return MODEL_LIMITS_PER_MIN.get(spec.name, TASK_LIMITS_PER_MIN.get(spec.task, 300))


class WorkersAILimits:
    """Sliding-minute counters and in-flight counts; thread-safe (the gateway and tests share one state)."""

    def __init__(self, enforce_rate: bool, busy_threshold: int, clock: Callable[[], float] = time.monotonic):
        self.enforce_rate, self.busy_threshold, self.clock = enforce_rate, busy_threshold, clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._in_flight: dict[str, int] = {}

    def take(self, account: str, spec: ModelSpec) -> bool:
        """Count one request; False (nothing counted) when the model's minute is full."""
        if not self.enforce_rate:
            return True
        now = self.clock()
        with self._lock:
            window = self._windows.setdefault((account, spec.name), deque())
            while window and window[0] <= now - WINDOW_S:
                window.popleft()
            if len(window) >= limit_per_minute(spec):
                return False
            window.append(now)
            return True

    def in_flight(self, model: str) -> int:
        with self._lock:
            return self._in_flight.get(model, 0)

    def enter(self, model: str, reject_if_busy: bool) -> bool:
        with self._lock:
            if reject_if_busy and self._in_flight.get(model, 0) >= self.busy_threshold:
                return False
            self._in_flight[model] = self._in_flight.get(model, 0) + 1
            return True

    def leave(self, model: str) -> None:
        with self._lock:
            self._in_flight[model] = max(0, self._in_flight.get(model, 0) - 1)


def limits_of(state: EmulatorState) -> WorkersAILimits:
    limits = state.extras.get("workers_ai_limits")
    if limits is None:
        opts = state.options
        limits = WorkersAILimits(getattr(opts, "rate_limits", True), getattr(opts, "busy_threshold", 32))
        state.extras["workers_ai_limits"] = limits
    return limits


def reject_if_busy(body: Any) -> bool:
    options = body.get("options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("rejectIfBusy") is True


class Ticket:
    """One admitted request: counted in flight until its response has been sent (or has failed)."""

    def __init__(self, limits: WorkersAILimits, model: str):
        self.limits, self.model, self._open = limits, model, True

    def release(self) -> None:
        if self._open:
            self._open = False
            self.limits.leave(self.model)

    def wrap(self, response: Response) -> Response:
        return _Released(response, self)  # type: ignore[return-value]  # any ASGI callable will do


class _Released:
    """An ASGI wrapper that releases the ticket once the wrapped response is over (even on disconnect)."""

    def __init__(self, response: Response, ticket: Ticket):
        self.response, self.ticket = response, ticket

    def __getattr__(self, name: str) -> Any:  # status_code, headers, body: as the wrapped response
        return getattr(self.response, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.ticket.release()


def admit(state: EmulatorState, account: str, spec: ModelSpec, body: Any, headers: dict[str, str]) -> Ticket | Response:
    """A Ticket, or the 429 that Cloudflare answers instead (rate limit 3021, or busy 3040)."""
    limits = limits_of(state)
    if not limits.take(account, spec):
        return cf_error(429, RATE_LIMITED, RATE_LIMIT_MESSAGE, headers=headers)
    if not limits.enter(spec.name, reject_if_busy(body)):
        return cf_error(429, CAPACITY, BUSY_MESSAGE, headers=headers)
    return Ticket(limits, spec.name)


async def admitted(state: EmulatorState, request: Request, spec: ModelSpec, body: Any, headers: dict[str, str],
                   produce: Callable[[], Awaitable[Response]]) -> Response:
    """Answer with `produce()` if the request is admitted, keeping it counted in flight until it is sent."""
    ticket = admit(state, request.path_params.get("account", ""), spec, body, headers)
    if not isinstance(ticket, Ticket):
        return ticket
    try:
        response = await produce()
    except BaseException:
        ticket.release()
        raise
    return ticket.wrap(response)

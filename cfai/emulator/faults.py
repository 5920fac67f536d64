"""Injected faults for testing clients (only with allow_faults): the headers and kinds named in `cfai.faults`.

FAULT_HEADER: one of FAULT_KINDS -> the request fails that way
DELAY_HEADER: N                  -> the response takes N ms in total instead of the latency model
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cfai.emulator.envelope import CAPACITY, INTERNAL, TIMEOUT, InputError, cf_error
from cfai.faults import DELAY_HEADER, FAULT_HEADER, FAULT_KINDS

STALL_S = 30.0  # the "timeout" fault stalls this long at most (or until the client goes away)
MAX_DELAY_MS = 600_000


class DroppedConnection(Exception):
    """Raised on purpose after part of a response was sent, so the server aborts the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:  # also when wrapped in an exception group
            if isinstance(exc, DroppedConnection):
                return False
            group = getattr(exc, "exceptions", None)
            exc = group[0] if group else exc.__cause__ or exc.__context__
        return True


def install_log_filter() -> None:
    """Keep deliberate drops out of the server log (uvicorn logs them as application errors)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


@dataclass(frozen=True)
class Faults:
    kind: str | None = None
    delay_ms: int | None = None

    @property
    def drop(self) -> bool:
        return self.kind == "drop-stream"


NO_FAULTS = Faults()


def read_faults(request: Request, allow: bool) -> Faults:
    """The fault headers of a request; ignored unless the server allows faults."""
    if not allow:
        return NO_FAULTS
    kind = request.headers.get(FAULT_HEADER)
    if kind is not None:
        kind = kind.strip().lower()
        if kind not in FAULT_KINDS:
            raise InputError(f"{FAULT_HEADER} must be one of {', '.join(FAULT_KINDS)}")
    delay = request.headers.get(DELAY_HEADER)
    delay_ms = None
    if delay is not None:
        try:
            delay_ms = int(delay)
        except ValueError:
            raise InputError(f"{DELAY_HEADER} must be an integer number of milliseconds") from None
        if not 0 <= delay_ms <= MAX_DELAY_MS:
            raise InputError(f"{DELAY_HEADER} must be between 0 and {MAX_DELAY_MS}")
    return Faults(kind, delay_ms)


async def stall(request: Request, seconds: float = STALL_S) -> bool:
    """Wait up to `seconds`; returns True early once the client disconnects."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
    return False


async def immediate_fault(request: Request, faults: Faults, headers: dict[str, str]) -> Response | None:
    """The response for faults that replace the whole answer, or None."""
    if faults.kind == "429":
        return cf_error(429, CAPACITY, "Capacity temporarily exceeded, please try again.",
                        headers={**headers, "Retry-After": "2"})
    if faults.kind == "500":
        return cf_error(500, INTERNAL, "AiError: Internal server error (injected fault)", headers=headers)
    if faults.kind == "503":
        return cf_error(503, CAPACITY, "Service temporarily unavailable (injected fault)", headers=headers)
    if faults.kind == "malformed-json":
        return Response('{"result": {"response": "unterminated', status_code=200,
                        media_type="application/json", headers=headers)
    if faults.kind == "timeout":
        await stall(request)
        return cf_error(408, TIMEOUT, "AiError: Request timed out (injected fault)", headers=headers)
    return None


class TruncatedResponse(Response):
    """Announces the full Content-Length, sends half of the body, then aborts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise DroppedConnection("drop-stream fault: body truncated")

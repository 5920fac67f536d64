"""Connection guards uvicorn lacks: read deadlines for request headers and bodies, and a connection limit.

Uvicorn (0.54, h11) waits forever for a request that trickles in, and accepts connections until the
process runs out of file descriptors. `guarded_protocol(...)` returns an H11Protocol subclass that
- drops a client whose request headers are not complete within `header_timeout_s` of the connection
  opening or of the request's first byte (answering 408 first), and one whose body is not complete within
  `body_timeout_s` of its headers (the server not reading, under back-pressure, does not count);
- refuses connections to the public socket beyond `max_connections` at once with a 503 in Cloudflare's
  envelope and closes them at once, so their descriptors are freed; connections to the internal socket (the
  gateway's own hop) are not limited, so a full server still answers its cache misses.
It relies only on h11's public connection state (`their_state`, `trailing_data`) and on uvicorn's
`connection_made` / `data_received` / `connection_lost` / `on_response_complete` hooks (pinned in
requirements.txt; tests/test_emulator_workers_ai.py exercises each path over real sockets).
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from cfai.emulator.envelope import CAPACITY, TIMEOUT, cf_error_body
from cfai.emulator.logs import rate_limited_logger

FD_RESERVE = 64  # descriptors kept free for files, the gateway's upstream pool and the listening sockets
MAX_DEFAULT_CONNECTIONS = 256
log = rate_limited_logger("cfai.emulator.connections")


def default_max_connections() -> int:
    """At most 256, and few enough that clients, the gateway's hops (two descriptors each) and a reserve fit
    in this process's open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(8, min(MAX_DEFAULT_CONNECTIONS, (soft - FD_RESERVE) // 3))


def _raw_response(status: int, reason: str, code: int, message: str, extra: str = "") -> bytes:
    body = json.dumps(cf_error_body(code, message)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n")
    return head.encode("ascii") + body


def guarded_protocol(
    *, header_timeout_s: float, body_timeout_s: float, max_connections: int, internal_port: int | None
) -> type[H11Protocol]:
    """An H11Protocol class for one server; its connection count is shared by that server's connections."""
    public: set[GuardedProtocol] = set()
    too_many = _raw_response(503, "Service Unavailable", CAPACITY,
                             f"Too many connections: this emulator serves at most {max_connections} at once",
                             "retry-after: 1\r\n")
    timed_out = _raw_response(408, "Request Timeout", TIMEOUT,
                              f"Request headers not received within {header_timeout_s:g} s")

    class GuardedProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: str | None = None  # "headers" | "body" while a read deadline runs

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if self.server is not None and self.server[1] == internal_port:
                return
            if len(public) >= max_connections:
                log.warning("refused a connection: %d open, the limit is %d", len(public), max_connections)
                transport.write(too_many)
                transport.close()
                return
            public.add(self)
            self._arm("headers")  # the first request's headers are due from the moment the connection opens

        def connection_lost(self, exc: Exception | None) -> None:
            public.discard(self)
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._track()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._track()

        def _track(self) -> None:
            """Set the deadline for what the connection is waiting for now."""
            if self.transport is None or self.transport.is_closing():
                self._disarm()
                return
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                # Back-pressure (the app has not read what it has) is not the client's fault.
                self._arm("body") if not self.flow.read_paused else self._disarm()
            elif state is h11.IDLE and (self.cycle is None or self.conn.trailing_data[0]):
                self._arm("headers")  # no request yet, or part of the next one has arrived
            else:
                self._disarm()  # a request is complete, or the connection idles between requests

        def _arm(self, phase: str) -> None:
            if self._phase == phase:
                return  # a deadline is total, not reset by each byte
            self._disarm()
            seconds = header_timeout_s if phase == "headers" else body_timeout_s
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, None

        def _expired(self, phase: str) -> None:
            self._deadline, self._phase = None, None
            if self.transport.is_closing():
                return
            seconds = header_timeout_s if phase == "headers" else body_timeout_s
            log.warning("dropped a slow client %s: request %s not complete within %g s",
                        _peer(self.client), phase, seconds)
            if phase == "headers" and (self.cycle is None or self.cycle.response_complete):
                self.transport.write(timed_out)  # nothing else is answering on this connection
            # A body that stops: the handler waiting for it sees the client leave (no response is owed).
            self.transport.close()

    return GuardedProtocol


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "(unknown)"

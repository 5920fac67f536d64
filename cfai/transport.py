"""A requests transport that timestamps each request on the wire.

A stopwatch around `session.post()` counts requests' and urllib3's own work (about 0.5 ms a call on
loopback) as latency. Here the clock starts at the first byte written to the socket (or when a new
connection is opened), the header stamp is taken inside http.client as soon as the status line and headers
are parsed, and for whole (non-streamed) responses the body is read right after, before requests builds
its Response object. So the library's overhead stays outside the measured window. The stamps travel on
the urllib3 response as `cfai_timing` (a `WireTiming`).

Limits: a per-read timeout does not end a call whose server trickles a byte every half second. Each call
therefore carries `CallLimits` (a total deadline and a body cap), bound to the calling thread with
`bind_limits` while requests sends it. Every socket read of the response, headers included and later
stream reads too, goes through `_DeadlineReader`, which gives the socket only the time left (never more
than the read timeout) and raises `DeadlineExceeded` once none is left. Whole bodies stop at
`max_body_bytes` (compressed and decompressed alike).

Private parts of http.client, urllib3 and requests this relies on are checked in tests/test_transport.py.
"""

from __future__ import annotations

import http.client
import io
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_clock = time.perf_counter
# Set for the current thread while a request is sent: `eager` (read whole bodies inside http.client, not
# streams; by TimingAdapter.send) and `limits` (the call's CallLimits; by bind_limits).
_request_state = threading.local()

MAX_BODY_BYTES = 32 * 1024 * 1024  # a whole response body; Workers AI answers are kilobytes
_READ_PIECE = 64 * 1024


class DeadlineExceeded(TimeoutError):
    """The call's total deadline passed. A TimeoutError, so urllib3 and requests treat it as a read timeout
    (and close the connection); `CallLimits.expired` tells the two apart."""


class BodyTooLarge(http.client.HTTPException):
    """A whole body beyond the cap; what was read up to the cap is on `partial`."""

    def __init__(self, limit: int, partial: bytes = b"") -> None:
        super().__init__(f"the response body is larger than {limit:,} bytes")
        self.limit = limit
        self.partial = partial


@dataclass
class CallLimits:
    """One call's limits: a total deadline (seconds from creation, perf_counter based) and a body cap."""

    deadline_s: float
    max_body_bytes: int = MAX_BODY_BYTES
    started: float = field(default_factory=_clock)

    @property
    def at(self) -> float:
        return self.started + self.deadline_s

    def remaining(self) -> float:
        return self.at - _clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def wait_for(self, timeout: float | None) -> float:
        """The longest one wait may take now: the timeout, but never past the deadline (at least 1 ms, so a
        socket is never switched to non-blocking by a zero)."""
        left = max(self.remaining(), 0.001)
        return left if timeout is None or not math.isfinite(timeout) else min(timeout, left)

    def check(self) -> None:
        if self.expired:
            raise DeadlineExceeded(f"the call's {self.deadline_s:g} s deadline passed")


@contextmanager
def bind_limits(limits: CallLimits | None) -> Iterator[None]:
    """Apply `limits` to the requests this thread sends inside the block (and to their responses later)."""
    previous = getattr(_request_state, "limits", None)
    _request_state.limits = limits
    try:
        yield
    finally:
        _request_state.limits = previous


def _current_limits() -> CallLimits | None:
    return getattr(_request_state, "limits", None)


class _DeadlineReader(io.RawIOBase):
    """The socket reader of one response (wraps the SocketIO that `sock.makefile` gives http.client):
    before each recv the socket gets only the time left to the deadline, capped by the read timeout."""

    def __init__(self, raw: Any, sock: Any, limits: CallLimits) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._limits = limits
        self._read_timeout = sock.gettimeout()  # what urllib3 set for reads

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._limits.check()
        self._sock.settimeout(self._limits.wait_for(self._read_timeout))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # SocketIO.close drops its reference; the connection closes the socket
        super().close()


@dataclass
class WireTiming:
    start: float  # perf_counter at the first write (or at connect, for a new connection)
    headers_at: float  # perf_counter once status line and headers were parsed
    reused: bool
    connect_ms: float | None  # None when the connection was reused
    body_at: float | None = None  # perf_counter at the last body byte (whole responses only)


class TimedHTTPResponse(http.client.HTTPResponse):
    """http.client's response, stamped the moment its headers are parsed. For a whole (non-streamed)
    response it also reads the body right there, stamps the last byte, and serves the bytes from memory to
    urllib3, so none of urllib3's or requests' bookkeeping falls inside the measured window."""

    cfai_headers_at: float = 0.0
    cfai_body_at: float | None = None
    cfai_body_error: BaseException | None = None
    cfai_limits: CallLimits | None = None
    cfai_body: bytes = b""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        limits = _current_limits()
        if limits is not None:  # every read of this response, now or later (streams), obeys the deadline
            self.cfai_limits = limits
            self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, limits))

    def begin(self) -> None:
        super().begin()
        self.cfai_headers_at = _clock()
        if getattr(_request_state, "eager", False) and self._method != "HEAD":  # type: ignore[attr-defined]
            self._read_eagerly()

    def _read_eagerly(self) -> None:
        limit = self.cfai_limits.max_body_bytes if self.cfai_limits else MAX_BODY_BYTES
        pieces: list[bytes] = []
        size = 0
        try:
            if self.length is not None and self.length > limit:
                raise BodyTooLarge(limit)  # announced too large: not a byte of it is read
            while True:
                piece = super().read1(_READ_PIECE)  # what is there: a cut keeps every byte before it
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
                if size > limit:
                    raise BodyTooLarge(limit)
            if self.length:  # http.client counts down what Content-Length still owes; it returned b"" early
                raise http.client.IncompleteRead(b"".join(pieces), self.length)
        except BodyTooLarge as exc:
            self.cfai_body_error = exc
            exc.partial = b"".join(pieces)[:limit]
            pieces = []
        except (OSError, http.client.HTTPException) as exc:  # timeout, reset, deadline: keep what arrived
            self.cfai_body_error = exc
        body = self.cfai_body = b"".join(pieces)
        self.cfai_body_at = _clock()
        if self.cfai_body_error is not None and self.fp is not None:
            self._close_conn()  # type: ignore[attr-defined]  # half-read: must not carry another request
        # Hand the bytes on as if they were still on the wire: a plain body of known length.
        self.fp = io.BytesIO(body)  # type: ignore[assignment]
        self.length = len(body)
        self.chunked = False


class _TimedMixin:
    response_class = TimedHTTPResponse
    _cfai_connect_start: float | None = None
    _cfai_connect_end: float | None = None
    _cfai_first_write: float | None = None
    _cfai_held: bytes | None = None

    def connect(self) -> None:
        self._cfai_connect_start = _clock()
        super().connect()  # type: ignore[misc]
        self._cfai_connect_end = _clock()

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> None:
        self._cfai_first_write = None
        # urllib3 writes the header block and a bytes body in two send() calls: two packets, and on the
        # server two wake-ups. Holding the headers for the body makes it one write, as http.client does.
        self._cfai_held = b"" if isinstance(body, bytes) and body else None
        try:
            super().request(method, url, body, *args, **kwargs)  # type: ignore[misc]
        finally:
            self._flush_held()

    def send(self, data: Any) -> None:
        if self._cfai_held == b"" and isinstance(data, bytes):
            self._cfai_held = data  # the header block: wait for the body
            return
        if self._cfai_held:
            data = self._cfai_held + data if isinstance(data, bytes) else data
            if not isinstance(data, bytes):
                self._flush_held()
        self._cfai_held = None
        self._write(data)

    def _flush_held(self) -> None:
        held, self._cfai_held = self._cfai_held, None
        if held:
            self._write(held)

    def _write(self, data: Any) -> None:
        if self._cfai_first_write is None:
            self._cfai_first_write = _clock()
        limits = _current_limits()
        sock = getattr(self, "sock", None)
        if limits is not None and sock is not None:  # a server that never reads cannot hold the call either
            limits.check()
            sock.settimeout(limits.wait_for(sock.gettimeout()))
        super().send(data)  # type: ignore[misc]

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        original = getattr(response, "_original_response", None)
        headers_at = getattr(original, "cfai_headers_at", 0.0) or _clock()
        if getattr(original, "cfai_body_error", None) is not None:
            self.close()  # type: ignore[attr-defined]  # half-read: never reuse this connection
        first_write = self._cfai_first_write or headers_at
        if self._cfai_connect_start is not None:  # a new connection: its set-up counts too
            start = min(self._cfai_connect_start, first_write)
            connect_ms = ((self._cfai_connect_end or start) - self._cfai_connect_start) * 1000
            self._cfai_connect_start = None  # the next request on this connection reuses it
            response.cfai_timing = WireTiming(start, headers_at, False, connect_ms)
        else:
            response.cfai_timing = WireTiming(first_write, headers_at, True, None)
        response.cfai_timing.body_at = getattr(original, "cfai_body_at", None)
        return response


class TimedHTTPConnection(_TimedMixin, HTTPConnection):  # type: ignore[misc]  # response_class narrowed
    pass


class TimedHTTPSConnection(_TimedMixin, HTTPSConnection):  # type: ignore[misc]  # response_class narrowed
    pass


class TimedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = TimedHTTPConnection


class TimedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = TimedHTTPSConnection


class TimingAdapter(HTTPAdapter):
    """HTTPAdapter whose pools create timed connections. For whole responses, a failure while reading the
    body is kept on the Response as `cfai_body_error` (with the status and headers that did arrive)
    instead of being raised."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": TimedHTTPConnectionPool,
            "https": TimedHTTPSConnectionPool,
        }

    def send(self, request: PreparedRequest, stream: bool = False, *args: Any, **kwargs: Any) -> Response:
        _request_state.eager = not stream
        try:
            return super().send(request, stream, *args, **kwargs)
        finally:
            _request_state.eager = False

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        response = super().build_response(req, resp)
        original = getattr(resp, "_original_response", None)
        if isinstance(original, TimedHTTPResponse) and original.cfai_body_at is not None:
            # The body is already in memory: take it now (with any error) instead of letting requests
            # read it later through its generators. Decoded in pieces, so a gzip bomb stops at the cap.
            limit = original.cfai_limits.max_body_bytes if original.cfai_limits else MAX_BODY_BYTES
            error: BaseException | None = original.cfai_body_error
            if error is not None:  # cut short: keep the bytes as they came (a partial body cannot be decoded)
                response._content = original.cfai_body
            else:
                try:
                    response._content = read_capped(resp, limit)
                except Exception as exc:  # noqa: BLE001 - e.g. urllib3's DecodeError for a broken gzip body
                    response._content, error = b"", exc
                if response._content is None:
                    response._content, error = b"", BodyTooLarge(limit)
            response._content_consumed = True  # type: ignore[attr-defined]  # private: see test_transport
            response.cfai_body_error = error  # type: ignore[attr-defined]
        return response


def read_capped(raw: Any, limit: int) -> bytes | None:
    """All of a urllib3 response's decoded body, or None once it passes `limit` bytes (reading stops;
    at once when Content-Length announces more)."""
    announced = str(raw.headers.get("content-length") or "").strip()
    if announced.isdigit() and int(announced) > limit:
        raw.close()
        return None
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = raw.read(_READ_PIECE, decode_content=True)
        if not piece:
            return b"".join(pieces)
        size += len(piece)
        if size > limit:
            raw.close()
            return None
        pieces.append(piece)


def wire_timing(raw_response: Any) -> WireTiming | None:
    return getattr(raw_response, "cfai_timing", None)


def now() -> float:
    return _clock()

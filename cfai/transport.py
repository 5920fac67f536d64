"""A requests transport that timestamps each request on the wire.

A stopwatch around `session.post()` counts requests' and urllib3's own work (about 0.5 ms a call on
loopback) as latency. Here the clock starts at the first byte written to the socket (or when a new
connection is opened), the header stamp is taken inside http.client as soon as the status line and headers
are parsed, and for whole (non-streamed) responses the body is read right after, before requests builds
its Response object. So the library's overhead stays outside the measured window. The stamps travel on
the urllib3 response as `cfai_timing` (a `WireTiming`).
"""

from __future__ import annotations

import http.client
import io
import threading
import time
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_clock = time.perf_counter
# Set by TimingAdapter.send for the current thread: read whole bodies inside http.client (not streams).
_request_state = threading.local()


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

    def begin(self) -> None:
        super().begin()
        self.cfai_headers_at = _clock()
        if getattr(_request_state, "eager", False) and self._method != "HEAD":
            self._read_eagerly()

    def _read_eagerly(self) -> None:
        try:
            body = super().read()
        except http.client.IncompleteRead as exc:
            body, self.cfai_body_error = exc.partial, exc
        except (OSError, http.client.HTTPException) as exc:  # timeout, reset: keep the status and headers
            body, self.cfai_body_error = b"", exc
        self.cfai_body_at = _clock()
        # Hand the bytes on as if they were still on the wire: a plain body of known length.
        self.fp = io.BytesIO(body)  # type: ignore[assignment]
        self.length = len(body)
        self.chunked = False  # type: ignore[assignment]


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
        super().send(data)  # type: ignore[misc]

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        original = getattr(response, "_original_response", None)
        headers_at = getattr(original, "cfai_headers_at", 0.0) or _clock()
        if getattr(original, "cfai_body_error", None) is not None:
            self.close()  # half-read: never reuse this connection
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


class TimedHTTPConnection(_TimedMixin, HTTPConnection):
    pass


class TimedHTTPSConnection(_TimedMixin, HTTPSConnection):
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
            # read it later through its generators.
            response._content = resp.read(decode_content=True)
            response._content_consumed = True
            response.cfai_body_error = original.cfai_body_error  # type: ignore[attr-defined]
        return response


def wire_timing(raw_response: Any) -> WireTiming | None:
    return getattr(raw_response, "cfai_timing", None)


def now() -> float:
    return _clock()

"""A requests transport that timestamps each request at the connection level.

Timing around `session.post()` would count requests' own work (about 0.4 ms per call on loopback) as
latency. Here the clock starts when urllib3 writes the request (or opens the connection, when it is new)
and stops when the status line and headers have been parsed, so the library's overhead stays outside the
measured window. The stamps travel on the urllib3 response as `cfai_timing`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_clock = time.perf_counter


@dataclass(frozen=True)
class WireTiming:
    start: float  # perf_counter at connect (new connection) or at request write (reused)
    headers_at: float  # perf_counter once status line and headers were parsed
    reused: bool
    connect_ms: float | None  # None when the connection was reused


class _TimedMixin:
    _cfai_connect_start: float | None = None
    _cfai_connect_end: float | None = None
    _cfai_request_start: float = 0.0

    def connect(self) -> None:
        self._cfai_connect_start = _clock()
        super().connect()  # type: ignore[misc]
        self._cfai_connect_end = _clock()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._cfai_request_start = _clock()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        headers_at = _clock()
        fresh = self._cfai_connect_start is not None
        if fresh:
            start = min(self._cfai_connect_start, self._cfai_request_start)  # type: ignore[type-var]
            connect_ms = ((self._cfai_connect_end or start) - self._cfai_connect_start) * 1000  # type: ignore[operator]
        else:
            start, connect_ms = self._cfai_request_start, None
        self._cfai_connect_start = None  # the next request on this connection reuses it
        response.cfai_timing = WireTiming(start, headers_at, not fresh, connect_ms)
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
    """HTTPAdapter whose pools create timed connections; `max_retries=0`: retries are ours, visible."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": TimedHTTPConnectionPool,
            "https": TimedHTTPSConnectionPool,
        }


def wire_timing(raw_response: Any) -> WireTiming | None:
    return getattr(raw_response, "cfai_timing", None)


def now() -> float:
    return _clock()

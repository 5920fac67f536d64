"""The timing transport (cfai/transport.py), made safe to upgrade.

It subclasses and reaches into http.client, urllib3 and requests. Each private part it relies on is
checked here, one test per assumption, so an upgrade fails loudly in this file rather than subtly in the
numbers. Then the timing windows themselves, against a loopback server with known delays.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import socket

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.response import HTTPResponse as Urllib3Response

from cfai.client import Client
from cfai.config import local_connection
from cfai.transport import (
    CallLimits,
    TimedHTTPConnection,
    TimedHTTPConnectionPool,
    TimedHTTPResponse,
    TimingAdapter,
    _DeadlineReader,
    bind_limits,
    read_capped,
    wire_timing,
)
from tests.conftest import ROOT
from tests.hostile_server import HostileServer

SST2 = "@cf/huggingface/distilbert-sst-2-int8"


@pytest.fixture
def ok_server():
    with HostileServer("ok") as server:
        yield server


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", TimingAdapter(max_retries=0))
    return session


# --- http.client ---------------------------------------------------------------------------------------
def test_http_client_response_parts_the_transport_uses(ok_server):
    """TimedHTTPResponse overrides __init__(sock, ...) and begin(), and reads the body with read1() while
    `length` counts down; `fp` is a BufferedReader whose raw SocketIO can be detached; `_method` is set by
    __init__; `_close_conn()` drops fp."""
    host, port = ok_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = http.client.HTTPResponse(sock, method="GET")
        assert isinstance(response.fp, io.BufferedReader) and response._method == "GET"
        response.begin()
        assert response.length is not None and response.length > 0 and response.chunked is False
        first = response.read1(5)
        assert len(first) == 5 and response.length > 0  # counts down what is still owed
        rest = response.read1(1 << 20)
        while response.length:
            rest += response.read1(1 << 20)
        assert json.loads(first + rest)["result"]["response"] == "fine"
        assert response.read1(10) == b""
        response._close_conn()
        assert response.fp is None
    with socket.create_connection((host, int(port))) as sock:
        raw = sock.makefile("rb").detach()
        assert isinstance(raw, socket.SocketIO)
        raw.close()


def test_http_client_getresponse_builds_the_connections_response_class():
    assert "response_class" in vars(http.client.HTTPConnection)
    assert TimedHTTPConnection.response_class is TimedHTTPResponse


# --- urllib3 -------------------------------------------------------------------------------------------
def test_urllib3_version_is_the_pinned_one():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = next(line.split("==")[1].strip() for line in lines if line.startswith("urllib3=="))
    assert urllib3.__version__ == pinned


def test_urllib3_connection_hooks_exist():
    """connect(), request(method, url, body, ...), send(data) and getresponse() on urllib3's
    HTTPConnection (the mixin wraps each); `sock` and a settable `timeout`."""
    for name in ("connect", "request", "send", "getresponse"):
        assert callable(getattr(HTTPConnection, name))
    assert issubclass(TimedHTTPConnection, HTTPConnection)
    conn = TimedHTTPConnection("127.0.0.1", 1)
    conn.timeout = 1.5
    assert conn.timeout == 1.5 and conn.sock is None


def test_urllib3_sends_the_header_block_and_body_in_two_sends_which_the_mixin_joins(ok_server):
    writes: list[bytes] = []

    class Recording(TimedHTTPConnection):
        def _write(self, data):  # noqa: ANN001
            writes.append(bytes(data))
            super()._write(data)

    calls: list[bytes] = []
    original_send = HTTPConnection.send

    def counting_send(self, data):  # noqa: ANN001
        calls.append(bytes(data))
        return original_send(self, data)

    host, port = ok_server.base_url.removeprefix("http://").split(":")
    conn = Recording(host, int(port))
    HTTPConnection.send = counting_send  # type: ignore[method-assign]
    try:
        conn.request("POST", "/x", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    finally:
        HTTPConnection.send = original_send  # type: ignore[method-assign]
    response = conn.getresponse()
    response.read()
    conn.close()
    assert len(writes) == 1 and writes[0].endswith(b'{"a":1}') and writes[0].startswith(b"POST /x")
    assert len(calls) == 1  # one socket write reached urllib3's send


def test_urllib3_pool_and_pool_manager_hooks():
    """`ConnectionCls` on the pool, `pool_classes_by_scheme` on requests' pool manager."""
    assert TimedHTTPConnectionPool.ConnectionCls is TimedHTTPConnection
    assert issubclass(TimedHTTPConnectionPool, HTTPConnectionPool)
    adapter = TimingAdapter()
    assert adapter.poolmanager.pool_classes_by_scheme["http"] is TimedHTTPConnectionPool
    pool = adapter.poolmanager.connection_from_url("http://127.0.0.1:9/")
    assert isinstance(pool, TimedHTTPConnectionPool)


def test_urllib3_response_keeps_the_http_client_response_and_sets_the_read_timeout_first(ok_server):
    """`_original_response` is our TimedHTTPResponse, and the socket's timeout when it is built is the read
    timeout (the deadline reader caps each recv by it)."""
    seen: list[float | None] = []
    original_init = _DeadlineReader.__init__

    def spy(self, raw, sock, limits):  # noqa: ANN001
        seen.append(sock.gettimeout())
        original_init(self, raw, sock, limits)

    _DeadlineReader.__init__ = spy  # type: ignore[method-assign]
    try:
        with _session() as session, bind_limits(CallLimits(deadline_s=30)):
            response = session.get(ok_server.base_url, timeout=(4.0, 7.5), stream=True)
            raw = response.raw
            assert isinstance(raw, Urllib3Response)
            assert isinstance(raw._original_response, TimedHTTPResponse)
            response.close()
    finally:
        _DeadlineReader.__init__ = original_init  # type: ignore[method-assign]
    assert seen == [7.5]


def test_urllib3_read_with_an_amount_bounds_decoded_output():
    """read_capped relies on read(amt, decode_content=True) never returning more than amt decoded bytes,
    so a gzip bomb stops at the cap (urllib3 >= 2.6)."""
    bomb = gzip.compress(b"\0" * (8 << 20))
    raw = Urllib3Response(body=io.BytesIO(bomb), headers={"content-encoding": "gzip"}, preload_content=False)
    assert len(raw.read(65536, decode_content=True)) <= 65536
    raw = Urllib3Response(body=io.BytesIO(bomb), headers={"content-encoding": "gzip"}, preload_content=False)
    assert read_capped(raw, 1 << 20) is None
    raw = Urllib3Response(body=io.BytesIO(bomb), headers={"content-encoding": "gzip"}, preload_content=False)
    assert read_capped(raw, 16 << 20) == b"\0" * (8 << 20)


# --- requests ------------------------------------------------------------------------------------------
def test_requests_adapter_hooks_and_response_content_slots():
    """TimingAdapter overrides init_poolmanager, send(request, stream, ...) and build_response(req, resp);
    it fills Response._content / _content_consumed, which `.content` then returns as is."""
    for name in ("init_poolmanager", "send", "build_response"):
        assert callable(getattr(HTTPAdapter, name))
    response = requests.Response()
    response._content, response._content_consumed = b"body", True
    assert response.content == b"body"


def test_requests_passes_a_connect_read_pair_to_urllib3(ok_server):
    captured = {}
    original = TimedHTTPConnectionPool.urlopen

    def spy(self, method, url, *args, **kwargs):  # noqa: ANN001
        captured["timeout"] = kwargs.get("timeout")
        return original(self, method, url, *args, **kwargs)

    TimedHTTPConnectionPool.urlopen = spy  # type: ignore[method-assign]
    try:
        with _session() as session:
            session.get(ok_server.base_url, timeout=(3.0, 9.0))
    finally:
        TimedHTTPConnectionPool.urlopen = original  # type: ignore[method-assign]
    timeout = captured["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (3.0, 9.0)


def test_whole_responses_are_read_inside_the_transport_and_streams_are_not(ok_server):
    with _session() as session:
        whole = session.get(ok_server.base_url)
        assert whole._content_consumed and wire_timing(whole.raw).body_at is not None
        streamed = session.get(ok_server.base_url, stream=True)
        assert not streamed._content_consumed and wire_timing(streamed.raw).body_at is None
        streamed.close()


# --- the timing windows --------------------------------------------------------------------------------
@pytest.mark.parametrize(("headers_ms", "body_ms"), [(150, 250), (300, 0), (0, 300)])
def test_ttfb_and_total_cover_the_servers_known_delays(headers_ms, body_ms):
    """Headers after N ms, body after M more: TTFB >= N and total >= N + M. Upper bounds are loose (one
    second of slack): this checks what is timed, not how fast the machine is."""
    with HostileServer(f"delayed:{headers_ms},{body_ms}") as server, Client(local_connection(server.base_url)) as c:
        result = c.run(SST2, {"text": "x"})
    assert result.ok, result.error
    t = result.timings
    assert headers_ms <= t.ttfb_ms < headers_ms + 1000
    assert headers_ms + body_ms <= t.total_ms < headers_ms + body_ms + 1000
    assert t.total_ms - t.ttfb_ms >= body_ms * 0.9  # the body wait is after the headers, not inside TTFB

"""A small misbehaving HTTP server on 127.0.0.1 for client tests: every request, whatever its path, gets
the behaviour the server was started with (so every client call can be pointed at it).

Behaviours: empty error bodies, bytes trickled slowly, SSE streams that never end, endless or huge bodies,
gzip bombs, redirects, broken HTTP, and responses with known delays (for the transport's timing windows).
Loops stop when the client goes away or the server stops.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive costs ~40 ms per request (TESTING.md)

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def _stop(self) -> threading.Event:
        return self.server.stopping  # type: ignore[attr-defined]

    def _raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self._raw(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server = self.server
        server.requests.append({"method": self.command, "path": self.path,  # type: ignore[attr-defined]
                                "headers": dict(self.headers)})
        mode: str = server.mode  # type: ignore[attr-defined]
        name, _, arg = mode.partition(":")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: as tested
            getattr(self, f"_mode_{name.replace('-', '_')}")(arg)

    do_GET = _answer
    do_POST = _answer

    # --- behaviours ------------------------------------------------------------------------------------
    def _mode_empty(self, status: str) -> None:
        self.send_response(int(status))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _mode_trickle(self, interval: str) -> None:
        """A JSON body announced whole, sent a byte at a time."""
        body = json.dumps({"success": True, "result": {"response": "x" * 200}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            if self._stop.wait(float(interval or 0.5)):
                return
            self._raw(bytes([byte]))

    def _mode_trickle_headers(self, interval: str) -> None:
        self._raw(b"HTTP/1.1 200 OK\r\n")
        for i in range(1000):
            if self._stop.wait(float(interval or 0.5)):
                return
            self._raw(f"x-slow-{i}: {i}\r\n".encode())

    def _mode_stall(self, _: str) -> None:
        self._stop.wait(60)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _mode_sse_no_done(self, interval: str) -> None:
        """Text events forever, never [DONE]."""
        self._sse_start()
        i = 0
        while not self._stop.wait(float(interval or 0.1)):
            self._chunk(f'data: {{"response":"w{i} "}}\n\n'.encode())
            i += 1

    def _mode_sse_keepalive(self, interval: str) -> None:
        """One text event, then only keep-alive comments, forever."""
        self._sse_start()
        self._chunk(b'data: {"response":"first"}\n\n')
        while not self._stop.wait(float(interval or 0.2)):
            self._chunk(b": keep-alive\n\n")

    def _mode_sse_long_line(self, size: str) -> None:
        """A data line of `size` bytes that never ends, sent fast."""
        self._sse_start()
        self._chunk(b'data: {"response":"')
        piece = b"z" * 65536
        for _ in range(int(size) // len(piece) + 1):
            if self._stop.is_set():
                return
            self._chunk(piece)
        self._stop.wait(30)

    def _mode_sse_flood(self, _: str) -> None:
        """Valid events, as fast as the socket takes them, never [DONE]."""
        self._sse_start()
        event = b'data: {"response":"' + b"f" * 8000 + b'"}\n\n'
        while not self._stop.is_set():
            self._chunk(event * 8)

    def _mode_endless(self, _: str) -> None:
        """A chunked JSON-typed body that never ends."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"[" * 65536
        while not self._stop.is_set():
            self._chunk(piece)

    def _mode_huge_length(self, _: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(10 * 1024**3))
        self.end_headers()
        self._raw(b"{")
        self._stop.wait(30)

    def _mode_gzip_bomb(self, size: str) -> None:
        body = gzip.compress(b" " * int(size), compresslevel=9)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._raw(body)

    def _mode_redirect(self, status: str) -> None:
        self.send_response(int(status or 302))
        self.send_header("Location", "https://elsewhere.example/client/v4")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _mode_not_http(self, _: str) -> None:
        self._raw(b"SSH-2.0-OpenSSH_9.6\r\n")
        self.close_connection = True

    def _mode_nested(self, _: str) -> None:
        body = b"[" * 200_000 + b"]" * 200_000
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._raw(body)

    def _mode_delayed(self, spec: str) -> None:
        """`delayed:N,M`: headers after N ms, then the body after M more ms (one JSON answer)."""
        headers_ms, body_ms = (int(x) for x in spec.split(","))
        body = json.dumps({"success": True, "result": {"response": "on time"}}).encode()
        time.sleep(headers_ms / 1000)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        time.sleep(body_ms / 1000)
        self._raw(body)

    def _mode_ok(self, _: str) -> None:
        body = json.dumps({"success": True, "result": {"response": "fine"}, "errors": [], "messages": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._raw(body)

    def _mode_body(self, content_type: str) -> None:
        """`body:<content type>`: a 200 with the server's `body` bytes (a hostile JSON body or SSE stream)."""
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._raw(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class HostileServer:
    """`with HostileServer("trickle:0.5") as server: ... server.base_url ...`; `server.mode` may change."""

    def __init__(self, mode: str, body: bytes = b"") -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.mode = mode  # type: ignore[attr-defined]
        self.httpd.body = body  # type: ignore[attr-defined]  # what mode `body:` answers
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.stopping = threading.Event()  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        return self.httpd.mode  # type: ignore[attr-defined]

    @mode.setter
    def mode(self, value: str) -> None:
        self.httpd.mode = value  # type: ignore[attr-defined]

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.stopping.set()  # type: ignore[attr-defined]
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

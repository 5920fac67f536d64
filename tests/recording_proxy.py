"""A loopback reverse proxy that records every request (method, path, headers, body) before forwarding it to
an upstream (an emulator), or answers 404 itself when it has none: a stand-in for "another host"."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}


class RecordingProxy:
    """Responses are buffered (a stream arrives whole; timing is not under test)."""

    def __init__(self, name: str, upstream: str | None = None):
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        up = urlsplit(upstream) if upstream else None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                threading.current_thread().name = f"recording-proxy-{proxy.name}"
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.requests.append({
                        "method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                        "body": body or b"",
                        "authorization": self.headers.get("Authorization"),
                        "cf-aig-authorization": self.headers.get("cf-aig-authorization"),
                    })
                if up is None:
                    data, status, headers = b'{"success":false,"errors":[{"code":404,"message":"nothing here"}]}', \
                        404, [("Content-Type", "application/json")]
                else:
                    upstream_conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                    try:
                        sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                        upstream_conn.request(self.command, self.path, body=body, headers=sent)
                        response = upstream_conn.getresponse()
                        data, status, headers = response.read(), response.status, response.getheaders()
                    finally:
                        upstream_conn.close()
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name=f"recording-proxy-{name}-server")
        self._thread.start()

    def everything(self) -> str:
        """All recorded requests as one text, to search for a secret."""
        with self._lock:
            return "\n".join(f"{r['method']} {r['path']} {r['headers']} {r['body']!r}" for r in self.requests)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

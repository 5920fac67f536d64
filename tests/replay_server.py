"""A real loopback HTTP server that answers with recorded Cloudflare responses (contract fixtures).

The client is tested against bytes Cloudflare documented, over real HTTP, without reaching Cloudflare.
Each request path `/case/<name>/...` answers the fixture `<name>`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
CASES: dict[str, Any] = {
    k: v for k, v in json.loads((FIXTURES / "cloudflare_responses.json").read_text()).items() if not k.startswith("_")
}
STREAMS = {"stream_workers_ai": "stream_workers_ai.txt", "stream_openai_chunks": "stream_openai_chunks.txt"}
# Contract fixtures of the newer response shapes (tests/fixtures/shapes/): `/shape/<name>/...` answers one.
SHAPES: dict[str, Any] = {path.stem: json.loads(path.read_text()) for path in (FIXTURES / "shapes").glob("*.json")}


def shape_payload(fixture: dict[str, Any]) -> bytes:
    """A recorded stream as SSE: Responses events carry their `type` as the event name; chat chunks end in
    [DONE], as Cloudflare's OpenAI-compatible streams do."""
    out = []
    for event in fixture["events"]:
        if event == "[DONE]":  # the end marker travels bare (`data: [DONE]`), not as a JSON string
            out.append("data: [DONE]\n\n")
            continue
        name = event.get("type") if isinstance(event, dict) else None
        out.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(event)}\n\n")
    if not any(e == "[DONE]" or (isinstance(e, dict) and str(e.get("type", "")).startswith("response."))
               for e in fixture["events"]):
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive costs ~40 ms per request (TESTING.md)

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests.append({"path": self.path, "headers": dict(self.headers)})  # type: ignore[attr-defined]
        parts = self.path.split("/")
        name = parts[2] if len(parts) > 2 and parts[1] in ("case", "shape") else ""
        shape = SHAPES.get(name) if parts[1:2] == ["shape"] else None
        if shape is not None and "events" not in shape:
            data = json.dumps(shape["body"]).encode()
            self.send_response(shape.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if name in STREAMS or shape is not None:
            payload = shape_payload(shape) if shape is not None else (FIXTURES / STREAMS[name]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), 7):  # odd-sized chunks cut events mid-way
                piece = payload[i : i + 7]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        case = CASES.get(name)
        if case is None:
            self.send_error(404)
            return
        data = case["raw"].encode() if "raw" in case else json.dumps(case["body"]).encode()
        self.send_response(case["status"])
        self.send_header("Content-Type", case.get("content_type", "application/json"))
        for key, value in case.get("headers", {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer


class ReplayServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

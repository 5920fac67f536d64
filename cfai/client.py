"""The one client for Workers AI and AI Gateway (direct and gateway routes), built on requests.Session.

INTERFACE STUB: the bodies are being written now; the types and signatures below are the contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cfai.config import Connection
from cfai.errors import CloudflareError

Route = Literal["direct", "gateway"]


@dataclass(frozen=True)
class GatewayOptions:
    """AI Gateway per-request options, sent as cf-aig-* headers on the gateway route only."""

    cache_ttl: int | None = None  # cf-aig-cache-ttl, seconds (60..2592000)
    skip_cache: bool = False  # cf-aig-skip-cache: true
    cache_key: str | None = None  # cf-aig-cache-key
    metadata: Mapping[str, str | int | float | bool] | None = None  # cf-aig-metadata (<= 5 flat entries)
    event_id: str | None = None  # cf-aig-event-id
    collect_log: bool | None = None  # cf-aig-collect-log: false
    request_timeout_ms: int | None = None  # cf-aig-request-timeout

    def headers(self) -> dict[str, str]:
        raise NotImplementedError


@dataclass
class Timings:
    """What was timed: from just before the request is written to the socket (after the body is encoded)
    to the response headers (ttfb_ms), to the first streamed event (first_token_ms, streams only), and to
    the last body byte (total_ms). `started_at` is wall-clock epoch seconds."""

    started_at: float = 0.0
    ttfb_ms: float | None = None
    total_ms: float | None = None
    first_token_ms: float | None = None
    connection_reused: bool | None = None


@dataclass
class Result:
    """One call's outcome. `output` is the envelope's `result` (or the whole body on OpenAI routes)."""

    ok: bool
    status: int  # HTTP status, 0 when no response arrived
    url: str  # never contains the token
    route: Route
    model: str = ""
    output: Any = None
    usage: dict[str, int] | None = None
    cache_status: str | None = None  # cf-aig-cache-status: HIT | MISS (gateway only)
    log_id: str | None = None  # cf-aig-log-id
    backend: str | None = None  # emulator only: which backend answered (cf-emulator-backend header)
    timings: Timings = field(default_factory=Timings)
    headers: dict[str, str] = field(default_factory=dict)  # response headers, lower-cased
    bytes_received: int = 0
    error: CloudflareError | None = None
    interrupted: bool = False  # a stream that ended without [DONE]
    request_body: dict[str, Any] | None = None  # what we sent (for "view request"); never holds the token
    raw_body: str = ""  # response body text (for streams: the concatenated text)

    @property
    def text(self) -> str:
        """The generated text: `result.response`, else `choices[0].text`, else `choices[0].message.content`."""
        raise NotImplementedError

    @property
    def tokens_per_second(self) -> float | None:
        raise NotImplementedError

    def raise_for_error(self) -> Result:
        if self.error is not None:
            raise self.error
        return self


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429/5xx/network errors with exponential backoff, honouring Retry-After. Off by default
    because the comparison runner measures latency: a retry there would hide a failure."""

    max_retries: int = 0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


class Stream:
    """Iterate for text chunks as they arrive (works with st.write_stream); afterwards `.result` holds the
    final Result with the full text in raw_body, usage, timings (first_token_ms), and `interrupted`."""

    result: Result

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Client:
    def __init__(self, connection: Connection, retry: RetryPolicy | None = None):
        self.connection = connection
        self.retry = retry or RetryPolicy()

    def run(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        route: Route = "direct",
        gateway: GatewayOptions | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Result:
        """POST ai/run/{model} (or the gateway's workers-ai/{model}). Never raises for HTTP/network
        errors: they are in `result.error`. Use `.raise_for_error()` to raise."""
        raise NotImplementedError

    def stream(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        route: Route = "direct",
        gateway: GatewayOptions | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Stream:
        """Same as run with `"stream": true`; text chunks as they arrive."""
        raise NotImplementedError

    def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        route: Route = "direct",
        gateway: GatewayOptions | None = None,
        stream: bool = False,
        **params: Any,
    ) -> Result | Stream:
        """OpenAI-compatible /ai/v1/chat/completions."""
        raise NotImplementedError

    def list_models(self, task: str | None = None, search: str | None = None, per_page: int = 100) -> list[dict]:
        raise NotImplementedError

    def model_schema(self, model: str) -> dict:
        raise NotImplementedError

    def verify_token(self) -> Result:
        raise NotImplementedError

    def gateway_logs(self, gateway_id: str | None = None, **filters: Any) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def to_json_body(inputs: Mapping[str, Any]) -> bytes:
    return json.dumps(inputs, separators=(",", ":"), ensure_ascii=False).encode()

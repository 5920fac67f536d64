"""The one client for Workers AI and AI Gateway (direct and gateway routes), built on requests.Session.

Every call returns a `Result` rather than raising for HTTP or network failures, because the pages and the
comparison runner treat a failure as data to show. `Result.raise_for_error()` raises the typed error when
a caller prefers exceptions. Timings come from the transport (see `cfai.transport`): what is timed is the
wire, not this library.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from urllib3.exceptions import ReadTimeoutError

from cfai import __version__
from cfai.config import Connection
from cfai.errors import (
    CloudflareError,
    ConnectionDroppedError,
    MalformedResponseError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    StreamInterruptedError,
    error_from_response,
    scrub_secrets,
)
from cfai.sse import SSEParser, delta_from_event
from cfai.transport import TimingAdapter, now, wire_timing

Route = Literal["direct", "gateway"]
USER_AGENT = f"workers-ai-lab/{__version__}"
MIN_CACHE_TTL, MAX_CACHE_TTL = 60, 2_592_000


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

    def validate(self) -> list[str]:
        problems = []
        if self.cache_ttl is not None and not MIN_CACHE_TTL <= self.cache_ttl <= MAX_CACHE_TTL:
            problems.append(f"Cache TTL must be {MIN_CACHE_TTL} to {MAX_CACHE_TTL} seconds.")
        if self.metadata:
            if len(self.metadata) > 5:
                problems.append("Gateway metadata takes at most 5 entries.")
            if any(not isinstance(v, str | int | float | bool) for v in self.metadata.values()):
                problems.append("Gateway metadata values must be strings, numbers or booleans.")
        return problems

    def headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.cache_ttl is not None:
            h["cf-aig-cache-ttl"] = str(int(self.cache_ttl))
        if self.skip_cache:
            h["cf-aig-skip-cache"] = "true"
        if self.cache_key:
            h["cf-aig-cache-key"] = self.cache_key
        if self.metadata:
            h["cf-aig-metadata"] = json.dumps(dict(self.metadata), separators=(",", ":"))
        if self.event_id:
            h["cf-aig-event-id"] = self.event_id
        if self.collect_log is False:
            h["cf-aig-collect-log"] = "false"
        if self.request_timeout_ms:
            h["cf-aig-request-timeout"] = str(int(self.request_timeout_ms))
        return h


@dataclass
class Timings:
    """What was timed: from just before the request is written to the socket (or the connection is opened,
    when it is new) to the parsed response headers (ttfb_ms), to the first streamed text (first_token_ms,
    streams only), and to the last body byte (total_ms). `started_at` is wall-clock epoch seconds."""

    started_at: float = 0.0
    ttfb_ms: float | None = None
    total_ms: float | None = None
    first_token_ms: float | None = None
    connection_reused: bool | None = None
    connect_ms: float | None = None


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
    request_headers: dict[str, str] = field(default_factory=dict)  # Authorization masked
    raw_body: str = ""  # response body text (for streams: the concatenated text)
    result_info: dict[str, Any] | None = None  # pagination of list endpoints
    attempts: int = 1
    streamed: bool = False

    @property
    def text(self) -> str:
        """The generated text: `result.response`, else `choices[0].text`, else `choices[0].message.content`."""
        return extract_text(self.output)

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens per second of generation: after the first token for streams (decode speed),
        over the whole call otherwise; None for a cache hit."""
        tokens = (self.usage or {}).get("completion_tokens")
        total = self.timings.total_ms
        if not tokens or not total or self.cache_status == "HIT":
            return None  # a cache hit replays tokens generated earlier: no generation speed to speak of
        first = self.timings.first_token_ms
        if first is not None and tokens > 1 and total > first:
            return (tokens - 1) / ((total - first) / 1000)
        return tokens / (total / 1000)

    def raise_for_error(self) -> Result:
        if self.error is not None:
            raise self.error
        return self


def extract_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if not isinstance(output, dict):
        return ""
    if "response" in output and output["response"] is not None:
        response = output["response"]
        return response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        if isinstance(choice.get("text"), str):
            return choice["text"]
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
    return ""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429/5xx/connection errors with exponential backoff, honouring Retry-After. Off by
    default because the comparison runner measures latency: a retry there would hide a failure."""

    max_retries: int = 0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, error: CloudflareError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after_s)
        return min(self.backoff_s * (2**attempt), self.max_backoff_s)

    @staticmethod
    def retryable(error: CloudflareError) -> bool:
        return isinstance(error, RateLimitError | ServerError | NetworkError) or error.status in (502, 503, 504)


def _usage_from(output: Any, body: Any) -> dict[str, int] | None:
    for source in (output, body):
        if isinstance(source, dict) and isinstance(source.get("usage"), dict):
            return source["usage"]
    return None


class Stream:
    """Iterate for text chunks as they arrive (works with st.write_stream); afterwards `.result` holds the
    final Result: full text in `raw_body` and `.text`, usage, timings (first_token_ms), `interrupted`."""

    def __init__(self, result: Result, response: requests.Response | None, start: float):
        self.result = result
        self._response = response
        self._start = start
        self._consumed = response is None

    def __iter__(self) -> Iterator[str]:
        if self._consumed:
            if self.result.ok and self.result.text and not self.result.streamed:
                yield self.result.text  # a JSON answer to a stream request: show it whole
            return
        self._consumed = True
        result, response = self.result, self._response
        assert response is not None
        parser = SSEParser()
        parts: list[str] = []
        done = False
        received = 0
        try:
            for chunk in response.iter_content(chunk_size=None):
                received += len(chunk)
                for event in parser.feed(chunk):
                    if event.is_done:
                        done = True
                        continue
                    delta = delta_from_event(event)
                    if delta.usage:
                        result.usage = delta.usage
                    if delta.error:
                        result.error = StreamInterruptedError(
                            f"The stream reported an error: {delta.error}", status=result.status, url=result.url
                        )
                    if delta.text:
                        if result.timings.first_token_ms is None:
                            result.timings.first_token_ms = (now() - self._start) * 1000
                        parts.append(delta.text)
                        yield delta.text
            for event in parser.close():
                if event.is_done:
                    done = True
        except (requests.RequestException, OSError) as exc:
            result.error = StreamInterruptedError(
                f"The stream was cut after {len(parts)} chunks ({type(exc).__name__}).",
                status=result.status,
                url=result.url,
            )
        finally:
            result.timings.total_ms = (now() - self._start) * 1000
            result.bytes_received = received
            result.raw_body = "".join(parts)
            result.output = {"response": result.raw_body, "usage": result.usage}
            if not done:
                result.interrupted = True
                if result.error is None:
                    result.error = StreamInterruptedError(
                        "The stream ended before [DONE]; the text so far is kept.", status=result.status, url=result.url
                    )
            result.ok = result.error is None
            response.close()

    def drain(self) -> Result:
        """Consume the whole stream (for callers that only want the final result)."""
        for _ in self:
            pass
        return self.result

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


class Client:
    """Thread-safe for concurrent calls: one requests.Session with a pool of up to 64 keep-alive
    connections per host."""

    def __init__(self, connection: Connection, retry: RetryPolicy | None = None, pool_size: int = 64):
        self.connection = connection
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        adapter = TimingAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT})
        # The environment is read once here, not on every call (requests re-reads proxies, CA bundle and
        # ~/.netrc per request, and a netrc entry would silently replace our Bearer token).
        self.session.trust_env = False
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies = {
            _host(base): requests.utils.get_environ_proxies(base)
            for base in (connection.api_base_url, connection.gateway_base_url)
        }
        self._secrets = tuple(s for s in (connection.api_token, connection.gateway_token) if s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # --- model calls ------------------------------------------------------------------------------
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
        body = dict(inputs)
        body.pop("stream", None)
        url = self.connection.run_url(model, route)
        return self._with_retries(lambda: self._post(url, body, route, model, gateway, extra_headers, timeout))

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
        body = {**inputs, "stream": True}
        url = self.connection.run_url(model, route)
        return self._open_stream(url, body, route, model, gateway, extra_headers, timeout)

    def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        route: Route = "direct",
        gateway: GatewayOptions | None = None,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        **params: Any,
    ) -> Result | Stream:
        """OpenAI-compatible /ai/v1/chat/completions (plain OpenAI JSON, no envelope)."""
        body: dict[str, Any] = {"model": model, "messages": messages, **params}
        url = self.connection.chat_url(route)
        if stream:
            body["stream"] = True
            return self._open_stream(url, body, route, model, gateway, extra_headers, timeout)
        return self._with_retries(lambda: self._post(url, body, route, model, gateway, extra_headers, timeout))

    # --- account APIs -----------------------------------------------------------------------------
    def list_models(
        self, task: str | None = None, search: str | None = None, author: str | None = None,
        per_page: int = 100, max_pages: int = 20,
    ) -> list[dict[str, Any]]:
        """The model catalogue (`ai/models/search`), all pages. Raises CloudflareError on failure."""
        models: list[dict[str, Any]] = []
        params = {k: v for k, v in {"task": task, "search": search, "author": author}.items() if v}
        for page in range(1, max_pages + 1):
            result = self._get(self.connection.account_url("ai/models/search"), {**params, "page": page, "per_page": per_page})
            result.raise_for_error()
            batch = result.output or []
            models.extend(batch)
            info = result.result_info or {}
            total = info.get("total_count")
            if len(batch) < per_page or (total is not None and len(models) >= int(total)):
                break
        return models

    def model_schema(self, model: str) -> dict[str, Any]:
        result = self._get(self.connection.account_url("ai/models/schema"), {"model": model})
        result.raise_for_error()
        return result.output or {}

    def verify_token(self) -> Result:
        """GET /user/tokens/verify: `output["status"]` is active, disabled or expired."""
        url = f"{self.connection.api_base_url.rstrip('/')}/user/tokens/verify"
        return self._get(url, None)

    def gateway_settings(self, gateway_id: str | None = None) -> Result:
        gid = gateway_id or self.connection.gateway_id
        return self._get(self.connection.account_url(f"ai-gateway/gateways/{gid}"), None)

    def gateway_logs(self, gateway_id: str | None = None, **filters: Any) -> Result:
        """One page of gateway logs (`page`, `per_page`, `order_by`, `direction`, `cached`, `success`,
        `model`, ...). Booleans are sent as true/false."""
        gid = gateway_id or self.connection.gateway_id
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None}
        return self._get(self.connection.account_url(f"ai-gateway/gateways/{gid}/logs"), params)

    # --- plumbing ---------------------------------------------------------------------------------
    def _headers(self, route: Route, gateway: GatewayOptions | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.connection.api_token:
            headers["Authorization"] = f"Bearer {self.connection.api_token}"
        if route == "gateway":
            if self.connection.gateway_token:
                headers["cf-aig-authorization"] = f"Bearer {self.connection.gateway_token}"
            if gateway:
                headers.update(gateway.headers())
        if extra:
            headers.update(extra)
        return headers

    @staticmethod
    def _masked(headers: Mapping[str, str]) -> dict[str, str]:
        return {k: ("Bearer ****" if k.lower() in ("authorization", "cf-aig-authorization") else v) for k, v in headers.items()}

    def _proxies_for(self, url: str) -> dict[str, str]:
        host = _host(url)
        return self._proxies[host] if host in self._proxies else requests.utils.get_environ_proxies(url)

    def _timeout(self, timeout: float | tuple[float, float] | None) -> float | tuple[float, float]:
        return timeout if timeout is not None else self.connection.timeout

    def _with_retries(self, call: Any) -> Result:
        attempt = 0
        while True:
            result: Result = call()
            if result.error is None or attempt >= self.retry.max_retries or not self.retry.retryable(result.error):
                result.attempts = attempt + 1
                return result
            time.sleep(self.retry.delay(attempt, result.error))
            attempt += 1

    def _send(self, method: str, url: str, body: dict | None, headers: dict[str, str], params: Mapping | None,
              timeout: float | tuple[float, float] | None, stream: bool = False) -> tuple[requests.Response | None, CloudflareError | None, float, float]:
        """Returns (response, error, wall-clock start, perf start). The response body is not read yet."""
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() if body is not None else None
        request = requests.Request(method, url, data=data, headers=headers, params=params)
        prepared = self.session.prepare_request(request)
        started_at, start = time.time(), now()
        try:
            response = self.session.send(prepared, stream=stream, timeout=self._timeout(timeout), allow_redirects=False,
                                         proxies=self._proxies_for(url))
        except requests.exceptions.ConnectTimeout:
            return None, NetworkError(f"Timed out connecting to {_host(url)}.", url=url), started_at, start
        except requests.exceptions.Timeout:
            return None, RequestTimeoutError(f"No response from {_host(url)} within the read timeout.", url=url), started_at, start
        except requests.exceptions.ConnectionError as exc:
            return None, NetworkError(f"Could not connect to {_host(url)}: {_reason(exc)}.", url=url), started_at, start
        except requests.RequestException as exc:
            return None, NetworkError(f"Request to {_host(url)} failed: {type(exc).__name__}.", url=url), started_at, start
        return response, None, started_at, start

    def _new_result(self, url: str, route: Route, model: str, body: dict | None, headers: dict[str, str],
                    response: requests.Response | None, started_at: float, start: float) -> Result:
        result = Result(ok=False, status=0, url=url, route=route, model=model, request_body=body,
                        request_headers=self._masked(headers), timings=Timings(started_at=started_at))
        if response is not None:
            h = {k.lower(): v for k, v in response.headers.items()}
            result.status = response.status_code
            result.headers = h
            result.cache_status = h.get("cf-aig-cache-status")
            result.log_id = h.get("cf-aig-log-id")
            result.backend = h.get("cf-emulator-backend")
            wire = wire_timing(response.raw)
            if wire is not None:
                result.timings.ttfb_ms = (wire.headers_at - wire.start) * 1000
                result.timings.connection_reused = wire.reused
                result.timings.connect_ms = wire.connect_ms
        return result

    def _post(self, url: str, body: dict, route: Route, model: str, gateway: GatewayOptions | None,
              extra: Mapping[str, str] | None, timeout: float | tuple[float, float] | None) -> Result:
        headers = self._headers(route, gateway, extra)
        response, error, started_at, start = self._send("POST", url, body, headers, None, timeout)
        return self._finish(url, route, model, body, headers, response, error, started_at, start)

    def _get(self, url: str, params: Mapping[str, Any] | None) -> Result:
        headers = self._headers("direct", None, None)
        headers.pop("Content-Type")
        response, error, started_at, start = self._send("GET", url, None, headers, params, None)
        return self._finish(url, "direct", "", None, headers, response, error, started_at, start)

    def _finish(self, url: str, route: Route, model: str, body: dict | None, headers: dict[str, str],
                response: requests.Response | None, error: CloudflareError | None, started_at: float, start: float) -> Result:
        result = self._new_result(url, route, model, body, headers, response, started_at, start)
        if response is None:
            result.error = error
            result.timings.total_ms = (now() - start) * 1000
            return result
        wire = wire_timing(response.raw)
        body_error = getattr(response, "cfai_body_error", None)
        content: bytes | None = None
        if body_error is None:
            try:  # already in memory for whole responses; read here when a stream request got plain JSON
                content = response.content
            except requests.exceptions.ConnectionError as exc:  # requests wraps a read timeout in this too
                body_error = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
            except (requests.RequestException, OSError) as exc:
                body_error = exc
        end = wire.body_at if wire and wire.body_at else now()
        result.timings.total_ms = (end - (wire.start if wire else start)) * 1000
        response.close()
        if isinstance(body_error, TimeoutError | ReadTimeoutError):
            result.error = RequestTimeoutError("The response body did not arrive within the read timeout.",
                                               status=response.status_code, url=url)
        elif body_error is not None:
            result.error = ConnectionDroppedError(
                f"The connection closed before the whole response arrived ({type(body_error).__name__}).",
                status=response.status_code, url=url,
            )
        if content is None:
            return result
        result.bytes_received = len(content)
        self._read_body(result, content)
        return result

    def _read_body(self, result: Result, content: bytes) -> None:
        text = content.decode("utf-8", "replace")
        result.raw_body = scrub_secrets(text, self._secrets)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        if result.status >= 400 or (isinstance(parsed, dict) and parsed.get("success") is False):
            result.error = error_from_response(result.status, content, headers=result.headers, url=result.url, secrets=self._secrets)
            return
        if parsed is None:
            result.error = MalformedResponseError(
                "The response was not valid JSON.", status=result.status, url=result.url,
            )
            return
        is_envelope = isinstance(parsed, dict) and "success" in parsed and "result" in parsed
        result.output = parsed["result"] if is_envelope else parsed
        result.result_info = parsed.get("result_info") if isinstance(parsed, dict) else None
        result.usage = _usage_from(result.output, parsed)
        result.ok = True

    def _open_stream(self, url: str, body: dict, route: Route, model: str, gateway: GatewayOptions | None,
                     extra: Mapping[str, str] | None, timeout: float | tuple[float, float] | None) -> Stream:
        headers = self._headers(route, gateway, extra)
        headers["Accept"] = "text/event-stream"
        response, error, started_at, start = self._send("POST", url, body, headers, None, timeout, stream=True)
        if response is not None and response.status_code < 400 and "text/event-stream" in response.headers.get("content-type", ""):
            result = self._new_result(url, route, model, body, headers, response, started_at, start)
            result.streamed = True
            wire = wire_timing(response.raw)
            return Stream(result, response, wire.start if wire else start)
        # An error, or a JSON answer (e.g. a model that does not stream): read it whole.
        result = self._finish(url, route, model, body, headers, response, error, started_at, start)
        return Stream(result, None, start)


def _host(url: str) -> str:
    return requests.utils.urlparse(url).netloc or url


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                   "Connection reset", "Remote end closed"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__

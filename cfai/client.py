"""The one client for Workers AI and AI Gateway (direct and gateway routes), built on requests.Session.

Every call returns a `Result` rather than raising for HTTP or network failures, because the pages and the
comparison runner treat a failure as data to show. `Result.raise_for_error()` raises the typed error when
a caller prefers exceptions. Timings come from the transport (see `cfai.transport`): what is timed is the
wire, not this library.

Every call ends by its deadline (`Connection.deadline_s`, or `deadline=` / a single-number `timeout=` per
call), whole or streamed, retries included, with a typed error that keeps what arrived. Bodies are capped
(`cfai.transport.MAX_BODY_BYTES`), redirects are reported and never followed (the token stays with the base
URL it was configured for), and headers that cannot be sent are refused before anything goes out.

Types live beside: `cfai.result` (Result, Timings), `cfai.stream` (Stream), `cfai.request_options`
(RequestOptions, GatewayOptions). They are re-exported here for callers.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

from cfai import __version__
from cfai.config import Connection, Route
from cfai.errors import (
    CloudflareError,
    ConnectionDroppedError,
    DeadlineExceededError,
    GatewayAuthError,
    InvalidRequestError,
    MalformedResponseError,
    NetworkError,
    RateLimitError,
    RedirectError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    error_from_response,
    gateway_auth_hint,
    redact_headers,
    scrub_secrets,
)
from cfai.gateway_checks import (
    LOG_ORDER_FIELDS,
    GatewayCheck,
    TokenCheck,
    gateway_check_from,
    logs_query,
    token_check_from,
)
from cfai.request_options import (
    MAX_CACHE_TTL,
    MIN_CACHE_TTL,
    GatewayOptions,
    RequestOptionFields,
    RequestOptions,
    header_problems,
)
from cfai.result import Result, Timings, extract_text, usage_from
from cfai.stream import Stream
from cfai.transport import BodyTooLarge, CallLimits, TimingAdapter, bind_limits, now, read_capped, wire_timing

__all__ = [
    "MAX_CACHE_TTL", "MIN_CACHE_TTL", "USER_AGENT", "Client", "GatewayOptions", "RequestOptions", "Result",
    "RetryPolicy", "Route", "Stream", "Timings", "extract_text",
]

USER_AGENT = f"workers-ai-lab/{__version__}"
_KEPT_ERROR_BODY = 64 * 1024  # of a body too large, this much is kept for the request details


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429/5xx/connection errors with exponential backoff, honouring Retry-After. Off by
    default because the comparison runner measures latency: a retry there would hide a failure. Retries
    stay inside the call's deadline."""

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


@dataclass
class _Call:
    """One logical call (all its attempts): what to send, with which options and limits."""

    method: str
    url: str
    options: RequestOptions
    limits: CallLimits
    headers: dict[str, str]
    model: str = ""
    body: dict[str, Any] | None = None
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None  # a list: repeated keys (filters)
    stream: bool = False
    refusal: CloudflareError | None = None  # set when the call must not be sent at all
    started_at: float = 0.0  # wall clock of the current attempt
    start: float = field(default_factory=now)  # perf clock of the current attempt


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
    def run(self, model: str, inputs: Mapping[str, Any], options: RequestOptions | None = None,
            **fields: Unpack[RequestOptionFields]) -> Result:
        """POST ai/run/{model} (or the gateway's workers-ai/{model}). Never raises for HTTP/network
        errors: they are in `result.error`. Use `.raise_for_error()` to raise. Options: `RequestOptions`,
        or its keywords (route, gateway, extra_headers, timeout, deadline)."""
        opts = RequestOptions.build(options, **fields)
        body = dict(inputs)
        body.pop("stream", None)
        call = self._model_call(self.connection.run_url(model, opts.route), opts, model,
                                self._run_body(model, body, opts.route))
        return self._with_retries(call)

    def stream(self, model: str, inputs: Mapping[str, Any], options: RequestOptions | None = None,
               **fields: Unpack[RequestOptionFields]) -> Stream:
        """Same as run with `"stream": true`; text chunks as they arrive."""
        opts = RequestOptions.build(options, **fields)
        call = self._model_call(self.connection.run_url(model, opts.route), opts, model,
                                self._run_body(model, {**inputs, "stream": True}, opts.route), stream=True)
        return self._open_stream(call)

    @staticmethod
    def _run_body(model: str, inputs: dict[str, Any], route: Route) -> dict[str, Any]:
        """The unified route's `ai/run` takes the model in the body, its input under `input`
        (docs/PROTOCOL.md 1 and 3.2); the other routes take the input as the body."""
        return {"model": model, "input": inputs} if route == "unified" else inputs

    def chat(self, model: str, messages: list[dict[str, str]], *, stream: bool = False,
             options: RequestOptions | None = None, **params: Any) -> Result | Stream:
        """OpenAI-compatible /ai/v1/chat/completions (plain OpenAI JSON, no envelope). `params` are the
        model's parameters (max_tokens...) plus the request-option keywords, which are taken out first."""
        params = dict(params)
        opts = RequestOptions.split(params, options)
        body: dict[str, Any] = {"model": model, "messages": messages, **params}
        url = self.connection.chat_url(opts.route)
        if stream:
            body["stream"] = True
            return self._open_stream(self._model_call(url, opts, model, body, stream=True))
        return self._with_retries(self._model_call(url, opts, model, body))

    # --- account APIs -----------------------------------------------------------------------------
    def list_models(
        self, task: str | None = None, search: str | None = None, author: str | None = None,
        per_page: int = 100, max_pages: int = 20, *, deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """The model catalogue (`ai/models/search`), all pages, within one deadline for all of them.
        Raises CloudflareError on failure."""
        models: list[dict[str, Any]] = []
        params = {k: v for k, v in {"task": task, "search": search, "author": author}.items() if v}
        limits = self._limits(RequestOptions(deadline_s=deadline))
        for page in range(1, max_pages + 1):
            result = self._get(self.connection.account_url("ai/models/search"),
                               {**params, "page": page, "per_page": per_page}, limits=limits)
            result.raise_for_error()
            batch = result.output if isinstance(result.output, list) else []
            models.extend(batch)
            info = result.result_info if isinstance(result.result_info, dict) else {}
            total = info.get("total_count")
            if len(batch) < per_page or (isinstance(total, int) and len(models) >= total):
                break
        return models

    def model_schema(self, model: str, *, deadline: float | None = None) -> dict[str, Any]:
        result = self._get(self.connection.account_url("ai/models/schema"), {"model": model}, deadline=deadline)
        result.raise_for_error()
        return result.output or {}

    def verify_token(self, *, deadline: float | None = None) -> Result:
        """GET /user/tokens/verify: `output["status"]` is active, disabled or expired. (`check_token` tries
        the account endpoint first and says which kind of token it is.)"""
        url = f"{self.connection.api_base_url.rstrip('/')}/user/tokens/verify"
        return self._get(url, None, deadline=deadline)

    def check_token(self, *, deadline: float | None = None) -> TokenCheck:
        """Which kind of token this is, and whether it is active: an account-owned token verifies at
        `/accounts/{id}/tokens/verify`, a user-owned one at `/user/tokens/verify` (docs/PROTOCOL.md 1). The
        account endpoint is tried first (when there is an account id), then the user endpoint."""
        limits = self._limits(RequestOptions(deadline_s=deadline))
        account = None
        if self.connection.account_id:
            account = self._get(self.connection.account_url("tokens/verify"), None, limits=limits)
            if account.ok:
                return token_check_from(account, "account", None)
        user = self._get(f"{self.connection.api_base_url.rstrip('/')}/user/tokens/verify", None, limits=limits)
        return token_check_from(user, "user", account)

    def gateway_settings(self, gateway_id: str | None = None, *, deadline: float | None = None) -> Result:
        gid = gateway_id or self.connection.gateway_id
        return self._get(self.connection.account_url(f"ai-gateway/gateways/{gid}"), None, deadline=deadline)

    def check_gateway(self, gateway_id: str | None = None, *, deadline: float | None = None) -> GatewayCheck:
        """Does the gateway exist in this account, and is its authentication on? (`GET .../gateways/{id}`).
        `default` need not exist yet: Cloudflare creates it on the first authenticated request."""
        gid = gateway_id or self.connection.gateway_id
        result = self.gateway_settings(gid, deadline=deadline)
        return gateway_check_from(result, gid, self.connection.account_id,
                                  has_gateway_token=bool(self.connection.gateway_token))

    def gateway_logs(self, gateway_id: str | None = None, *, deadline: float | None = None,
                     event_id: str | None = None, order_by: str | None = None, direction: str | None = None,
                     filters: list[Mapping[str, Any]] | None = None, **params: Any) -> Result:
        """One page of gateway logs with the SDK's parameters (`LogListParams`, docs/PROTOCOL.md 3.9): `page`,
        `per_page`, `order_by` (created_at, provider, model, model_type, success, cached), `direction`
        (asc|desc), `cached`, `success`, `model`, `start_date`, ... and `filters` ({key, operator, value});
        an event id is only reachable as a filter, which `event_id=` adds. Booleans are sent as true/false."""
        gid = gateway_id or self.connection.gateway_id
        url = self.connection.account_url(f"ai-gateway/gateways/{gid}/logs")
        try:
            if order_by is not None and order_by not in LOG_ORDER_FIELDS:
                raise ValueError(f"order_by must be one of {', '.join(LOG_ORDER_FIELDS)}, not {order_by!r}")
            query = logs_query(params, order_by=order_by, direction=direction, event_id=event_id, filters=filters)
        except ValueError as exc:  # refused before sending, as a Result like every other failure
            options = RequestOptions(deadline_s=deadline)
            call = _Call("GET", url, options, self._limits(options), {})
            return self._finish(call, None, InvalidRequestError(f"{exc}.", url=url))
        return self._get(url, query, deadline=deadline)

    # --- building a call --------------------------------------------------------------------------
    def _limits(self, options: RequestOptions) -> CallLimits:
        deadline = options.deadline_s if options.deadline_s is not None else self.connection.deadline_s
        return CallLimits(deadline_s=deadline)

    def _model_call(self, url: str, options: RequestOptions, model: str, body: dict[str, Any],
                    stream: bool = False) -> _Call:
        headers = self._headers(options)
        call = _Call("POST", url, options, self._limits(options), headers, model=model, body=body,
                     stream=stream)
        problems = options.problems() + header_problems(headers)
        if problems:
            call.refusal = InvalidRequestError(" ".join(problems), url=url)
        return call

    def _get(self, url: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None, *,
             limits: CallLimits | None = None,
             deadline: float | None = None) -> Result:
        options = RequestOptions(deadline_s=deadline)
        headers = self._headers(options)
        headers.pop("Content-Type")
        call = _Call("GET", url, options, limits or self._limits(options), headers, params=params)
        response, error = self._send(call)
        return self._finish(call, response, error)

    def _headers(self, options: RequestOptions) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.connection.api_token:
            headers["Authorization"] = f"Bearer {self.connection.api_token}"
        if options.route == "gateway":
            # The `default` gateway has authentication on (docs/PROTOCOL.md 3.3): send the gateway token, else
            # the API token, which then needs the AI Gateway Run permission.
            token = self.connection.gateway_token or self.connection.api_token
            if token:
                headers["cf-aig-authorization"] = f"Bearer {token}"
        elif options.route == "unified":
            # Workers AI's own API through the gateway: the Authorization header is the only credential.
            headers.update(self.connection.unified_headers())
        if options.route in ("gateway", "unified") and options.gateway:
            headers.update(options.gateway.headers())
        if options.extra_headers:
            headers.update(options.extra_headers)
        return headers

    def _proxies_for(self, url: str) -> dict[str, str]:
        host = _host(url)
        return self._proxies[host] if host in self._proxies else requests.utils.get_environ_proxies(url)

    # --- sending ----------------------------------------------------------------------------------
    def _with_retries(self, call: _Call) -> Result:
        attempt = 0
        while True:
            if call.refusal is not None:
                return self._finish(call, None, call.refusal)
            response, error = self._send(call)
            result = self._finish(call, response, error)
            if result.error is None or attempt >= self.retry.max_retries or not self.retry.retryable(result.error):
                result.attempts = attempt + 1
                return result
            delay = self.retry.delay(attempt, result.error)
            if delay >= call.limits.remaining():  # no time left for another try within the deadline
                result.attempts = attempt + 1
                return result
            time.sleep(delay)
            attempt += 1

    def _send(self, call: _Call) -> tuple[requests.Response | None, CloudflareError | None]:
        """Send one attempt; the response body is not read yet for streams. Sets the attempt's start."""
        url, limits = call.url, call.limits
        data = json.dumps(call.body, separators=(",", ":"), ensure_ascii=False).encode() if call.body is not None else None
        request = requests.Request(call.method, url, data=data, headers=call.headers, params=call.params)
        prepared = self.session.prepare_request(request)
        connect = call.options.connect_timeout or self.connection.connect_timeout
        read = call.options.read_timeout or self.connection.read_timeout
        call.started_at, call.start = time.time(), now()
        if limits.expired:
            return None, self._deadline_error(call, "before it could be sent")
        try:
            with bind_limits(limits):
                response = self.session.send(
                    prepared, stream=call.stream, timeout=(limits.wait_for(connect), limits.wait_for(read)),
                    allow_redirects=False, proxies=self._proxies_for(url),
                )
        except requests.exceptions.ConnectTimeout:
            if limits.expired:
                return None, self._deadline_error(call, f"while connecting to {_host(url)}")
            return None, NetworkError(f"Timed out connecting to {_host(url)}.", url=url)
        except requests.exceptions.Timeout:
            if limits.expired:
                return None, self._deadline_error(call, "before its response headers arrived")
            return None, RequestTimeoutError(f"No response from {_host(url)} within the read timeout ({read:g} s).", url=url)
        except requests.exceptions.ConnectionError as exc:
            cause = _root_cause(exc)
            if isinstance(cause, http.client.HTTPException) and not isinstance(cause, ConnectionError):
                return None, MalformedResponseError(
                    f"{_host(url)} answered with something that is not valid HTTP ({type(cause).__name__}).", url=url)
            return None, NetworkError(f"Could not connect to {_host(url)}: {_reason(exc)}.", url=url)
        except requests.RequestException as exc:
            return None, NetworkError(f"Request to {_host(url)} failed: {type(exc).__name__}.", url=url)
        return response, None

    def _deadline_error(self, call: _Call, when: str, status: int = 0) -> DeadlineExceededError:
        return DeadlineExceededError(f"The call did not finish within its {call.limits.deadline_s:g} s deadline "
                                     f"({when}).", status=status, url=call.url)

    # --- reading ----------------------------------------------------------------------------------
    def _new_result(self, call: _Call, response: requests.Response | None) -> Result:
        result = Result(ok=False, status=0, url=call.url, route=call.options.route, model=call.model,
                        request_body=call.body, request_headers=redact_headers(call.headers),
                        timings=Timings(started_at=call.started_at),
                        reasoning_first=call.options.reasoning_first,
                        notices=call.options.gateway.notices()
                        if call.options.gateway and call.options.route != "direct" else [])
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

    def _finish(self, call: _Call, response: requests.Response | None, error: CloudflareError | None) -> Result:
        result = self._new_result(call, response)
        if response is None:
            result.error = error
            result.timings.total_ms = (now() - call.start) * 1000 if error is not call.refusal else None
            return result
        wire = wire_timing(response.raw)
        body_error = getattr(response, "cfai_body_error", None)
        content = b""
        try:
            if getattr(response, "_content_consumed", False):
                content = response.content or b""  # read whole, inside the transport's timed window
            else:  # a stream request answered with plain JSON (or an error): read it here, capped
                capped = read_capped(response.raw, call.limits.max_body_bytes)
                content, body_error = (b"", BodyTooLarge(call.limits.max_body_bytes)) if capped is None else (capped, None)
        except requests.exceptions.ConnectionError as exc:  # requests wraps a read timeout in this too
            body_error = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
        except (requests.RequestException, OSError, http.client.HTTPException) as exc:
            body_error = exc
        except Exception as exc:  # noqa: BLE001 - urllib3 raises its own types from a half-read body
            body_error = exc
        end = wire.body_at if wire and wire.body_at else now()
        result.timings.total_ms = (end - (wire.start if wire else call.start)) * 1000
        response.close()
        result.bytes_received = len(content)
        if body_error is not None:
            result.error = self._body_error(call, response.status_code, body_error, len(content))
            kept = content if not isinstance(body_error, BodyTooLarge) else body_error.partial[:_KEPT_ERROR_BODY]
            result.raw_body = scrub_secrets(kept.decode("utf-8", "replace"), self._secrets)
            if isinstance(body_error, BodyTooLarge):
                result.bytes_received = max(len(body_error.partial), result.bytes_received)
            return result
        self._read_body(result, content)
        if isinstance(result.error, GatewayAuthError):
            self._explain_gateway_auth(result.error, call)
        return result

    def _explain_gateway_auth(self, error: CloudflareError, call: _Call) -> None:
        """A 2009 says which token was sent, in which header, and the fixes."""
        sent = "gateway_token" if self.connection.gateway_token else (
            "api_token" if self.connection.api_token else None)
        error.hint = gateway_auth_hint(sent, call.options.route, self.connection.gateway_id)

    def _body_error(self, call: _Call, status: int, exc: BaseException, size: int) -> CloudflareError:
        if isinstance(exc, BodyTooLarge):
            return ResponseTooLargeError(f"The response body is larger than {call.limits.max_body_bytes / (1 << 20):g} "
                                         "MiB; reading stopped there.", status=status, url=call.url)
        if isinstance(exc, TimeoutError | ReadTimeoutError) or call.limits.expired:
            if call.limits.expired:
                return self._deadline_error(call, f"the body was still arriving; the {size:,} bytes received "
                                            "are kept", status=status)
            return RequestTimeoutError("The response body did not arrive within the read timeout.",
                                       status=status, url=call.url)
        return ConnectionDroppedError(
            f"The connection closed before the whole response arrived ({type(exc).__name__}).",
            status=status, url=call.url,
        )

    def _read_body(self, result: Result, content: bytes) -> None:
        text = content.decode("utf-8", "replace")
        result.raw_body = scrub_secrets(text, self._secrets)
        if 300 <= result.status < 400:
            location = scrub_secrets(result.headers.get("location", "") or "(no Location header)", self._secrets)
            result.error = RedirectError(f"HTTP {result.status}: redirected to {location[:300]}, not followed.",
                                         status=result.status, url=result.url)
            return
        try:
            parsed = json.loads(text) if text else None
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            parsed = None
        if result.status >= 400 or (isinstance(parsed, dict) and parsed.get("success") is False):
            result.error = error_from_response(result.status, content, headers=result.headers, url=result.url, secrets=self._secrets)
            return
        if parsed is None:
            snippet = scrub_secrets(text.strip()[:80], self._secrets)
            message = (f"The response body was empty (HTTP {result.status})." if not text.strip()
                       else f"The response was not valid JSON: {snippet!r}.")
            result.error = MalformedResponseError(message, status=result.status, url=result.url)
            return
        is_envelope = isinstance(parsed, dict) and "success" in parsed and "result" in parsed
        result.output = parsed["result"] if is_envelope else parsed
        result.result_info = parsed.get("result_info") if isinstance(parsed, dict) else None
        result.usage = usage_from(result.output, parsed)
        result.ok = True

    def _open_stream(self, call: _Call) -> Stream:
        call.headers["Accept"] = "text/event-stream"
        if call.refusal is not None:
            return Stream(self._finish(call, None, call.refusal), None, call.start)
        response, error = self._send(call)
        if (response is not None and response.status_code < 300
                and "text/event-stream" in response.headers.get("content-type", "")):
            result = self._new_result(call, response)
            result.streamed = True
            wire = wire_timing(response.raw)
            return Stream(result, response, wire.start if wire else call.start, call.limits, self._secrets)
        # An error, a redirect, or a JSON answer (e.g. a model that does not stream): read it whole.
        return Stream(self._finish(call, response, error), None, call.start)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception under requests' and urllib3's wrappers (MaxRetryError, ProtocolError)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(exc.args) if isinstance(a, BaseException)), None)
        if inner is None:
            return exc
        exc = inner
    return exc


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                   "Connection reset", "Remote end closed"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__

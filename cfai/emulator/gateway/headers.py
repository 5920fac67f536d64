"""Per-request AI Gateway options from the cf-aig-* headers, and token usage read from responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cfai.emulator import jsonbody
from cfai.emulator.envelope import InputError

MIN_CACHE_TTL = 60
MAX_CACHE_TTL = 2_592_000
MAX_METADATA_ENTRIES = 5
MAX_ATTEMPTS = 5
MAX_RETRY_DELAY_MS = 5000
GATEWAY_ID_HEADER = "cf-aig-gateway-id"  # names the gateway on the unified route (PROTOCOL.md 3.2)


class HeaderError(ValueError):
    """A cf-aig-* header with a value the gateway refuses (answered 400)."""


@dataclass(frozen=True)
class RetryDefaults:
    """A gateway's own retry settings, used where a request sends no cf-aig-max-attempts / -retry-delay /
    -backoff (manage-gateway.mdx: per-request headers override the gateway's)."""

    max_attempts: int = 1
    delay_ms: int = 0
    backoff: str = "constant"


# Old header names Cloudflare still honours (caching.mdx); the cf-aig-* name wins when both are sent.
LEGACY_NAMES = {"cf-aig-cache-ttl": "cf-cache-ttl", "cf-aig-skip-cache": "cf-skip-cache"}
# Request headers the options are read from: every cf-aig-* one plus the old names.
OPTION_HEADER_NAMES = frozenset(LEGACY_NAMES.values())


def option_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers that carry gateway options (cf-aig-* and the old cf-* cache names)."""
    return {k: v for k, v in headers.items() if k.startswith("cf-aig-") or k in OPTION_HEADER_NAMES}


@dataclass
class RequestOptions:
    cache_ttl: int | None = None
    skip_cache: bool = False
    cache_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    collect_log: bool | None = None  # None: the gateway's setting; True/False overrides it for this request
    event_id: str | None = None
    request_timeout_ms: int | None = None
    max_attempts: int = 1
    retry_delay_ms: int = 0
    backoff: str = "constant"

    def retry_wait_s(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        base = self.retry_delay_ms / 1000
        if self.backoff == "exponential":
            return base * 2 ** (attempt - 1)
        if self.backoff == "linear":
            return base * attempt
        return base


def _get(headers: Mapping[str, str], name: str) -> str | None:
    raw = headers.get(name)
    if raw is None and name in LEGACY_NAMES:
        raw = headers.get(LEGACY_NAMES[name])
    return raw


def _int(headers: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    raw = _get(headers, name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise HeaderError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise HeaderError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _flag(headers: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = _get(headers, name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise HeaderError(f"{name} must be true or false, got {raw!r}")


def parse_metadata(raw: str) -> dict[str, Any]:
    try:
        data = jsonbody.loads(raw)
    except InputError:
        raise HeaderError("cf-aig-metadata must be a JSON object") from None
    if not isinstance(data, dict):
        raise HeaderError("cf-aig-metadata must be a JSON object")
    # Past five entries Cloudflare keeps the first five and ignores the rest (custom-metadata.mdx), no error.
    kept = dict(list(data.items())[:MAX_METADATA_ENTRIES])
    for key, value in kept.items():
        if not isinstance(value, str | int | float | bool):
            raise HeaderError(f"cf-aig-metadata values must be strings, numbers or booleans; {key!r} is not")
    return kept


def parse_request_options(headers: Mapping[str, str], defaults: RetryDefaults | None = None) -> RequestOptions:
    """Read every option header (see `option_headers`); raises HeaderError on the first bad one. Retry
    settings a request does not send come from the gateway's own (`defaults`)."""
    d = defaults or RetryDefaults()
    attempts = _int(headers, "cf-aig-max-attempts", 1, MAX_ATTEMPTS)
    delay = _int(headers, "cf-aig-retry-delay", 0, MAX_RETRY_DELAY_MS)
    opts = RequestOptions(
        cache_ttl=_int(headers, "cf-aig-cache-ttl", MIN_CACHE_TTL, MAX_CACHE_TTL),
        skip_cache=bool(_flag(headers, "cf-aig-skip-cache", False)),
        collect_log=_flag(headers, "cf-aig-collect-log", None),
        request_timeout_ms=_int(headers, "cf-aig-request-timeout", 1, 3_600_000),
        max_attempts=attempts if attempts is not None else d.max_attempts,
        retry_delay_ms=delay if delay is not None else d.delay_ms,
        backoff=d.backoff,
    )
    key = headers.get("cf-aig-cache-key")
    if key is not None:
        if not key.strip():
            raise HeaderError("cf-aig-cache-key must not be empty")
        opts.cache_key = key
    raw_meta = headers.get("cf-aig-metadata")
    if raw_meta is not None:
        opts.metadata = parse_metadata(raw_meta)
    opts.event_id = headers.get("cf-aig-event-id") or None
    backoff = headers.get("cf-aig-backoff")
    if backoff is not None:
        if backoff.strip().lower() not in ("constant", "linear", "exponential"):
            raise HeaderError("cf-aig-backoff must be constant, linear or exponential")
        opts.backoff = backoff.strip().lower()
    return opts


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_tokens(obj: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens from any answer the gateway relays: an envelope (`result.usage`), OpenAI chat
    JSON or chunk (`usage.prompt_tokens` / `completion_tokens`), a Responses object (`usage.input_tokens` /
    `output_tokens`) or its final stream event (`response.usage`)."""
    if not isinstance(obj, dict):
        return None, None
    usage = obj.get("usage")
    for holder in ("result", "response"):
        if not isinstance(usage, dict) and isinstance(obj.get(holder), dict):
            usage = obj[holder].get("usage")
    if not isinstance(usage, dict):
        return None, None
    tin = _int_or_none(usage.get("prompt_tokens"))
    tout = _int_or_none(usage.get("completion_tokens"))
    if tin is None and tout is None:
        tin, tout = _int_or_none(usage.get("input_tokens")), _int_or_none(usage.get("output_tokens"))
    return tin, tout


def body_usage(body: bytes, content_type: str) -> tuple[int | None, int | None]:
    if "json" not in content_type or len(body) > 4 * 1024 * 1024:
        return None, None
    try:
        return usage_tokens(json.loads(body))
    except ValueError:
        return None, None


class StreamUsage:
    """Watches relayed SSE bytes for the last `usage` object without holding the stream in memory."""

    MAX_LINE = 256 * 1024

    def __init__(self) -> None:
        self._partial = b""
        self.tokens: tuple[int | None, int | None] = (None, None)

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.MAX_LINE:  # a runaway line is not an event we can read anyway
            self._partial = b""
        for line in lines:
            if b'"usage"' in line and line.startswith(b"data:"):
                try:
                    found = usage_tokens(json.loads(line[5:]))
                except ValueError:
                    continue
                if found != (None, None):
                    self.tokens = found

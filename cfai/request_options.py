"""What one call asks for besides its body: the route, AI Gateway options, extra headers, time limits.

`RequestOptions` is the one object the client passes from its public methods down to the wire, so a new
option is added in one place. `GatewayOptions` are the cf-aig-* headers of the gateway route, with their
conversion to and from the UI's metadata rows. `header_problems` says, in words, why a header cannot be
sent (a line break, leading or trailing spaces...), so bad input is refused before anything goes out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from cfai.config import Route

MIN_CACHE_TTL, MAX_CACHE_TTL = 60, 2_592_000
MAX_METADATA_ENTRIES = 5  # Cloudflare keeps the first five and ignores the rest (custom-metadata.mdx)
MAX_ATTEMPTS = 5  # cf-aig-max-attempts (request-handling.mdx)
MAX_RETRY_DELAY_MS = 5000  # cf-aig-retry-delay
BACKOFFS = ("constant", "linear", "exponential")  # cf-aig-backoff
MetadataValue = str | int | float | bool

# Friendly names for the headers a user fills in, used in validation messages.
HEADER_LABELS: dict[str, str] = {
    "cf-aig-cache-key": "Cache key (cf-aig-cache-key)",
    "cf-aig-event-id": "Event id (cf-aig-event-id)",
    "cf-aig-metadata": "Gateway metadata (cf-aig-metadata)",
}
# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls except horizontal tab


def header_problems(headers: Mapping[str, Any]) -> list[str]:
    """One sentence per header that cannot be sent as it is; empty when all can. Checked before sending
    because requests/http.client would otherwise raise InvalidHeader (or UnicodeEncodeError) mid-call."""
    problems: list[str] = []
    for name, value in headers.items():
        label = HEADER_LABELS.get(str(name).lower(), f"Header {name!r}")
        if not isinstance(name, str) or not _HEADER_NAME_RE.match(name):
            problems.append(f"Header name {name!r} is not valid: use letters, digits and - (no spaces or colons).")
            continue
        if not isinstance(value, str):
            problems.append(f"{label} must be text, not {type(value).__name__}.")
        elif "\r" in value or "\n" in value:
            problems.append(f"{label} contains a line break; a header value must be one line.")
        elif _CONTROL_RE.search(value):
            problems.append(f"{label} contains a control character; remove it.")
        elif value != value.strip(" \t"):
            problems.append(f"{label} starts or ends with a space; remove the spaces around it.")
        else:
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                problems.append(f"{label} has characters HTTP headers cannot carry (beyond Latin-1); "
                                "use plain ASCII.")
    return problems


@dataclass(frozen=True)
class GatewayOptions:
    """AI Gateway per-request options, sent as cf-aig-* headers on the gateway routes (the gateway URL and the
    unified route alike; docs/PROTOCOL.md 3.2 and 3.4)."""

    cache_ttl: int | None = None  # cf-aig-cache-ttl, seconds (60..2592000)
    skip_cache: bool = False  # cf-aig-skip-cache: true
    cache_key: str | None = None  # cf-aig-cache-key
    metadata: Mapping[str, MetadataValue] | None = None  # cf-aig-metadata (the first 5 flat entries are sent)
    event_id: str | None = None  # cf-aig-event-id
    # cf-aig-collect-log: True saves this request's log on a gateway whose logging is off, False skips it on one
    # whose logging is on; None sends nothing (the gateway's setting applies).
    collect_log: bool | None = None
    collect_log_payload: bool | None = None  # cf-aig-collect-log-payload: False keeps the log without bodies
    request_timeout_ms: int | None = None  # cf-aig-request-timeout (to the first byte; not on the final retry)
    max_attempts: int | None = None  # cf-aig-max-attempts, 1..5
    retry_delay_ms: int | None = None  # cf-aig-retry-delay, 0..5000 ms
    backoff: str | None = None  # cf-aig-backoff: constant | linear | exponential

    def validate(self) -> list[str]:
        problems = []
        if self.cache_ttl is not None and not MIN_CACHE_TTL <= self.cache_ttl <= MAX_CACHE_TTL:
            problems.append(f"Cache TTL must be {MIN_CACHE_TTL} to {MAX_CACHE_TTL} seconds.")
        if self.metadata:
            if any(not isinstance(v, MetadataValue) for v in self.metadata.values()):
                problems.append("Gateway metadata values must be strings, numbers or booleans.")
            elif any(isinstance(v, float) and not math.isfinite(v) for v in self.metadata.values()):
                problems.append("Gateway metadata numbers must be finite.")
        if self.request_timeout_ms is not None and not self.request_timeout_ms > 0:
            problems.append("The gateway request timeout must be a positive number of milliseconds.")
        if self.max_attempts is not None and not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            problems.append(f"Gateway attempts (cf-aig-max-attempts) must be 1 to {MAX_ATTEMPTS}.")
        if self.retry_delay_ms is not None and not 0 <= self.retry_delay_ms <= MAX_RETRY_DELAY_MS:
            problems.append(f"The gateway retry delay (cf-aig-retry-delay) must be 0 to {MAX_RETRY_DELAY_MS} ms.")
        if self.backoff is not None and self.backoff not in BACKOFFS:
            problems.append(f"The gateway backoff (cf-aig-backoff) must be one of {', '.join(BACKOFFS)}.")
        if not problems:  # the headers can only be built from valid values
            problems += header_problems(self.headers())
        return problems

    def sent_metadata(self) -> dict[str, MetadataValue]:
        """The metadata entries that are sent: the first MAX_METADATA_ENTRIES, as Cloudflare keeps them."""
        return dict(list((self.metadata or {}).items())[:MAX_METADATA_ENTRIES])

    def notices(self) -> list[str]:
        """What is sent differently from what was asked, said so a page can show it (not an error)."""
        out = []
        extra = list(self.metadata or {})[MAX_METADATA_ENTRIES:]
        if extra:
            out.append(f"AI Gateway keeps the first {MAX_METADATA_ENTRIES} metadata entries and ignores the rest: "
                       f"{', '.join(map(repr, extra))} not sent.")
        return out

    def headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.cache_ttl is not None:
            h["cf-aig-cache-ttl"] = str(int(self.cache_ttl))
        if self.skip_cache:
            h["cf-aig-skip-cache"] = "true"
        if self.cache_key:
            h["cf-aig-cache-key"] = self.cache_key
        if self.metadata:
            h["cf-aig-metadata"] = json.dumps(self.sent_metadata(), separators=(",", ":"))
        if self.event_id:
            h["cf-aig-event-id"] = self.event_id
        if self.collect_log is not None:
            h["cf-aig-collect-log"] = "true" if self.collect_log else "false"
        if self.collect_log_payload is not None:
            h["cf-aig-collect-log-payload"] = "true" if self.collect_log_payload else "false"
        if self.request_timeout_ms:
            h["cf-aig-request-timeout"] = str(int(self.request_timeout_ms))
        if self.max_attempts is not None:
            h["cf-aig-max-attempts"] = str(int(self.max_attempts))
        if self.retry_delay_ms is not None:
            h["cf-aig-retry-delay"] = str(int(self.retry_delay_ms))
        if self.backoff:
            h["cf-aig-backoff"] = self.backoff
        return h

    # --- the UI's key/value rows (a data editor) ------------------------------------------------------
    @staticmethod
    def metadata_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, MetadataValue]:
        """Key/value rows as cf-aig-metadata: blank keys skipped, numbers and true/false typed, the rest
        text (stripped). A missing value (None or NaN, as a data editor gives) is the empty string."""
        metadata: dict[str, MetadataValue] = {}
        for row in rows:
            key = "" if _is_missing(row.get("key")) else str(row.get("key")).strip()
            if not key:
                continue
            value = row.get("value")
            metadata[key] = _typed("" if _is_missing(value) else str(value).strip())
        return metadata

    def metadata_rows(self) -> list[dict[str, str]]:
        """The inverse, for pre-filling an editor: one {"key", "value"} row per entry, values as text."""
        rows = []
        for key, value in (self.metadata or {}).items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            rows.append({"key": str(key), "value": text})
        return rows

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], **options: Any) -> GatewayOptions:
        """Options from the UI: metadata rows plus the other fields as keywords (cache_ttl, skip_cache,
        cache_key...). A blank cache key or event id is no header at all."""
        for name in ("cache_key", "event_id"):
            if isinstance(options.get(name), str):
                options[name] = options[name].strip() or None
        metadata = cls.metadata_from_rows(rows)
        return cls(metadata=metadata or None, **options)


def _is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA (what an editor's empty cell holds), without importing pandas."""
    if value is None:
        return True
    try:
        return bool(value != value)  # only NaN differs from itself
    except TypeError:  # pandas.NA refuses to be a bool: it is the missing value
        return True


def _typed(raw: str) -> MetadataValue:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for convert in (int, float):
        try:
            number = convert(raw)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            return raw  # "nan" and "inf" stay text: JSON has no such numbers
        return number
    return raw


class RequestOptionFields(TypedDict, total=False):
    """The keyword options every model call takes (see RequestOptions for their meaning)."""

    route: Route
    gateway: GatewayOptions | None
    extra_headers: Mapping[str, str] | None
    timeout: float | tuple[float, float] | None
    deadline: float | None
    reasoning_first: bool


@dataclass(frozen=True)
class RequestOptions:
    """Everything about one call except its URL and body. Time limits:

    - `deadline_s`: the most the whole call may take, from the first byte sent to the last byte read,
      streams and retries included. None: the connection's `deadline_s`.
    - `connect_timeout` / `read_timeout`: the longest wait for a connection, and between two reads.
      None: the connection's. Neither can stretch the deadline.
    """

    route: Route = "direct"
    gateway: GatewayOptions | None = None
    extra_headers: Mapping[str, str] | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    deadline_s: float | None = None
    reasoning_first: bool = False  # how to read the answer: the model reasons inline first (cfai.shapes)

    @classmethod
    def build(cls, base: RequestOptions | None = None, **fields: Any) -> RequestOptions:
        """From the public keywords. `timeout` keeps the requests-style meaning for a (connect, read) pair;
        a single number is the call's total deadline (and bounds each wait), which is what one number
        means to a user ("give up after 3 s"). `deadline` sets the total on its own."""
        unknown = set(fields) - set(RequestOptionFields.__annotations__)
        if unknown:
            raise TypeError(f"unknown request option(s): {', '.join(sorted(unknown))}")
        opts = base or cls()
        values: dict[str, Any] = {
            "route": fields.get("route") or opts.route,
            "gateway": fields.get("gateway", opts.gateway),
            "extra_headers": fields.get("extra_headers", opts.extra_headers),
            "connect_timeout": opts.connect_timeout,
            "read_timeout": opts.read_timeout,
            "deadline_s": opts.deadline_s,
            "reasoning_first": bool(fields.get("reasoning_first", opts.reasoning_first)),
        }
        timeout = fields.get("timeout")
        totals = [float(fields["deadline"])] if fields.get("deadline") is not None else []
        if isinstance(timeout, tuple | list):
            values["connect_timeout"], values["read_timeout"] = float(timeout[0]), float(timeout[1])
        elif timeout is not None:
            totals.append(float(timeout))
        if totals:
            values["deadline_s"] = min(totals)
        return cls(**values)

    @classmethod
    def split(cls, params: dict[str, Any], base: RequestOptions | None = None) -> RequestOptions:
        """Take the request options out of a keyword dict that also holds model parameters (chat)."""
        fields = {k: params.pop(k) for k in list(params) if k in RequestOptionFields.__annotations__}
        return cls.build(base, **fields)

    def problems(self) -> list[str]:
        """Time limits that cannot work. (Headers are checked by the client on the final header set.)"""
        out = []
        for name, label in (("connect_timeout", "connect timeout"), ("read_timeout", "read timeout"),
                            ("deadline_s", "deadline")):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                out.append(f"The {label} must be a positive number of seconds, not {value!r}.")
        return out

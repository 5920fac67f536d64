"""Gateway request logs: bounded ring buffers per gateway, and in total by count and by bytes, with the logs
API's query."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ENTRY_OVERHEAD = 600  # bytes of a LogEntry with short strings (slots object, floats, index entries), measured


def new_log_id(now: float | None = None) -> str:
    """A ULID (48-bit ms timestamp + 80 random bits, Crockford base32), like Cloudflare's log ids."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(n >> shift) & 31] for shift in range(125, -1, -5))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str) -> float:
    """ISO 8601 (a trailing Z allowed) or epoch seconds -> epoch seconds. Raises ValueError."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(slots=True)
class LogEntry:
    id: str
    created_ts: float  # epoch seconds, for filtering and ordering
    gateway_id: str
    model: str
    path: str
    request_type: str  # "run" | "chat.completions" (+ ".stream" when streamed)
    provider: str = "workers-ai"
    cached: bool = False
    success: bool = False
    status_code: int = 0
    duration: int = 0  # ms, from request arrival to the last byte sent
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    event_id: str | None = None  # filterable (`filters` key event_id), not a field of the row
    model_type: str | None = None  # the model's task, e.g. "text-generation"
    request_content_type: str | None = None
    response_content_type: str | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.tokens_in is None and self.tokens_out is None:
            return None
        return (self.tokens_in or 0) + (self.tokens_out or 0)

    @property
    def size(self) -> int:
        """Approximate memory of this entry: the variable parts (model, path, metadata) plus a fixed overhead,
        so a flood of entries with 15 KB of metadata each is bounded by bytes as well as by count."""
        meta = sum(len(str(k)) + len(str(v)) + 64 for k, v in self.metadata.items())
        return ENTRY_OVERHEAD + len(self.model) + len(self.path) + len(self.event_id or "") + meta

    def to_api(self) -> dict[str, Any]:
        """A row as the SDK's `LogListResponse` types it: `metadata` is a string holding JSON (null without
        metadata), `model_type` the model's task; no gateway id or event id in the row."""
        d = asdict(self)
        for internal in ("created_ts", "gateway_id", "event_id"):
            d.pop(internal)
        d["created_at"] = iso(self.created_ts)
        d["metadata"] = json.dumps(self.metadata, separators=(",", ":")) if self.metadata else None
        d["custom_cost"] = False
        return d


# The logs API's `order_by` values (SDK 5.9 `LogListParams.order_by`) and the entry attribute each sorts on.
ORDER_FIELDS = {"created_at": "created_ts", "provider": "provider", "model": "model", "model_type": "model_type",
                "success": "success", "cached": "cached"}
FILTER_OPERATORS = ("eq", "neq", "contains", "lt", "gt")
# `filters` keys (SDK 5.9 `Filter.key`) this emulator can answer, and the entry attribute each reads.
FILTER_KEYS = {"id": "id", "event_id": "event_id", "model": "model", "provider": "provider", "cached": "cached",
               "success": "success", "status_code": "status_code", "cost": "cost", "tokens_in": "tokens_in",
               "tokens_out": "tokens_out", "total_tokens": "total_tokens", "duration": "duration",
               "request_type": "request_type", "model_type": "model_type", "path": "path",
               "request_content_type": "request_content_type", "response_content_type": "response_content_type",
               "metadata.key": None, "metadata.value": None}


@dataclass(frozen=True)
class LogFilter:
    """One entry of the logs API's `filters`: `key operator any-of(values)`."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, e: LogEntry) -> bool:
        if self.key == "metadata.key":
            candidates: list[Any] = list(e.metadata)
        elif self.key == "metadata.value":
            candidates = list(e.metadata.values())
        else:
            candidates = [getattr(e, str(FILTER_KEYS[self.key]))]
        hit = any(_compare(c, self.operator, v) for c in candidates for v in self.values)
        return not hit if self.operator == "neq" else hit


def _text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _compare(actual: Any, operator: str, wanted: str) -> bool:
    if actual is None:
        return False
    if operator in ("eq", "neq"):
        return _text(actual) == wanted  # neq is "equal to none of the values", negated in matches()
    if operator == "contains":
        return wanted.lower() in _text(actual).lower()
    try:
        a, w = float(actual), float(wanted)
    except (TypeError, ValueError):
        return False
    return a < w if operator == "lt" else a > w


@dataclass
class LogQuery:
    page: int = 1
    per_page: int = 20
    order_by: str = "created_at"
    direction: str = "desc"
    cached: bool | None = None
    success: bool | None = None
    model: str | None = None
    provider: str | None = None
    model_type: str | None = None
    search: str | None = None
    start_ts: float | None = None
    end_ts: float | None = None
    # min_/max_ bounds on duration, cost, tokens_in, tokens_out, total_tokens: attribute -> (low, high)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    filters: list[LogFilter] = field(default_factory=list)


class LogStore:
    """Keeps the newest `per_gateway` entries of each gateway, and the newest overall within `total` entries
    and `max_bytes` (by `LogEntry.size`)."""

    def __init__(self, per_gateway: int = 10_000, total: int = 100_000, max_bytes: int = 64 * 1024 * 1024):
        if per_gateway < 1 or total < 1 or max_bytes < 1:
            raise ValueError("log bounds must be positive")
        self.per_gateway = per_gateway
        self.total = total
        self.max_bytes = max_bytes
        self._by_gateway: dict[object, deque[LogEntry]] = {}
        self._by_id: dict[str, tuple[object, LogEntry, int]] = {}  # id -> (gateway key, entry, its size)
        self._order: deque[tuple[object, str]] = deque()  # (gateway key, id), oldest first
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def add(self, gateway_key: object, entry: LogEntry) -> None:
        ring = self._by_gateway.get(gateway_key)
        if ring is None:
            ring = self._by_gateway[gateway_key] = deque()
        ring.append(entry)
        size = entry.size
        self._by_id[entry.id] = (gateway_key, entry, size)
        self._bytes += size
        self._order.append((gateway_key, entry.id))
        if len(ring) > self.per_gateway:
            self._forget(ring.popleft().id)
        while len(self._by_id) > self.total or self._bytes > self.max_bytes or len(self._order) > self.total * 2:
            gk, log_id = self._order.popleft()
            if log_id in self._by_id:
                self._forget(log_id)
                gring = self._by_gateway.get(gk)
                # Entries of one gateway leave in insertion order, so the oldest is at the left.
                if gring and gring[0].id == log_id:
                    gring.popleft()

    def _forget(self, log_id: str) -> None:
        found = self._by_id.pop(log_id, None)
        if found is not None:
            self._bytes -= found[2]

    def get(self, gateway_key: object, log_id: str) -> LogEntry | None:
        found = self._by_id.get(log_id)
        if found is None or found[0] != gateway_key:
            return None
        return found[1]

    def drop_gateway(self, gateway_key: object) -> None:
        for entry in self._by_gateway.pop(gateway_key, ()):
            self._forget(entry.id)

    def query(self, gateway_key: object, q: LogQuery) -> tuple[list[LogEntry], int]:
        """Filtered, ordered, paged entries of one gateway, and the filtered total."""
        rows = [e for e in self._by_gateway.get(gateway_key, ()) if _matches(e, q)]
        attr = ORDER_FIELDS.get(q.order_by, "created_ts")
        reverse = q.direction != "asc"
        if attr == "created_ts":
            # Rows are in completion order, nearly sorted by arrival: timsort makes this about linear.
            rows.sort(key=lambda e: e.created_ts, reverse=reverse)
        else:
            rows.sort(key=lambda e: (_sortable(getattr(e, attr)), e.created_ts), reverse=reverse)
        start = (q.page - 1) * q.per_page
        return rows[start : start + q.per_page], len(rows)


def _sortable(v: Any) -> Any:
    return (0, "") if v is None else (1, v)


def _in_range(value: Any, low: float | None, high: float | None) -> bool:
    if value is None:
        return low is None and high is None
    return (low is None or value >= low) and (high is None or value <= high)


def _searchable(e: LogEntry) -> str:
    return " ".join([e.id, e.model, e.path, e.provider, json.dumps(e.metadata)]).lower()


def _matches(e: LogEntry, q: LogQuery) -> bool:
    return not (
        (q.cached is not None and e.cached != q.cached)
        or (q.success is not None and e.success != q.success)
        or (q.model is not None and e.model != q.model)
        or (q.provider is not None and e.provider != q.provider)
        or (q.model_type is not None and e.model_type != q.model_type)
        or (q.start_ts is not None and e.created_ts < q.start_ts)
        or (q.end_ts is not None and e.created_ts > q.end_ts)
        or any(not _in_range(getattr(e, attr), lo, hi) for attr, (lo, hi) in q.ranges.items())
        or (q.search is not None and q.search.lower() not in _searchable(e))
        or any(not f.matches(e) for f in q.filters)
    )

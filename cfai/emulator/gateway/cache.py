"""The AI Gateway response cache: TTL per entry, bounded in entries and bytes, least recently used out.

Used only from the server's event loop, so no lock: nothing here awaits, and an operation never
interleaves with another. Best-effort like Cloudflare: two simultaneous identical misses both go upstream.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]  # content headers to replay (content-type, ...)
    expires_at: float
    tokens_in: int | None = None  # from the response's usage, for the log of a hit
    tokens_out: int | None = None

    @property
    def size(self) -> int:
        # The body dominates; headers and bookkeeping are counted roughly so tiny bodies still cost something.
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 200


class TTLCache:
    """Maps a key to a CachedResponse until it expires; evicts least recently used beyond the bounds."""

    def __init__(
        self,
        max_entries: int = 4096,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("cache bounds must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._items: OrderedDict[str, CachedResponse] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def get(self, key: str) -> CachedResponse | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        if item.expires_at <= self.clock():
            self._remove(key)
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(
        self,
        key: str,
        status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...],
        ttl: float,
        tokens: tuple[int | None, int | None] = (None, None),
    ) -> bool:
        """Store a response for `ttl` seconds. Returns False when it is too big to cache at all."""
        item = CachedResponse(status, body, headers, self.clock() + ttl, *tokens)
        # One entry may not take more than a quarter of the budget, or it would flush everything else.
        if item.size > self.max_bytes // 4 or ttl <= 0:
            return False
        if key in self._items:
            self._remove(key)
        self._items[key] = item
        self._bytes += item.size
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._items))
            self._remove(oldest)
            self.evictions += 1
        return True

    def delete(self, key: str) -> None:
        if key in self._items:
            self._remove(key)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def _remove(self, key: str) -> None:
        item = self._items.pop(key)
        self._bytes -= item.size


def canonical_body(body: bytes, parsed: Any = None) -> bytes:
    """JSON with sorted keys and no spaces, so key order and formatting do not split the cache.

    `parsed` is the body already decoded (by a caller that needed it anyway); None means decode it here.
    A body that is not JSON is its own key.
    """
    if parsed is None:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return body
    try:
        return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, UnicodeEncodeError, RecursionError):  # NaN, a lone surrogate, absurd nesting
        return body


def cache_key(
    *,
    scope: str,
    path: str,
    model: str,
    body: bytes,
    authorization: str,
    custom_key: str | None = None,
) -> str:
    """Key as Cloudflare does: path, model, body (pass `canonical_body(...)`) and the provider token, or the
    custom key instead of path, model and body.

    `scope` names the gateway (and its cache generation). The token is always part of the key, hashed, so
    a request with another token never reads an entry it did not create, custom key or not.
    """
    h = hashlib.sha256()
    for part in (scope, hashlib.sha256(authorization.encode()).hexdigest()):
        h.update(part.encode())
        h.update(b"\0")
    if custom_key is not None:
        h.update(b"custom\0" + custom_key.encode())
    else:
        for part in (path, model):
            h.update(part.encode())
            h.update(b"\0")
        h.update(body)
    return h.hexdigest()

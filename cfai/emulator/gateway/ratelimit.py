"""Per-gateway rate limiting, fixed or sliding window, in bounded memory per gateway.

The sliding window counts requests in `SLIDING_BUCKETS` sub-buckets of the interval, so it is exact to one
bucket's width (1/50 of the interval) and never needs more than 50 counters, whatever the limit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

SLIDING_BUCKETS = 50


@dataclass(slots=True)
class _Window:
    technique: str
    interval: float
    index: int = 0  # fixed: which window `count` belongs to (floor(now / interval))
    count: int = 0  # fixed: requests in that window; sliding: requests in `buckets`
    buckets: deque[list[int]] = field(default_factory=deque)  # sliding: [bucket number, requests], oldest first


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # whole seconds, >= 1 when refused
    remaining: int = 0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._windows: dict[object, _Window] = {}

    def check(self, key: object, limit: int, interval: float, technique: str = "fixed") -> Decision:
        """Count one request against `key` if it fits in `limit` per `interval` seconds."""
        if limit <= 0 or interval <= 0:
            return Decision(True)
        now = self.clock()
        w = self._windows.get(key)
        if w is None or w.technique != technique or w.interval != interval:
            w = self._windows[key] = _Window(technique, interval)
        if technique == "sliding":
            return self._sliding(w, limit, now)
        return self._fixed(w, limit, now)

    def forget(self, key: object) -> None:
        self._windows.pop(key, None)

    @staticmethod
    def _fixed(w: _Window, limit: int, now: float) -> Decision:
        index = math.floor(now / w.interval)
        if index != w.index:
            w.index, w.count = index, 0
        if w.count < limit:
            w.count += 1
            return Decision(True, remaining=limit - w.count)
        return Decision(False, retry_after=max(1, math.ceil((index + 1) * w.interval - now)))

    @staticmethod
    def _sliding(w: _Window, limit: int, now: float) -> Decision:
        width = w.interval / SLIDING_BUCKETS
        current = math.floor(now / width)
        # A request counts until SLIDING_BUCKETS buckets after its own have begun.
        while w.buckets and w.buckets[0][0] <= current - SLIDING_BUCKETS:
            w.count -= w.buckets.popleft()[1]
        if w.count < limit:
            if w.buckets and w.buckets[-1][0] == current:
                w.buckets[-1][1] += 1
            else:
                w.buckets.append([current, 1])
            w.count += 1
            return Decision(True, remaining=limit - w.count)
        # Wait until enough of the oldest buckets have left the window for one more request.
        freed = 0
        for number, requests in w.buckets:
            freed += requests
            if w.count - freed < limit:
                return Decision(False, retry_after=max(1, math.ceil((number + SLIDING_BUCKETS) * width - now)))
        return Decision(False, retry_after=max(1, math.ceil(w.interval)))  # not reached: count <= sum

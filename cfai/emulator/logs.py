"""Rate-limited logging for the emulator, so a fault that repeats per connection cannot flood the log.

Out of file descriptors, asyncio's accept loop reports the same `socket.accept() out of system resource`
traceback once per queued connection (up to the listen backlog, every second): tens of MB a minute. Each
kind of message (logger, message template, exception type) is let through `BURST` times per `WINDOW_S`
seconds; the first one let through after a quiet spell says how many were suppressed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

WINDOW_S = 10.0
BURST = 5
MAX_KEYS = 1024  # distinct kinds tracked at once; the oldest are forgotten beyond that


class RateLimiter:
    """Counts occurrences per key in fixed windows; thread-safe (logging happens on any thread)."""

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self._lock = threading.Lock()
        self._windows: dict[Hashable, list[float | int]] = {}  # key -> [window start, let through, suppressed]

    def allow(self, key: Hashable) -> tuple[bool, int]:
        """(let this one through?, how many were suppressed since the last one let through)."""
        now = self.clock()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.window_s:
                suppressed = int(w[2]) if w is not None else 0
                if w is None and len(self._windows) >= MAX_KEYS:
                    self._windows.pop(next(iter(self._windows)))
                self._windows[key] = [now, 1, 0]
                return True, suppressed
            if w[1] < self.burst:
                w[1] += 1
                return True, 0
            w[2] += 1
            return False, 0


class RateLimitFilter(logging.Filter):
    def __init__(self, limiter: RateLimiter | None = None):
        super().__init__()
        self.limiter = limiter or RateLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        exc_type = record.exc_info[0] if record.exc_info else None
        allowed, suppressed = self.limiter.allow((record.name, record.msg, exc_type))
        if allowed and suppressed:
            record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        return allowed


_FILTER = RateLimitFilter()


def rate_limit(logger: logging.Logger) -> logging.Logger:
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def rate_limited_logger(name: str) -> logging.Logger:
    return rate_limit(logging.getLogger(name))


def install_loop_handler(loop: asyncio.AbstractEventLoop, limiter: RateLimiter | None = None) -> None:
    """Route this loop's unhandled-error reports (asyncio logs them itself) through the rate limit."""
    limiter = limiter or RateLimiter()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        allowed, suppressed = limiter.allow((context.get("message"), type(exc)))
        if not allowed:
            return
        if suppressed:
            context = {**context, "message": f"{context.get('message')} ({suppressed} similar reports suppressed)"}
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

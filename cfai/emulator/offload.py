"""CPU-heavy request work (parsing a 9 MB body, classifying or embedding long texts, rendering big answers)
runs in a small thread pool, so the event loop keeps serving other requests on time meanwhile.

Small inputs stay on the loop: a thread hop costs about 0.1 ms, more than their whole work. Two workers:
the threads share the GIL with the loop, and more would only queue inside Python instead of here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
OFFLOAD_MIN_BYTES = 32 * 1024
WORKERS = 2


class CpuPool:
    def __init__(self, workers: int = WORKERS, min_bytes: int = OFFLOAD_MIN_BYTES):
        self.workers, self.min_bytes = workers, min_bytes
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, size: int, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`, in the pool when `size` (bytes of input or output, roughly) makes it heavy."""
        if size < self.min_bytes:
            return fn(*args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="cfai-emulator-cpu")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=False, cancel_futures=True)

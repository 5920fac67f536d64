"""All of the gateway's runtime state, kept as one object on `state.extras["gateway"]`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from cfai.emulator.gateway.cache import TTLCache
from cfai.emulator.gateway.config import GatewayStore
from cfai.emulator.gateway.logs import LogStore
from cfai.emulator.gateway.ratelimit import RateLimiter
from cfai.emulator.state import EmulatorState

EXTRAS_KEY = "gateway"


@dataclass
class GatewayRuntime:
    cache: TTLCache = field(default_factory=TTLCache)
    store: GatewayStore = field(default_factory=GatewayStore)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    logs: LogStore = field(default_factory=LogStore)
    clock: Callable[[], float] = time.time
    _client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.set_clock(self.clock)

    def set_clock(self, clock: Callable[[], float]) -> None:
        """One time source (epoch seconds) for TTLs, rate windows and timestamps; tests pass a fake one."""
        self.clock = clock
        self.cache.clock = clock
        self.store.clock = clock
        self.limiter.clock = clock

    def client(self) -> httpx.AsyncClient:
        # Created on first use so it belongs to the server's event loop; one pool, kept alive, for all misses.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=5.0, read=600.0, write=60.0, pool=60.0),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30),
                trust_env=False,  # never route loopback traffic through a proxy from the environment
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def get_runtime(state: EmulatorState) -> GatewayRuntime:
    rt = state.extras.get(EXTRAS_KEY)
    if rt is None:
        rt = state.extras[EXTRAS_KEY] = GatewayRuntime(logs=LogStore(max_bytes=state.options.gateway_log_max_bytes))
    return rt

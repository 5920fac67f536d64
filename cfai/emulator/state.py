"""Options and shared state of one emulator server (Workers AI part and gateway part)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cfai.emulator.offload import CpuPool

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 10.0
DEFAULT_GATEWAY_LOG_MAX_BYTES = 64 * 1024 * 1024
# The app's embedded emulator: a typical client-to-Cloudflare round trip, so a local demo's cache hits cost
# what they cost over the internet (tens of ms, not 1 ms). The CLI, tests and benchmarks default to 0.
DEMO_NETWORK_RTT_MS = 40.0
DEMO_NETWORK_JITTER_MS = 10.0


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 8787  # 0 picks a free port
    speed: float = 1.0  # latency divisor: 10 means ten times faster than the realistic default
    api_token: str | None = None  # when set, requests must carry `Authorization: Bearer <api_token>`
    seed: int = 0
    allow_faults: bool = False  # honour the fault headers of cfai.faults
    # Cloudflare creates only `default` on first use (with authentication on); any other unknown gateway id
    # answers 400/2001. `lenient_gateways` creates any valid id on first use, authentication off (tests).
    lenient_gateways: bool = False
    legacy_logs: bool = True  # False: the logs API answers as for an account without Legacy Logs (404/4903)
    strict_accounts: bool = False  # account ids that are not 32 lowercase hex answer 404/7003, as Cloudflare does
    upstream_openai: str | None = None  # forward text generation to a local OpenAI-compatible server
    upstream_model: str | None = None  # model name to ask the upstream for (default: the requested id)
    rate_limits: bool = True  # Workers AI's per-minute limits per task (429 / 3021); off for tests and benchmarks
    busy_threshold: int = 32  # in-flight requests per model at which `options.rejectIfBusy` answers 429 / 3040
    # A simulated internet round trip added once to every request from outside (both routes, cache hits
    # included), uniformly jittered by +- network_jitter_ms. Not divided by `speed`: it is not the model.
    network_rtt_ms: float = 0.0
    network_jitter_ms: float = 0.0
    # Slow clients are dropped: a request's headers must be complete within header_timeout_s of its first
    # byte (or of the connection opening), its body within body_timeout_s of the headers.
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int | None = None  # open client connections at once; None: from the open-files limit
    gateway_log_max_bytes: int = DEFAULT_GATEWAY_LOG_MAX_BYTES  # the gateway log's memory budget

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        if not self.speed > 0:
            raise ValueError("speed must be positive")
        if not (self.network_rtt_ms >= 0 and self.network_jitter_ms >= 0):  # also refuses NaN
            raise ValueError("the network round trip and its jitter must be 0 or more ms")
        if not (self.header_timeout_s > 0 and self.body_timeout_s > 0):
            raise ValueError("the header and body timeouts must be positive")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max connections must be at least 1")
        if self.gateway_log_max_bytes < 1:
            raise ValueError("the gateway log's byte budget must be positive")


@dataclass
class EmulatorState:
    options: EmulatorOptions
    # Set once the server is bound. `base_url` is what clients use; the gateway proxies cache misses over real
    # HTTP to `internal_url`, a second loopback socket of the same server, so its hop neither pays the
    # simulated network round trip a second time nor counts against the client connection limit.
    base_url: str = ""
    internal_url: str = ""
    internal_port: int | None = None
    extras: dict = field(default_factory=dict)
    # Latency jitter and stream padding: seeded by options.seed, so a run's timings are reproducible.
    latency_rng: random.Random = field(default_factory=random.Random)
    network_rng: random.Random = field(default_factory=random.Random)  # its own: RTT leaves model timings as they were
    cpu: CpuPool = field(default_factory=CpuPool)  # heavy request work, off the event loop

    def __post_init__(self) -> None:
        self.latency_rng.seed(self.options.seed)
        self.network_rng.seed(f"network:{self.options.seed}")

    @property
    def upstream_base(self) -> str:
        """Where the gateway sends misses: the internal socket once bound, else the public base URL."""
        return self.internal_url or self.base_url

"""Options and shared state of one emulator server (Workers AI part and gateway part)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 8787  # 0 picks a free port
    speed: float = 1.0  # latency divisor: 10 means ten times faster than the realistic default
    api_token: str | None = None  # when set, requests must carry `Authorization: Bearer <api_token>`
    seed: int = 0
    allow_faults: bool = False  # honour the `x-emulator-fault` request header
    strict_gateways: bool = False  # unknown gateway ids answer 2001 instead of being created
    strict_accounts: bool = False  # account ids that are not 32 lowercase hex answer 404/7003, as Cloudflare does
    upstream_openai: str | None = None  # forward text generation to a local OpenAI-compatible server
    upstream_model: str | None = None  # model name to ask the upstream for (default: the requested id)
    rate_limits: bool = True  # Workers AI's per-minute limits per task (429 / 3021); off for tests and benchmarks
    busy_threshold: int = 32  # in-flight requests per model at which `options.rejectIfBusy` answers 429 / 3040


@dataclass
class EmulatorState:
    options: EmulatorOptions
    # Set once the server is bound; the gateway proxies cache misses to this base over real HTTP.
    base_url: str = ""
    extras: dict = field(default_factory=dict)
    # Latency jitter and stream padding: seeded by options.seed, so a run's timings are reproducible.
    latency_rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.latency_rng.seed(self.options.seed)

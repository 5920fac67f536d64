"""What a comparison run will send: the `Plan`, its limits, and every rule about it in one place
(`Plan.problems`), so the Compare page, the CLI and the runner refuse the same plans with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from cfai.chat.params import is_json_mode
from cfai.config import Connection
from cfai.errors import is_secret_header
from cfai.routes import ROUTES, uses_gateway

CacheMode = Literal["identical", "unique"]
CACHE_MODES: tuple[CacheMode, ...] = ("identical", "unique")
MAX_CONCURRENCY = 64
# Open loop: the most requests in flight at once. Beyond it a start is late, and `actual_start_s` says so.
OPEN_LOOP_MAX_IN_FLIGHT = 256
JSON_MODE_STREAM_PROBLEM = "JSON mode cannot stream: turn Stream off or set the response format to Text."
NO_GATEWAY_PROBLEM = (
    "The gateway routes (gateway, gateway-skip, unified) need an AI Gateway ID: set CLOUDFLARE_GATEWAY_ID (or "
    "the Gateway ID in the sidebar), or compare the direct route only."
)


@dataclass
class Plan:
    model: str
    body: dict[str, Any]
    routes: tuple[str, ...] = ("direct", "gateway")
    n: int = 30  # measured requests per route
    warmup: int = 1  # warm-up requests per route, before the measured ones, excluded from statistics
    concurrency: int = 1  # closed loop: requests in flight at once (1..64)
    rate: float | None = None  # open loop when set: requests per second across all routes
    cache_ttl: int | None = 300  # cf-aig-cache-ttl on the `gateway` and `unified` routes; None sends no header
    cache_mode: CacheMode = "identical"
    stream: bool = False
    timeout_s: float = 60.0
    name: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)  # sent on every request (e.g. emulator knobs)
    sweep: dict[str, Any] | None = None  # set on a load sweep's stored plan: its steps (cfai.sweep.SweepPlan)
    price: dict[str, Any] | None = None  # the price the run's costs use (cfai.pricing.ModelPrice.to_dict())

    def __post_init__(self) -> None:
        self.routes = tuple(self.routes)

    @property
    def is_open_loop(self) -> bool:
        return self.rate is not None

    @property
    def total_requests(self) -> int:
        return (self.n + self.warmup) * len(self.routes)

    @property
    def uses_gateway(self) -> bool:
        return uses_gateway(self.routes)

    def problems(self, connection: Connection | None = None) -> list[str]:
        """Everything wrong with the plan, in words a user can act on; empty when it can run. With a
        `connection`, also what the connection lacks for it (a gateway id for the gateway routes)."""
        out: list[str] = []
        if not self.model or not self.model.strip():
            out.append("Choose a model.")
        if not isinstance(self.body, dict) or not self.body:
            out.append("The request body must be a non-empty JSON object.")
        if not self.routes:
            out.append("Choose at least one route.")
        unknown = [r for r in self.routes if r not in ROUTES]
        if unknown:
            out.append(f"Unknown route(s) {', '.join(unknown)}; choose from {', '.join(ROUTES)}.")
        if len(set(self.routes)) != len(self.routes):
            out.append("Each route may appear only once.")
        if self.n < 1:
            out.append("Requests per route (n) must be at least 1.")
        if self.warmup < 0:
            out.append("Warm-up requests cannot be negative.")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            out.append(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
        if self.rate is not None and not self.rate > 0:
            out.append("The request rate must be above 0 requests per second.")
        if self.cache_ttl is not None and self.cache_ttl <= 0:
            out.append("The cache TTL must be a positive number of seconds (or none).")
        if self.cache_mode not in CACHE_MODES:
            out.append(f"Cache mode must be one of {', '.join(CACHE_MODES)}.")
        if not self.timeout_s > 0:
            out.append("The timeout must be above 0 seconds.")
        if self.stream and isinstance(self.body, dict) and is_json_mode(self.body):
            out.append(JSON_MODE_STREAM_PROBLEM)
        if connection is not None and self.uses_gateway and not connection.gateway_id:
            out.append(NO_GATEWAY_PROBLEM)
        return out

    def validate(self) -> Plan:
        problems = self.problems()
        if problems:
            raise ValueError(" ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for storage and export; secret-bearing headers are dropped."""
        data = asdict(self)
        data["routes"] = list(self.routes)
        # Credential headers are never kept: a plan is stored, exported and written into locustfiles.
        data["extra_headers"] = {k: v for k, v in self.extra_headers.items() if not is_secret_header(k)}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**values)

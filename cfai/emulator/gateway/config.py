"""Gateway settings and their store (the management API's data), bounded in number of gateways."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cfai.emulator.gateway.logs import iso

GATEWAY_ID_RE = re.compile(r"^(?!-)(?!.*--)[a-z0-9_-]{1,64}(?<!-)$")
MAX_CACHE_TTL = 2_592_000  # 30 days, Cloudflare's ceiling for cf-aig-cache-ttl
MAX_RETRY_ATTEMPTS = 5
MAX_RETRY_DELAY_MS = 5000
DEFAULT_GATEWAY_ID = "default"
DEMO_GATEWAY_ID = "demo"
# `default` as Cloudflare auto-creates it (manage-gateway.mdx: authentication on, logs on, cache off, rate
# limiting off); it exists once a request has used it. `demo` is this emulator's own, pre-created in every
# account so local mode can show caching without any set-up (authentication off, 5-minute cache).
DEFAULT_SETTINGS: dict[str, Any] = {"authentication": True}
DEMO_SETTINGS: dict[str, Any] = {"cache_ttl": 300}
_generations = itertools.count(1)
_BOOLS = ("cache_invalidate_on_update", "collect_logs", "authentication", "logpush")
_NULLABLE_INTS = {"cache_ttl": MAX_CACHE_TTL, "rate_limiting_limit": None, "rate_limiting_interval": None,
                  "retry_max_attempts": MAX_RETRY_ATTEMPTS, "retry_delay": MAX_RETRY_DELAY_MS,
                  "log_management": None}
_CHOICES = {"rate_limiting_technique": ("fixed", "sliding"),
            "retry_backoff": ("constant", "linear", "exponential"),
            "log_management_strategy": ("STOP_INSERTING", "DELETE_OLDEST")}
_NULLABLE_CHOICES = {"retry_backoff", "log_management_strategy"}


class ConfigError(ValueError):
    """A management API request with a bad field; the message says which."""


@dataclass
class GatewayConfig:
    account: str
    id: str
    # Numbers are nullable as in the SDK's type (`cache_ttl: Optional[int]`); None and 0 both mean "off".
    cache_ttl: int | None = None  # seconds
    cache_invalidate_on_update: bool = False
    collect_logs: bool = True
    rate_limiting_limit: int | None = None
    rate_limiting_interval: int | None = None  # seconds
    rate_limiting_technique: str = "fixed"  # fixed | sliding
    authentication: bool = False
    # Gateway-level retry defaults (manage-gateway.mdx "Retry requests"); cf-aig-* headers override them.
    retry_max_attempts: int | None = None
    retry_delay: int | None = None  # ms
    retry_backoff: str | None = None
    log_management: int | None = None  # stored, not enforced (the emulator bounds its log by bytes and count)
    log_management_strategy: str | None = None
    logpush: bool = False
    created_at: float = 0.0
    modified_at: float = 0.0
    internal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Part of every cache key: bumping it orphans the gateway's cached entries (LRU/TTL clean them up).
    generation: int = field(default_factory=lambda: next(_generations))

    @property
    def key(self) -> tuple[str, str]:
        return (self.account, self.id)

    @property
    def ttl(self) -> int:
        return self.cache_ttl or 0

    @property
    def rate_limited(self) -> bool:
        return bool(self.rate_limiting_limit) and bool(self.rate_limiting_interval)

    def to_api(self) -> dict[str, Any]:
        """The gateway object of the SDK 5.9 type (docs/PROTOCOL.md 3.8), plus the account fields that the
        2025 SDK required, so readers of either version parse it."""
        return {
            "id": self.id,
            "account_id": self.account,
            "account_tag": self.account,
            "internal_id": self.internal_id,
            "is_default": self.id == DEFAULT_GATEWAY_ID,
            "cache_ttl": self.cache_ttl,
            "cache_invalidate_on_update": self.cache_invalidate_on_update,
            "collect_logs": self.collect_logs,
            "rate_limiting_limit": self.rate_limiting_limit,
            "rate_limiting_interval": self.rate_limiting_interval,
            "rate_limiting_technique": self.rate_limiting_technique,
            "authentication": self.authentication,
            "retry_max_attempts": self.retry_max_attempts,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "log_management": self.log_management,
            "log_management_strategy": self.log_management_strategy,
            "logpush": self.logpush,
            "logpush_public_key": None,
            "workers_ai_billing_mode": "postpaid",
            "created_at": iso(self.created_at),
            "modified_at": iso(self.modified_at),
        }


EDITABLE = {f.name for f in fields(GatewayConfig)} - {
    "account", "id", "created_at", "modified_at", "generation", "internal_id"}


def validate_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Checked, typed settings from a management API body; unknown keys are ignored as Cloudflare does."""
    out: dict[str, Any] = {}
    for name in EDITABLE & data.keys():
        value = data[name]
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be a boolean")
        elif name in _CHOICES:
            if value is None and name in _NULLABLE_CHOICES:
                pass
            elif value not in _CHOICES[name]:
                raise ConfigError(f"{name} must be one of {', '.join(_CHOICES[name])}")
        else:
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{name} must be a non-negative integer or null")
                ceiling = _NULLABLE_INTS.get(name)
                if ceiling is not None and value > ceiling:
                    raise ConfigError(f"{name} must be at most {ceiling}")
        out[name] = value
    return out


class GatewayStore:
    def __init__(self, max_gateways: int = 1000, clock: Callable[[], float] = time.time):
        self.max_gateways = max_gateways
        self.clock = clock
        self._gateways: dict[tuple[str, str], GatewayConfig] = {}

    def get(self, account: str, gateway_id: str) -> GatewayConfig | None:
        """The gateway as the management API sees it: `demo` always exists, `default` once it was used."""
        found = self._gateways.get((account, gateway_id))
        if found is None and gateway_id == DEMO_GATEWAY_ID:
            found = self.create(account, gateway_id, DEMO_SETTINGS, preset=True)
        return found

    def resolve(self, account: str, gateway_id: str, *, lenient: bool = False) -> GatewayConfig | None:
        """The gateway a proxied request names. `default` is created on first use with Cloudflare's settings
        (and again after a delete); any other id must exist, unless `lenient`, which creates it with the
        emulator's relaxed defaults (authentication off) for tests that need throwaway gateways."""
        found = self.get(account, gateway_id)
        if found is not None or not GATEWAY_ID_RE.match(gateway_id):
            return found
        if gateway_id != DEFAULT_GATEWAY_ID and not lenient:
            return None
        try:
            return self.create(account, gateway_id, DEFAULT_SETTINGS if gateway_id == DEFAULT_GATEWAY_ID else {},
                               preset=gateway_id == DEFAULT_GATEWAY_ID)
        except ConfigError:
            return None

    def list(self, account: str) -> list[GatewayConfig]:
        self.get(account, DEMO_GATEWAY_ID)
        return sorted((g for g in self._gateways.values() if g.account == account), key=lambda g: g.created_at)

    def create(
        self, account: str, gateway_id: str, settings: Mapping[str, Any], *, preset: bool = False
    ) -> GatewayConfig:
        if not isinstance(gateway_id, str) or not GATEWAY_ID_RE.match(gateway_id):
            raise ConfigError("id must be 1-64 of a-z, 0-9, '_' and '-', without leading, trailing or double '-'")
        if (account, gateway_id) in self._gateways:
            raise ConfigError(f"gateway {gateway_id!r} already exists")
        if len(self._gateways) >= self.max_gateways and not preset:
            raise ConfigError(f"too many gateways (this emulator keeps at most {self.max_gateways})")
        now = self.clock()
        gw = GatewayConfig(account, gateway_id, created_at=now, modified_at=now, **validate_settings(settings))
        self._gateways[gw.key] = gw
        return gw

    def update(self, account: str, gateway_id: str, settings: Mapping[str, Any]) -> GatewayConfig | None:
        gw = self.get(account, gateway_id)
        if gw is None:
            return None
        changes = validate_settings(settings)
        for name, value in changes.items():
            setattr(gw, name, value)
        gw.modified_at = self.clock()
        if gw.cache_invalidate_on_update:
            gw.generation = next(_generations)
        return gw

    def delete(self, account: str, gateway_id: str) -> GatewayConfig | None:
        return self._gateways.pop((account, gateway_id), None)

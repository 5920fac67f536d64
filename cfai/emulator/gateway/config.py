"""Gateway settings and their store (the management API's data), bounded in number of gateways."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cfai.emulator.gateway.logs import iso

GATEWAY_ID_RE = re.compile(r"^(?!-)(?!.*--)[a-z0-9_-]{1,64}(?<!-)$")
MAX_CACHE_TTL = 2_592_000  # 30 days, Cloudflare's ceiling for cf-aig-cache-ttl
# Ready-made gateways every account has: `default` as Cloudflare creates it (cache off), `demo` for showing
# caching without any set-up.
PRESETS: dict[str, dict[str, Any]] = {"default": {}, "demo": {"cache_ttl": 300}}
_generations = itertools.count(1)


class ConfigError(ValueError):
    """A management API request with a bad field; the message says which."""


@dataclass
class GatewayConfig:
    account: str
    id: str
    cache_ttl: int = 0  # seconds; 0 means caching is off (the Cloudflare default)
    cache_invalidate_on_update: bool = False
    collect_logs: bool = True
    rate_limiting_limit: int = 0  # 0 means no rate limit
    rate_limiting_interval: int = 0  # seconds
    rate_limiting_technique: str = "fixed"  # fixed | sliding
    authentication: bool = False
    created_at: float = 0.0
    modified_at: float = 0.0
    # Part of every cache key: bumping it orphans the gateway's cached entries (LRU/TTL clean them up).
    generation: int = field(default_factory=lambda: next(_generations))

    @property
    def key(self) -> tuple[str, str]:
        return (self.account, self.id)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cache_ttl": self.cache_ttl,
            "cache_invalidate_on_update": self.cache_invalidate_on_update,
            "collect_logs": self.collect_logs,
            "rate_limiting_limit": self.rate_limiting_limit,
            "rate_limiting_interval": self.rate_limiting_interval,
            "rate_limiting_technique": self.rate_limiting_technique,
            "authentication": self.authentication,
            "created_at": iso(self.created_at),
            "modified_at": iso(self.modified_at),
        }


EDITABLE = {f.name for f in fields(GatewayConfig)} - {"account", "id", "created_at", "modified_at", "generation"}


def validate_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Checked, typed settings from a management API body; unknown keys are ignored as Cloudflare does."""
    out: dict[str, Any] = {}
    for name in EDITABLE & data.keys():
        value = data[name]
        if name in ("cache_invalidate_on_update", "collect_logs", "authentication"):
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be a boolean")
        elif name == "rate_limiting_technique":
            if value not in ("fixed", "sliding"):
                raise ConfigError("rate_limiting_technique must be 'fixed' or 'sliding'")
        else:
            if value is None:
                value = 0
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer")
            if name == "cache_ttl" and value > MAX_CACHE_TTL:
                raise ConfigError(f"cache_ttl must be at most {MAX_CACHE_TTL}")
        out[name] = value
    return out


class GatewayStore:
    def __init__(self, max_gateways: int = 1000, clock: Callable[[], float] = time.time):
        self.max_gateways = max_gateways
        self.clock = clock
        self._gateways: dict[tuple[str, str], GatewayConfig] = {}

    def get(self, account: str, gateway_id: str) -> GatewayConfig | None:
        found = self._gateways.get((account, gateway_id))
        if found is None and gateway_id in PRESETS:
            found = self.create(account, gateway_id, PRESETS[gateway_id], preset=True)
        return found

    def resolve(self, account: str, gateway_id: str, *, create: bool) -> GatewayConfig | None:
        """The gateway a proxied request names; created with defaults on first use when `create`."""
        found = self.get(account, gateway_id)
        if found is None and create and GATEWAY_ID_RE.match(gateway_id):
            try:
                found = self.create(account, gateway_id, {})
            except ConfigError:
                return None
        return found

    def list(self, account: str) -> list[GatewayConfig]:
        for preset in PRESETS:
            self.get(account, preset)
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

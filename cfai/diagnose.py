"""Why identical gateway requests never hit the cache: the usual causes, which ones fit this run, and fixes;
and whether runs overlaid in History are comparable (same model and kind of request).

Pure functions over a comparison plan (a `cfai.compare.Plan` or the plan dict a stored run keeps) and its
records frame, so the compare and history pages say the same thing and tests can check it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cfai.chart_data import cache_label
from cfai.plan import Plan
from cfai.records import measured
from cfai.routes import GATEWAY_SKIP


@dataclass(frozen=True)
class Cause:
    key: str
    title: str
    fix: str
    likely: bool  # True when this run's plan or records point at it


# A run's plan as the pages have it: a `Plan`, or the plan dict a stored run keeps.
PlanLike = Plan | Mapping[str, Any]


def plan_value(plan: PlanLike | None, name: str, default: Any = None) -> Any:
    """A plan field from a `Plan` or the plan dict a stored run keeps."""
    if plan is None:
        return default
    if isinstance(plan, Mapping):
        return plan.get(name, default)
    return getattr(plan, name, default)


def gateway_never_hit(df: pd.DataFrame) -> bool:
    """True when the plain gateway route answered at least once without error after its first request
    (which is always a miss) and never with a HIT."""
    if df is None or df.empty or "route" not in df:
        return False
    gateway = df[df["route"].astype(str) == "gateway"]
    if len(gateway) < 2:
        return False  # a single request can only miss
    labels = cache_label(gateway["cache_status"], gateway.get("ok"))
    answered = labels != "error"
    if answered.sum() < 2:
        return False
    return not (labels == "HIT").any()


def misses_expected(plan: PlanLike | None) -> str | None:
    """When the plan makes every gateway request miss on purpose (cache mode "unique"), the sentence that says
    so; None otherwise. The report then shows this instead of a diagnosis."""
    if str(plan_value(plan, "cache_mode", "identical") or "identical") != "unique":
        return None
    return ("Cache mode **unique** gives every gateway request its own cf-aig-cache-key, so every one misses: "
            "no hits is the expected result here. This run measures the cold path through the gateway; "
            "choose **identical** to measure cache hits.")


def no_hit_causes(plan: PlanLike | None, df: pd.DataFrame | None = None) -> list[Cause]:
    """Why this run's gateway never hit: only the causes its plan and records show, each with its fix.

    A cause is listed when it applies (no cf-aig-cache-ttl sent, streamed requests, a skip-cache header,
    concurrent first requests without a warm-up, mostly errors, only the skip route, only warm-ups). When
    none applies, one entry says nothing in the run explains it and what to check outside it (`likely`
    False). Cache mode "unique" expects misses: see `misses_expected`, which the report shows instead.
    """
    stream = bool(plan_value(plan, "stream", False))
    cache_ttl = plan_value(plan, "cache_ttl", None)
    cache_mode = str(plan_value(plan, "cache_mode", "identical") or "identical")
    concurrency = int(plan_value(plan, "concurrency", 1) or 1)
    rate = plan_value(plan, "rate", None)
    warmup = int(plan_value(plan, "warmup", 0) or 0)
    routes = tuple(plan_value(plan, "routes", ()) or ())
    extra_headers = plan_value(plan, "extra_headers", None) or {}

    records = df if df is not None else pd.DataFrame()
    gateway = records[records["route"].astype(str) == "gateway"] if "route" in records else records
    labels = cache_label(gateway["cache_status"], gateway.get("ok")) if "cache_status" in gateway else None

    causes: list[Cause] = []
    if cache_mode == "unique":
        causes.append(Cause(
            "unique_mode",
            "Cache mode 'unique' makes every request different on purpose",
            "No hits is the expected result here (it measures the cold path); choose 'identical' to measure "
            "cache hits.",
            likely=True,
        ))
    if cache_ttl is None:
        causes.append(Cause(
            "caching_off",
            "No cf-aig-cache-ttl header was sent, so the gateway's own cache setting decides",
            "Set a cache TTL in the plan (it sends cf-aig-cache-ttl), or turn on caching in the gateway's "
            "settings (AI Gateway > your gateway > Settings > Cache responses). The gateway `default` has "
            "caching off.",
            likely=True,
        ))
    if stream:
        causes.append(Cause(
            "stream",
            "The requests were streamed",
            "Streamed responses are not cached by default: turn the stream toggle off to measure caching.",
            likely=True,
        ))
    if any(k.lower() in ("cf-aig-skip-cache", "cf-skip-cache") for k in extra_headers):
        causes.append(Cause(
            "skip_header",
            "The plan's extra headers send cf-aig-skip-cache",
            "Remove the skip-cache header from the extra headers (the gateway-skip route sends it on its own).",
            likely=True,
        ))
    if (concurrency > 1 or rate) and warmup == 0:
        causes.append(Cause(
            "concurrent_first",
            "Identical requests were in flight at the same time before anything was cached",
            "The cache is best-effort: simultaneous identical requests can all miss. Add a warm-up request so "
            "the response is cached before the measured ones start.",
            likely=True,
        ))
    if labels is not None and len(labels) > 0 and bool((labels == "error").mean() > 0.5):
        causes.append(Cause(
            "errors",
            "Most gateway requests failed",
            "Only successful responses are cached: fix the errors shown in the records table first.",
            likely=True,
        ))
    if routes and "gateway" not in routes and GATEWAY_SKIP in routes:
        causes.append(Cause(
            "skip_only",
            "Only the gateway-skip route ran (it sends cf-aig-skip-cache: true)",
            "Add the 'gateway' route to see cache hits.",
            likely=True,
        ))
    if measured(gateway).empty and len(gateway) > 0:
        causes.append(Cause(
            "only_warmup",
            "Only warm-up requests reached the gateway",
            "Raise N so measured requests follow the warm-up.",
            likely=True,
        ))
    if not causes:
        causes.append(Cause(
            "unexplained",
            "Nothing in this run's plan or records explains it",
            "The requests were identical, not streamed, and sent cf-aig-cache-ttl. Check what is outside the "
            "run: the gateway's cache settings, and anything between this app and the gateway that changes "
            "the request (a proxy adding headers, a token that rotates).",
            likely=False,
        ))
    return causes


def request_kind(body: Any) -> str:
    """What a request body asks for, by its shape: text generation, text classification or other JSON."""
    if not isinstance(body, Mapping):
        return "other JSON"
    if "prompt" in body or "messages" in body:
        return "text generation"
    if "text" in body:
        return "text classification"
    return "other JSON"


def overlay_mismatch(plans: Mapping[str, PlanLike]) -> str | None:
    """For the History overlay: a note when the runs (label -> Plan or stored plan dict) differ in model or
    request kind, since their latencies then compare different work. None when they match."""
    models = {label: str(plan_value(plan, "model", "") or "?") for label, plan in plans.items()}
    kinds = {label: request_kind(plan_value(plan, "body", None)) for label, plan in plans.items()}
    parts = []
    for what, values in (("model", models), ("request kind", kinds)):
        if len(set(values.values())) > 1:
            parts.append(f"{what} ({'; '.join(f'{label}: {v}' for label, v in values.items())})")
    if not parts:
        return None
    return ("The overlaid runs differ in " + " and in ".join(parts) + ". Their latencies measure different "
            "work, so compare them with care.")

"""The server-side view of a stored run: its AI Gateway log rows, found by the log ids its records kept.

The logs API has no "these ids" filter, so we page through the gateway's logs (newest first, narrowed to the
run's time window) and keep the rows whose id the run recorded (`cf-aig-log-id`), stopping as soon as every
id is found or the pages run out. Each log row is joined to its client-side record so the two timings sit
side by side (the gap is network plus client overhead).

The logs API belongs to AI Gateway's Legacy Logs (accounts created before September 24, 2026; newer ones keep
gateway logs in Workers Observability, docs/PROTOCOL.md 3.9). When the logs endpoint fails while the gateway
itself answers, the view says the logs are unavailable for this account and why (`unavailable`), instead of
showing an error. `metadata` is a string in the API (the JSON text); `metadata_of` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from cfai.client import Result

# The SDK's LogListResponse fields the view shows (`metadata` is the JSON text; there is no event id field:
# an event id is only a filter).
LOG_COLUMNS = ["id", "created_at", "cached", "duration", "status_code", "success", "model", "provider",
               "tokens_in", "tokens_out", "cost", "metadata"]
LEGACY_LOGS_UNAVAILABLE = (
    "Server-side logs are not available for this account: the gateway answers, but its logs API does not. That "
    "API belongs to AI Gateway's Legacy Logs, which only accounts created before September 24, 2026 have; newer "
    "accounts keep gateway logs in Workers Observability (the dashboard's AI Gateway > Logs tab, or Workers "
    "Logs), which this view cannot read. The client-side timings of the run are complete."
)
# Failures that say nothing about Legacy Logs: the token, the network, a deadline or a rate limit.
_NOT_AVAILABILITY_KINDS = ("gateway_authentication", "network", "connection_dropped", "deadline",
                           "timeout", "rate_limited", "invalid_request")
# How far outside the run's start/finish a log's timestamp may fall (clock skew, queueing).
WINDOW_SLACK_S = 60.0


class LogsClient(Protocol):
    """What the server-side view needs from a client (`cfai.client.Client.gateway_logs`)."""

    def gateway_logs(self, gateway_id: str | None = None, **filters: Any) -> Result: ...

    def gateway_settings(self, gateway_id: str | None = None) -> Result: ...


@dataclass
class ServerView:
    logs: pd.DataFrame  # the matched log rows, LOG_COLUMNS plus the record's seq, route, cache_status, total_ms
    wanted: int  # log ids the run recorded
    missing: list[str] = field(default_factory=list)  # ids not found (expired from the log, or not logged)
    pages: int = 0
    error: str | None = None  # the API's error message, token-free (the client scrubs it)
    unavailable: str | None = None  # the logs API is not available for this account (Legacy Logs), and why

    @property
    def found(self) -> int:
        return len(self.logs)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_run_logs(
    client: LogsClient,
    records: pd.DataFrame,
    *,
    gateway_id: str | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    per_page: int = 50,
    max_pages: int = 20,
) -> ServerView:
    """Page through `client.gateway_logs(...)` and keep the rows whose id is one of the records' `log_id`s."""
    wanted_ids = _log_ids(records.get("log_id", []))
    wanted = set(wanted_ids)
    filters: dict[str, Any] = {"per_page": per_page, "order_by": "created_at", "direction": "desc"}  # SDK names
    if started_at:
        filters["start_date"] = _iso(started_at - WINDOW_SLACK_S)
    if finished_at:
        filters["end_date"] = _iso(finished_at + WINDOW_SLACK_S)
    found: dict[str, dict[str, Any]] = {}
    pages = 0
    error = unavailable = None
    while wanted and len(found) < len(wanted) and pages < max_pages:
        pages += 1
        result = client.gateway_logs(gateway_id, page=pages, **filters)
        if not result.ok:
            error = str(result.error) if result.error is not None else f"HTTP {result.status}"
            if _logs_unavailable(client, result, gateway_id):
                unavailable, error = f"{LEGACY_LOGS_UNAVAILABLE} (Cloudflare said: {error})", None
            break
        rows = result.output if isinstance(result.output, list) else []
        for row in rows:
            if isinstance(row, dict) and row.get("id") in wanted:
                found[row["id"]] = row
        if len(rows) < per_page:
            break
    logs = pd.DataFrame([found[i] for i in wanted_ids if i in found]).reindex(columns=LOG_COLUMNS)
    return ServerView(
        logs=join_records(logs, records),
        wanted=len(wanted),
        missing=[i for i in wanted_ids if i not in found],
        pages=pages,
        error=error,
        unavailable=unavailable,
    )


def _logs_unavailable(client: LogsClient, result: Result, gateway_id: str | None) -> bool:
    """The logs endpoint failed for a reason other than the token, the network or the load, while the gateway
    itself answers: what an account without Legacy Logs sees (Cloudflare documents no code for it)."""
    kind = result.error.kind if result.error is not None else None
    if kind in _NOT_AVAILABILITY_KINDS or result.status in (0, 401) or result.status >= 500:
        return False
    settings = getattr(client, "gateway_settings", None)
    if settings is None:
        return False
    return bool(settings(gateway_id).ok)


def metadata_of(value: Any) -> dict[str, Any]:
    """A log row's `metadata` as a dict: the API sends the JSON text (an object from older emulators)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _log_ids(values: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if isinstance(v, str) and v and v not in ("None", "nan"):
            seen.setdefault(v, None)
    return list(seen)


def join_records(logs: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Log rows with their record's seq, route, warm-up flag, client cache status and client total_ms."""
    keep = ["log_id", "seq", "route", "warmup", "cache_status", "total_ms"]
    if logs.empty or "log_id" not in records:
        return logs.assign(**{c: pd.Series(dtype=object) for c in keep[1:]})
    client_side = records[[c for c in keep if c in records]].dropna(subset=["log_id"])
    client_side = client_side.drop_duplicates("log_id").rename(columns={
        "cache_status": "client_cache_status", "total_ms": "client_total_ms"})
    merged = logs.merge(client_side, how="left", left_on="id", right_on="log_id").drop(columns=["log_id"])
    return merged.sort_values("seq", kind="stable").reset_index(drop=True)

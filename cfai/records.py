"""The comparison's data model: one `Record` per request, its canonical DataFrame columns and dtypes, and
the "measured" filter every statistic and chart applies (warm-ups out).

The in-memory frame, the store and CSV imports all go through `normalize_records_frame`, so a run reads
back identical wherever it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from cfai.token_timing import TOKEN_TIMING_FIELDS


@dataclass
class Record:
    """One request. Times are seconds from the run's start; durations are milliseconds."""

    run_id: str
    seq: int  # dispatch order within the run, from 0
    route: str
    warmup: bool
    intended_start_s: float  # open loop: the scheduled time; closed loop: when a worker took the request
    actual_start_s: float  # just before the client was called
    status: int  # HTTP status, 0 when no response arrived
    ok: bool
    error_code: int | None = None  # Cloudflare error code
    error_message: str | None = None
    cache_status: str | None = None  # HIT | MISS (gateway routes), None otherwise
    ttfb_ms: float | None = None  # to the response headers; streams: to the first token
    total_ms: float | None = None  # to the last byte
    bytes: int = 0
    tokens_in: int | None = None
    tokens_out: int | None = None
    log_id: str | None = None
    error_kind: str | None = None  # e.g. rate_limited, server_error, network (see cfai.errors)
    # From usage: the cached part of tokens_in (prompt caching) and the reasoning part of tokens_out.
    tokens_cached: int | None = None
    tokens_reasoning: int | None = None
    # Token-level timing of a streamed request (cfai.token_timing; TTFT is ttfb_ms): None when not streamed.
    first_reasoning_ms: float | None = None
    first_answer_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p90_ms: float | None = None
    itl_p99_ms: float | None = None
    tpot_ms: float | None = None
    output_tps: float | None = None
    stream_tokens: int | None = None

    @property
    def throttled(self) -> bool:
        """Refused for rate (HTTP 429 or a rate-limit error kind): reported apart from other errors."""
        return is_throttled(self.status, self.error_kind)


RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))
# One dtype per column, shared by the in-memory frame and the store, so both give identical frames.
RECORD_DTYPES: dict[str, str] = {
    "run_id": "str",
    "seq": "int64",
    "route": "str",
    "warmup": "bool",
    "intended_start_s": "float64",
    "actual_start_s": "float64",
    "status": "int64",
    "ok": "bool",
    "error_code": "Int64",
    "error_message": "str",
    "cache_status": "str",
    "ttfb_ms": "float64",
    "total_ms": "float64",
    "bytes": "int64",
    "tokens_in": "Int64",
    "tokens_out": "Int64",
    "log_id": "str",
    "error_kind": "str",
    "tokens_cached": "Int64",
    "tokens_reasoning": "Int64",
    **TOKEN_TIMING_FIELDS,
}
# Columns added after the first stored schema: a file or database without them reads them as missing.
ADDED_RECORD_COLUMNS: tuple[str, ...] = ("tokens_cached", "tokens_reasoning", *TOKEN_TIMING_FIELDS)
THROTTLED_KINDS = ("rate_limited",)
assert tuple(RECORD_DTYPES) == RECORD_COLUMNS  # one dtype per Record field, in the same order


def is_throttled(status: Any, error_kind: Any) -> bool:
    """A request refused for rate: HTTP 429 (Workers AI 3021/3036/3040, the gateway's 2003) or an error of
    kind rate_limited, whatever its status."""
    try:
        code = int(status)
    except (TypeError, ValueError):
        code = 0
    return code == 429 or (isinstance(error_kind, str) and error_kind in THROTTLED_KINDS)


def records_frame(records: list[Record] | list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, columns = Record fields, with the canonical dtypes (missing values are NA)."""
    rows = [asdict(r) if isinstance(r, Record) else r for r in records]
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return normalize_records_frame(frame)


def normalize_records_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the canonical column order and dtypes (used for frames from memory, SQLite and CSV)."""
    frame = frame.reindex(columns=list(RECORD_COLUMNS))
    out = {}
    for name, dtype in RECORD_DTYPES.items():
        col = frame[name]
        if dtype == "bool":
            col = col.fillna(False).astype(bool)
        elif dtype == "float64":
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        elif dtype == "Int64":
            col = pd.to_numeric(col, errors="coerce").astype("Int64")
        elif dtype == "int64":
            col = pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
        else:  # text: missing stays missing, never the string "None"
            col = col.astype("object").where(col.notna(), None).astype("str")
        out[name] = col
    result = pd.DataFrame(out)
    return result.sort_values(["run_id", "seq"], kind="stable").reset_index(drop=True)


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The records that count: warm-ups removed (a frame without a `warmup` column is all measured)."""
    if df.empty or "warmup" not in df:
        return df
    return df.loc[~df["warmup"].fillna(False).astype(bool)]


def run_status(records: list[Record], cancelled: bool) -> str:
    """complete | cancelled | failed (nothing measured succeeded)."""
    measured_records = [r for r in records if not r.warmup]
    if cancelled:
        return "cancelled"
    if not measured_records or not any(r.ok for r in measured_records):
        return "failed"
    return "complete"

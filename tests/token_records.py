"""Streamed request records with their token-timing columns, measured against the emulator.

Until the Runner fills TOKEN_TIMING_FIELDS itself, tests that need such records stream real requests
through the client and time them with `cfai.token_timing.read_stream` (the same functions the Runner uses),
one Record per request, with the token fields as extra columns.
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from cfai.client import Client, GatewayOptions
from cfai.records import Record, records_frame
from cfai.token_timing import TOKEN_TIMING_FIELDS, read_stream

TEXTGEN = "@cf/meta/llama-3.1-8b-instruct"


def streamed_records(client: Client, routes=("direct", "gateway"), n: int = 4, model: str = TEXTGEN,
                     max_tokens: int = 24) -> pd.DataFrame:
    rows = []
    seq = 0
    for i in range(n):
        for route in routes:
            gateway = GatewayOptions(cache_ttl=300) if route == "gateway" else None
            stream = client.stream(model, {"prompt": f"Tell me about caching #{i}.", "max_tokens": max_tokens},
                                   route="gateway" if route == "gateway" else "direct", gateway=gateway, timeout=30)
            result, timing = read_stream(stream)
            t = result.timings
            record = Record(run_id="tok", seq=seq, route=route, warmup=False, intended_start_s=float(seq),
                            actual_start_s=float(seq), status=int(result.status or 0), ok=bool(result.ok),
                            cache_status=result.cache_status if route != "direct" else None,
                            ttfb_ms=t.first_token_ms if t.first_token_ms is not None else t.ttfb_ms,
                            total_ms=t.total_ms, tokens_out=(result.usage or {}).get("completion_tokens"))
            rows.append({**asdict(record), **timing.record_fields()})
            seq += 1
    frame = records_frame([{k: v for k, v in r.items() if k not in TOKEN_TIMING_FIELDS} for r in rows])
    for name, dtype in TOKEN_TIMING_FIELDS.items():
        frame[name] = pd.Series([r[name] for r in rows], dtype="float64").astype(dtype)
    return frame

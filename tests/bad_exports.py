"""Malformed run exports, as issue 10 lists them: each must be refused with a message naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Change = Callable[[dict[str, Any]], Any]


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# (id, change to a valid JSON export document, text the message must contain)
JSON_CASES: list[tuple[str, Change, str]] = [
    ("version as text", lambda d: d.update(version="1"), "version"),
    ("version as float", lambda d: d.update(version=1.5), "version"),
    ("plan not an object", lambda d: d["run"].update(plan=["x"]), "run.plan"),
    ("headers not an object", lambda d: d["run"]["plan"].update(extra_headers="x-a: 1"), "extra_headers"),
    ("header with CR/LF", lambda d: d["run"]["plan"].update(extra_headers={"x-a": "1\r\nx-b: 2"}), "extra_headers"),
    ("absurd nesting", lambda d: d["run"]["plan"].update(body={"prompt": _deep(100)}), "nested deeper"),
    ("integer beyond 64 bits", lambda d: d["records"][0].update(bytes=2**70), "record 1, bytes"),
    ("integer beyond 64 bits in the body", lambda d: d["run"]["plan"]["body"].update(seed=2**64), "64 bits"),
    ("NaN latency", lambda d: d["records"][1].update(total_ms=float("nan")), "record 2, total_ms"),
    ("routes as a string", lambda d: d["run"]["plan"].update(routes="direct,gateway"), "run.plan.routes"),
    ("unknown route", lambda d: d["records"][0].update(route="sideways"), "record 1, route"),
    ("path-like run id", lambda d: d["run"].update(run_id="../../etc/passwd"), "run.run_id"),
    ("path-like log id", lambda d: d["records"][2].update(log_id="a/b"), "record 3, log_id"),
    ("negative byte count", lambda d: d["records"][3].update(bytes=-5), "record 4, bytes"),
    ("negative latency", lambda d: d["records"][3].update(ttfb_ms=-1.0), "record 4, ttfb_ms"),
    ("huge field", lambda d: d["records"][0].update(error_message="x" * 5_000_000), "record 1, error_message"),
    ("huge name", lambda d: d["run"].update(name="n" * 10_000), "run.name"),
    ("missing seq", lambda d: d["records"][2].pop("seq"), "record 3, seq: missing"),
    ("repeated seq", lambda d: d["records"][1].update(seq=0), "record 2, seq: 0 is already used by record 1"),
    ("latency as text", lambda d: d["records"][4].update(total_ms="fast"), "record 5, total_ms"),
    ("time as text", lambda d: d["run"].update(created_at="yesterday"), "run.created_at"),
    ("unknown status", lambda d: d["run"].update(status="great"), "run.status"),
    ("ok as a number", lambda d: d["records"][0].update(ok=1), "record 1, ok"),
    ("records not a list", lambda d: d.update(records={"0": {}}), "records"),
    ("n not a whole number", lambda d: d["run"]["plan"].update(n=2.5), "run.plan.n"),
    # A sweep's definition is read back to draw its report: junk there crashed History and `cfai runs show`.
    ("sweep loads as text", lambda d: d["run"]["plan"].update(sweep={"concurrencies": "1,2", "requests_per_step": 2}),
     "run.plan.sweep.concurrencies"),
    ("sweep loads nested", lambda d: d["run"]["plan"].update(sweep={"concurrencies": [[1]], "requests_per_step": 2}),
     "run.plan.sweep.concurrencies[0]"),
    ("sweep rate beyond a float", lambda d: d["run"]["plan"].update(sweep={"rates": [1e300], "duration_s": 1e300}),
     "run.plan.sweep.rates[0]"),
    ("sweep count as text", lambda d: d["run"]["plan"].update(sweep={"concurrencies": [1, 2], "requests_per_step": "x"}),
     "run.plan.sweep.requests_per_step"),
    ("sweep without loads", lambda d: d["run"]["plan"].update(sweep={"requests_per_step": 2}),
     "the sweep: Give the sweep either a list of concurrencies or a list of rates"),
]


def bad_json(doc: dict[str, Any], change: Change) -> bytes:
    doc = json.loads(json.dumps(doc))
    change(doc)
    return json.dumps(doc).encode()  # NaN is written as NaN, as a careless exporter would

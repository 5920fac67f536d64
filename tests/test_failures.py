"""cfai/failures.py: the most common error and its hint, from comparison records or classify rows."""

from __future__ import annotations

import pandas as pd

from cfai.compare import Record, records_frame
from cfai.errors import RateLimitError, ServerError
from cfai.failures import summarize_failures


def _record(seq: int, ok: bool, message: str | None = None, kind: str | None = None, code: int | None = None,
            status: int = 200, warmup: bool = False) -> Record:
    return Record(run_id="r", seq=seq, route="direct", warmup=warmup, intended_start_s=0, actual_start_s=0,
                  status=status, ok=ok, error_message=message, error_kind=kind, error_code=code)


RECORDS = [
    _record(0, False, "boom", "server_error", status=500, warmup=True),  # a warm-up: not counted
    _record(1, False, "Capacity temporarily exceeded", "rate_limited", 3040, 429),
    _record(2, False, "Capacity temporarily exceeded", "rate_limited", 3040, 429),
    _record(3, False, "HTTP 503 Service Unavailable, with an empty body", "server_error", status=503),
    _record(4, True),
]


def test_most_common_error_with_its_code_and_hint_from_records_dicts_and_a_frame():
    for source in (RECORDS, [r.__dict__ for r in RECORDS], records_frame(RECORDS)):
        summary = summarize_failures(source)
        assert summary is not None
        assert (summary.failed, summary.total, summary.count) == (3, 4, 2)
        assert summary.message == "Capacity temporarily exceeded" and summary.kind == "rate_limited"
        assert summary.code == 3040 and summary.status == 429 and summary.hint == RateLimitError.default_hint
        assert not summary.all_failed
        assert summary.headline() == ("3 of 4 requests failed; most common (2): Capacity temporarily exceeded "
                                      "[rate_limited, code 3040]")
        assert summary.text().endswith(RateLimitError.default_hint)


def test_nothing_failed_or_nothing_at_all_is_none():
    assert summarize_failures([_record(1, True)]) is None
    assert summarize_failures([]) is None
    assert summarize_failures(records_frame([])) is None


def test_classify_rows_status_error_and_unknown_kinds():
    rows = pd.DataFrame({"status": ["ok", "error", "error", "pending"],
                         "error": [None, "HTTP 500 Internal Server Error", "HTTP 500 Internal Server Error", None],
                         "error_kind": [None, "server_error", "server_error", None]})
    summary = summarize_failures(rows)
    assert summary.failed == 2 and summary.total == 4 and summary.hint == ServerError.default_hint
    odd = summarize_failures([{"ok": False, "error_message": None, "error_kind": "made_up"}])
    assert odd.message == "unknown error" and odd.hint is None and odd.all_failed

"""Why requests failed, in one sentence and one hint: the most common error, its code, what to do next.

One definition for the CLI, the Compare page and the Classify batch: it takes comparison records
(`cfai.compare.Record`s, their dicts, or the records DataFrame) or classify result rows (a DataFrame with
`status`/`error`/`error_kind`), and never imports Streamlit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from cfai.errors import hint_for_kind


@dataclass(frozen=True)
class FailureSummary:
    failed: int  # rows that failed
    total: int  # rows looked at
    message: str  # the most common error message
    count: int  # how many failed rows carry it
    kind: str | None  # its error kind (see cfai.errors), if stored
    code: int | None  # its Cloudflare error code, if any
    status: int | None  # its HTTP status, if any (0 = no response)
    hint: str | None  # what to do next, from the kind

    @property
    def all_failed(self) -> bool:
        return self.failed == self.total

    def headline(self) -> str:
        """E.g. "2 of 2 requests failed; most common (2): HTTP 500 ... [server_error, code 3040]"."""
        tags = [t for t in (self.kind, f"code {self.code}" if self.code else None) if t]
        tag = f" [{', '.join(tags)}]" if tags else ""
        return (f"{self.failed:,} of {self.total:,} requests failed; most common ({self.count:,}): "
                f"{self.message}{tag}")

    def text(self) -> str:
        """Headline, then the hint on its own line (plain text, for a terminal or a Markdown block)."""
        return self.headline() + (f"\n{self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "all_failed": self.all_failed}


def summarize_failures(records: Any, *, measured_only: bool = True) -> FailureSummary | None:
    """The most common failure among `records`, or None when nothing failed (or there are no rows).
    Warm-up rows are skipped when the records mark them (`measured_only`)."""
    rows = [r for r in _rows(records) if not (measured_only and _truthy(r.get("warmup")))]
    failed = [r for r in rows if _failed(r)]
    if not failed:
        return None
    messages = Counter(_message(r) for r in failed)
    message, count = messages.most_common(1)[0]
    first = next(r for r in failed if _message(r) == message)
    kind = _text(first.get("error_kind"))
    return FailureSummary(failed=len(failed), total=len(rows), message=message, count=count, kind=kind,
                          code=_int(first.get("error_code")), status=_int(first.get("status")),
                          hint=hint_for_kind(kind))


def _rows(records: Any) -> list[Mapping[str, Any]]:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # a DataFrame, without importing pandas
        return list(records.to_dict("records"))
    out: list[Mapping[str, Any]] = []
    for record in records if isinstance(records, Iterable) else []:
        if is_dataclass(record) and not isinstance(record, type):
            out.append(asdict(record))
        elif isinstance(record, Mapping):
            out.append(record)
    return out


def _failed(row: Mapping[str, Any]) -> bool:
    if "ok" in row and not _missing(row["ok"]):
        return not _truthy(row["ok"])
    return row.get("status") == "error"  # classify rows: pending | ok | error


def _message(row: Mapping[str, Any]) -> str:
    for key in ("error_message", "error"):
        text = _text(row.get(key))
        if text:
            return text
    return "unknown error"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value) in ("<NA>", "nan", "None")


def _truthy(value: Any) -> bool:
    return not _missing(value) and bool(value)


def _text(value: Any) -> str | None:
    return None if _missing(value) or str(value).strip() == "" else str(value)


def _int(value: Any) -> int | None:
    if _missing(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""Text classification: one text, or a batch with bounded concurrency that can be stopped and retried.

`parse_scores` reads a classification output (a list of `{label, score}` in no guaranteed order) into
labels sorted by score. `run_batch` classifies rows with `cfai.jobs.paced_map` over the thread-safe `Client.run`,
never more than `concurrency` requests in flight and optionally paced under a requests-per-minute cap;
every row comes back (failed ones keep their error). `BatchJob` runs that as a background job so a page
can poll its progress, stop it, and retry the rows that failed or never ran.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from cfai import jobs
from cfai.catalog import DEFAULT_CLASSIFICATION_MODEL
from cfai.client import Client, GatewayOptions, Result, Route
from cfai.cost import PER_MILLION, estimate_tokens
from cfai.csv_safe import safe_csv
from cfai.faults import FAULT_HEADER  # honoured by the local emulator only
from cfai.pricing import ModelPrice

MAX_CONCURRENCY = 32

RowStatus = Literal["pending", "ok", "error"]
HeadersFor = Callable[["RowResult"], Mapping[str, str]]


class OutputShapeError(ValueError):
    """The model answered, but not with a list of {label, score}."""


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


def parse_scores(output: Any) -> list[LabelScore]:
    """Labels and scores, highest score first. Accepts `[{label, score}, ...]`, a single `{label, score}`
    and the batched `[[{label, score}, ...]]` shape some Hugging Face models use."""
    if isinstance(output, dict) and "label" in output:
        output = [output]
    if isinstance(output, list) and len(output) == 1 and isinstance(output[0], list):
        output = output[0]
    if not isinstance(output, list) or not output:
        raise OutputShapeError(f"Expected a list of {{label, score}}, got {_shape(output)}.")
    scores = []
    for entry in output:
        if not isinstance(entry, dict) or "label" not in entry or "score" not in entry:
            raise OutputShapeError(f"Expected {{label, score}} entries, got {_shape(entry)}.")
        try:
            scores.append(LabelScore(str(entry["label"]), float(entry["score"])))
        except (TypeError, ValueError):
            raise OutputShapeError(f"Score for {entry['label']!r} is not a number.") from None
    return sorted(scores, key=lambda s: s.score, reverse=True)


def _shape(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# --- one text ----------------------------------------------------------------------------------------
@dataclass
class Classification:
    """One text's answer. `scores` is empty when `error` is set; `result` has timings and headers."""

    text: str
    scores: list[LabelScore]
    result: Result
    error: str | None = None
    error_hint: str | None = None

    @property
    def top(self) -> LabelScore | None:
        return self.scores[0] if self.scores else None

    @property
    def latency_ms(self) -> float | None:
        return self.result.timings.total_ms

    @property
    def cache_status(self) -> str | None:
        return self.result.cache_status


def classify_text(
    client: Client,
    model: str,
    text: str,
    *,
    route: Route = "direct",
    gateway: GatewayOptions | None = None,
    extra_headers: Mapping[str, str] | None = None,
    timeout: float | tuple[float, float] | None = None,
) -> Classification:
    """Classify one text; never raises for HTTP, network or output-shape problems (see `.error`)."""
    result = client.run(model, {"text": text}, route=route, gateway=gateway, extra_headers=extra_headers,
                        timeout=timeout)
    if result.error is not None:
        return Classification(text, [], result, error=str(result.error), error_hint=result.error.hint)
    try:
        return Classification(text, parse_scores(result.output), result)
    except OutputShapeError as e:
        return Classification(text, [], result, error=str(e),
                              error_hint="Is this a text-classification model? Check the model id.")


# --- a batch -----------------------------------------------------------------------------------------
@dataclass
class RowResult:
    """One batch row. Rows are never dropped: a failure keeps its error, a stopped run leaves `pending`."""

    index: int  # position in the batch
    row: int  # the user's row number (file row, or pasted line)
    text: str
    expected: str | None = None
    status: RowStatus = "pending"
    predicted: str | None = None
    score: float | None = None
    scores: dict[str, float] | None = None
    latency_ms: float | None = None
    cache_status: str | None = None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class BatchSettings:
    model: str = DEFAULT_CLASSIFICATION_MODEL
    route: Route = "direct"
    gateway: GatewayOptions | None = None
    concurrency: int = 8
    max_per_minute: int | None = None  # pace requests under an account rate limit; None = no cap
    timeout: float | tuple[float, float] | None = None  # per request; None = the connection's


def fault_injector(every: int, kind: str = "500") -> HeadersFor:
    """Emulator demo: the first attempt of every `every`-th row asks the emulator for a fault, so the page
    can show failures being kept and retried (a retry then succeeds)."""

    def headers_for(row: RowResult) -> Mapping[str, str]:
        if every > 0 and (row.index + 1) % every == 0 and row.attempts == 0:
            return {FAULT_HEADER: kind}
        return {}

    return headers_for


def classify_row(
    client: Client, settings: BatchSettings, row: RowResult, headers_for: HeadersFor | None = None
) -> RowResult:
    """A new RowResult for `row` after one attempt. Never raises: anything unexpected becomes the error."""
    try:
        extra = dict(headers_for(row)) if headers_for else None
        answer = classify_text(client, settings.model, row.text, route=settings.route, gateway=settings.gateway,
                               extra_headers=extra, timeout=settings.timeout)
    except Exception as e:  # noqa: BLE001 - a bug must not lose the row; it is shown in the table
        return replace(row, status="error", error=f"{type(e).__name__}: {e}", error_kind="internal",
                       attempts=row.attempts + 1)
    base = replace(row, attempts=row.attempts + 1, latency_ms=answer.latency_ms, cache_status=answer.cache_status)
    if answer.error is not None:
        kind = answer.result.error.kind if answer.result.error is not None else "unexpected_output"
        return replace(base, status="error", predicted=None, score=None, scores=None, error=answer.error,
                       error_kind=kind)
    top = answer.scores[0]
    return replace(base, status="ok", predicted=top.label, score=top.score,
                   scores={s.label: s.score for s in answer.scores}, error=None, error_kind=None)


def run_batch(
    client: Client,
    settings: BatchSettings,
    rows: Iterable[RowResult],
    *,
    on_result: Callable[[RowResult], None],
    cancel: threading.Event | None = None,
    headers_for: HeadersFor | None = None,
) -> int:
    """Classify `rows` with at most `settings.concurrency` requests in flight (paced under
    `settings.max_per_minute`), calling `on_result` with each finished row, never concurrently. Rows are
    taken one at a time as others finish, so a cancel stops new requests at once while those in flight
    complete. Returns how many rows were run."""
    concurrency = max(1, min(int(settings.concurrency), MAX_CONCURRENCY))

    def classify(row: RowResult, _due: float) -> RowResult:
        return classify_row(client, settings, row, headers_for)

    return jobs.paced_map(classify, rows, concurrency=concurrency, cancel=cancel,
                          pacing=jobs.Pacing.per_minute_cap(settings.max_per_minute), on_result=on_result,
                          name="classify")


@dataclass
class Progress:
    total: int  # rows in the batch
    ok: int
    failed: int
    pending: int
    run_total: int  # rows queued by the current (or last) run
    run_done: int
    running: bool
    stopped: bool  # the last run was stopped before it finished
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.run_done / self.run_total if self.run_total else 1.0

    @property
    def rows_per_second(self) -> float | None:
        return self.run_done / self.elapsed_s if self.elapsed_s > 0 and self.run_done else None


RESULT_COLUMNS = ["row", "text", "expected", "predicted", "score", "latency_ms", "cache_status", "status",
                  "error", "attempts"]


@dataclass
class BatchJob:
    """A batch and its per-row results, run in a background thread. Safe to poll from another thread."""

    settings: BatchSettings
    rows: list[RowResult]
    source: str = ""
    row_note: str = ""  # how `row` numbers the user's rows (see cfai.ingest.Batch.row_note)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _job: jobs.Job[None] | None = field(default=None, repr=False)
    _run_total: int = 0
    _run_done: int = 0
    _started: float = 0.0
    _finished: float = 0.0
    _stopped: bool = False
    _version: int = 0  # bumped whenever a row's result changes: what derived data is keyed on
    _frame_cache: tuple[int, pd.DataFrame] | None = field(default=None, repr=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, settings: BatchSettings, source: str = "",
                   row_note: str = "") -> BatchJob:
        """From a batch frame with columns row, text and expected (<NA> for none)."""
        expected = frame["expected"] if "expected" in frame else pd.Series([None] * len(frame))
        rows = [
            RowResult(index=i, row=int(row), text=str(text), expected=None if pd.isna(exp) else str(exp))
            for i, (row, text, exp) in enumerate(zip(frame["row"], frame["text"], expected, strict=True))
        ]
        return cls(settings=settings, rows=rows, source=source, row_note=row_note)

    @property
    def running(self) -> bool:
        return self._job is not None and self._job.running

    def start(self, client: Client, headers_for: HeadersFor | None = None) -> int:
        """Run every row that is not yet `ok` (all of them the first time; then failed and stopped ones).
        Returns how many rows were queued; 0 (and nothing started) while a run is still going."""
        if self.running:
            return 0
        with self._lock:
            todo = [r for r in self.rows if r.status != "ok"]
            self._run_total, self._run_done = len(todo), 0
            self._started, self._finished, self._stopped = time.monotonic(), 0.0, False
            self._cancel = threading.Event()
        if not todo:
            return 0

        def work(job: jobs.Job[None]) -> None:
            self._run(client, todo, job.cancel_event, headers_for)

        self._job = jobs.start(work, name="classify-batch", total=len(todo), cancel=self._cancel)
        return len(todo)

    def _run(self, client: Client, todo: list[RowResult], cancel: threading.Event,
             headers_for: HeadersFor | None) -> None:
        try:
            run_batch(client, self.settings, todo, on_result=self._record, cancel=cancel, headers_for=headers_for)
        finally:
            with self._lock:
                self._finished = time.monotonic()
                self._stopped = cancel.is_set() and self._run_done < self._run_total

    def _record(self, row: RowResult) -> None:
        with self._lock:
            self.rows[row.index] = row
            self._run_done += 1
            self._version += 1

    @property
    def version(self) -> int:
        """Changes whenever a row's result does: a page caches what it derives from the results on
        (id(job), version)."""
        with self._lock:
            return self._version

    def replace_rows(self, rows: list[RowResult]) -> None:
        """Set every row at once (restoring a batch, benchmarks); bumps the version."""
        with self._lock:
            self.rows = list(rows)
            self._version += 1

    def stop(self) -> None:
        """Stop sending requests; those in flight finish and are kept, the rest stay pending."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends (tests, scripts). True when it has ended."""
        return self._job.wait(timeout) if self._job is not None else True

    def progress(self) -> Progress:
        with self._lock:
            statuses = [r.status for r in self.rows]
            end = self._finished or time.monotonic()
            return Progress(
                total=len(statuses),
                ok=statuses.count("ok"),
                failed=statuses.count("error"),
                pending=statuses.count("pending"),
                run_total=self._run_total,
                run_done=self._run_done,
                running=self.running,
                stopped=self._stopped or (self._cancel.is_set() and self.running),
                elapsed_s=(end - self._started) if self._started else 0.0,
            )

    def snapshot(self) -> list[RowResult]:
        with self._lock:
            return list(self.rows)

    def frame(self) -> pd.DataFrame:
        """The results as a DataFrame, built once per version (100,000 rows take about 0.2 s). Treat it
        as read-only: it is shared by every caller until a row changes."""
        with self._lock:
            version, rows = self._version, list(self.rows)
            cached = self._frame_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        frame = results_frame(rows)
        with self._lock:
            self._frame_cache = (version, frame)
        return frame


def results_frame(rows: Sequence[RowResult]) -> pd.DataFrame:
    """One row per batch row, in batch order, with RESULT_COLUMNS plus `scores` (label -> score)."""
    # Column by column with getattr: dataclasses.asdict deep-copies and takes ~0.5 s for 5,000 rows.
    columns = [*RESULT_COLUMNS, "scores", "error_kind"]
    frame = pd.DataFrame({name: [getattr(r, name) for r in rows] for name in columns}, columns=columns)
    return frame.astype({
        "row": "int64", "text": "string", "expected": "string", "predicted": "string", "score": "float64",
        "latency_ms": "float64", "cache_status": "string", "status": "string", "error": "string",
        "attempts": "int64",
    })


# --- export ------------------------------------------------------------------------------------------
EXPORT_COLUMNS = ["row", "text", "expected", "expected_as", "predicted", "score", "correct", "latency_ms",
                  "cache_status", "status", "error", "attempts"]


def row_costs(frame: pd.DataFrame, price: ModelPrice | None) -> pd.Series:
    """Each row's list-price cost in USD, the way `cfai.cost.batch_cost` adds them up: estimated input
    tokens x the input price, $0 for a cache hit, <NA> for a row without an answer or without a price."""
    rate = price.rate("input") if price is not None else None
    out = pd.Series(pd.NA, index=frame.index, dtype="Float64")
    if rate is None:
        return out
    done = frame["status"].astype(str) == "ok"
    hits = frame["cache_status"].astype("string").str.upper().eq("HIT").fillna(False).astype(bool)
    tokens = frame.loc[done, "text"].map(lambda t: estimate_tokens(str(t))).astype(float)
    out[done] = tokens * rate / PER_MILLION
    out[done & hits] = 0.0
    return out


def export_csv(frame: pd.DataFrame, price: ModelPrice | None = None) -> bytes:
    """CSV of the result table plus one `score_<label>` column per label and, with a price, each row's
    `cost_usd` (estimated, see `row_costs`). UTF-8 with a BOM so that Excel reads accents correctly (our own
    importer strips it)."""
    table = frame[[c for c in EXPORT_COLUMNS if c in frame.columns]].copy()
    if price is not None:
        table["cost_usd"] = row_costs(frame, price)
    if "scores" in frame.columns:
        per_label = pd.DataFrame([s if isinstance(s, dict) else {} for s in frame["scores"]], index=frame.index)
        table = table.join(per_label.add_prefix("score_"))
    return safe_csv(table).encode("utf-8-sig")  # formula cells neutralised (cfai.csv_safe)


def export_meta(job: BatchJob, *, mapping: Mapping[str, str | None], price: ModelPrice | None,
                cost: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None = None,
                exported_at: str = "") -> dict[str, Any]:
    """The JSON export's `meta`: what was run and how it scored and cost (never the token)."""
    meta: dict[str, Any] = {
        "model": job.settings.model, "route": job.settings.route, "source": job.source,
        "row_numbers": job.row_note, "exported_at": exported_at, "label_mapping": dict(mapping),
        "price": price.to_dict() if price is not None else None, "cost": dict(cost) if cost else None,
    }
    if evaluation:
        meta.update(evaluation)
    return meta


def export_json(frame: pd.DataFrame, meta: Mapping[str, Any]) -> bytes:
    """{"meta": {...}, "rows": [...]}: meta holds the model, route, mapping and metrics (never the token)."""
    columns = [c for c in [*EXPORT_COLUMNS, "scores", "error_kind"] if c in frame.columns]
    records = json.loads(frame[columns].to_json(orient="records", force_ascii=False))
    return json.dumps({"meta": dict(meta), "rows": records}, ensure_ascii=False, indent=1, default=str).encode()

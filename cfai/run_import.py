"""The run export format (JSON and CSV) and the validation of files to import, with pydantic.

An import file is untrusted: anybody can hand one over. Everything in it is checked against a schema with
limits before the store sees it (`parse_run_file`), and every problem is reported, as a field path and what
is wrong with it, in a capped list (`RunImportError.problems`). Nothing is stored unless all of it is valid.
Sizes are checked before parsing, so a huge file or field is refused at once instead of being parsed for half
a minute: the file (`MAX_IMPORT_BYTES`), one CSV cell (the csv module's field limit), each string (its own
maximum), the plan's request body (nesting depth, size), and the record count.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cfai.compare import CACHE_MODES, MAX_CONCURRENCY, RECORD_COLUMNS, ROUTES, Plan
from cfai.csv_safe import restore_cell
from cfai.pricing import ModelPrice, PriceError
from cfai.records import ADDED_RECORD_COLUMNS
from cfai.sweep import MAX_STEPS, SweepPlan

EXPORT_FORMAT = "workers-ai-lab/run"
EXPORT_VERSION = 1  # of the file format; the database has its own schema version
RUN_STATUSES = ("complete", "cancelled", "failed", "running")
# Run metadata columns added to each record row of a CSV export (record columns keep their own names).
CSV_RUN_COLUMNS = (
    "run_name", "run_created_at", "run_finished_at", "run_status", "run_model", "run_connection_label", "run_plan",
)

# Limits. Generous for real runs (the Compare page sends at most 1,000 per route, the CLI a few thousand),
# small enough that a hostile file cannot make the app parse for minutes or fill the disk.
MAX_IMPORT_BYTES = 200 * 1024 * 1024  # Streamlit's default upload limit
MAX_RECORDS = 1_000_000
MAX_MESSAGE_CHARS = 10_000  # an error message kept with a record
MAX_NAME_CHARS = 200
MAX_LABEL_CHARS = 300
MAX_BODY_BYTES = 1024 * 1024  # the plan's request body, as JSON
MAX_BODY_DEPTH = 32
MAX_HEADERS = 50
MAX_PROBLEMS = 20  # problems listed; the rest are counted
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_EPOCH_S = 32_503_680_000.0  # year 3000: a later "time" is not one
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # no slashes, no "..": never a path
MODEL_ID = r"^[@A-Za-z0-9][A-Za-z0-9@._/:-]{0,199}$"
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"  # an HTTP token (RFC 9110)
CACHE_STATUS = r"^[A-Z][A-Z_-]{0,19}$"  # HIT, MISS, and whatever else the gateway may say (EXPIRED...)
ERROR_KIND = r"^[a-z][a-z0-9_]{0,39}$"


class RunImportError(ValueError):
    """A file that cannot be imported; `problems` lists what is wrong (capped), `str()` says it in one text."""

    def __init__(self, problems: list[str]):
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > len(shown):
            shown = [*shown, f"... and {len(problems) - len(shown):,} more problem(s)."]
        self.problems = shown
        super().__init__(" ".join(shown) if len(shown) == 1 else "; ".join(shown))


# --- the schema ---------------------------------------------------------------------------------------------
def _csv_int(value: Any) -> Any:
    """A CSV writes a whole-number column that has blanks as floats ("1234.0"): read it back as 1234."""
    if isinstance(value, str) and "." in value and _WHOLE_FLOAT.fullmatch(value):
        return value.split(".")[0]
    return value


_WHOLE_FLOAT = re.compile(r"-?\d+\.0*")


Int64 = Annotated[int, BeforeValidator(_csv_int), Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, BeforeValidator(_csv_int), Field(ge=0, le=INT64_MAX)]
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
Duration = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e12)]
Epoch = Annotated[float, Field(allow_inf_nan=False, ge=0, le=MAX_EPOCH_S)]
Route = Literal[ROUTES]  # type: ignore[valid-type]  # the runner's route names, in one place


def _price(value: dict[str, Any]) -> dict[str, Any]:
    """The run's price, as `ModelPrice.to_dict()` wrote it (non-negative finite figures, a model id)."""

    _json_body(value)
    try:
        return ModelPrice.from_dict(value).to_dict()
    except PriceError as exc:
        raise ValueError(str(exc)) from None


def _json_body(value: dict[str, Any]) -> dict[str, Any]:
    """The request body: JSON a request can carry (finite numbers, 64-bit integers), bounded depth and size."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            raise ValueError(f"nested deeper than {MAX_BODY_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise ValueError("holds an integer beyond 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("holds NaN or an infinity, which JSON cannot carry")
        else:
            raise ValueError(f"holds a {type(item).__name__}, not JSON")
    if len(json.dumps(value)) > MAX_BODY_BYTES:
        raise ValueError(f"is larger than {MAX_BODY_BYTES // 1024} KB")
    return value


def _unique(routes: list[str]) -> list[str]:
    if len(set(routes)) != len(routes):
        raise ValueError("names a route more than once")
    return routes


HeaderValue = Annotated[str, Field(max_length=1000, pattern=r"^[^\r\n\x00]*$")]


class SweepIn(BaseModel):
    """A sweep's definition in a stored plan (`SweepPlan.to_dict`): typed and bounded here, then held to the
    sweep's own rules (`SweepPlan.problems`), so a stored sweep always opens as one."""

    model_config = ConfigDict(extra="ignore")
    concurrencies: Annotated[list[Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]], Field(max_length=MAX_STEPS)] = []
    rates: Annotated[list[Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]],
                     Field(max_length=MAX_STEPS)] = []
    requests_per_step: Annotated[int, Field(ge=1, le=MAX_RECORDS)] | None = None
    duration_s: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] | None = None


class PlanIn(BaseModel):
    """A stored plan (`Plan.to_dict`). Unknown keys are ignored (a newer app may add some)."""

    model_config = ConfigDict(extra="ignore")
    model: Annotated[str, Field(pattern=MODEL_ID)]
    body: Annotated[dict[str, Any], AfterValidator(_json_body)]
    routes: Annotated[list[Route], Field(min_length=1, max_length=len(ROUTES)), AfterValidator(_unique)]
    n: Annotated[int, Field(ge=1, le=MAX_RECORDS)]
    warmup: Annotated[int, Field(ge=0, le=MAX_RECORDS)] = 1
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = 1
    rate: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    cache_ttl: Annotated[int, Field(gt=0, le=INT64_MAX)] | None = 300
    cache_mode: Literal[CACHE_MODES] = "identical"  # type: ignore[valid-type]
    stream: bool = False
    timeout_s: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = 60.0
    name: Annotated[str, Field(max_length=MAX_NAME_CHARS)] = ""
    extra_headers: Annotated[dict[Annotated[str, Field(pattern=HEADER_NAME)], HeaderValue],
                             Field(max_length=MAX_HEADERS)] = {}
    sweep: SweepIn | None = None
    price: Annotated[dict[str, Any], AfterValidator(_price)] | None = None

    @model_validator(mode="after")
    def _sweep_rules(self) -> PlanIn:
        if self.sweep is not None:
            base = Plan.from_dict({**self.model_dump(exclude={"sweep"}), "sweep": None})
            own = set(base.problems())
            problems = [p for p in SweepPlan.from_dict(base, self.sweep.model_dump()).problems() if p not in own]
            if problems:
                raise ValueError("the sweep: " + " ".join(problems).rstrip("."))
        return self


class RunIn(BaseModel):
    """The `run` object of a JSON export (the CSV's run_* columns map onto the same fields)."""

    model_config = ConfigDict(extra="ignore")
    run_id: Annotated[str, Field(pattern=SAFE_ID)] | None = None
    name: Annotated[str, Field(max_length=MAX_NAME_CHARS)] = ""
    created_at: Epoch | None = None
    finished_at: Epoch | None = None
    status: Literal[RUN_STATUSES] = "complete"  # type: ignore[valid-type]
    connection_label: Annotated[str, Field(max_length=MAX_LABEL_CHARS)] = ""
    mode: Annotated[str, Field(pattern=r"^(local|cloudflare)$")] | None = None
    account_id: Annotated[str, Field(pattern=SAFE_ID)] | None = None
    gateway_id: Annotated[str, Field(pattern=SAFE_ID)] | None = None
    plan: PlanIn


class RecordIn(BaseModel):
    """One request record (`cfai.compare.Record`)."""

    model_config = ConfigDict(extra="ignore")
    run_id: Annotated[str, Field(pattern=SAFE_ID)] | None = None  # replaced by the imported run's id
    seq: Annotated[int, BeforeValidator(_csv_int), Field(ge=0, le=INT64_MAX)]
    route: Route
    warmup: bool
    intended_start_s: Finite | None = None
    actual_start_s: Finite | None = None
    status: Annotated[int, BeforeValidator(_csv_int), Field(ge=0, le=999)]
    ok: bool
    error_code: Int64 | None = None
    error_message: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)] | None = None
    cache_status: Annotated[str, Field(pattern=CACHE_STATUS)] | None = None
    ttfb_ms: Duration | None = None
    total_ms: Duration | None = None
    bytes: Count | None = None
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    log_id: Annotated[str, Field(pattern=SAFE_ID)] | None = None
    error_kind: Annotated[str, Field(pattern=ERROR_KIND)] | None = None
    tokens_cached: Count | None = None
    tokens_reasoning: Count | None = None
    first_reasoning_ms: Duration | None = None
    first_answer_ms: Duration | None = None
    itl_p50_ms: Duration | None = None
    itl_p90_ms: Duration | None = None
    itl_p99_ms: Duration | None = None
    tpot_ms: Duration | None = None
    output_tps: Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e12)] | None = None
    stream_tokens: Count | None = None


class ExportIn(BaseModel):
    """A JSON export: {"format", "version", "run", "records"}."""

    model_config = ConfigDict(extra="ignore")
    format: Literal[EXPORT_FORMAT]  # type: ignore[valid-type]
    version: Annotated[int, Field(ge=1, le=EXPORT_VERSION)]
    run: RunIn
    records: Annotated[list[RecordIn], Field(max_length=MAX_RECORDS)]


assert set(RecordIn.model_fields) == set(RECORD_COLUMNS)  # a new Record field needs a rule here
_RECORDS = TypeAdapter(list[RecordIn])


# --- the result ---------------------------------------------------------------------------------------------
@dataclass
class ImportedRun:
    """A validated import: the run's metadata, its plan and its records (dicts with the Record fields)."""

    run: RunIn
    plan: Plan
    records: list[dict[str, Any]]


def parse_run_file(data: bytes, fmt: str) -> ImportedRun:
    """Validate an export file (fmt "json" or "csv"); raises RunImportError listing every problem."""
    if fmt not in ("json", "csv"):  # checked before size: the cheapest answer first
        raise RunImportError([f"Unknown import format {fmt!r}: use 'json' or 'csv'."])
    if len(data) > MAX_IMPORT_BYTES:
        raise RunImportError([f"The file is {len(data) / 2**20:,.0f} MB; imports are limited to "
                              f"{MAX_IMPORT_BYTES // 2**20} MB."])
    run, records = _parse_json(data) if fmt == "json" else _parse_csv(data)
    problems = _duplicate_seqs(records)
    if problems:
        raise RunImportError(problems)
    plan = Plan.from_dict(run.plan.model_dump())
    rows = [r.model_dump() for r in records]
    for row in rows:
        row["bytes"] = row["bytes"] or 0  # a Record's bytes is never missing
    return ImportedRun(run=run, plan=plan, records=rows)


def _duplicate_seqs(records: list[RecordIn]) -> list[str]:
    seen: dict[int, int] = {}
    problems = []
    for index, record in enumerate(records, start=1):
        if record.seq in seen:
            problems.append(f"record {index}, seq: {record.seq} is already used by record {seen[record.seq]}.")
        else:
            seen[record.seq] = index
    return problems


PATTERN_HELP = {
    SAFE_ID: "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    MODEL_ID: "not a model id such as @cf/meta/llama-3.1-8b-instruct",
    HEADER_NAME: "not an HTTP header name",
    CACHE_STATUS: "not a cache status such as HIT or MISS",
    ERROR_KIND: "not an error kind such as rate_limited",
    r"^(local|cloudflare)$": "use local or cloudflare",
}


def _where(loc: tuple[Any, ...]) -> str:
    """A field path as a user reads it: `run.plan.routes[0]`, `record 3, seq` (records counted from 1)."""
    items = list(loc)
    parts = []
    if len(items) >= 2 and items[0] == "records" and isinstance(items[1], int):
        parts.append(f"record {items[1] + 1:,}")
        items = items[2:]
    elif items and isinstance(items[0], int):  # the CSV's records are validated as a bare list
        parts.append(f"record {items[0] + 1:,}")
        items = items[1:]
    path = ""
    for item in items:
        path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
    if path:
        parts.append(path)
    return ", ".join(parts) or "the file"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _messages(exc: ValidationError) -> list[str]:
    """One sentence per problem: where, what is wrong, and the value found (shortened)."""
    out = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            out.append(f"Not valid JSON: {error['msg'].removeprefix('Invalid JSON: ')}.")
            continue
        where = _where(tuple(error["loc"]))
        if error["type"] == "missing":
            out.append(f"{where}: missing.")
            continue
        message = error["msg"]
        if error["type"] == "string_pattern_mismatch":
            pattern = (error.get("ctx") or {}).get("pattern", "")
            message = PATTERN_HELP.get(pattern, "characters not allowed here")
        message = message[0].lower() + message[1:]
        value = error.get("input")
        got = "" if isinstance(value, dict | list) else f" (found {_shown(value)})"
        out.append(f"{where}: {message}{got}.")
    return out


def _parse_json(data: bytes) -> tuple[RunIn, list[RecordIn]]:
    # A foreign file gets one sentence, not a list of every field it lacks.
    if not data[:4096].lstrip().startswith(b"{"):
        raise RunImportError(["Not a Workers AI Lab run export: a JSON export is an object starting with '{'."])
    try:
        # pydantic's own JSON parser: fast on big files, refuses absurd nesting; strict, so "1" is not a number.
        doc = ExportIn.model_validate_json(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["loc"] == ("format",) for e in errors):
            raise RunImportError([f"Not a Workers AI Lab run export (expected \"format\": \"{EXPORT_FORMAT}\")."]) \
                from None
        newer = [e for e in errors if e["loc"] == ("version",) and e["type"] == "less_than_equal"]
        if newer:
            raise RunImportError([f"This export comes from a newer version of Workers AI Lab (format version "
                                  f"{newer[0]['input']}); upgrade to import it."]) from None
        raise RunImportError(_messages(exc)) from None
    return doc.run, doc.records


# CSV columns holding run metadata, and the run field each one fills.
_CSV_RUN_FIELDS = {"run_name": "name", "run_created_at": "created_at", "run_finished_at": "finished_at",
                   "run_status": "status", "run_connection_label": "connection_label", "run_plan": "plan"}


def _read_csv_rows(data: bytes) -> tuple[dict[str, int], list[list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RunImportError([f"Not a CSV export: the file is not UTF-8 text (byte {exc.start:,})."]) from None
    # A cell larger than anything we keep is refused by the csv module as it reads, not after.
    csv.field_size_limit(2 * MAX_BODY_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise RunImportError(["The CSV file is empty."])
        # Columns added later are optional: an older export has none of them.
        required = [c for c in RECORD_COLUMNS if c not in ADDED_RECORD_COLUMNS]
        missing = [c for c in (*required, *CSV_RUN_COLUMNS) if c not in header]
        if missing:
            raise RunImportError([f"Not a Workers AI Lab CSV export: columns missing: {', '.join(missing)}."])
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise RunImportError([f"CSV line {reader.line_num:,}: {len(row)} cells where the header has "
                                      f"{len(header)}."])
            rows.append(row)
            if len(rows) > MAX_RECORDS:
                raise RunImportError([f"The file holds more than {MAX_RECORDS:,} records."])
    except csv.Error as exc:
        raise RunImportError([f"Not a CSV export: {exc} (line {reader.line_num:,})."]) from None
    if not rows:
        raise RunImportError(["The CSV export has no records, so it carries no run to import."])
    return {name: header.index(name) for name in header}, rows


def _parse_csv(data: bytes) -> tuple[RunIn, list[RecordIn]]:
    index, rows = _read_csv_rows(data)

    def cell(row: list[str], name: str) -> str | None:
        value = restore_cell(row[index[name]])  # undo the export's formula neutralisation (cfai.csv_safe)
        return None if value == "" else value

    problems: list[str] = []
    for name in ("run_id", *CSV_RUN_COLUMNS):  # one run per file: its metadata repeats on every row
        distinct = {cell(row, name) for row in rows}
        if len(distinct) > 1:
            problems.append(f"column {name}: {len(distinct)} different values; a CSV export holds one run.")
    first = rows[0]
    run: RunIn | None = None
    try:
        plan = TypeAdapter(dict[str, Any]).validate_json(cell(first, "run_plan") or "", strict=True)
    except ValidationError:
        problems.append("column run_plan: not a JSON object (the run's plan, as the export wrote it).")
    else:
        fields: dict[str, Any] = {"run_id": cell(first, "run_id"), **{field: cell(first, column)
                                                        for column, field in _CSV_RUN_FIELDS.items()}}
        fields["plan"] = plan
        try:
            run = RunIn.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            columns = {field: column for column, field in _CSV_RUN_FIELDS.items()}
            for message in _messages(exc):
                head, _, rest = message.partition(": ")
                top, dot, sub = head.partition(".")
                problems.append(f"column {columns.get(top, top)}{', ' + sub if dot else ''}: {rest}")
    records: list[RecordIn] = []
    try:
        records = _RECORDS.validate_python(
            [{name: value for name in RECORD_COLUMNS if name in index and (value := cell(row, name)) is not None}
             for row in rows])
    except ValidationError as exc:
        problems += _messages(exc)
    if problems or run is None:
        raise RunImportError(problems)
    return run, records

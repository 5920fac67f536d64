"""Reading a user's texts for a classification batch: an uploaded CSV/TSV, or lines pasted into a box.

Files come from spreadsheets and old tools, so the encoding is detected (a chain of likely ones, and we
say which was used), the delimiter is sniffed, quoted fields may span lines, and every problem is reported
with the row number a spreadsheet shows (the header is row 1). Nothing here raises for bad data except
`IngestError`, whose message is meant to be shown to the user as is.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

# Around 512 model tokens; distilbert-sst-2 truncates (or refuses) longer inputs.
LONG_TEXT_CHARS = 2000
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
SNIFF_SAMPLE_CHARS = 64_000
MAX_ISSUES = 200  # past this the file is probably not a CSV at all; stop listing

# Header cells that say "this first row is a header", in lower case.
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "comment", "body", "message", "tweet", "document")
LABEL_COLUMN_NAMES = ("label", "labels", "expected", "sentiment", "class", "category", "target", "gold", "y")


class IngestError(ValueError):
    """The input cannot be used at all; the message says why and what to do."""


@dataclass(frozen=True)
class Issue:
    """A problem with one row (row None: with the whole file). `row` is spreadsheet-style, header = 1."""

    row: int | None
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}: {self.message}" if self.row is not None else self.message


@dataclass
class Table:
    """A parsed file: every cell a string; `rows` holds each data row's spreadsheet row number."""

    frame: pd.DataFrame
    rows: list[int]
    encoding: str
    delimiter: str
    has_header: bool
    blank_rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "not valid UTF-8; read as Windows-1252"

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    def messages(self) -> list[str]:
        """The parser's notes and the skipped rows with their numbers: what the page shows even when no
        row survived, so a broken file says what is wrong with it."""
        return [*self.notes, *_issue_lines(self.issues)]


@dataclass
class Batch:
    """What gets classified: `frame` has columns row (int), text (str), expected (str or <NA>)."""

    frame: pd.DataFrame
    source: str  # "pasted lines" or the file name
    skipped_empty: list[int] = field(default_factory=list)  # row numbers of empty texts, skipped
    long_rows: list[int] = field(default_factory=list)  # row numbers of very long texts, kept
    missing_label_rows: list[int] = field(default_factory=list)  # labelled batch, but this row has none
    issues: list[Issue] = field(default_factory=list)  # carried over from the Table (broken rows)
    notes: list[str] = field(default_factory=list)
    row_note: str = ""  # how `row` numbers the rows, in the words the page shows (see `row_numbering`)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_expected(self) -> bool:
        return bool(self.frame["expected"].notna().any())

    def messages(self) -> list[str]:
        """Plain-language summary of everything skipped or flagged, for the page to show."""
        out = list(self.notes)
        if self.skipped_empty:
            out.append(f"{len(self.skipped_empty)} empty text(s) skipped ({format_rows(self.skipped_empty)}).")
        if self.long_rows:
            out.append(
                f"{len(self.long_rows)} text(s) longer than {LONG_TEXT_CHARS:,} characters "
                f"({format_rows(self.long_rows)}): the model may truncate or refuse them."
            )
        if self.missing_label_rows:
            out.append(
                f"{len(self.missing_label_rows)} row(s) have no expected label "
                f"({format_rows(self.missing_label_rows)}): they are classified but not scored."
            )
        out.extend(_issue_lines(self.issues))
        return out


def _issue_lines(issues: Sequence[Issue], limit: int = 20) -> list[str]:
    """A sentence and then '  - Row N: ...' items (the page renders those as a list)."""
    if not issues:
        return []
    out = [f"{len(issues)} row(s) could not be read and were skipped:"]
    out.extend(f"  - {issue}" for issue in issues[:limit])
    if len(issues) > limit:
        out.append(f"  - ... and {len(issues) - limit} more")
    return out


ROWS_WITH_HEADER = ("Row numbers are your file's, as a spreadsheet shows them: the header is row 1, so the "
                    "first text is row 2.")
ROWS_WITHOUT_HEADER = "Row numbers are your file's, as a spreadsheet shows them: the first row is row 1."
ROWS_PASTED = "Row numbers are the pasted lines' numbers, empty lines included: the first line is 1."


def row_numbering(has_header: bool | None) -> str:
    """The one sentence that says how row numbers count (None: pasted lines)."""
    if has_header is None:
        return ROWS_PASTED
    return ROWS_WITH_HEADER if has_header else ROWS_WITHOUT_HEADER


def format_rows(rows: Sequence[int], limit: int = 12) -> str:
    """'row 4' / 'rows 4, 9, 12' / 'rows 4, 9, ... (+30 more)'."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f", ... (+{len(rows) - limit} more)" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


# --- decoding --------------------------------------------------------------------------------------------
def decode_bytes(data: bytes) -> tuple[str, str, list[str]]:
    """(text, encoding used, notes). Chain: UTF-8 (BOM stripped), UTF-16 by BOM or NUL pattern, then
    Windows-1252, then Latin-1 (which never fails, so the user always gets something to look at)."""
    notes: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "utf-8-sig", notes
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_utf16(data, "utf-16"), "utf-16", notes
    sample = data[:4096]
    if 0 in sample:
        # NULs: UTF-16 without a BOM (NUL on the odd bytes for ASCII in little-endian), else binary:
        # text files do not contain NUL bytes.
        odd_nuls, even_nuls = sample[1::2].count(0), sample[0::2].count(0)
        encoding = "utf-16-le" if odd_nuls > even_nuls else "utf-16-be"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text = ""
        if sample.count(0) > len(sample) // 4 and text and _looks_like_text(text):
            return text, encoding, notes
        raise IngestError(
            "This file is not text (it looks binary: an Excel .xlsx or a zip?). "
            "Save it as CSV (UTF-8) or tab-separated text and upload that."
        )
    try:
        return data.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError as e:
        bad_row = data[: e.start].count(b"\n") + 1
        first_bad = f"(first at line {bad_row})"
    try:
        text = data.decode("cp1252")
        notes.append(f"The file is not valid UTF-8 {first_bad}; it was read as Windows-1252.")
        return text, "cp1252", notes
    except UnicodeDecodeError:
        notes.append(f"The file is not valid UTF-8 {first_bad}; it was read as Latin-1. Check accented letters.")
        return data.decode("latin-1"), "latin-1", notes


def _decode_utf16(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace")


def _looks_like_text(text: str) -> bool:
    sample = text[:2000]
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in sample)
    return printable >= 0.95 * len(sample)


# --- delimiter and header ----------------------------------------------------------------------------------
def sniff_delimiter(text: str, filename: str = "") -> str:
    """csv.Sniffer's guess, checked against how consistently each candidate splits the first rows.

    Sniffer alone is easily fooled by commas inside quoted text, so each candidate is scored by the share
    of sample rows that have the same field count as the first row (which must be more than one).
    """
    sample = text[:SNIFF_SAMPLE_CHARS]
    if len(text) > SNIFF_SAMPLE_CHARS:  # do not score a row cut in half
        sample = sample[: sample.rfind("\n") + 1] or sample
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    by_extension = "\t" if filename.lower().endswith((".tsv", ".tab")) else None
    best, best_score = None, 0.0
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r][:200]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        consistency = sum(len(r) == len(rows[0]) for r in rows) / len(rows)
        # Ties go to the sniffed delimiter, then the file extension, then the order of DELIMITERS.
        score = consistency + 0.01 * (delimiter == sniffed) + 0.005 * (delimiter == by_extension)
        if score > best_score:
            best, best_score = delimiter, score
    return best or by_extension or sniffed or ","


def guess_has_header(first_row: Sequence[str], sample: str, delimiter: str) -> bool:
    """Known column names say yes; otherwise ask csv.Sniffer, and default to yes (most exports have one)."""
    cells = [c.strip().lower() for c in first_row]
    if any(c in TEXT_COLUMN_NAMES or c in LABEL_COLUMN_NAMES for c in cells):
        return True
    if len(cells) < 2:
        return False  # one column of texts: a header row would be a text like any other
    try:
        return csv.Sniffer().has_header(sample)
    except csv.Error:
        return True


# --- parsing -----------------------------------------------------------------------------------------------
def parse_table(
    data: bytes | str, *, filename: str = "", delimiter: str | None = None, has_header: bool | None = None
) -> Table:
    """Parse CSV/TSV bytes (or already-decoded text). Broken rows (wrong field count, csv errors) are
    skipped and listed in `issues` with their row numbers; blank rows are counted."""
    if isinstance(data, bytes):
        text, encoding, notes = decode_bytes(data)
    else:
        text, encoding, notes = data.removeprefix("\ufeff"), "text", []
    if not text.strip():
        raise IngestError("The file is empty.")
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL characters in the file were removed.")
    delimiter = delimiter or sniff_delimiter(text, filename)

    records: list[tuple[int, int, list[str]]] = []  # (row number, lines it spans, cells)
    issues: list[Issue] = []
    blank_rows = 0
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row_number = 0
    last_line = 0  # a row's line count comes from line numbers, which run ahead after a multi-line cell
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            last_line = reader.line_num
            issues.append(Issue(row_number, _csv_error_message(e)))
            if len(issues) >= MAX_ISSUES:
                break
            continue
        lines, last_line = reader.line_num - last_line, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            blank_rows += 1
            continue
        records.append((row_number, lines, cells))
    if not records:
        raise IngestError("The file has no rows with text in them.")

    header_cells = records[0][2]
    if has_header is None:
        has_header = guess_has_header(header_cells, text[:SNIFF_SAMPLE_CHARS], delimiter)
    if has_header:
        columns = _unique_names([c.strip() or f"column {i + 1}" for i, c in enumerate(header_cells)])
        data_records = records[1:]
    else:
        width = max(len(r[2]) for r in records[:1000])
        columns = [f"column {i + 1}" for i in range(width)]
        data_records = records
    width = len(columns)

    kept_cells: list[list[str]] = []
    kept_rows: list[int] = []
    for row, _lines, cells in data_records:
        if len(cells) == width:
            kept_cells.append(cells)
            kept_rows.append(row)
        elif len(issues) < MAX_ISSUES:
            hint = " (an unquoted delimiter inside the text?)" if len(cells) > width else ""
            issues.append(Issue(row, f"has {len(cells)} field(s), expected {width}{hint}."))

    if text.count('"') % 2 == 1:
        multi_line = [row for row, lines, _ in records if lines > 1]
        where = f" from row {multi_line[-1]} on" if multi_line else ""
        notes.append(
            f"The file has an unmatched double quote{where}: the text after it may have been read as one cell."
        )
    issues.sort(key=lambda i: i.row or 0)
    frame = pd.DataFrame(kept_cells, columns=columns, dtype="string") if kept_cells else pd.DataFrame(
        {c: pd.Series(dtype="string") for c in columns}
    )
    return Table(frame, kept_rows, encoding, delimiter, has_header, blank_rows, issues, notes)


def _csv_error_message(error: csv.Error) -> str:
    text = str(error)
    if "field larger than field limit" in text:
        return f"a cell is longer than {csv.field_size_limit():,} characters (an unmatched quote?)."
    return f"could not be read ({text})."


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name} ({count + 1})")
    return out


def numeric_share(values: pd.Series, sample: int = 500) -> float:
    """Share of the non-empty values (of the first `sample`) that are numbers; 0.0 when all are empty."""
    cells = values.head(sample).fillna("").astype(str).str.strip()
    cells = cells[cells != ""]
    if cells.empty:
        return 0.0
    return float(pd.to_numeric(cells, errors="coerce").notna().mean())


def looks_numeric(values: pd.Series) -> bool:
    """Mostly numbers (ids, scores, counts): unlikely to be the texts to classify."""
    return numeric_share(values) > 0.5


def guess_text_column(table: Table) -> str:
    """A column with a text-like name, else the one with the longest values on average among those that
    are mostly words, not numbers (a long id or score column must not win); all numeric: the longest."""
    by_name = _by_name(table.columns, TEXT_COLUMN_NAMES)
    if by_name:
        return by_name
    lengths = {c: table.frame[c].head(500).str.len().mean() for c in table.columns}
    wordy = [c for c in table.columns if not looks_numeric(table.frame[c])]
    return max(wordy or table.columns, key=lambda c: (lengths[c] if pd.notna(lengths[c]) else 0))


def guess_label_column(table: Table, text_column: str) -> str | None:
    """A column with a label-like name, else a short column with few distinct values, else None."""
    others = [c for c in table.columns if c != text_column]
    by_name = _by_name(others, LABEL_COLUMN_NAMES)
    if by_name:
        return by_name
    for column in others:
        values = table.frame[column].head(1000).str.strip()
        values = values[values.fillna("") != ""]
        if len(values) and values.nunique() <= min(20, max(2, len(values) // 2)) and values.str.len().max() <= 30:
            return column
    return None


def _by_name(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def batch_from_table(table: Table, text_column: str, label_column: str | None = None, source: str = "") -> Batch:
    """Pick the text (and optional expected-label) column. Missing columns raise IngestError."""
    for role, column in (("text", text_column), ("label", label_column)):
        if column is not None and column not in table.frame.columns:
            raise IngestError(
                f"The {role} column {column!r} is not in the file. Columns found: "
                + ", ".join(repr(c) for c in table.columns)
                + "."
            )
    texts = table.frame[text_column].fillna("")
    expected = (
        table.frame[label_column].fillna("").str.strip()
        if label_column
        else pd.Series([""] * len(texts), dtype="string")
    )
    frame = pd.DataFrame({"row": table.rows, "text": texts.to_numpy(), "expected": expected.to_numpy()})
    batch = _finish_batch(frame, source or "file", labelled=label_column is not None)
    batch.issues = list(table.issues)
    batch.notes = list(table.notes)
    batch.row_note = row_numbering(table.has_header)
    return batch


def batch_from_lines(text: str) -> Batch:
    """One text per line. Lines pasted from a two-column spreadsheet (text<TAB>label on every line) are
    split into text and expected label."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # a final newline is not an empty text
    filled = [line for line in lines if line.strip()]
    two_columns = bool(filled) and all(line.count("\t") == 1 for line in filled)
    rows, texts, expected = [], [], []
    for number, line in enumerate(lines, start=1):
        if two_columns and line.strip():
            body, label = line.split("\t")
        else:
            body, label = line, ""
        rows.append(number)
        texts.append(body)
        expected.append(label.strip())
    frame = pd.DataFrame({"row": rows, "text": texts, "expected": expected})
    frame = frame.astype({"text": "string", "expected": "string"})
    batch = _finish_batch(frame, "pasted lines", labelled=two_columns)
    batch.row_note = row_numbering(None)
    return batch


def _finish_batch(frame: pd.DataFrame, source: str, labelled: bool) -> Batch:
    frame = frame.astype({"row": "int64", "text": "string", "expected": "string"})
    is_empty = frame["text"].str.strip().fillna("") == ""
    skipped = frame.loc[is_empty, "row"].tolist()
    frame = frame.loc[~is_empty].reset_index(drop=True)
    frame["text"] = frame["text"].str.strip()
    long_rows = frame.loc[frame["text"].str.len() > LONG_TEXT_CHARS, "row"].tolist()
    no_label = frame["expected"].fillna("") == ""
    frame.loc[no_label, "expected"] = pd.NA
    missing = frame.loc[no_label, "row"].tolist() if labelled and not no_label.all() else []
    return Batch(frame, source, skipped_empty=skipped, long_rows=long_rows, missing_label_rows=missing)

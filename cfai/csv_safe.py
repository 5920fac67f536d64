"""CSV cells a spreadsheet will not run: the one rule every CSV the app writes goes through.

A cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice and Google
Sheets as a formula (CSV injection). As OWASP recommends, such a text cell gets a leading apostrophe, which
spreadsheets show as text and do not display. Numbers stay numbers (a numeric column is left alone, and a
text cell that is just a number, such as "-3.5", is not a formula). The rule is reversible: a cell that
already starts with apostrophes before a trigger gets one more, so `restore_cell` gives back the original.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _needs_quote(text: str) -> bool:
    bare = text.lstrip("'")
    return bare.startswith(FORMULA_TRIGGERS) and not (bare == text and _PLAIN_NUMBER.match(text))


def neutralize_cell(value: Any) -> Any:
    """A text value a spreadsheet would run, made inert; anything else unchanged."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def restore_cell(value: Any) -> Any:
    """The inverse of `neutralize_cell`, for importing our own exports."""
    if isinstance(value, str) and value.startswith("'") and _needs_quote(value[1:]):
        return value[1:]
    return value


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (in object, string and categorical columns, and column names) neutralised."""
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):  # labels often are: their categories are text cells too
            out[column] = out[column].astype(object).map(neutralize_cell)
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            out[column] = out[column].map(neutralize_cell)
    out.columns = [neutralize_cell(c) for c in out.columns]
    return out


def safe_csv(frame: pd.DataFrame, **to_csv_args: Any) -> str:
    """`frame.to_csv(...)` with formula cells neutralised (index off unless asked for). Lines end in CRLF
    (RFC 4180), which also makes the writer quote every cell holding a lone CR: unquoted, a reader would
    start a new row there, and a formula could hide behind it."""
    to_csv_args.setdefault("index", False)
    to_csv_args.setdefault("lineterminator", "\r\n")
    return neutralize_frame(frame).to_csv(**to_csv_args)

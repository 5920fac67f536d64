"""CSV exports never carry a formula a spreadsheet would run (issue 10.4): the rule, and every CSV writer."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfai.classify import BatchJob, BatchSettings, export_csv
from cfai.csv_safe import FORMULA_TRIGGERS, neutralize_cell, restore_cell, safe_csv
from cfai.store import Store
from tests.test_store import make_result

HOSTILE = ["=HYPERLINK(\"http://127.0.0.1:9/?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "'=already quoted"]


def spreadsheet_would_run(cell: str) -> bool:
    return cell.startswith(FORMULA_TRIGGERS)


def cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) for cell in row]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_cells_get_an_apostrophe(value):
    out = neutralize_cell(value)
    assert out.startswith("'") and not spreadsheet_would_run(out)
    assert restore_cell(out) == value


@pytest.mark.parametrize("value", ["-3.5", "+7", "-1e5", "plain", "a=b", "", "'quoted", 12, -3.5, None])
def test_numbers_and_plain_text_stay_as_they_are(value):
    assert neutralize_cell(value) == value


@given(st.text(max_size=20))
def test_the_rule_is_reversible_and_always_inert(value):
    out = neutralize_cell(value)
    assert restore_cell(out) == value
    assert not spreadsheet_would_run(out) or out == value and pd.to_numeric(value, errors="coerce") == pd.to_numeric(value, errors="coerce")


def test_safe_csv_keeps_numeric_columns_numeric():
    frame = pd.DataFrame({"text": HOSTILE, "score": [-0.5] * len(HOSTILE)})
    rows = list(csv.DictReader(io.StringIO(safe_csv(frame), newline="")))
    assert [row["score"] for row in rows] == ["-0.5"] * len(HOSTILE)  # a number, not '-0.5
    assert not any(spreadsheet_would_run(row["text"]) for row in rows)


def test_the_classification_export_is_neutralised():
    frame = pd.DataFrame({"row": range(2, len(HOSTILE) + 2), "text": HOSTILE, "expected": ["=1"] * len(HOSTILE)})
    job = BatchJob.from_frame(frame, BatchSettings())
    data = export_csv(job.frame())
    written = cells(data)
    assert not any(spreadsheet_would_run(c) for c in written), written
    assert f"'{HOSTILE[0]}" in written


def test_the_run_export_is_neutralised(tmp_path):
    result = make_result(name="=HYPERLINK(\"http://127.0.0.1:9\")")
    result.records[5].error_message = "@evil(1)"
    with Store(tmp_path / "h.sqlite3") as store:
        store.save_run(result)
        data = store.export_run("run-1", "csv")
    written = cells(data)
    assert not any(spreadsheet_would_run(c) for c in written), [c for c in written if spreadsheet_would_run(c)]
    assert "'=HYPERLINK(\"http://127.0.0.1:9\")" in written and "'@evil(1)" in written


def test_categorical_and_string_columns_are_neutralised_too():
    """Labels and routes are often categorical: their cells are text a spreadsheet would run all the same."""
    frame = pd.DataFrame({"label": pd.Categorical(["=HYPERLINK(\"http://x\")", "fine"]),
                          "text": pd.array(["@SUM(1)", None], dtype="string"), "cost_usd": [0.5, -1.0]})
    rows = list(csv.reader(io.StringIO(safe_csv(frame))))
    assert rows[1][:2] == ["'=HYPERLINK(\"http://x\")", "'@SUM(1)"] and rows[2][0] == "fine"
    assert rows[1][2] == "0.5" and rows[2][2] == "-1.0"  # numbers stay numbers

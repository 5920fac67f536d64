"""CSV/TSV and pasted-line ingestion: encodings, delimiters, quoted newlines, broken rows, bad columns."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfai.ingest import (
    LONG_TEXT_CHARS,
    ROWS_PASTED,
    ROWS_WITH_HEADER,
    ROWS_WITHOUT_HEADER,
    IngestError,
    batch_from_lines,
    batch_from_table,
    decode_bytes,
    format_rows,
    guess_label_column,
    guess_text_column,
    looks_numeric,
    numeric_share,
    parse_table,
    row_numbering,
    sniff_delimiter,
)

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"


def test_sample_csv_reads_cleanly():
    table = parse_table(SAMPLE.read_bytes(), filename=SAMPLE.name)
    assert table.columns == ["text", "label"]
    assert (table.encoding, table.delimiter, table.has_header) == ("utf-8", ",", True)
    assert len(table.frame) == 40 and not table.issues and not table.notes
    assert set(table.frame["label"]) == {"pos", "neg"}
    batch = batch_from_table(table, guess_text_column(table), guess_label_column(table, "text"))
    assert len(batch) == 40 and batch.has_expected and batch.messages() == []
    assert batch.frame["row"].tolist()[:3] == [2, 3, 4]  # spreadsheet rows: the header is row 1


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("text,label\ncafé crème,pos\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "text,label\ncafé crème,pos\n".encode(), "utf-8-sig"),
        ("text,label\ncafé crème,pos\n".encode("utf-16"), "utf-16"),  # with BOM
        ("text,label\ncafé crème,pos\n".encode("utf-16-le"), "utf-16-le"),  # no BOM: found by NUL pattern
        ("text,label\ncafé crème – “quoted”,pos\n".encode("cp1252"), "cp1252"),
    ],
)
def test_encodings_are_detected(raw, encoding):
    table = parse_table(raw)
    assert table.encoding == encoding
    assert table.columns == ["text", "label"]
    assert table.frame["text"].iloc[0].startswith("café crème")


def test_invalid_utf8_says_which_encoding_was_used_and_where():
    raw = b"text,label\nfine,pos\nna\xefve caf\xe9,neg\n"
    text, encoding, notes = decode_bytes(raw)
    assert encoding == "cp1252" and "naïve café" in text
    assert notes and "not valid UTF-8" in notes[0] and "line 3" in notes[0]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1():
    _, encoding, notes = decode_bytes(b"text\nab\x81cd\n")  # 0x81 is undefined in Windows-1252
    assert encoding == "latin-1" and "Latin-1" in notes[0]


def test_binary_file_is_refused_with_advice():
    with pytest.raises(IngestError, match="not text"):
        parse_table(b"PK\x03\x04\x00\x00\x00\x00" + bytes(range(256)) * 8)


def test_empty_file_is_refused():
    with pytest.raises(IngestError, match="empty"):
        parse_table(b"  \n\n")


@pytest.mark.parametrize(
    ("content", "filename", "delimiter"),
    [
        ("text\tlabel\nhello, world\tpos\nbad, sad\tneg\n", "x.tsv", "\t"),
        ("text\tlabel\nhello, world\tpos\nbad, sad\tneg\n", "x.csv", "\t"),  # the content wins over the name
        ('text;label\n"a; b";pos\nc;neg\n', "", ";"),
        ('text,label\n"one, two, three",pos\nfour,neg\n', "", ","),
        ("text|label\na|pos\nb|neg\n", "", "|"),
    ],
)
def test_delimiter_is_sniffed(content, filename, delimiter):
    assert sniff_delimiter(content, filename) == delimiter
    table = parse_table(content.encode(), filename=filename)
    assert table.columns == ["text", "label"] and len(table.frame) == 2


def test_quoted_newlines_stay_in_one_text_and_row_numbers_follow_records():
    raw = b'text,label\n"first line\nsecond line",pos\n"plain",neg\n"a\n\nb",pos\n'
    table = parse_table(raw)
    assert table.frame["text"].tolist() == ["first line\nsecond line", "plain", "a\n\nb"]
    assert table.rows == [2, 3, 4]


def test_broken_rows_are_listed_with_row_numbers_and_skipped():
    raw = b"text,label\ngood one,pos\nan unquoted, comma,neg\nanother good,neg\nlonely\n"
    table = parse_table(raw)
    assert table.frame["text"].tolist() == ["good one", "another good"]
    assert [(i.row, i.message.split(",")[0]) for i in table.issues] == [(3, "has 3 field(s)"), (5, "has 1 field(s)")]
    assert "unquoted delimiter" in table.issues[0].message
    batch = batch_from_table(table, "text", "label")
    text = "\n".join(batch.messages())
    assert "2 row(s) could not be read" in text and "Row 3:" in text and "Row 5:" in text


def test_unmatched_quote_is_reported():
    table = parse_table(b'text,label\nok,pos\n"never closed,neg\nmore,pos\n')
    assert any("unmatched double quote" in note and "row 3" in note for note in table.notes)


def test_unmatched_quote_names_the_row_where_it_starts_not_the_last_row():
    # The quote opened in row 3 swallows lines 3-5 into one cell; the rows after it are single lines, but
    # their line numbers run ahead of their row numbers, which must not make them look multi-line.
    raw = b'text,label\nok,pos\n"never closed,neg\nmore,pos\nstill,neg"x"y,pos\nlater,neg\nlast,pos\n'
    table = parse_table(raw)
    assert table.rows == [2, 3, 4, 5]
    note = next(n for n in table.notes if "unmatched double quote" in n)
    assert "from row 3 on" in note, note


def test_blank_lines_are_counted_not_kept():
    table = parse_table(b"text,label\n\nhello,pos\n\n\nbye,neg\n")
    assert table.blank_rows == 3 and table.rows == [3, 6]


def test_missing_column_is_a_clear_error():
    table = parse_table(b"review,stars\nnice,5\n")
    with pytest.raises(IngestError, match=r"text column 'text' is not in the file.*'review', 'stars'"):
        batch_from_table(table, "text")
    with pytest.raises(IngestError, match="label column 'label'"):
        batch_from_table(table, "review", "label")


def test_empty_and_long_texts_and_missing_labels_are_counted():
    long_text = "word " * (LONG_TEXT_CHARS // 4)
    raw = f'text,label\nhello,pos\n"  ",neg\n{long_text},neg\nno label here,\n'.encode()
    batch = batch_from_table(parse_table(raw), "text", "label")
    assert batch.frame["text"].tolist() == ["hello", long_text.strip(), "no label here"]
    assert batch.skipped_empty == [3] and batch.long_rows == [4] and batch.missing_label_rows == [5]
    assert batch.frame["expected"].isna().tolist() == [False, False, True]
    messages = " ".join(batch.messages())
    assert "1 empty text(s) skipped (row 3)" in messages and "longer than 2,000" in messages


def test_headerless_file_gets_numbered_columns():
    table = parse_table(b"great movie,1\nterrible movie,0\nfine I guess,1\n", has_header=False)
    assert table.columns == ["column 1", "column 2"] and table.rows == [1, 2, 3]
    assert guess_text_column(table) == "column 1"
    assert guess_label_column(table, "column 1") == "column 2"


def test_column_guesses_by_name_and_by_shape():
    table = parse_table(b"id,Review,Sentiment\n1,long enough text,positive\n2,another long one,negative\n")
    assert guess_text_column(table) == "Review"
    assert guess_label_column(table, "Review") == "Sentiment"


def test_text_guess_prefers_words_over_longer_numbers():
    # The ids are longer on average than the notes; by length alone `id` would be the text column.
    table = parse_table(b"id,note,stars\n123456789012,ok,4\n123456789013,meh,2\n123456789014,bad,1\n")
    assert guess_text_column(table) == "note"


def test_all_numeric_columns_still_give_a_guess_that_looks_numeric():
    table = parse_table(b"id,score\n1,0.25\n2,0.75\n3,0.5\n")
    assert table.has_header and table.columns == ["id", "score"]
    assert looks_numeric(table.frame[guess_text_column(table)])  # the page warns about it


def test_numeric_share_ignores_blanks_and_counts_words():
    values = pd.Series(["1", " 2.5 ", "", None, "-3e2", "great", "1,5"], dtype="string")
    assert numeric_share(values) == pytest.approx(3 / 5)
    assert looks_numeric(values) and numeric_share(pd.Series(["", None], dtype="string")) == 0.0
    assert not looks_numeric(pd.Series(["4", "five", "six"], dtype="string"))


def test_table_messages_explain_a_file_with_no_readable_rows():
    for raw, expected in [
        (b'text,label\n"unclosed,pos\nfine,neg\n', ["unmatched double quote from row 2", "Row 2: has 1 field(s)"]),
        (b"text,label\na,b,c\nd,e,f\n", ["2 row(s) could not be read", "Row 2: has 3", "Row 3: has 3"]),
    ]:
        table = parse_table(raw)
        assert table.frame.empty
        text = "\n".join(table.messages())
        assert all(part in text for part in expected), text


def test_duplicate_and_blank_header_names_are_made_unique():
    table = parse_table(b"text,text,\na,b,c\n")
    assert table.columns == ["text", "text (2)", "column 3"]


def test_pasted_lines_skip_and_count_empty_lines():
    batch = batch_from_lines("first\n\n  \nsecond\r\nthird\n\n")
    assert batch.frame["text"].tolist() == ["first", "second", "third"]
    assert batch.frame["row"].tolist() == [1, 4, 5]
    assert batch.skipped_empty == [2, 3] and not batch.has_expected


def test_pasted_spreadsheet_columns_give_expected_labels():
    batch = batch_from_lines("lovely day\tpos\nawful day\tneg\n")
    assert batch.frame["expected"].tolist() == ["pos", "neg"]
    assert batch.has_expected


def test_format_rows_truncates_long_lists():
    assert format_rows([4]) == "row 4"
    assert format_rows(list(range(1, 20)), limit=3) == "rows 1, 2, 3, ... (+16 more)"


def test_five_thousand_rows_parse_quickly():
    lines = ["text,label"] + [f'"review number {i}, with a comma",{"pos" if i % 2 else "neg"}' for i in range(5000)]
    table = parse_table("\n".join(lines).encode())
    batch = batch_from_table(table, "text", "label")
    assert len(batch) == 5000 and isinstance(batch.frame, pd.DataFrame)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1, max_size=40), min_size=1, max_size=15))
def test_any_texts_written_by_csv_writer_read_back_unchanged(texts):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows([text, "x"] for text in texts)
    table = parse_table(out.getvalue().encode("utf-8"))
    assert table.frame["text"].tolist() == texts and not table.issues


def test_batches_say_how_their_rows_are_numbered():
    with_header = batch_from_table(parse_table(b"text,label\ngood,1\nbad,0\n"), "text", "label")
    assert with_header.frame["row"].tolist() == [2, 3]
    assert with_header.row_note == ROWS_WITH_HEADER and "the header is row 1" in ROWS_WITH_HEADER
    without = batch_from_table(parse_table(b"good\t1\nbad\t0\n", has_header=False), "column 1", "column 2")
    assert without.frame["row"].tolist() == [1, 2] and without.row_note == ROWS_WITHOUT_HEADER
    pasted = batch_from_lines("good\n\nbad")
    assert pasted.frame["row"].tolist() == [1, 3] and pasted.row_note == ROWS_PASTED
    assert row_numbering(True) == ROWS_WITH_HEADER and row_numbering(None) == ROWS_PASTED

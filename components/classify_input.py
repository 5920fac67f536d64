"""The classify batch's input: pasted lines or an uploaded CSV/TSV (or the sample), read with its
encoding, delimiter and header detected, with the text and expected-label columns to choose and every
problem shown with its row numbers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from cfai.ingest import (
    DELIMITER_NAMES,
    Batch,
    IngestError,
    Table,
    batch_from_lines,
    batch_from_table,
    guess_label_column,
    guess_text_column,
    looks_numeric,
    parse_table,
)

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"
SOURCE_UPLOAD, SOURCE_PASTE = "Upload CSV/TSV", "Paste lines"
NO_LABEL = "(no expected labels)"


def batch_input() -> Batch | None:
    """The batch the user has given (file or pasted lines), with its problems shown; None if none yet."""
    source = st.radio("Input", (SOURCE_UPLOAD, SOURCE_PASTE), key="classify_source", horizontal=True)
    if source == SOURCE_PASTE:
        return _pasted_batch()
    return _file_batch()


def _pasted_batch() -> Batch | None:
    text = st.text_area(
        "One text per line", key="classify_lines", height=180,
        placeholder="I loved it\nNot worth the money\n...",
        help="Empty lines are skipped. Two columns copied from a spreadsheet (text, then label, separated "
             "by a tab) give expected labels too.",
    )
    if not text.strip():
        return None
    batch = batch_from_lines(text)
    _show_batch_messages(batch)
    return batch


def _file_batch() -> Batch | None:
    upload = st.file_uploader("CSV or TSV file", type=["csv", "tsv", "txt", "tab"], key="classify_upload",
                              help="A header row, one text column and optionally an expected-label column. "
                                   "Encoding and delimiter are detected.")
    row = st.container(horizontal=True)
    if row.button("Use the sample", key="classify_use_sample", icon=":material/science:",
                      help="40 labelled reviews (pos/neg) written for this demo, some of them tricky."):
        st.session_state["classify_sample"] = True
    row.download_button("Download the sample", SAMPLE_PATH.read_bytes(), file_name=SAMPLE_PATH.name,
                            mime="text/csv", key="classify_sample_download", icon=":material/download:")
    if upload is not None:
        name, data = upload.name, upload.getvalue()
    elif st.session_state.get("classify_sample"):
        name, data = SAMPLE_PATH.name, SAMPLE_PATH.read_bytes()
        st.caption(f"Using the sample file `samples/{SAMPLE_PATH.name}`.")
    else:
        return None

    with st.expander("Reading options", icon=":material/tune:"):
        delimiter_choice = st.selectbox("Delimiter", ["auto", *DELIMITER_NAMES], key="classify_delimiter",
                                        format_func=lambda d: DELIMITER_NAMES.get(d, d))
        header_choice = st.radio("First row is a header", ("auto", "yes", "no"), key="classify_header",
                                 horizontal=True)
    delimiter = None if delimiter_choice == "auto" else delimiter_choice
    has_header = {"auto": None, "yes": True, "no": False}[header_choice]
    try:
        table = _parsed(name, data, delimiter, has_header)
    except IngestError as e:
        st.error(f"{name}: {e}", icon=":material/error:")
        return None

    st.caption(
        f"**{name}**: {len(table.frame):,} rows read as {table.encoding}, {table.delimiter_name}-separated, "
        f"{'with' if table.has_header else 'without'} a header row"
        + (f"; {table.blank_rows} blank row(s) skipped" if table.blank_rows else "") + "."
    )
    st.dataframe(table.frame.head(8), hide_index=True, width="stretch")
    if not table.columns or table.frame.empty:
        # Say why: an unclosed quote or ragged rows leave nothing, and only the notes and issues tell.
        reason = "No readable data rows after the header." if table.issues else "No data rows after the header."
        st.error(_as_markdown([reason, *table.messages()]), icon=":material/error:")
        return None
    # Column choices belong to one file read one way: new file or options, fresh guesses.
    file_key = hashlib.sha1(data + f"{delimiter}|{has_header}".encode()).hexdigest()[:12]
    text_guess = guess_text_column(table)
    label_guess = guess_label_column(table, text_guess)
    cols = st.columns(2)
    text_column = cols[0].selectbox("Text column", table.columns, index=table.columns.index(text_guess),
                                    key=f"classify_text_col_{file_key}")
    label_options = [NO_LABEL, *[c for c in table.columns if c != text_column]]
    label_index = label_options.index(label_guess) if label_guess in label_options else 0
    label_column = cols[1].selectbox("Expected-label column (optional)", label_options, index=label_index,
                                     key=f"classify_label_col_{file_key}")
    if looks_numeric(table.frame[text_column]):
        st.warning(f"Column '{text_column}' looks numeric: is it the text? Most of its values are numbers; "
                   "pick the column that holds the texts to classify.", icon=":material/warning:")
    try:
        batch = batch_from_table(table, text_column, None if label_column == NO_LABEL else label_column,
                                 source=name)
    except IngestError as e:
        st.error(str(e), icon=":material/error:")
        return None
    _show_batch_messages(batch)
    return batch


def _parsed(name: str, data: bytes, delimiter: str | None, has_header: bool | None) -> Table:
    """Parse once per file and options; reruns reuse it (a 5,000-row file takes a moment to read)."""
    key = (name, hashlib.sha1(data).hexdigest(), delimiter, has_header)
    cached = st.session_state.get("_classify_parsed")
    if cached is not None and cached[0] == key:
        return cached[1]
    table = parse_table(data, filename=name, delimiter=delimiter, has_header=has_header)
    st.session_state["_classify_parsed"] = (key, table)
    return table


def _as_markdown(messages: list[str]) -> str:
    """Sentences as paragraphs, '  - ' lines as one list under the sentence before them."""
    text = ""
    for line in messages:
        is_item = line.startswith("  - ")
        text += ("\n" if is_item else "\n\n") + (f"- {line[4:]}" if is_item else line)
    return text.strip()


def _show_batch_messages(batch: Batch) -> None:
    messages = batch.messages()
    if batch.issues:
        st.warning(_as_markdown(messages), icon=":material/warning:")
    elif messages:
        st.info(_as_markdown(messages), icon=":material/info:")
    if len(batch) == 0:
        st.error("There is no text to classify.", icon=":material/error:")

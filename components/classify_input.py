"""The classify batch's input: pasted lines or an uploaded CSV/TSV (or the sample), read with its
encoding, delimiter and header detected, with the text and expected-label columns to choose and every
problem shown with its row numbers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from cfai.format import MISSING
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
    row_numbering,
)
from cfai.safe_markdown import escape_markdown
from components.classify_batch import clear_results
from components.classify_state import memo, seed

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"
SOURCE_UPLOAD, SOURCE_PASTE = "Upload CSV/TSV", "Paste lines"
NO_LABEL = "(no expected labels)"
KEPT_FILE = "_classify_file"  # the uploaded file, kept for the session (the uploader forgets it)


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
    batch = memo("pasted_batch", hashlib.sha1(text.encode()).hexdigest(), lambda: batch_from_lines(text))
    _show_batch_messages(batch)
    return batch


def _chosen_file() -> tuple[str, bytes, str] | None:
    """(name, bytes, sha1) of the file to read: a fresh upload, else the one uploaded earlier in this
    session (the uploader forgets its file when another page is visited), else the sample when asked."""
    uploader_alive = "classify_upload" in st.session_state  # False on the first run after another page
    upload = st.file_uploader("CSV or TSV file", type=["csv", "tsv", "txt", "tab"], key="classify_upload",
                              help="A header row, one text column and optionally an expected-label column. "
                                   "Encoding and delimiter are detected.")
    row = st.container(horizontal=True)
    if row.button("Use the sample", key="classify_use_sample", icon=":material/science:",
                  help="40 labelled reviews (pos/neg) written for this demo, some of them tricky."):
        st.session_state["classify_sample"] = True
        st.session_state.pop(KEPT_FILE, None)
    row.download_button("Download the sample", SAMPLE_PATH.read_bytes(), file_name=SAMPLE_PATH.name,
                        mime="text/csv", key="classify_sample_download", icon=":material/download:")
    kept: dict | None = st.session_state.get(KEPT_FILE)
    if upload is not None:
        if kept is None or kept["file_id"] != upload.file_id:
            data = upload.getvalue()
            kept = {"name": upload.name, "data": data, "sha1": hashlib.sha1(data).hexdigest(),
                    "file_id": upload.file_id, "live": True}
            st.session_state[KEPT_FILE] = kept
        kept["live"] = True
    elif kept is not None and uploader_alive and kept["live"]:
        st.session_state.pop(KEPT_FILE)  # the user removed the file from the uploader
        kept = None
    elif kept is not None and not uploader_alive:
        kept["live"] = False  # back from another page: the uploader is empty, the file is still here
    if kept is not None:
        if not kept["live"]:
            line = st.container(horizontal=True, vertical_alignment="center")
            line.caption(f"Using **{escape_markdown(kept['name'])}**, uploaded earlier in this session.")
            if line.button("Forget this file", key="classify_forget_file", icon=":material/close:"):
                st.session_state.pop(KEPT_FILE, None)
                st.rerun()
        return kept["name"], kept["data"], kept["sha1"]
    if st.session_state.get("classify_sample"):
        st.caption(f"Using the sample file `samples/{SAMPLE_PATH.name}`.")
        data = SAMPLE_PATH.read_bytes()
        return SAMPLE_PATH.name, data, hashlib.sha1(data).hexdigest()
    return None


def _file_batch() -> Batch | None:
    chosen = _chosen_file()
    if chosen is None:
        return None
    name, data, digest = chosen
    shown_name = f"**{escape_markdown(name)}**"

    with st.expander("Reading options", icon=":material/tune:"):
        delimiter_choice = st.selectbox("Delimiter", ["auto", *DELIMITER_NAMES], key="classify_delimiter",
                                        format_func=lambda d: DELIMITER_NAMES.get(d, d))
        header_choice = st.radio("First row is a header", ("auto", "yes", "no"), key="classify_header",
                                 horizontal=True)
    delimiter = None if delimiter_choice == "auto" else delimiter_choice
    has_header = {"auto": None, "yes": True, "no": False}[header_choice]
    table = _parsed(name, data, digest, delimiter, has_header)
    if isinstance(table, IngestError):
        _input_failed(f"{shown_name} could not be read: {escape_markdown(table)}")
        return None

    st.caption(
        f"{shown_name}: {len(table.frame):,} rows read as {table.encoding}, {table.delimiter_name}-separated, "
        f"{'with' if table.has_header else 'without'} a header row"
        + (f"; {table.blank_rows} blank row(s) skipped" if table.blank_rows else "") + ". "
        + row_numbering(table.has_header)
    )
    st.dataframe(table.frame.head(8), hide_index=True, width="stretch", placeholder=MISSING)
    if not table.columns or table.frame.empty:
        # Say why: an unclosed quote or ragged rows leave nothing, and only the notes and issues tell.
        reason = "No readable data rows after the header." if table.issues else "No data rows after the header."
        _input_failed(_as_markdown([f"{shown_name} could not be used. {reason}", *table.messages()]))
        return None
    # Column choices belong to one file read one way: new file or options, fresh guesses.
    file_key = hashlib.sha1(f"{digest}|{delimiter}|{has_header}".encode()).hexdigest()[:12]
    text_guess = guess_text_column(table)
    label_guess = guess_label_column(table, text_guess)
    text_key, label_key = f"classify_text_col_{file_key}", f"classify_label_col_{file_key}"
    seed(text_key, text_guess)
    cols = st.columns(2)
    text_column = cols[0].selectbox("Text column", table.columns, key=text_key)
    label_options = [NO_LABEL, *[c for c in table.columns if c != text_column]]
    seed(label_key, label_guess if label_guess in label_options else NO_LABEL)
    if st.session_state[label_key] not in label_options:
        st.session_state[label_key] = NO_LABEL  # the text column took the label's place
    label_column = cols[1].selectbox("Expected-label column (optional)", label_options, key=label_key)
    if looks_numeric(table.frame[text_column]):
        st.warning(f"Column '{escape_markdown(text_column)}' looks numeric: is it the text? Most of its values "
                   "are numbers; pick the column that holds the texts to classify.", icon=":material/warning:")
    label = None if label_column == NO_LABEL else label_column
    try:
        batch = memo("file_batch", (digest, delimiter, has_header, text_column, label),
                     lambda: batch_from_table(table, text_column, label, source=name))
    except IngestError as e:
        _input_failed(f"{shown_name}: {escape_markdown(e)}")
        return None
    _show_batch_messages(batch, shown_name)
    return batch


def _parsed(name: str, data: bytes, digest: str, delimiter: str | None,
            has_header: bool | None) -> Table | IngestError:
    """Parse once per file (its bytes' hash) and reading options; reruns reuse it, and a file that cannot
    be read is not read again on every rerun either."""
    def parse() -> Table | IngestError:
        try:
            return parse_table(data, filename=name, delimiter=delimiter, has_header=has_header)
        except IngestError as e:
            return e

    return memo("parsed_file", (digest, delimiter, has_header), parse)


def _input_failed(markdown: str) -> None:
    """The input cannot be used: say why, and take the previous batch's results off the page (they belong
    to another input, and would read as this one's)."""
    st.error(markdown, icon=":material/error:")
    clear_results()


def _as_markdown(messages: list[str]) -> str:
    """Sentences as paragraphs, '  - ' lines as one list under the sentence before them."""
    text = ""
    for line in messages:
        is_item = line.startswith("  - ")
        text += ("\n" if is_item else "\n\n") + (f"- {line[4:]}" if is_item else line)
    return text.strip()


def _show_batch_messages(batch: Batch, shown_name: str = "") -> None:
    messages = batch.messages()  # the app's own sentences and row numbers: no user text in them
    if batch.issues:
        st.warning(_as_markdown(messages), icon=":material/warning:")
    elif messages:
        st.info(_as_markdown(messages), icon=":material/info:")
    if len(batch) == 0:
        _input_failed(f"{shown_name + ': ' if shown_name else ''}There is no text to classify.")

"""Property tests (hypothesis) that complete the ones beside the code they test (issue 7, item 5).

Already covered elsewhere, not repeated here: arbitrary chunking of the recorded streams (test_sse.py),
one-column texts through csv.writer (test_ingest.py), gateway ids (test_config.py). Added here: arbitrary
*event lists* with mixed line ends, arbitrary multi-column tables in three delimiters, pasted lines, account
ids, whole-connection validation, token masking and scrubbing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cfai.config import ConfigError, Connection, validate_account_id
from cfai.errors import error_from_response
from cfai.ingest import batch_from_lines, parse_table
from cfai.sse import SSEEvent, SSELimitError, SSEParser

# --- SSE: any list of events, serialised with any line ends and cut anywhere, parses back identically -------
# A field value is any text without a line end (\r or \n end a line in SSE); surrogates cannot be UTF-8.
FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def sse_events(draw) -> list[tuple[list[str], str | None, str | None]]:
    """(data lines, event name, id) per event; at least one data line, so every event is dispatched."""
    return draw(st.lists(st.tuples(st.lists(FIELD_TEXT, min_size=1, max_size=3),
                                   st.none() | FIELD_TEXT.filter(bool), st.none() | FIELD_TEXT),
                         min_size=1, max_size=6))


@st.composite
def serialised(draw, events) -> bytes:
    """The wire form: fields then a blank line per event, each line ended by its own \\n, \\r\\n or \\r, with
    keep-alive comments sprinkled in."""
    out: list[str] = []

    def line(text: str) -> None:
        ending = draw(NEWLINES)
        if not text and out and out[-1].endswith("\r") and ending == "\n":
            ending = "\r\n"  # "\r" then an empty line ended by "\n" would be one CRLF line end on the wire
        out.append(text + ending)

    for data, event, event_id in events:
        if draw(st.booleans()):
            line(": keep-alive")
        if event is not None:
            line(f"event: {event}")
        if event_id is not None:
            line(f"id: {event_id}")
        for value in data:
            line(f"data: {value}")  # the parser drops exactly one space after the colon
        line("")
    return "".join(out).encode()


def expected_events(events) -> list[SSEEvent]:
    """The last event id persists across events (the SSE spec's last-event-ID buffer); the name does not."""
    out, last_id = [], None
    for data, event, event_id in events:
        last_id = event_id if event_id is not None else last_id
        out.append(SSEEvent(data="\n".join(data), event=event, id=last_id))
    return out


def feed_in_pieces(payload: bytes, cuts: list[int], parser: SSEParser | None = None) -> list[SSEEvent]:
    parser, events, last = parser or SSEParser(), [], 0
    for cut in sorted(set(cuts)):
        events += parser.feed(payload[last:cut])
        last = cut
    return events + parser.feed(payload[last:]) + parser.close()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_sse_any_events_any_line_ends_any_chunking(data):
    events = data.draw(sse_events())
    payload = data.draw(serialised(events))
    # Cuts anywhere: inside a multi-byte character, between \r and \n, on event boundaries.
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=25))
    assert feed_in_pieces(payload, cuts) == expected_events(events)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(1, 40))
def test_sse_line_cap_refuses_exactly_the_streams_with_a_longer_line(data, cap):
    events = data.draw(sse_events())
    payload = data.draw(serialised(events))
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=25))
    longest = max(len(line) for line in re.split(r"\r\n|\r|\n", payload.decode()))
    parser = SSEParser(max_line_chars=cap, max_event_chars=10**6)
    if longest > cap:
        with pytest.raises(SSELimitError):
            feed_in_pieces(payload, cuts, parser)
    else:
        assert feed_in_pieces(payload, cuts, parser) == expected_events(events)


# --- CSV: any table written by csv.writer (quotes, delimiters, newlines in cells) reads back unchanged ------
CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=30)
HEADER = st.lists(st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8),
                  min_size=1, max_size=4, unique=True)


@settings(max_examples=100, deadline=None)
@given(st.data(), st.sampled_from([",", "\t", ";"]))
def test_csv_any_table_round_trips(data, delimiter):
    header = data.draw(HEADER)
    # A row with only blank cells is a blank row, skipped and counted on purpose: leave those out.
    row = st.lists(CELL, min_size=len(header), max_size=len(header)).filter(lambda r: any(c.strip() for c in r))
    rows = data.draw(st.lists(row, min_size=1, max_size=12))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    table = parse_table(out.getvalue().encode("utf-8"), delimiter=delimiter, has_header=True)
    assert table.columns == header
    assert table.frame.astype(object).values.tolist() == rows
    assert not table.issues and table.encoding == "utf-8" and table.blank_rows == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\t\x00"),
                        max_size=25), min_size=1, max_size=15),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_pasted_lines_keep_every_non_blank_line_in_order(lines, newline):
    batch = batch_from_lines(newline.join(lines))
    kept = [(i, line.strip()) for i, line in enumerate(lines, start=1) if line.strip()]
    assert batch.frame["text"].tolist() == [text for _, text in kept]
    assert batch.frame["row"].tolist() == [row for row, _ in kept], "row numbers are the user's line numbers"


# --- config: account ids, whole-connection validation, the token never shown ------------------------------
HEX32 = st.text("0123456789abcdef", min_size=32, max_size=32)
ACCOUNT_RE = re.compile(r"[0-9a-f]{32}")
SPACES = st.text(" \t", max_size=2)


@given(HEX32, SPACES, SPACES)
def test_any_32_lowercase_hex_account_id_passes(account, before, after):
    assert validate_account_id(before + account + after) == account


@given(st.one_of(
    st.text(max_size=40),
    st.text("0123456789abcdefABCDEF", min_size=30, max_size=34),  # near misses: length and case
    HEX32.map(lambda s: s[:16] + "g" + s[17:]),
))
def test_anything_else_is_refused_naming_the_field(value):
    assume(not ACCOUNT_RE.fullmatch(value.strip()))
    try:
        validate_account_id(value)
    except ConfigError as e:
        assert e.field == "account_id" and "32" in str(e)
    else:
        raise AssertionError(f"{value!r} was accepted")


TOKENS = st.text(string.ascii_letters + string.digits + "-_.", min_size=8, max_size=60).map(lambda t: f"tok{t}")


@given(st.one_of(HEX32, st.text(max_size=40)), st.one_of(st.just(""), TOKENS),
       st.one_of(st.just(""), st.text("abcz09_-", min_size=1, max_size=66)))
def test_validate_names_exactly_the_bad_fields(account, token, gateway):
    conn = Connection(mode="cloudflare", account_id=account, api_token=token, gateway_id=gateway)
    expected = set()
    if not ACCOUNT_RE.fullmatch(account.strip()):
        expected.add("account_id")
    if not token:
        expected.add("api_token")
    if gateway and not re.fullmatch(r"(?!-)(?!.*--)[a-z0-9_-]{1,64}(?<!-)", gateway.strip()):
        expected.add("gateway_id")
    assert {p.field for p in conn.validate()} == expected


@given(TOKENS, TOKENS)
def test_tokens_never_appear_in_a_connections_repr(api_token, gateway_token):
    conn = Connection(mode="cloudflare", account_id="0" * 32, api_token=api_token, gateway_token=gateway_token)
    for text in (repr(conn), str(conn), f"{conn}", repr([conn])):
        assert api_token not in text and gateway_token not in text


@given(TOKENS, st.text(max_size=30), st.text(max_size=30), st.sampled_from([400, 401, 403, 404, 429, 500]))
def test_an_error_body_echoing_the_token_is_scrubbed(token, before, after, status):
    # A server may echo what it was sent (a bad header, the URL...): the typed error never carries it.
    body = {"success": False, "errors": [{"code": 10000, "message": f"{before}{token}{after}"}]}
    err = error_from_response(status, json.dumps(body).encode(), secrets=(token,))
    assert token not in str(err) and token not in repr(err.to_dict()) and token not in err.hint

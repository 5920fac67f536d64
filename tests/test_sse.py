"""The SSE parser: both event flavours, every chunking, CRLF, comments, [DONE], and streams cut short."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfai.shapes import Delta, StreamReader, usage_dict
from cfai.sse import MAX_LINE_CHARS, SSEEvent, SSELimitError, SSEParser
from tests.sse_payload import feed_in_pieces, parse_all

FIXTURES = Path(__file__).parent / "fixtures"
STREAMS = [(FIXTURES / name).read_bytes() for name in ("stream_workers_ai.txt", "stream_openai_chunks.txt")]


def _deltas(events: list[SSEEvent]) -> list[Delta]:
    """What the one stream reader (cfai.shapes, as cfai.stream uses it) makes of the parsed events."""
    reader = StreamReader()
    return [d for e in events if not e.is_done for d in reader.feed(e.data, e.event)]


def _text(events: list[SSEEvent]) -> str:
    return "".join(d.text for d in _deltas(events))


def _error(event: SSEEvent) -> str | None:
    return next((d.error for d in _deltas([event]) if d.error), None)


@pytest.mark.parametrize("payload", STREAMS, ids=["workers-ai", "openai"])
def test_every_single_cut_position_gives_the_same_events(payload):
    whole = parse_all(payload)
    assert whole[-1].is_done
    assert _text(whole) == "Hello world"
    for cut in range(len(payload) + 1):
        assert feed_in_pieces(payload, [cut]) == whole, cut


@pytest.mark.parametrize("payload", STREAMS, ids=["workers-ai", "openai"])
def test_byte_by_byte_and_crlf(payload):
    whole = parse_all(payload)
    assert feed_in_pieces(payload, list(range(len(payload)))) == whole
    crlf = payload.replace(b"\n", b"\r\n")
    assert feed_in_pieces(crlf, list(range(len(crlf)))) == whole
    cr_only = payload.replace(b"\n", b"\r")
    assert parse_all(cr_only) == whole


@given(st.lists(st.integers(min_value=0, max_value=len(STREAMS[0])), max_size=30), st.sampled_from(["\n", "\r\n"]))
def test_arbitrary_chunking_property(cuts, newline):
    payload = STREAMS[0].replace(b"\n", newline.encode())
    assert feed_in_pieces(payload, cuts) == parse_all(payload)


def test_multibyte_characters_split_across_chunks():
    payload = 'data: {"response":"héllo ✓ 🌍"}\n\n'.encode()
    for cut in range(len(payload)):
        events = feed_in_pieces(payload, [cut])
        assert _text(events[:1]) == "héllo ✓ 🌍"


def test_comments_multiline_data_event_and_id():
    events = parse_all(b": keep-alive\nevent: message\nid: 7\ndata: line1\ndata: line2\n\n")
    assert events == [SSEEvent(data="line1\nline2", event="message", id="7")]


def test_padding_is_never_text_and_usage_is_read():
    events = parse_all(STREAMS[0])
    deltas = _deltas(events)
    assert all("abdef" not in d.text for d in deltas)
    assert usage_dict(deltas[-1].usage) == {"prompt_tokens": 169, "completion_tokens": 48, "total_tokens": 217}


def test_stream_without_done_is_visible_to_the_caller():
    events = parse_all(b'data: {"response":"Hel"}\n\ndata: {"response":"lo"}\n\n')
    assert not any(e.is_done for e in events)
    assert _text(events) == "Hello"


def test_unterminated_last_event_is_delivered():
    assert parse_all(b"data: [DONE]") == [SSEEvent(data="[DONE]")]


def test_an_empty_errors_list_is_not_an_error():
    event = SSEEvent('{"response":"ok","errors":[],"error":null}')
    assert _error(event) is None and _text([event]) == "ok"


def test_error_event_and_garbage():
    assert _error(SSEEvent('{"errors":[{"code":3040,"message":"Capacity"}]}')) == "Capacity"
    assert _error(SSEEvent("not json"))
    assert _text([SSEEvent("[1,2]")]) == ""


def test_a_line_that_never_ends_stops_at_the_cap_with_a_clear_error():
    parser = SSEParser()
    piece = b"x" * 65536
    fed = 0
    with pytest.raises(SSELimitError, match="without ending"):
        parser.feed(b"data: ")
        for _ in range(64):  # 4 MiB of one line, far past the 1 Mi cap
            parser.feed(piece)
            fed += len(piece)
    assert MAX_LINE_CHARS - len(piece) <= fed <= MAX_LINE_CHARS  # it stopped as soon as the cap was passed


def test_a_long_line_under_the_cap_fed_in_small_pieces_is_whole():
    # 900 KB in 4 KB pieces, just under the cap: delivered whole and exactly once. (The parser keeps the
    # unfinished line as pieces and scans each piece once; no timing is asserted here, see bench/.)
    value = "y" * 900_000
    payload = f'data: {{"response":"{value}"}}\n\n'.encode()
    parser = SSEParser()
    events = []
    for i in range(0, len(payload), 4096):
        events += parser.feed(payload[i:i + 4096])
    assert _text(events[:1]) == value and len(events) == 1


def test_an_event_of_many_data_lines_is_capped_too():
    parser = SSEParser(max_line_chars=100, max_event_chars=1000)
    with pytest.raises(SSELimitError, match="event"):
        for _ in range(50):
            parser.feed(b"data: " + b"z" * 50 + b"\n")


def test_a_lone_cr_at_a_chunk_end_dispatches_at_once_and_a_following_lf_is_not_a_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [SSEEvent(data="a")]  # \r\r: line end then blank line
    assert parser.feed(b"\ndata: b\r") == []  # the \n belongs to the \r before it: no extra blank line
    assert parser.feed(b"\n\r\n") == [SSEEvent(data="b")]


def test_absurdly_nested_json_in_an_event_is_an_error_delta_not_a_crash():
    assert _error(SSEEvent("[" * 100_000 + "]" * 100_000))

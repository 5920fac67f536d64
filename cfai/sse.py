"""Server-sent events: an incremental parser, with caps on line and event length.

Network chunks cut events anywhere, even inside a UTF-8 character or between `\\r` and `\\n`, so the parser
keeps what it has not yet seen a line end for. What an event's data means (text, reasoning, usage, in any
response shape) is read by `cfai.shapes.StreamReader`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

DONE = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data.strip() == DONE


# Caps against a hostile or broken server: a line that never ends, or an event that never ends.
MAX_LINE_CHARS = 1 << 20  # 1 Mi characters per line; Workers AI events are a few hundred
MAX_EVENT_CHARS = 4 << 20  # the data lines of one event together


class SSELimitError(ValueError):
    """A line or an event beyond the parser's caps; the parser keeps nothing of it."""


class SSEParser:
    """Feed bytes as they arrive; get complete events back.

    Linear in the input: each piece of text is scanned once, and the unfinished line is kept as a list of
    pieces (not one string grown by +=, which copies it on every chunk). Lines and events are capped
    (`SSELimitError`), so an endless line costs at most the cap in memory."""

    def __init__(self, max_line_chars: int = MAX_LINE_CHARS, max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_line = max_line_chars
        self._max_event = max_event_chars
        self._pending: list[str] = []  # the current line so far, in pieces
        self._pending_len = 0
        self._after_cr = False  # the last line ended with \r: a \n first in the next text belongs to it
        self._data: list[str] = []
        self._data_len = 0
        self._event: str | None = None
        self._id: str | None = None
        self._first = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")  # the spec allows one leading BOM
            self._first = False
        events: list[SSEEvent] = []
        self._scan(text, events)
        return events

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream. A last event without its blank line is still delivered (lenient)."""
        events: list[SSEEvent] = []
        self._scan(self._decoder.decode(b"", final=True), events)
        if self._pending:
            self._line(self._take_line(""), events)
        if self._data:
            events.append(self._dispatch())
        return events

    def _scan(self, text: str, events: list[SSEEvent]) -> None:
        i, n = 0, len(text)
        if self._after_cr and n:
            self._after_cr = False
            if text[0] == "\n":
                i = 1
        while i < n:
            match = _LINE_END.search(text, i)
            if match is None:
                self._keep(text[i:])
                return
            end = match.start()
            self._line(self._take_line(text[i:end]), events)
            if text[end] == "\r":
                if end + 1 == n:
                    self._after_cr = True  # maybe the first half of \r\n: skip a \n that comes next
                    return
                i = end + 2 if text[end + 1] == "\n" else end + 1
            else:
                i = end + 1

    def _keep(self, piece: str) -> None:
        if self._pending_len + len(piece) > self._max_line:
            self._pending, self._pending_len = [], 0
            raise SSELimitError(f"A stream line went past {self._max_line:,} characters without ending.")
        self._pending.append(piece)
        self._pending_len += len(piece)

    def _take_line(self, tail: str) -> str:
        if not self._pending:
            if len(tail) > self._max_line:
                raise SSELimitError(f"A stream line went past {self._max_line:,} characters.")
            return tail
        self._keep(tail)
        line = "".join(self._pending)
        self._pending, self._pending_len = [], 0
        return line

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(self._dispatch())
            else:
                self._event = None
            return
        if line.startswith(":"):
            return  # comment / keep-alive
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_len += len(value) + 1
            if self._data_len > self._max_event:
                self._data, self._data_len = [], 0
                raise SSELimitError(f"A stream event went past {self._max_event:,} characters without ending.")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._data, self._data_len = [], 0
        self._event = None
        return event


_LINE_END = re.compile(r"[\r\n]")

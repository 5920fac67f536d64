"""Server-sent events: an incremental parser and the text/usage carried by Workers AI stream events.

Network chunks cut events anywhere, even inside a UTF-8 character or between `\\r` and `\\n`, so the parser
keeps what it has not yet seen a line end for. Two event flavours carry text:
- Workers AI: `{"response": "Hel", "p": "<padding>"}`, a final `{"response": "", "usage": {...}}`;
- OpenAI-compatible `chat.completion.chunk`: `{"choices": [{"delta": {"content": "Hel"}}]}` (+ `usage`).
`p` is padding against token-length side channels and is never text.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

DONE = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data.strip() == DONE


@dataclass(frozen=True)
class StreamDelta:
    """What one event adds: text (may be empty), cumulative usage when the event carries it."""

    text: str = ""
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    error: str | None = None


class SSEParser:
    """Feed bytes as they arrive; get complete events back."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._first = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")  # the spec allows one leading BOM
            self._first = False
        self._buffer += text
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream. A last event without its blank line is still delivered (lenient)."""
        self._buffer += self._decoder.decode(b"", final=True)
        events = self._drain(final=True)
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = ""
        if self._data:
            events.append(self._dispatch())
        return events

    def _drain(self, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        buf = self._buffer
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == n and not final:
                    break  # a lone \r at the end may be the first half of \r\n: wait for more
                end, nxt = cr, cr + 2 if cr + 1 < n and buf[cr + 1] == "\n" else cr + 1
            else:
                end, nxt = lf, lf + 1
            self._line(buf[start:end], events)
            start = nxt
        self._buffer = buf[start:]
        return events

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
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._data = []
        self._event = None
        return event


def parse_all(payload: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(payload) + parser.close()


def delta_from_event(event: SSEEvent) -> StreamDelta:
    """Text and usage from either event flavour. Unknown JSON gives an empty delta, not an error."""
    try:
        payload: Any = json.loads(event.data)
    except ValueError:
        return StreamDelta(error=f"Unreadable stream event: {event.data[:80]!r}")
    if not isinstance(payload, dict):
        return StreamDelta()
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
    errs = payload.get("errors") or payload.get("error")  # an empty list is no error
    if errs:
        message = errs[0].get("message") if isinstance(errs, list) and errs and isinstance(errs[0], dict) else errs
        return StreamDelta(error=str(message))
    text = payload.get("response")
    finish: str | None = None
    if text is None:
        choices = payload.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if text is None:
                text = choice.get("text")
            finish = choice.get("finish_reason")
    if text is not None and not isinstance(text, str):
        text = json.dumps(text)
    return StreamDelta(text=text or "", usage=usage, finish_reason=finish)

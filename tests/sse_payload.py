"""Feeding a recorded SSE payload to the real parser, whole or cut at given offsets (shared by tests)."""

from __future__ import annotations

from cfai.sse import SSEEvent, SSEParser


def feed_in_pieces(payload: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(payload[last:cut])
        last = cut
    events += parser.feed(payload[last:])
    return events + parser.close()


def parse_all(payload: bytes) -> list[SSEEvent]:
    """The whole payload in one feed, then close."""
    return feed_in_pieces(payload, [])

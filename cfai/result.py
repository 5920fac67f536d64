"""What one call gives back: a `Result` (body, timings, cache status, headers, error) and its `Timings`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cfai import shapes
from cfai.config import Route
from cfai.errors import CloudflareError
from cfai.token_timing import TokenEvent


@dataclass
class Timings:
    """What was timed: from just before the request is written to the socket (or the connection is opened,
    when it is new) to the parsed response headers (ttfb_ms), to the first streamed text (first_token_ms,
    streams only), and to the last body byte (total_ms). `started_at` is wall-clock epoch seconds."""

    started_at: float = 0.0
    ttfb_ms: float | None = None
    total_ms: float | None = None
    first_token_ms: float | None = None  # the first token of any kind (reasoning or answer)
    first_reasoning_ms: float | None = None  # reasoning models: the first reasoning token
    first_answer_ms: float | None = None  # the first answer token (after the reasoning, if any)
    connection_reused: bool | None = None
    connect_ms: float | None = None


@dataclass
class Result:
    """One call's outcome. `output` is the envelope's `result` (or the whole body on OpenAI routes)."""

    ok: bool
    status: int  # HTTP status, 0 when no response arrived
    url: str  # never contains the token
    route: Route
    model: str = ""
    output: Any = None
    usage: dict[str, int] | None = None
    cache_status: str | None = None  # cf-aig-cache-status: HIT | MISS (gateway only)
    log_id: str | None = None  # cf-aig-log-id
    backend: str | None = None  # emulator only: which backend answered (cf-emulator-backend header)
    timings: Timings = field(default_factory=Timings)
    headers: dict[str, str] = field(default_factory=dict)  # response headers, lower-cased
    bytes_received: int = 0
    error: CloudflareError | None = None
    interrupted: bool = False  # a stream that ended without [DONE]
    request_body: dict[str, Any] | None = None  # what we sent (for "view request"); never holds the token
    request_headers: dict[str, str] = field(default_factory=dict)  # Authorization masked
    raw_body: str = ""  # response body text (for streams: the concatenated text); partial after a deadline
    result_info: dict[str, Any] | None = None  # pagination of list endpoints
    attempts: int = 1
    streamed: bool = False
    reasoning_first: bool = False  # the model reasons inline before answering (catalogue), see cfai.shapes
    token_events: list[TokenEvent] = field(default_factory=list)  # streams: when each chunk arrived
    streamed_answer: shapes.Answer | None = None  # streams: what the stream said, summed up
    notices: list[str] = field(default_factory=list)  # what was sent differently from what was asked (said, not refused)

    @property
    def answer(self) -> shapes.Answer:
        """Text, reasoning, usage and finish reason, read from whichever shape the model answered in."""
        if self.streamed_answer is not None:
            return self.streamed_answer
        max_tokens = model_input(self.request_body).get("max_tokens")
        return shapes.read_answer(self.output, reasoning_first=self.reasoning_first,
                                  max_tokens=max_tokens if isinstance(max_tokens, int) else None)

    @property
    def text(self) -> str:
        """The generated answer (reasoning excluded), from any response shape; other outputs as text."""
        answer = self.answer
        return answer.text if answer.shape != "unknown" else extract_text(self.output)

    @property
    def reasoning(self) -> str:
        return self.answer.reasoning

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens per second of generation: after the first token for streams (decode speed),
        over the whole call otherwise; None for a cache hit."""
        tokens = (self.usage or {}).get("completion_tokens")
        total = self.timings.total_ms
        if not tokens or not total or self.cache_status == "HIT":
            return None  # a cache hit replays tokens generated earlier: no generation speed to speak of
        first = self.timings.first_token_ms
        if first is not None and tokens > 1 and total > first:
            return (tokens - 1) / ((total - first) / 1000)
        return tokens / (total / 1000)

    def raise_for_error(self) -> Result:
        if self.error is not None:
            raise self.error
        return self


def model_input(body: dict[str, Any] | None) -> dict[str, Any]:
    """The model's input from a request body: the body itself, or its `input` on the unified route's
    `{"model", "input"}` envelope."""
    if isinstance(body, dict) and isinstance(body.get("model"), str) and isinstance(body.get("input"), dict):
        return body["input"]
    return body or {}


def extract_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if not isinstance(output, dict):
        return ""
    if "response" in output and output["response"] is not None:
        response = output["response"]
        return response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        if isinstance(choice.get("text"), str):
            return choice["text"]
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def usage_from(output: Any, body: Any) -> dict[str, Any] | None:
    """The usage of a whole answer in OpenAI chat's vocabulary (see `shapes.usage_dict`), any shape."""
    for source in (output, body):
        if isinstance(source, dict) and isinstance(source.get("usage"), dict):
            return shapes.usage_dict(shapes.read_usage(source["usage"]))
    return None

"""Token-level timing of one streamed request: TTFT, inter-token latency, TPOT, output tokens/s.

Pure functions over when the tokens of one response arrived. The definitions follow the tools engineers
already use for LLM endpoints, and say where those tools differ:
- vLLM `bench serve` (vllm/benchmarks/serve.py): TTFT is the first chunk's arrival; TPOT is
  `(latency - ttft) / (output_len - 1)` per request, counted only when output_len > 1; ITL is the list of
  gaps between consecutive streamed chunks, pooled over requests for its percentiles.
- NVIDIA GenAI-Perf / AIPerf (docs.nvidia.com/nim/benchmarking/llm/metrics): TTFT ignores leading
  responses with no content; their per-request "inter token latency" is (request latency - TTFT) /
  (output tokens - 1), which is vLLM's TPOT; output token throughput is output tokens / duration.
- Ray LLMPerf (token_benchmark_ray.py, openai_chat_completions_client.py): ttft_s, end_to_end_latency_s,
  inter_token_latency_s (the gaps between chunks) and request_output_throughput_token_per_s =
  output tokens / end-to-end latency.

Our choices, one line each in METRIC_DEFINITIONS (the page shows them):
- Only events that carry text count as tokens (an empty event, padding or the final usage event is none).
- A chunk that carries k tokens is k arrivals spread evenly over the gap since the previous chunk, so the
  ITL list has tokens - 1 entries summing to last token - first token (one chunk per token, as Workers AI
  streams, gives exactly vLLM's chunk gaps). `chunk_gaps` keeps the raw per-chunk gaps as well.
- The output token count is the server's `usage.completion_tokens` when it reports one (vLLM uses the
  server's count too), else the tokens counted in the stream.

Times are milliseconds from the request's start (the same origin as `Timings.ttfb_ms`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

DeltaKind = Literal["answer", "reasoning"]
DELTA_KINDS: tuple[str, ...] = ("answer", "reasoning")

METRIC_DEFINITIONS: dict[str, str] = {
    "ttft_ms": "Time to first token: from sending the request to the first streamed token (reasoning or answer).",
    "first_reasoning_ms": "Time to first reasoning token: to the first token of a reasoning model's thinking.",
    "first_answer_ms": "Time to first answer token: to the first token of the answer itself (after any reasoning).",
    "itl_p50_ms": "Inter-token latency p50: the median gap between consecutive tokens of one response.",
    "itl_p90_ms": "Inter-token latency p90: 90% of one response's token gaps were at most this.",
    "itl_p99_ms": "Inter-token latency p99: the slowest 1% of one response's token gaps start here.",
    "tpot_ms": "Time per output token: (total - TTFT) / (output tokens - 1), the decode time per token after the first.",
    "output_tps": "Output tokens per second: output tokens / total request time (LLMPerf's per-request throughput).",
    "stream_tokens": "Output tokens: the server's completion_tokens when reported, else tokens counted in the stream.",
}

# The fields a Record would carry for a streamed request, with their dtypes (for RECORD_DTYPES and the
# store's schema): every one is None / NA for a request that was not streamed or produced no token.
TOKEN_TIMING_FIELDS: dict[str, str] = {
    "first_reasoning_ms": "float64",
    "first_answer_ms": "float64",
    "itl_p50_ms": "float64",
    "itl_p90_ms": "float64",
    "itl_p99_ms": "float64",
    "tpot_ms": "float64",
    "output_tps": "float64",
    "stream_tokens": "Int64",
}
ITL_PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class TokenEvent:
    """One streamed chunk: when it arrived (ms from the request's start), what it carried, how many tokens."""

    at_ms: float
    kind: DeltaKind = "answer"
    tokens: int = 1


@dataclass(frozen=True)
class TokenTiming:
    """Per-request token timing; None where a metric is undefined (see METRIC_DEFINITIONS)."""

    ttft_ms: float | None
    first_reasoning_ms: float | None
    first_answer_ms: float | None
    itl_p50_ms: float | None
    itl_p90_ms: float | None
    itl_p99_ms: float | None
    tpot_ms: float | None
    output_tps: float | None
    stream_tokens: int
    itl_ms: tuple[float, ...] = ()  # every token gap, for pooled distributions
    chunk_gaps_ms: tuple[float, ...] = ()  # gaps between consecutive text-carrying chunks (vLLM's ITL)

    def record_fields(self) -> dict[str, Any]:
        """The TOKEN_TIMING_FIELDS, JSON-ready (what a Record stores); `ttft_ms` is the Record's ttfb_ms."""
        data = asdict(self)
        return {name: data[name] for name in TOKEN_TIMING_FIELDS}


def ttft(arrivals_ms: Sequence[float]) -> float | None:
    """Time to first token: the first arrival; None with no tokens."""
    return float(min(arrivals_ms)) if len(arrivals_ms) else None


def inter_token_latencies(events: Sequence[TokenEvent]) -> list[float]:
    """Gaps between consecutive tokens (tokens - 1 of them). A chunk of k tokens after a gap g gives k gaps
    of g / k; the first chunk's extra tokens arrived with the first token, so they add gaps of 0."""
    gaps: list[float] = []
    previous: float | None = None
    for event in _text_events(events):
        if previous is None:
            gaps.extend([0.0] * (event.tokens - 1))
        else:
            gap = max(0.0, event.at_ms - previous)
            gaps.extend([gap / event.tokens] * event.tokens)
        previous = event.at_ms
    return gaps


def chunk_gaps(events: Sequence[TokenEvent]) -> list[float]:
    """Gaps between consecutive text-carrying chunks, whatever each carried (vLLM's `itl` list)."""
    times = [e.at_ms for e in _text_events(events)]
    return [max(0.0, b - a) for a, b in zip(times, times[1:], strict=False)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default, as cfai.stats); None when empty."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def tpot(total_ms: float | None, ttft_ms: float | None, tokens: int) -> float | None:
    """(total - TTFT) / (tokens - 1); None for fewer than 2 tokens or missing times (vLLM skips those)."""
    if total_ms is None or ttft_ms is None or tokens < 2:
        return None
    return max(0.0, total_ms - ttft_ms) / (tokens - 1)


def output_tokens_per_second(tokens: int, total_ms: float | None) -> float | None:
    """Output tokens / total request time in seconds; None without tokens or a positive duration."""
    if not tokens or total_ms is None or not total_ms > 0:
        return None
    return tokens / (total_ms / 1000.0)


def token_timing(
    events: Iterable[TokenEvent | tuple[float, str, int]],
    total_ms: float | None,
    usage_tokens: int | None = None,
) -> TokenTiming:
    """All the per-request metrics from a stream's events, its total time, and the server's token count.

    `events` are TokenEvents or (at_ms, kind, tokens) tuples, in any order; events with 0 tokens (usage,
    padding, keep-alive) count for nothing. The ITL list comes from the arrivals; TPOT and tokens/s use
    `usage_tokens` when the server reported it, because a chunk may hold several tokens we cannot see.
    """
    parsed = sorted((_event(e) for e in events), key=lambda e: e.at_ms)
    text = _text_events(parsed)
    counted = sum(e.tokens for e in text)
    tokens = int(usage_tokens) if usage_tokens is not None and usage_tokens >= 0 else counted
    first = text[0].at_ms if text else None
    reasoning = next((e.at_ms for e in text if e.kind == "reasoning"), None)
    answer = next((e.at_ms for e in text if e.kind == "answer"), None)
    itl = inter_token_latencies(parsed)
    p = {q: percentile(itl, q) for q in ITL_PERCENTILES}
    return TokenTiming(
        ttft_ms=first,
        first_reasoning_ms=reasoning,
        first_answer_ms=answer,
        itl_p50_ms=p[50],
        itl_p90_ms=p[90],
        itl_p99_ms=p[99],
        tpot_ms=tpot(total_ms, first, tokens) if text else None,
        output_tps=output_tokens_per_second(tokens, total_ms) if text else None,
        stream_tokens=tokens,
        itl_ms=tuple(itl),
        chunk_gaps_ms=tuple(chunk_gaps(parsed)),
    )


def empty_token_fields() -> dict[str, Any]:
    """The TOKEN_TIMING_FIELDS of a request that was not streamed: all None."""
    return dict.fromkeys(TOKEN_TIMING_FIELDS)


def delta_kinds(payload: Mapping[str, Any]) -> list[tuple[DeltaKind, str]]:
    """(kind, text) pairs one parsed stream event carries: reasoning text (`reasoning_content` or
    `reasoning` in an OpenAI-style delta, or at the top level of a Workers AI event) and answer text
    (`response`, or `choices[0].delta.content` / `choices[0].text`). Empty strings are left out."""
    out: list[tuple[DeltaKind, str]] = []
    sources: list[Mapping[str, Any]] = [payload]
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        delta = choices[0].get("delta")
        sources.append(delta if isinstance(delta, Mapping) else {})
        if isinstance(choices[0].get("text"), str):
            sources.append({"content": choices[0]["text"]})
    for source in sources:
        for key in ("reasoning_content", "reasoning"):
            value = source.get(key)
            if isinstance(value, str) and value:
                out.append(("reasoning", value))
        for key in ("response", "content"):
            value = source.get(key)
            if isinstance(value, str) and value:
                out.append(("answer", value))
    return out


class EventRecorder:
    """Collects TokenEvents while a stream is read: call `mark(text, kind)` as each text chunk arrives.

    The clock and origin are the caller's (pass the stream's start on the same clock, e.g. the transport's
    `now()` and the Stream's wire start), so `at_ms` shares the origin of the Result's timings.
    """

    def __init__(self, start: float, clock: Any) -> None:
        self._start = start
        self._clock = clock
        self.events: list[TokenEvent] = []

    def mark(self, text: str, kind: DeltaKind = "answer", tokens: int = 1) -> None:
        if text:
            self.events.append(TokenEvent((self._clock() - self._start) * 1000.0, kind, tokens))

    def timing(self, total_ms: float | None, usage_tokens: int | None = None) -> TokenTiming:
        return token_timing(self.events, total_ms, usage_tokens)


def read_stream(stream: Any) -> tuple[Any, TokenTiming]:
    """Drain a `cfai.client.Stream`, stamping each text chunk as it is handed out; returns (Result,
    TokenTiming). Until the Stream records its own arrivals (see the lab report), this stamps in the
    consumer, on the transport's clock and from the Stream's wire start, so it shares the Result's origin;
    the stamp lands a few microseconds after the Stream's own `first_token_ms`."""
    from cfai.transport import now

    recorder = EventRecorder(getattr(stream, "_start", now()), now)
    try:
        for text in stream:
            recorder.mark(text)
    finally:
        stream.close()
    result = stream.result
    usage = (result.usage or {}).get("completion_tokens")
    return result, recorder.timing(result.timings.total_ms, usage if isinstance(usage, int) else None)


def _event(item: TokenEvent | tuple[float, str, int]) -> TokenEvent:
    if isinstance(item, TokenEvent):
        event = item
    else:
        at_ms, kind, tokens = item
        event = TokenEvent(float(at_ms), kind, int(tokens))  # type: ignore[arg-type]
    if event.kind not in DELTA_KINDS:
        raise ValueError(f"Unknown delta kind {event.kind!r}: use one of {', '.join(DELTA_KINDS)}.")
    if event.tokens < 0 or not math.isfinite(event.at_ms):
        raise ValueError(f"A token event needs a finite time and a token count >= 0, not {event!r}.")
    return event


def _text_events(events: Sequence[TokenEvent]) -> list[TokenEvent]:
    return [e for e in events if e.tokens > 0]

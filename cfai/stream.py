"""A streamed answer: text chunks as server-sent events arrive, then the final `Result`.

The stream obeys the call's limits: it ends at the total deadline (a stream that never sends [DONE], or
sends only keep-alive comments, cannot run forever), at `max_body_bytes` in total, and at the SSE parser's
line cap. Each of those ends in a typed error on `result.error`, with the text received so far kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from cfai import shapes
from cfai.errors import (
    CloudflareError,
    DeadlineExceededError,
    ResponseTooLargeError,
    StreamInterruptedError,
    scrub_secrets,
)
from cfai.result import Result, model_input
from cfai.sse import SSEEvent, SSELimitError, SSEParser
from cfai.token_timing import TokenEvent
from cfai.transport import CallLimits, now


class Stream:
    """Iterate for the answer's text chunks as they arrive (works with st.write_stream), or `deltas()` for
    reasoning and answer apart; afterwards `.result` holds the final Result: the answer in `raw_body` and
    `.text`, `.reasoning`, usage, timings (first token, first reasoning and answer token), `token_events`
    (when each chunk arrived, for token-level timing) and `interrupted`. Any response shape
    (cfai.shapes reads them)."""

    def __init__(self, result: Result, response: requests.Response | None, start: float,
                 limits: CallLimits | None = None, secrets: tuple[str, ...] = ()):
        self.result = result
        self._response = response
        self._start = start
        self._limits = limits
        self._secrets = secrets
        self._consumed = response is None

    def __iter__(self) -> Iterator[str]:
        for delta in self.deltas():
            if delta.kind == "answer" and delta.text:
                yield delta.text

    def deltas(self) -> Iterator[shapes.Delta]:
        """Reasoning and answer text as they arrive, each marked with its kind."""
        if self._consumed:
            if self.result.ok and not self.result.streamed:  # a JSON answer to a stream request: whole
                answer = self.result.answer
                if answer.reasoning:
                    yield shapes.Delta("reasoning", answer.reasoning)
                if self.result.text:
                    yield shapes.Delta("answer", self.result.text)
            return
        self._consumed = True
        result, response = self.result, self._response
        assert response is not None
        parser = SSEParser()
        reader = shapes.StreamReader(reasoning_first=result.reasoning_first,
                                     max_tokens=_int(model_input(result.request_body).get("max_tokens")))
        parts: list[str] = []
        timings = result.timings
        done = False
        received = 0
        limits = self._limits

        def read(events: list[SSEEvent]) -> Iterator[shapes.Delta]:
            nonlocal done
            for event in events:
                if event.is_done:
                    done = True
                for delta in reader.feed(event.data, event.event):
                    if delta.usage is not None:
                        result.usage = shapes.usage_dict(delta.usage)
                    if delta.error:
                        result.error = self._error(StreamInterruptedError,
                                                   f"The stream reported an error: {delta.error}")
                    if not delta.text:
                        continue
                    at_ms = (now() - self._start) * 1000
                    if timings.first_token_ms is None:
                        timings.first_token_ms = at_ms
                    if delta.kind == "reasoning" and timings.first_reasoning_ms is None:
                        timings.first_reasoning_ms = at_ms
                    if delta.kind == "answer":
                        if timings.first_answer_ms is None:
                            timings.first_answer_ms = at_ms
                        parts.append(delta.text)
                    result.token_events.append(TokenEvent(at_ms, delta.kind, 1))
                    yield delta
                done = done or reader.done

        try:
            for chunk in response.iter_content(chunk_size=None):
                received += len(chunk)
                if limits is not None and received > limits.max_body_bytes:
                    result.error = self._error(ResponseTooLargeError, f"The stream passed {_mib(limits.max_body_bytes)} "
                                               f"after {len(parts)} chunks; reading stopped there, the text so far is kept.")
                    break
                yield from read(parser.feed(chunk))
                if limits is not None and limits.expired:  # bytes keep coming (keep-alives): still the end
                    if not done:
                        result.error = self._deadline_error(len(parts))
                    break
            else:
                yield from read(parser.close())  # a last event with no blank line after it still counts
        except SSELimitError as exc:
            result.error = self._error(ResponseTooLargeError, f"{exc} Reading stopped; the text so far is kept.")
        except (requests.RequestException, OSError) as exc:
            if limits is not None and limits.expired:
                result.error = self._deadline_error(len(parts))
            else:
                result.error = self._error(StreamInterruptedError,
                                           f"The stream was cut after {len(parts)} chunks ({type(exc).__name__}).")
        finally:
            result.timings.total_ms = (now() - self._start) * 1000
            result.bytes_received = received
            result.raw_body = "".join(parts)
            answer = reader.answer()
            result.streamed_answer = answer
            result.output = {"response": result.raw_body, "usage": result.usage}
            if answer.reasoning:
                result.output["reasoning"] = answer.reasoning
            if not done:
                result.interrupted = True
                if result.error is None:
                    result.error = self._error(StreamInterruptedError,
                                               "The stream ended before [DONE]; the text so far is kept.")
            result.ok = result.error is None
            response.close()

    def _error(self, cls: type[CloudflareError], message: str) -> CloudflareError:
        return cls(scrub_secrets(message, self._secrets), status=self.result.status, url=self.result.url)

    def _deadline_error(self, chunks: int) -> CloudflareError:
        seconds = self._limits.deadline_s if self._limits else 0
        return self._error(DeadlineExceededError, f"The stream did not finish within the {seconds:g} s deadline; "
                           f"the text of its {chunks} chunks so far is kept.")

    def drain(self) -> Result:
        """Consume the whole stream (for callers that only want the final result)."""
        for _ in self:
            pass
        return self.result

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"

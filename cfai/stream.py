"""A streamed answer: text chunks as server-sent events arrive, then the final `Result`.

The stream obeys the call's limits: it ends at the total deadline (a stream that never sends [DONE], or
sends only keep-alive comments, cannot run forever), at `max_body_bytes` in total, and at the SSE parser's
line cap. Each of those ends in a typed error on `result.error`, with the text received so far kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from cfai.errors import (
    CloudflareError,
    DeadlineExceededError,
    ResponseTooLargeError,
    StreamInterruptedError,
    scrub_secrets,
)
from cfai.result import Result
from cfai.sse import SSELimitError, SSEParser, delta_from_event
from cfai.transport import CallLimits, now


class Stream:
    """Iterate for text chunks as they arrive (works with st.write_stream); afterwards `.result` holds the
    final Result: full text in `raw_body` and `.text`, usage, timings (first_token_ms), `interrupted`."""

    def __init__(self, result: Result, response: requests.Response | None, start: float,
                 limits: CallLimits | None = None, secrets: tuple[str, ...] = ()):
        self.result = result
        self._response = response
        self._start = start
        self._limits = limits
        self._secrets = secrets
        self._consumed = response is None

    def __iter__(self) -> Iterator[str]:
        if self._consumed:
            if self.result.ok and self.result.text and not self.result.streamed:
                yield self.result.text  # a JSON answer to a stream request: show it whole
            return
        self._consumed = True
        result, response = self.result, self._response
        assert response is not None
        parser = SSEParser()
        parts: list[str] = []
        done = False
        received = 0
        limits = self._limits
        try:
            for chunk in response.iter_content(chunk_size=None):
                received += len(chunk)
                if limits is not None and received > limits.max_body_bytes:
                    result.error = self._error(ResponseTooLargeError, f"The stream passed {_mib(limits.max_body_bytes)} "
                                               f"after {len(parts)} chunks; reading stopped there, the text so far is kept.")
                    break
                for event in parser.feed(chunk):
                    if event.is_done:
                        done = True
                        continue
                    delta = delta_from_event(event)
                    if delta.usage:
                        result.usage = delta.usage
                    if delta.error:
                        result.error = self._error(StreamInterruptedError,
                                                   f"The stream reported an error: {delta.error}")
                    if delta.text:
                        if result.timings.first_token_ms is None:
                            result.timings.first_token_ms = (now() - self._start) * 1000
                        parts.append(delta.text)
                        yield delta.text
                if limits is not None and limits.expired:  # bytes keep coming (keep-alives): still the end
                    if not done:
                        result.error = self._deadline_error(len(parts))
                    break
            else:
                for event in parser.close():
                    done = done or event.is_done
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
            result.output = {"response": result.raw_body, "usage": result.usage}
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


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"

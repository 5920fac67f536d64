"""The one place that knows every text-generation response shape (docs/PROTOCOL.md section 2).

Shapes, recognised from the body, never from the model name:
- classic Workers AI `{response, tool_calls, usage}`, DeepSeek-R1-distill's reasoning inline before `</think>`;
- OpenAI chat completion (`choices[0].message.content` / `reasoning_content` / `reasoning`, detailed usage);
- OpenAI Responses (`output[]` with `reasoning` and `message` items, `input_tokens` usage).
Whole bodies go through `read_answer`; streams through a `StreamReader`, one per stream, fed each SSE event's
payload in order. Both accept the v4 envelope (`{"result": ...}`) or the bare object.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

THINK_CLOSE = "</think>"
THINK_OPEN = "<think>"

Shape = Literal["classic", "chat_completion", "responses", "unknown"]
DeltaKind = Literal["reasoning", "answer"]

STOP = "stop"
LENGTH = "length"
STOPPED_WHILE_REASONING = "stopped at max_tokens while reasoning"


@dataclass(frozen=True)
class Usage:
    """Token counts in one vocabulary; None where the body did not say. Reasoning is part of output."""

    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True)
class Answer:
    """What a whole response (or a finished stream) says."""

    text: str
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None  # "stop", "length", "tool_calls", ... (OpenAI's words)
    shape: Shape = "unknown"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stopped_while_reasoning(self) -> bool:
        """The token budget ran out before any answer: the model was still reasoning."""
        if self.finish_reason != LENGTH or self.text.strip():
            return False
        return bool(self.reasoning) or bool(self.usage and self.usage.reasoning_tokens)

    @property
    def finish_note(self) -> str | None:
        """A sentence for the user when the answer is cut; None when it ended normally."""
        if self.stopped_while_reasoning:
            return STOPPED_WHILE_REASONING
        if self.finish_reason == LENGTH:
            return "stopped at max_tokens"
        return None


@dataclass(frozen=True)
class Delta:
    """What one stream event adds. `kind` says which part `text` belongs to; usage is cumulative."""

    kind: DeltaKind = "answer"
    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    error: str | None = None


# --- small readers --------------------------------------------------------------------------------------
# No answer has more tokens than this; a count beyond it (or negative, NaN, 1e400 = infinity) is junk from
# the server and is dropped rather than priced, summed or stored (SQLite integers end at 2**63).
MAX_TOKEN_COUNT = 10**12


def _int(value: Any) -> int | None:
    """A token count, or None for anything that is not one (wrong type, negative, not finite, absurd)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (math.isfinite(value) and 0 <= value <= MAX_TOKEN_COUNT):
        return None
    return int(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _finish(value: Any) -> str | None:
    """A finish reason is a word; anything else a server sends there is no finish reason."""
    return value if isinstance(value, str) and value else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list (tool calls): other items are junk the pages could not show."""
    return [item for item in _list(value) if isinstance(item, dict)]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # JSON mode: the response is an object


def unwrap(body: Any) -> Any:
    """The model output: the envelope's `result`, or the body itself when it has no envelope."""
    if isinstance(body, dict) and "result" in body and ("success" in body or "errors" in body):
        return body["result"]
    return body


def read_usage(raw: Any) -> Usage | None:
    """Usage in any of the three vocabularies (chat/classic `prompt_tokens`, Responses `input_tokens`)."""
    if not isinstance(raw, dict):
        return None
    if "input_tokens" in raw or "output_tokens" in raw:
        return Usage(
            input_tokens=_int(raw.get("input_tokens")),
            cached_input_tokens=_int(_dict(raw.get("input_tokens_details")).get("cached_tokens")),
            output_tokens=_int(raw.get("output_tokens")),
            reasoning_tokens=_int(_dict(raw.get("output_tokens_details")).get("reasoning_tokens")),
            total_tokens=_int(raw.get("total_tokens")),
        )
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        cached_input_tokens=_int(_dict(raw.get("prompt_tokens_details")).get("cached_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        reasoning_tokens=_int(_dict(raw.get("completion_tokens_details")).get("reasoning_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
    )


def usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    """`usage` in one vocabulary, OpenAI chat's (`prompt_tokens`, `completion_tokens`, and the cached and
    reasoning details), whatever shape it came in: what `Result.usage` holds."""
    if usage is None:
        return None
    out: dict[str, Any] = {}
    for key, value in (("prompt_tokens", usage.input_tokens), ("completion_tokens", usage.output_tokens),
                       ("total_tokens", usage.total_tokens)):
        if value is not None:
            out[key] = value
    if usage.cached_input_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def split_inline_reasoning(text: str, *, reasoning_first: bool = False, cut: bool = False) -> tuple[str, str]:
    """(reasoning, answer) of a classic text that may carry `...</think>answer` (R1-distill, QwQ).

    Text before the last `</think>` is reasoning (a leading `<think>` stripped). With no `</think>`, a text
    that opens with `<think>`, or one from a model known to reason first (`reasoning_first`) that was cut
    at max_tokens (`cut`), is all reasoning; otherwise it is all answer.
    """
    stripped = text.lstrip()
    if THINK_CLOSE in text:
        head, _, tail = text.rpartition(THINK_CLOSE)
        return head.strip().removeprefix(THINK_OPEN).strip(), tail.strip()
    if stripped.startswith(THINK_OPEN) or (reasoning_first and cut):
        return stripped.removeprefix(THINK_OPEN).strip(), ""
    return "", text


def detect_shape(output: Any) -> Shape:
    if not isinstance(output, dict):
        return "unknown"
    if isinstance(output.get("output"), list) or output.get("object") == "response":
        return "responses"
    if isinstance(output.get("choices"), list):
        return "chat_completion"
    if "response" in output:
        return "classic"
    return "unknown"


def _length_from_budget(usage: Usage | None, max_tokens: int | None) -> str | None:
    """Classic answers carry no finish reason: output that filled the budget was cut."""
    if max_tokens and usage and usage.output_tokens is not None and usage.output_tokens >= max_tokens:
        return LENGTH
    return STOP if usage else None


def _choice_reasoning(part: dict[str, Any]) -> str:
    return _as_text(part.get("reasoning_content") or part.get("reasoning"))


def _read_chat(output: dict[str, Any]) -> Answer:
    choices = _list(output.get("choices"))
    choice = _dict(choices[0]) if choices else {}
    message = _dict(choice.get("message"))
    text = _as_text(message.get("content")) if message else _as_text(choice.get("text"))
    tool_calls = _dicts(message.get("tool_calls"))
    return Answer(
        text=text,
        reasoning=_choice_reasoning(message),
        usage=read_usage(output.get("usage")),
        finish_reason=_finish(choice.get("finish_reason")),
        shape="chat_completion",
        tool_calls=tool_calls,
    )


def _read_responses(output: dict[str, Any]) -> Answer:
    texts: list[str] = []
    reasoning: list[str] = []
    summaries: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for item in _list(output.get("output")):
        item = _dict(item)
        kind = item.get("type")
        if kind == "message":
            texts += [_as_text(c.get("text")) for c in _list(item.get("content")) if _dict(c).get("type") == "output_text"]
        elif kind == "reasoning":
            reasoning += [_as_text(c.get("text")) for c in _list(item.get("content"))
                          if _dict(c).get("type") == "reasoning_text"]
            summaries += [_as_text(c.get("text")) for c in _list(item.get("summary"))
                          if _dict(c).get("type") == "summary_text"]
        elif kind == "function_call":
            tool_calls.append(item)
    status = output.get("status")
    finish: str | None = STOP if status == "completed" else None
    if status == "incomplete":
        reason = _dict(output.get("incomplete_details")).get("reason")
        finish = LENGTH if reason in (None, "max_output_tokens") else str(reason)
    if tool_calls and finish == STOP:
        finish = "tool_calls"
    return Answer(
        text="".join(texts),
        reasoning="".join(reasoning) or "\n".join(summaries),
        usage=read_usage(output.get("usage")),
        finish_reason=finish,
        shape="responses",
        tool_calls=tool_calls,
    )


def _read_classic(output: dict[str, Any], reasoning_first: bool, max_tokens: int | None) -> Answer:
    usage = read_usage(output.get("usage"))
    finish = _length_from_budget(usage, max_tokens)
    raw = output.get("response")
    tool_calls = _dicts(output.get("tool_calls"))
    if not isinstance(raw, str):  # JSON mode: an object, never reasoning
        return Answer(_as_text(raw), "", usage, finish, "classic", tool_calls)
    reasoning, text = split_inline_reasoning(raw, reasoning_first=reasoning_first, cut=finish == LENGTH)
    return Answer(text, reasoning, usage, finish, "classic", tool_calls)


def read_answer(body: Any, *, reasoning_first: bool = False, max_tokens: int | None = None) -> Answer:
    """Text, reasoning, usage and finish reason of a whole text-generation body, in any shape.

    `reasoning_first`: the catalogue says the model reasons inline before answering (classic shape), so a
    text cut at `max_tokens` with no `</think>` is reasoning. `max_tokens`: the budget that was sent, used
    to infer a cut in the classic shape (which has no finish reason).
    """
    output = unwrap(body)
    shape = detect_shape(output)
    if shape == "responses":
        return _read_responses(output)
    if shape == "chat_completion":
        return _read_chat(output)
    if shape == "classic":
        return _read_classic(output, reasoning_first, max_tokens)
    if isinstance(output, str):
        reasoning, text = split_inline_reasoning(output)
        return Answer(text, reasoning)
    return Answer("", shape="unknown")


# --- streams --------------------------------------------------------------------------------------------
def _event_error(payload: dict[str, Any]) -> str | None:
    errs = payload.get("errors") or payload.get("error")  # an empty list is no error
    if not errs:
        return None
    if isinstance(errs, list) and errs and isinstance(errs[0], dict):
        return str(errs[0].get("message") or errs[0])
    if isinstance(errs, dict):
        return str(errs.get("message") or errs)
    return str(errs)


class StreamReader:
    """Reads one stream, event by event, in any of the three shapes; `answer()` sums it up.

    `feed(data, event=None)` takes one SSE event's data (a JSON string, an already-parsed object, or
    "[DONE]") and its `event:` name, and returns the deltas it carries (zero, one or two). Classic streams of
    a model that reasons inline (`reasoning_first`) count text as reasoning until `</think>`; without the
    flag, text is answer unless the stream opens with `<think>`.
    """

    def __init__(self, *, reasoning_first: bool = False, max_tokens: int | None = None) -> None:
        self.reasoning_first = reasoning_first
        self.max_tokens = max_tokens
        self.shape: Shape = "unknown"
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._classic_raw: list[str] = []
        self._in_think: bool | None = None  # None: no text seen yet
        self._pending = ""  # classic text held back while it may be the start of </think>
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.done = False
        self._final: Answer | None = None  # Responses: the completed response object

    # -- feeding --
    def feed(self, data: str | dict[str, Any], event: str | None = None) -> list[Delta]:
        if isinstance(data, str):
            if data.strip() == "[DONE]":
                self.done = True
                return self._flush_pending()
            try:
                payload: Any = json.loads(data)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                self.error = f"Unreadable stream event: {data[:80]!r}"
                return [Delta(error=self.error)]
        else:
            payload = data
        if not isinstance(payload, dict):
            return []
        error = _event_error(payload)
        if error:
            self.error = error
            return [Delta(error=error)]
        kind = payload.get("type") if isinstance(payload.get("type"), str) else event
        if isinstance(kind, str) and kind.startswith("response."):
            return self._feed_responses(kind, payload)
        if isinstance(payload.get("choices"), list) or payload.get("object") == "chat.completion.chunk":
            return self._feed_chat(payload)
        return self._feed_classic(payload)

    def _usage_from(self, payload: dict[str, Any]) -> Usage | None:
        usage = read_usage(payload.get("usage"))
        if usage is not None:
            self.usage = usage
        return usage

    def _feed_chat(self, payload: dict[str, Any]) -> list[Delta]:
        self.shape = "chat_completion"
        usage = self._usage_from(payload)
        choices = _list(payload.get("choices"))
        choice = _dict(choices[0]) if choices else {}
        delta = _dict(choice.get("delta"))
        finish = _finish(choice.get("finish_reason"))
        if finish:
            self.finish_reason = finish
        out: list[Delta] = []
        reasoning = _choice_reasoning(delta)
        if reasoning:
            self._reasoning.append(reasoning)
            out.append(Delta("reasoning", reasoning))
        text = _as_text(delta.get("content")) if delta else _as_text(choice.get("text"))
        if text or finish or usage is not None:
            if text:
                self._text.append(text)
            out.append(Delta("answer", text, usage, finish))
        return out

    def _feed_responses(self, kind: str, payload: dict[str, Any]) -> list[Delta]:
        self.shape = "responses"
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            text = _as_text(payload.get("delta"))
            self._reasoning.append(text)
            return [Delta("reasoning", text)] if text else []
        if kind == "response.output_text.delta":
            text = _as_text(payload.get("delta"))
            self._text.append(text)
            return [Delta("answer", text)] if text else []
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.done = True  # a Responses stream ends with this event; it sends no [DONE]
            response = _dict(payload.get("response"))
            final = _read_responses(response)
            self._final = final
            self.usage = final.usage or self.usage
            self.finish_reason = final.finish_reason
            if kind == "response.failed":
                error = response.get("error")
                message = error if isinstance(error, str) else _dict(error).get("message")
                self.error = str(message or "the response failed")
                return [Delta(error=self.error)]
            return [Delta("answer", "", self.usage, self.finish_reason)]
        if kind == "error":
            self.error = str(payload.get("message") or "stream error")
            return [Delta(error=self.error)]
        return []

    def _feed_classic(self, payload: dict[str, Any]) -> list[Delta]:
        if self.shape == "unknown":
            self.shape = "classic"
        usage = self._usage_from(payload)
        text = _as_text(payload.get("response"))
        out = self._classic_text(text) if text else []
        if usage is not None:
            out.append(Delta("answer", "", usage))
        return out

    def _classic_text(self, text: str) -> list[Delta]:
        self._classic_raw.append(text)
        if self._in_think is None:  # the first text decides: an opening <think> means reasoning first
            buffered = (self._pending + text).lstrip()
            if len(buffered) < len(THINK_OPEN) and THINK_OPEN.startswith(buffered):
                self._pending += text
                return []
            opens = buffered.startswith(THINK_OPEN)
            self._in_think = opens or self.reasoning_first
            text, self._pending = self._pending + text, ""
            if opens:
                text = text.lstrip().removeprefix(THINK_OPEN)
        if not self._in_think:
            self._text.append(text)
            return [Delta("answer", text)]
        buffered = self._pending + text
        if THINK_CLOSE in buffered:
            head, _, tail = buffered.partition(THINK_CLOSE)
            self._pending = ""
            self._in_think = False
            out = [Delta("reasoning", head)] if head else []
            self._reasoning.append(head)
            tail = tail.lstrip() if not self._text else tail
            if tail:
                self._text.append(tail)
                out.append(Delta("answer", tail))
            return out
        keep = _partial_suffix(buffered, THINK_CLOSE)  # hold back a possible "</thi" split across events
        emit, self._pending = buffered[: len(buffered) - keep], buffered[len(buffered) - keep :]
        if not emit:
            return []
        self._reasoning.append(emit)
        return [Delta("reasoning", emit)]

    def _flush_pending(self) -> list[Delta]:
        if not self._pending:
            return []
        text, self._pending = self._pending, ""
        if self._in_think:
            self._reasoning.append(text)
            return [Delta("reasoning", text)]
        self._text.append(text)
        return [Delta("answer", text)]

    # -- the sum --
    def answer(self) -> Answer:
        """Everything read so far as one Answer (call after the stream ended)."""
        self._flush_pending()
        if self.shape == "responses" and self._final is not None:
            final = self._final
            text = final.text or "".join(self._text)
            reasoning = final.reasoning or "".join(self._reasoning)
            return Answer(text, reasoning, final.usage or self.usage, final.finish_reason, "responses", final.tool_calls)
        if self.shape == "classic":
            finish = _length_from_budget(self.usage, self.max_tokens)
            raw = "".join(self._classic_raw)
            reasoning, text = split_inline_reasoning(raw, reasoning_first=self.reasoning_first, cut=finish == LENGTH)
            if self.reasoning_first and THINK_CLOSE not in raw and finish != LENGTH:
                reasoning, text = "", raw.strip()  # ended normally without </think>: no reasoning after all
            return Answer(text, reasoning, self.usage, finish, "classic")
        return Answer("".join(self._text), "".join(self._reasoning), self.usage, self.finish_reason, self.shape)


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0

"""The playground's conversation: turns, the metrics under each answer, and recording a client result.

UI-free. A `Conversation` lives in the Streamlit session; the page builds a body with
`cfai.chat.request.build_request_body`, sends it with `cfai.client`, and records the outcome with
`record_result`. Nothing here ever sees the API token, so exports cannot contain it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cfai import shapes
from cfai.chat.params import body_params, is_json_mode
from cfai.client import Result

Role = Literal["system", "user", "assistant"]


@dataclass
class TurnMetrics:
    """What the page shows under an answer; built from a client Result, kept in the session and exports."""

    status: int
    route: str
    model: str
    streamed: bool = False
    cache_status: str | None = None
    ttfb_ms: float | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_second: float | None = None
    backend: str | None = None
    log_id: str | None = None
    started_at: float | None = None
    first_reasoning_ms: float | None = None  # reasoning models, streamed: the first reasoning token
    first_answer_ms: float | None = None  # streamed: the first answer token (after the reasoning)
    reasoning_tokens: int | None = None  # part of completion_tokens
    cached_tokens: int | None = None  # prompt_tokens_details.cached_tokens (prompt caching)
    session_affinity: bool = False  # x-session-affinity was sent
    usage: dict[str, Any] | None = None  # the normalised usage, for the cost line
    reasoned: bool = False  # the answer came with reasoning (its tokens are part of completion_tokens)

    @property
    def time_to_first_token_ms(self) -> float | None:
        """First streamed token, or the response headers when the answer came in one piece."""
        return self.first_token_ms if self.first_token_ms is not None else self.ttfb_ms

    @classmethod
    def from_result(cls, result: Result, streamed: bool = False) -> TurnMetrics:
        usage = result.usage or {}
        details = _as_dict(usage.get("completion_tokens_details"))
        prompt_details = _as_dict(usage.get("prompt_tokens_details"))
        timings = result.timings
        try:
            tps = result.tokens_per_second
        except Exception:  # noqa: BLE001 - a metric must never break rendering the answer
            tps = None
        return cls(
            status=result.status,
            route=result.route,
            model=result.model,
            streamed=streamed,
            cache_status=result.cache_status,
            ttfb_ms=timings.ttfb_ms,
            first_token_ms=timings.first_token_ms,
            total_ms=timings.total_ms,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            tokens_per_second=tps,
            backend=result.backend,
            log_id=result.log_id,
            started_at=timings.started_at or None,
            first_reasoning_ms=timings.first_reasoning_ms,
            first_answer_ms=timings.first_answer_ms,
            reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
            cached_tokens=prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None,
            session_affinity=any(k.lower() == "x-session-affinity" for k in (result.request_headers or {})),
            usage=dict(usage) or None,
        )

    @property
    def generated_tokens_include_reasoning(self) -> bool:
        """Tokens/s counts every generated token, the reasoning too: worth saying when there was some."""
        return self.reasoned or bool(self.reasoning_tokens) or self.first_reasoning_ms is not None


@dataclass
class Turn:
    """One message. A user turn whose answer failed is `failed` and carries the error; an assistant turn cut
    mid-stream keeps its partial text, is `interrupted` and carries the error too."""

    role: Role
    content: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)
    failed: bool = False
    interrupted: bool = False
    error: dict[str, Any] | None = None  # CloudflareError.to_dict()
    model: str | None = None
    route: str | None = None
    params: dict[str, Any] | None = None  # body fields other than messages/prompt
    gateway: dict[str, Any] | None = None  # gateway options used, as a dict
    metrics: TurnMetrics | None = None
    parsed: Any = None  # JSON mode: the parsed object
    reasoning: str = ""  # what a reasoning model thought before answering (shown collapsed)
    finish_note: str | None = None  # "stopped at max_tokens (while reasoning)", or None when it ended normally
    budget_note: str | None = None  # more output tokens reported than max_tokens allowed (said, not hidden)
    price: dict[str, Any] | None = None  # the price the cost line used (ModelPrice.to_dict())
    again: Turn | None = None  # "send this turn again": the same request's second answer, kept beside it
    request_body: dict[str, Any] | None = None
    request_headers: dict[str, str] | None = None  # as sent, authorization masked by the client
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    url: str | None = None

    # Too bulky for an export (the answer is already in `content`), or headers nobody needs there.
    _NOT_EXPORTED = ("request_headers", "response_headers", "response_body")

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in self._NOT_EXPORTED}
        # Leave out unset fields so exports stay readable (identity checks: 0 is a real value).
        return {k: v for k, v in data.items() if (v is not None and v is not False) or k in ("role", "content")}


@dataclass
class Conversation:
    system_prompt: str = ""
    turns: list[Turn] = field(default_factory=list)

    # --- editing --------------------------------------------------------------------------------------
    def add_user(self, content: str) -> Turn:
        turn = Turn("user", content)
        self.turns.append(turn)
        return turn

    def clear(self) -> None:
        self.turns.clear()

    def last_user(self) -> Turn | None:
        return next((t for t in reversed(self.turns) if t.role == "user"), None)

    def can_regenerate(self) -> bool:
        return bool(self.turns) and self.turns[-1].role == "assistant"

    def can_retry(self) -> bool:
        return bool(self.turns) and self.turns[-1].role == "user" and self.turns[-1].failed

    def prepare_resend(self) -> Turn | None:
        """Drop the last answer (regenerate) or the failure mark (retry); return the user turn to send again."""
        if self.turns and self.turns[-1].role == "assistant":
            self.turns.pop()
        last = self.turns[-1] if self.turns else None
        if last is None or last.role != "user":
            return None
        last.failed, last.error = False, None
        return last

    # --- requests -------------------------------------------------------------------------------------
    def messages(self) -> list[dict[str, str]]:
        """The history to send: system prompt, then every turn except failed prompts (never answered).
        An interrupted answer is kept: it is what the user saw and may refer to."""
        out: list[dict[str, str]] = []
        if self.system_prompt.strip():
            out.append({"role": "system", "content": self.system_prompt.strip()})
        # An answer cut while reasoning has no text: sending it as an empty message would be refused.
        out.extend({"role": t.role, "content": t.content} for t in self.turns
                   if not t.failed and (t.role == "user" or t.content))
        return out

    def last_answer(self) -> Turn | None:
        """The latest answer, when it is the last turn (what "send this turn again" repeats)."""
        return self.turns[-1] if self.turns and self.turns[-1].role == "assistant" else None

    # --- export ---------------------------------------------------------------------------------------
    def to_dict(self, *, mode: str | None = None) -> dict[str, Any]:
        return {
            "app": "Workers AI Lab",
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "connection_mode": mode,
            "system_prompt": self.system_prompt,
            "turns": [t.to_dict() for t in self.turns],
        }

    def to_json(self, *, mode: str | None = None) -> str:
        from cfai.chat.export import conversation_json  # the export module builds on this one

        return conversation_json(self, mode=mode)

    def to_markdown(self, *, mode: str | None = None) -> str:
        from cfai.chat.export import conversation_markdown

        return conversation_markdown(self, mode=mode)


EXAMPLE_PROMPT = "Hello! In two sentences, what can you do?"


def resend_conversation(conversation: Conversation) -> tuple[Conversation, bool]:
    """The history the next regenerate/retry would send: up to the last prompt, failure marks ignored.
    When there is no prompt yet, an example one (the bool says so). For "view as code"."""
    turns = list(conversation.turns)
    if turns and turns[-1].role == "assistant":
        turns.pop()
    turns = [replace(t, failed=False, error=None) if t is turns[-1] else t for t in turns] if turns else []
    preview = Conversation(conversation.system_prompt, turns)
    if preview.last_user() is None:
        preview.add_user(EXAMPLE_PROMPT)
        return preview, True
    return preview, False


def parse_json_answer(output: Any, text: str) -> tuple[Any, str | None]:
    """JSON mode: `result.response` is already an object; older models send it as a string. Returns the
    object and None, or (None, why it is not JSON)."""
    response = output.get("response") if isinstance(output, dict) else None
    if isinstance(response, dict | list):
        return response, None
    candidate = response if isinstance(response, str) else text
    try:
        return json.loads(candidate), None
    except (TypeError, ValueError) as e:
        return None, f"The answer is not valid JSON ({e})."


def record_result(
    conversation: Conversation,
    user_turn: Turn,
    result: Result,
    *,
    body: Mapping[str, Any],
    gateway: Mapping[str, Any] | None = None,
    streamed: bool = False,
    max_tokens: int | None = None,
    price: Mapping[str, Any] | None = None,
    again_of: Turn | None = None,
) -> Turn | None:
    """Add the answer (or the failure) for `user_turn` to the conversation. Returns the assistant turn, or
    None when nothing was answered (then `user_turn` is marked failed, keeping the prompt for a retry).

    `max_tokens` is the budget in force (sent, or the model's default when not sent) so a classic answer,
    which carries no finish reason, can still say it stopped there. `again_of`: the answer this one repeats
    ("send this turn again"); the new answer is kept on it instead of being added to the history."""
    metrics = TurnMetrics.from_result(result, streamed=streamed)
    error = result.error.to_dict() if result.error is not None else None
    answer = read_with_budget(result, max_tokens)
    text = answer.text if answer is not None else _answer_text(result)
    if answer is not None and not answer.text and result.interrupted and not answer.reasoning:
        text = _answer_text(result)
    if error is not None and not text and not (answer and answer.reasoning):
        if again_of is not None:
            again_of.again = Turn("assistant", "", error=error, model=result.model, route=result.route,
                                  metrics=metrics, params=body_params(body))
            _attach_exchange(again_of.again, result, body)
            return again_of.again
        user_turn.failed, user_turn.error = True, error
        user_turn.model, user_turn.route = result.model, result.route
        user_turn.metrics = metrics
        _attach_exchange(user_turn, result, body)
        return None
    metrics.reasoned = bool(answer and answer.reasoning)
    parsed = None
    if is_json_mode(body):
        parsed, problem = parse_json_answer(result.output, text)
        if parsed is not None:
            text = json.dumps(parsed, indent=2, ensure_ascii=False)
        elif problem and error is None:
            error = {"kind": "not_json", "status": result.status, "code": None, "message": problem,
                     "hint": "Try json_schema with a schema, or a lower temperature.", "retry_after": None}
    turn = Turn(
        "assistant",
        text,
        interrupted=bool(result.interrupted),
        error=error,
        model=result.model,
        route=result.route,
        params=body_params(body),
        gateway=dict(gateway) if gateway else None,
        metrics=metrics,
        parsed=parsed,
        reasoning=answer.reasoning if answer is not None else "",
        finish_note=answer.finish_note if answer is not None and error is None else None,
        budget_note=_budget_note(metrics.completion_tokens, body, max_tokens),
        price=dict(price) if price else None,
    )
    _attach_exchange(turn, result, body)
    if again_of is not None:
        again_of.again = turn
    else:
        conversation.turns.append(turn)
    return turn


def read_with_budget(result: Result, max_tokens: int | None) -> shapes.Answer | None:
    """The answer, read knowing the budget in force. Only what was changed is sent, so a default
    `max_tokens` is not in the body and a classic answer (no finish reason) could not tell it was cut; a
    reasoning model's text cut before `</think>` would then pass for an answer. None for non-text outputs."""
    try:
        answer = result.answer
    except Exception:  # noqa: BLE001 - an odd body must not lose the raw text we already have
        return None
    if answer.shape == "unknown" and not result.streamed:
        return None
    sent = (result.request_body or {}).get("max_tokens")
    if answer.shape != "classic" or not max_tokens or isinstance(sent, int):
        return answer
    if answer.reasoning and answer.text:  # split at </think> already: only the finish reason was unknown
        raw = f"{answer.reasoning}{shapes.THINK_CLOSE}{answer.text}"
    else:
        raw = answer.reasoning or answer.text
    usage = {"completion_tokens": answer.usage.output_tokens} if answer.usage and answer.usage.output_tokens else None
    reread = shapes.read_answer({"response": raw, "usage": usage}, reasoning_first=result.reasoning_first,
                                max_tokens=max_tokens)
    return shapes.Answer(reread.text, reread.reasoning, answer.usage, reread.finish_reason, "classic",
                         answer.tool_calls)


def _budget_note(completion_tokens: int | None, body: Mapping[str, Any], max_tokens: int | None) -> str | None:
    """Say so when the answer reports more output tokens than its budget allowed (the emulator's JSON mode
    does not cut an object at max_tokens: a cut object would not parse)."""
    budget = body.get("max_tokens", body.get("max_output_tokens", max_tokens))
    if not isinstance(budget, int) or not isinstance(completion_tokens, int) or completion_tokens <= budget:
        return None
    why = (" JSON mode: the answer was not cut at the budget, since a cut object would not be valid JSON."
           if is_json_mode(body) else "")
    return f"{completion_tokens} tokens out is more than max_tokens {budget}: the server did not stop at the budget.{why}"


def _attach_exchange(turn: Turn, result: Result, body: Mapping[str, Any]) -> None:
    """The raw request and response, for the details expander (the client masks authorization)."""
    turn.request_body = dict(body)
    turn.request_headers = dict(getattr(result, "request_headers", {}) or {})
    turn.response_headers = dict(result.headers or {})
    turn.response_body = result.raw_body
    turn.url = result.url


def _answer_text(result: Result) -> str:
    try:
        text = result.text
    except Exception:  # noqa: BLE001 - an odd body must not lose the raw text we already have
        text = ""
    if not text and result.interrupted:
        text = result.raw_body or ""  # a cut stream: raw_body holds the text received so far
    return text or ""


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

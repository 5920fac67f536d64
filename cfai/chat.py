"""The playground's conversation: turns, per-answer metrics, request bodies, parameter checks, exports.

UI-free. A `Conversation` lives in the Streamlit session; the page turns widget values into a request body
with `build_request_body`, sends it with `cfai.client`, and records the outcome with `record_result`.
Nothing here ever sees the API token, so exports cannot contain it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
InputMode = Literal["messages", "prompt"]

DEFAULT_MODEL = "@cf/meta/llama-3.1-8b-instruct"


# --- parameters: defaults and ranges from PROTOCOL.md ---------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    name: str
    label: str
    kind: Literal["int", "float"]
    minimum: float
    maximum: float
    default: float | None  # None: not sent unless the user sets it (the model's own default applies)
    step: float
    help: str


PARAM_SPECS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec("max_tokens", "Max tokens", "int", 1, 131072, 256, 16,
                  "Most tokens to generate (Workers AI default 256)."),
        ParamSpec("temperature", "Temperature", "float", 0.0, 5.0, 0.6, 0.1,
                  "Randomness: 0 is nearly deterministic, higher is more varied (default 0.6, range 0-5)."),
        ParamSpec("top_p", "Top-p", "float", 0.0, 2.0, None, 0.05,
                  "Nucleus sampling: keep the smallest set of tokens whose probability adds up to p (0-2)."),
        ParamSpec("top_k", "Top-k", "int", 1, 50, None, 1,
                  "Sample only from the k most likely tokens (1-50)."),
        ParamSpec("seed", "Seed", "int", 1, 9_999_999_999, None, 1,
                  "Same seed and parameters give the same answer (1-9999999999)."),
        ParamSpec("repetition_penalty", "Repetition penalty", "float", 0.0, 2.0, None, 0.05,
                  "Penalise tokens that already appeared (0-2)."),
        ParamSpec("frequency_penalty", "Frequency penalty", "float", 0.0, 2.0, None, 0.05,
                  "Penalise tokens by how often they appeared (0-2)."),
        ParamSpec("presence_penalty", "Presence penalty", "float", 0.0, 2.0, None, 0.05,
                  "Penalise tokens that appeared at all, encouraging new topics (0-2)."),
    )
}

DEFAULT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer"],
}


def default_params() -> dict[str, Any]:
    """The parameters sent when the user changes nothing: only those with a documented default."""
    return {name: spec.default for name, spec in PARAM_SPECS.items() if spec.default is not None}


def validate_params(params: Mapping[str, Any]) -> list[str]:
    """Plain-language problems with `params` (empty when fine). Unknown keys other than the body fields
    this module builds are reported, so a typo does not silently go to the model."""
    problems: list[str] = []
    for name, value in params.items():
        if value is None:
            continue
        spec = PARAM_SPECS.get(name)
        if spec is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                problems.append(f"{spec.label} must be a number.")
                continue
            if spec.kind == "int" and int(value) != value:
                problems.append(f"{spec.label} must be a whole number.")
            if not spec.minimum <= value <= spec.maximum:
                problems.append(f"{spec.label} must be between {spec.minimum:g} and {spec.maximum:g} (got {value:g}).")
        elif name == "response_format":
            problems.extend(_response_format_problems(value))
        elif name not in ("raw", "stream", "lora"):
            problems.append(f"Unknown parameter {name!r}.")
    return problems


def _response_format_problems(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["response_format must be an object."]
    kind = value.get("type")
    if kind == "json_object":
        return []
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, Mapping) or not schema:
            return ["The JSON schema must be a non-empty JSON object, e.g. {\"type\": \"object\", ...}."]
        return []
    return [f"response_format type must be json_object or json_schema (got {kind!r})."]


def parse_json_schema(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The schema typed in the editor, or (None, a message saying where it is wrong)."""
    try:
        schema = json.loads(text)
    except ValueError as e:
        return None, f"The JSON schema is not valid JSON: {e}"
    if not isinstance(schema, dict) or not schema:
        return None, "The JSON schema must be a non-empty JSON object."
    return schema, None


def response_format(kind: Literal["off", "json_object", "json_schema"], schema: Any = None) -> dict | None:
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": schema}
    return None


def is_json_mode(params: Mapping[str, Any]) -> bool:
    return bool(params.get("response_format"))


# --- conversation ---------------------------------------------------------------------------------------
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

    @property
    def time_to_first_token_ms(self) -> float | None:
        """First streamed token, or the response headers when the answer came in one piece."""
        return self.first_token_ms if self.first_token_ms is not None else self.ttfb_ms

    @classmethod
    def from_result(cls, result: Any, streamed: bool = False) -> TurnMetrics:
        usage = result.usage or {}
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
        )


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
        out.extend({"role": t.role, "content": t.content} for t in self.turns if not t.failed)
        return out

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
        return json.dumps(self.to_dict(mode=mode), indent=2, ensure_ascii=False, default=str)

    def to_markdown(self, *, mode: str | None = None) -> str:
        lines = ["# Workers AI Lab conversation", ""]
        lines.append(f"Exported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                     + (f", {mode} mode" if mode else "") + ".")
        lines.append("")
        if self.system_prompt.strip():
            lines += ["## System", "", self.system_prompt.strip(), ""]
        for turn in self.turns:
            title = "User" if turn.role == "user" else "Assistant"
            if turn.role == "assistant" and turn.model:
                title += f" ({turn.model}, {turn.route or 'direct'})"
            lines += [f"## {title}", "", turn.content or "_(no answer)_", ""]
            if turn.interrupted:
                lines += ["_Interrupted: the stream stopped before the answer finished._", ""]
            if turn.error:
                lines += [f"> **Error:** {error_summary(turn.error)}", ""]
            if turn.params:
                lines += ["Parameters: " + ", ".join(f"`{k}={json.dumps(v)}`" for k, v in turn.params.items()), ""]
            if turn.metrics:
                lines += ["Metrics: " + metrics_summary(turn.metrics), ""]
        return "\n".join(lines).rstrip() + "\n"


# --- request bodies -------------------------------------------------------------------------------------
def build_request_body(
    conversation: Conversation,
    params: Mapping[str, Any],
    *,
    input_mode: InputMode = "messages",
    raw: bool = False,
    stream: bool = False,
) -> dict[str, Any]:
    """The `ai/run` body for the next answer. Prompt mode sends only the latest user message as `prompt`
    (with `raw` to skip the chat template); JSON mode never streams (the API refuses the combination)."""
    body: dict[str, Any]
    if input_mode == "prompt":
        last = conversation.last_user()
        body = {"prompt": last.content if last else ""}
        if raw:
            body["raw"] = True
    else:
        body = {"messages": conversation.messages()}
    body.update({k: v for k, v in params.items() if v is not None})
    if stream and not is_json_mode(params):
        body["stream"] = True
    return body


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


def pair_to_json(a: Conversation, b: Conversation, *, mode: str | None = None) -> str:
    """Side-by-side export: both conversations, each with its own models, routes and metrics."""
    return json.dumps({"a": a.to_dict(mode=mode), "b": b.to_dict(mode=mode)}, indent=2, ensure_ascii=False,
                      default=str)


def pair_to_markdown(a: Conversation, b: Conversation, *, mode: str | None = None) -> str:
    def demote(md: str) -> str:  # nest each conversation's headings under its A/B heading
        return "\n".join("#" + line if line.startswith("#") else line for line in md.splitlines())

    return (f"# Side by side\n\n{demote(a.to_markdown(mode=mode))}\n\n"
            f"{demote(b.to_markdown(mode=mode))}\n").replace(
        "## Workers AI Lab conversation", "## A", 1).replace("## Workers AI Lab conversation", "## B", 1)


def body_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a body, without the conversation itself (for labels and exports)."""
    return {k: v for k, v in body.items() if k not in ("messages", "prompt")}


# --- outcomes -------------------------------------------------------------------------------------------
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
    result: Any,
    *,
    body: Mapping[str, Any],
    gateway: Mapping[str, Any] | None = None,
    streamed: bool = False,
) -> Turn | None:
    """Add the answer (or the failure) for `user_turn` to the conversation. Returns the assistant turn, or
    None when nothing was answered (then `user_turn` is marked failed, keeping the prompt for a retry)."""
    metrics = TurnMetrics.from_result(result, streamed=streamed)
    error = result.error.to_dict() if result.error is not None else None
    text = _answer_text(result)
    if error is not None and not text:
        user_turn.failed, user_turn.error = True, error
        user_turn.model, user_turn.route = result.model, result.route
        user_turn.metrics = metrics
        _attach_exchange(user_turn, result, body)
        return None
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
    )
    _attach_exchange(turn, result, body)
    conversation.turns.append(turn)
    return turn


def _attach_exchange(turn: Turn, result: Any, body: Mapping[str, Any]) -> None:
    """The raw request and response, for the details expander (the client masks authorization)."""
    turn.request_body = dict(body)
    turn.request_headers = dict(getattr(result, "request_headers", {}) or {})
    turn.response_headers = dict(result.headers or {})
    turn.response_body = result.raw_body
    turn.url = result.url


def _answer_text(result: Any) -> str:
    try:
        text = result.text
    except Exception:  # noqa: BLE001 - an odd body must not lose the raw text we already have
        text = ""
    if not text and result.interrupted:
        text = result.raw_body or ""  # a cut stream: raw_body holds the text received so far
    return text or ""


# --- summaries shared by the page and the exports -------------------------------------------------------
def format_ms(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def first_label(m: TurnMetrics) -> str:
    """A stream's first token, or a whole answer's first byte: both are honest time-to-first numbers."""
    return "first token" if m.first_token_ms is not None else "first byte"


def metrics_summary(m: TurnMetrics) -> str:
    parts = [
        f"{first_label(m)} {format_ms(m.time_to_first_token_ms)}",
        f"total {format_ms(m.total_ms)}",
        f"tokens {m.prompt_tokens if m.prompt_tokens is not None else '–'} in"
        f" / {m.completion_tokens if m.completion_tokens is not None else '–'} out",
        f"{m.tokens_per_second:.1f} tok/s" if m.tokens_per_second else "– tok/s",
        f"route {m.route}",
        f"cache {m.cache_status or '–'}",
        f"HTTP {m.status or '–'}",
    ]
    return " · ".join(parts)


def error_summary(error: Mapping[str, Any]) -> str:
    text = str(error.get("message") or "Request failed")
    details = [f"HTTP {error['status']}" if error.get("status") else "", f"code {error['code']}" if error.get("code") else ""]
    details = [d for d in details if d]
    if details:
        text += f" ({', '.join(details)})"
    return text


def error_advice(error: Mapping[str, Any]) -> str:
    """What to do next, including how long to wait after a 429."""
    hint = str(error.get("hint") or "")
    retry_after = error.get("retry_after")
    if retry_after:
        hint = (hint + " " if hint else "") + f"Retry after {float(retry_after):g} s."
    return hint

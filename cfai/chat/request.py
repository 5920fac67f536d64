"""The request the playground sends for the next answer: its body in the model's request shape, and every
rule about it in one place (`ChatRequest.problems`), so the page only shows them.

Request shapes (docs/PROTOCOL.md 2.1-2.3), one place that builds them:
- classic / chat completion: `messages` (or `prompt`) with the sampling parameters at the top level;
- Responses (gpt-oss on `ai/run`): `input` (the messages), `reasoning: {effort}`, the budget as
  `max_output_tokens` (the Responses API's name; the schema's Responses branch lists no budget of its own).
Which shape a model takes comes from its schema (a branch that requires `input`) or, failing that, the
catalogue's `response_shape` (`request_shape`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cfai.chat.conversation import Conversation
from cfai.chat.params import is_json_mode, validate_params
from cfai.client import GatewayOptions, Route
from cfai.config import ConfigError, Connection, check_model_id
from cfai.model_params import ParamSpec, check_values

InputMode = Literal["messages", "prompt"]
RequestShape = Literal["classic", "chat_completion", "responses"]
RESPONSES_BRANCH = "Responses"
NO_GATEWAY_PROBLEM = "The gateway route needs a Gateway ID (set it in the connection panel)."
SESSION_AFFINITY_HEADER = "x-session-affinity"  # prompt caching (docs/PROTOCOL.md 4.2)
# Keys of a body that are the conversation or the request's plumbing, not parameters the user tuned.
BODY_PLUMBING = ("messages", "prompt", "input", "raw", "stream", "response_format", "options")


def request_shape(schema: Mapping[str, Any] | None, catalogue_shape: str | None = None) -> RequestShape:
    """How to ask this model: "responses" when its input schema has a branch that requires `input` (the
    Responses branch of gpt-oss), the catalogue's shape when the schema says nothing, else "classic"."""
    input_schema = (schema or {}).get("input", schema or {})
    branches = [b for combo in ("oneOf", "anyOf") for b in (input_schema.get(combo) or []) if isinstance(b, dict)]
    if any("input" in (b.get("required") or ()) for b in branches):
        return "responses"
    if isinstance(input_schema.get("properties"), dict) and "chat_template_kwargs" in input_schema["properties"]:
        return "chat_completion"
    if catalogue_shape in ("classic", "chat_completion", "responses"):
        return catalogue_shape  # type: ignore[return-value]
    return "classic"


def request_branch(shape: RequestShape, input_mode: InputMode) -> str:
    """The schema branch a request goes out as ("Responses", "Prompt" or "Messages")."""
    if shape == "responses" and input_mode == "messages":
        return RESPONSES_BRANCH
    return "Prompt" if input_mode == "prompt" else "Messages"


def build_request_body(
    conversation: Conversation,
    params: Mapping[str, Any],
    *,
    input_mode: InputMode = "messages",
    raw: bool = False,
    stream: bool = False,
    shape: RequestShape = "classic",
) -> dict[str, Any]:
    """The body for the next answer. Prompt mode sends only the latest user message as `prompt` (with `raw`
    to skip the chat template); a Responses-shaped model in messages mode gets `input` and `reasoning`; JSON
    mode never streams (the API refuses the combination). `params` is already nested (`reasoning.effort`
    as `{"reasoning": {"effort": ...}}`, see `cfai.model_params.changed_params`)."""
    body: dict[str, Any]
    fields = {k: v for k, v in params.items() if v is not None}
    if input_mode == "prompt":
        last = conversation.last_user()
        body = {"prompt": last.content if last else ""}
        if raw:
            body["raw"] = True
    elif shape == "responses":
        body = {"input": conversation.messages()}
        if "max_tokens" in fields:
            fields["max_output_tokens"] = fields.pop("max_tokens")
    else:
        body = {"messages": conversation.messages()}
    body.update(fields)
    if stream and not is_json_mode(params):
        body["stream"] = True
    return body


def flatten(params: Mapping[str, Any]) -> dict[str, Any]:
    """`{"reasoning": {"effort": "high"}}` as `{"reasoning.effort": "high"}`, for checking against specs."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and key not in BODY_PLUMBING:
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class ChatRequest:
    """The settings of the next answer, as the page's widgets give them. `specs` are the model's parameters
    from its schema (empty: the schema could not be read, the generic checks of `cfai.chat.params` apply)."""

    model: str
    params: Mapping[str, Any]
    route: Route = "direct"
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    input_mode: InputMode = "messages"
    raw: bool = False
    stream: bool = False
    shape: RequestShape = "classic"
    specs: tuple[ParamSpec, ...] = ()
    session_affinity: str | None = None  # x-session-affinity: route to the instance holding the prompt cache
    reject_if_busy: bool = False  # options.rejectIfBusy (docs/PROTOCOL.md 4.3)

    @property
    def json_mode(self) -> bool:
        return is_json_mode(self.params)

    @property
    def streams(self) -> bool:
        """JSON mode answers in one piece: the API refuses to stream it, so the stream setting is void."""
        return self.stream and not self.json_mode

    def problems(self, connection: Connection | None = None) -> list[str]:
        """Everything that stops this request from being sent, in words a user can act on."""
        if self.specs:
            tuned = {k: v for k, v in flatten(self.params).items() if k not in BODY_PLUMBING}
            out = list(check_values(list(self.specs), tuned).values())
            out += validate_params({k: v for k, v in self.params.items() if k == "response_format"})
        else:
            out = validate_params(self.params)
        if self.session_affinity is not None and not self.session_affinity.strip():
            out.append("The session affinity key is empty: type one, or turn session affinity off.")
        if self.route == "gateway":
            out += self.gateway.validate()
            if connection is not None and not connection.gateway_id:
                out.append(NO_GATEWAY_PROBLEM)
        try:
            check_model_id(self.model)
        except ConfigError as e:
            out.append(str(e))
        return out

    def headers(self) -> dict[str, str]:
        """Headers this request adds (prompt caching's session affinity)."""
        key = (self.session_affinity or "").strip()
        return {SESSION_AFFINITY_HEADER: key} if key else {}

    def body(self, conversation: Conversation, *, stream: bool | None = None) -> dict[str, Any]:
        """The body for `conversation`'s next answer (`stream` overrides the setting, e.g. side by side)."""
        body = build_request_body(conversation, self.params, input_mode=self.input_mode, raw=self.raw,
                                  stream=self.streams if stream is None else stream, shape=self.shape)
        if self.reject_if_busy:
            body["options"] = {"rejectIfBusy": True}
        return body

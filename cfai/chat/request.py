"""The request the playground sends for the next answer: its `ai/run` body, and every rule about it in one
place (`ChatRequest.problems`), so the page only shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cfai.chat.conversation import Conversation
from cfai.chat.params import is_json_mode, validate_params
from cfai.client import GatewayOptions, Route
from cfai.config import ConfigError, Connection, check_model_id

InputMode = Literal["messages", "prompt"]
NO_GATEWAY_PROBLEM = "The gateway route needs a Gateway ID (set it in the connection panel)."


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


@dataclass(frozen=True)
class ChatRequest:
    """The settings of the next answer, as the page's widgets give them."""

    model: str
    params: Mapping[str, Any]
    route: Route = "direct"
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    input_mode: InputMode = "messages"
    raw: bool = False
    stream: bool = False

    @property
    def json_mode(self) -> bool:
        return is_json_mode(self.params)

    @property
    def streams(self) -> bool:
        """JSON mode answers in one piece: the API refuses to stream it, so the stream setting is void."""
        return self.stream and not self.json_mode

    def problems(self, connection: Connection | None = None) -> list[str]:
        """Everything that stops this request from being sent, in words a user can act on."""
        out = validate_params(self.params)
        if self.route == "gateway":
            out += self.gateway.validate()
            if connection is not None and not connection.gateway_id:
                out.append(NO_GATEWAY_PROBLEM)
        try:
            check_model_id(self.model)
        except ConfigError as e:
            out.append(str(e))
        return out

    def body(self, conversation: Conversation, *, stream: bool | None = None) -> dict[str, Any]:
        """The body for `conversation`'s next answer (`stream` overrides the setting, e.g. side by side)."""
        return build_request_body(conversation, self.params, input_mode=self.input_mode, raw=self.raw,
                                  stream=self.streams if stream is None else stream)

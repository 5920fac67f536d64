"""The playground's chat, one job per module:

- `params`: text-generation parameters (defaults, ranges, checks, JSON mode), also used by Compare;
- `conversation`: turns, per-answer metrics, recording a client result;
- `request`: the next request's body and its rules (`ChatRequest.problems`);
- `export`: JSON and Markdown exports and the one-line summaries.

The names below are re-exported so callers can write `from cfai.chat import Conversation`.
"""

from cfai.chat.conversation import (
    EXAMPLE_PROMPT,
    Conversation,
    Role,
    Turn,
    TurnMetrics,
    parse_json_answer,
    read_with_budget,
    record_result,
    resend_conversation,
)
from cfai.chat.export import (
    cached_summary,
    chat_hint,
    conversation_json,
    conversation_markdown,
    error_advice,
    error_summary,
    first_label,
    metrics_summary,
    pair_to_json,
    pair_to_markdown,
    rate_label,
)
from cfai.chat.params import (
    DEFAULT_JSON_SCHEMA,
    PARAM_SPECS,
    ParamSpec,
    body_params,
    default_params,
    generic_specs,
    is_json_mode,
    parse_json_schema,
    response_format,
    validate_params,
)
from cfai.chat.request import (
    SESSION_AFFINITY_HEADER,
    ChatRequest,
    InputMode,
    RequestShape,
    build_request_body,
    request_branch,
    request_shape,
)

__all__ = [
    "DEFAULT_JSON_SCHEMA", "EXAMPLE_PROMPT", "PARAM_SPECS", "SESSION_AFFINITY_HEADER", "ChatRequest",
    "Conversation", "InputMode", "RequestShape", "cached_summary", "chat_hint", "generic_specs", "rate_label",
    "read_with_budget", "request_branch", "request_shape",
    "ParamSpec", "Role", "Turn", "TurnMetrics", "body_params", "build_request_body", "conversation_json",
    "conversation_markdown", "default_params", "error_advice", "error_summary", "first_label",
    "is_json_mode", "metrics_summary", "pair_to_json", "pair_to_markdown", "parse_json_answer",
    "parse_json_schema", "record_result", "resend_conversation", "response_format", "validate_params",
]

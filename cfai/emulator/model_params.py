"""Each text-generation model's input schema (params, ranges, defaults) and its enforcement.

Values from docs/PROTOCOL.md section 2.4 (the per-model JSON files of cloudflare-docs). `input_schema(spec)`
is what `/ai/models/schema` serves; `check_params(spec, body)` refuses what that schema refuses, with the
documented 400 / 5006 "Bad input" (the route turns the InputError into it). Outer type checks and the
prompt/messages rules stay in `textgen.parse_gen_request`.
"""

from __future__ import annotations

from typing import Any

from cfai.emulator.envelope import InputError
from cfai.emulator.models_catalog import TEXT_GENERATION, ModelSpec, model_schema

SEED_MAX = 9999999999
EFFORTS = ("low", "medium", "high")
SUMMARIES = ("auto", "concise", "detailed")


def _num(lo: float, hi: float, default: float | None = None, kind: str = "number") -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "minimum": lo, "maximum": hi}
    if default is not None:
        out["default"] = default
    return out


_MAX_TOKENS = {"type": "integer", "default": 256, "minimum": 1, "description": "The maximum number of tokens to generate."}
_LLAMA31: dict[str, dict[str, Any]] = {
    "max_tokens": _MAX_TOKENS,
    "temperature": _num(0, 5, 0.6),
    "top_p": _num(0, 2),
    "top_k": _num(1, 50, kind="integer"),
    "seed": _num(1, SEED_MAX, kind="integer"),
    "repetition_penalty": _num(0, 2),
    "frequency_penalty": _num(0, 2),
    "presence_penalty": _num(0, 2),
}
_LLAMA33 = {**_LLAMA31, "top_p": _num(0.001, 1), "frequency_penalty": _num(-2, 2), "presence_penalty": _num(-2, 2)}
_GLM: dict[str, dict[str, Any]] = {
    "max_tokens": {"type": "integer", "minimum": 1, "description": "Deprecated: use max_completion_tokens."},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "temperature": _num(0, 2, 1),
    "top_p": _num(0, 1, 1),
    "frequency_penalty": _num(-2, 2, 0),
    "presence_penalty": _num(-2, 2, 0),
    "seed": {"type": "integer"},
    "n": _num(1, 128, 1, kind="integer"),
    "top_logprobs": _num(0, 20, kind="integer"),
    "reasoning_effort": {"type": ["string", "null"], "enum": [*EFFORTS, None]},
}

# Parameter set per ModelSpec.params; "gpt-oss" is Llama 3.3's ranges on its classic branches.
PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "llama-3.1": _LLAMA31,
    "llama-3.3": _LLAMA33,
    "llama-4": {**_LLAMA31, "temperature": _num(0, 5, 0.15)},
    "gemma-3": _LLAMA31,
    "r1": _LLAMA33,
    "gpt-oss": _LLAMA33,
    "glm": _GLM,
}
# Sampling parameters other models take that a model's schema lacks: sending one is refused, not ignored
# (glm-4.7-flash with top_k / repetition_penalty was reported to time out; a clear 400 serves users better).
_KNOWN_SAMPLING = ("temperature", "top_p", "top_k", "repetition_penalty", "frequency_penalty", "presence_penalty")

_COMMON = {"stream": {"type": "boolean", "default": False}, "response_format": {"type": "object"}}
_REASONING = {
    "type": "object",
    "properties": {
        "effort": {"type": "string", "enum": list(EFFORTS), "default": "medium"},
        "summary": {"type": "string", "enum": list(SUMMARIES)},
    },
}
_MESSAGES = {
    "type": "array",
    "items": {"type": "object", "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
              "required": ["role", "content"]},
}


def params_of(spec: ModelSpec) -> dict[str, dict[str, Any]]:
    return PARAMS[spec.params]


def input_schema(spec: ModelSpec) -> dict[str, Any]:
    """The model's `{input, output}` schema as `/ai/models/schema` answers it."""
    if spec.task != TEXT_GENERATION:
        return model_schema(spec)
    base = model_schema(spec)
    params = {**params_of(spec), **_COMMON}
    if spec.params == "glm":
        inputs: dict[str, Any] = {
            "type": "object",
            "properties": {"messages": _MESSAGES, "tools": {"type": "array"}, "tool_choice": {},
                           "stop": {"type": "array", "maxItems": 4}, "stream_options": {"type": "object"},
                           "chat_template_kwargs": {"type": "object"}, **params},
            "required": ["messages"],
        }
        output: dict[str, Any] = {"type": "object", "description": "OpenAI chat completion (choices, usage)"}
        return {"input": inputs, "output": output}
    branches: list[dict[str, Any]] = [
        {"title": "Prompt", "properties": {"prompt": {"type": "string", "minLength": 1}, "raw": {"type": "boolean", "default": False},
                                           "lora": {"type": "string"}, **params}, "required": ["prompt"]},
        {"title": "Messages", "properties": {"messages": _MESSAGES, "tools": {"type": "array"}, **params}, "required": ["messages"]},
    ]
    if spec.response_shape == "responses":
        branches.append({"title": "Responses", "properties": {
            "input": {"anyOf": [{"type": "string"}, _MESSAGES]}, "instructions": {"type": "string"},
            "reasoning": _REASONING, **_COMMON}, "required": ["input"]})
    if spec.params in ("llama-4", "gemma-3"):
        for branch in branches:
            branch["properties"]["guided_json"] = {"type": "object"}
    inputs = {"type": "object", "additionalProperties": True, "oneOf": branches}
    output = base["output"] if spec.response_shape == "classic" else {"type": "object"}
    return {"input": inputs, "output": output}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_value(key: str, value: Any, rule: dict[str, Any]) -> None:
    if "enum" in rule:
        if value not in rule["enum"]:
            allowed = ", ".join(repr(e) for e in rule["enum"] if e is not None)
            raise InputError(f"'/{key}' must be one of {allowed}")
        return
    kind = rule.get("type")
    if kind in ("number", "integer"):
        if not _is_number(value) or (kind == "integer" and isinstance(value, float) and not value.is_integer()):
            raise InputError(f"Type mismatch of '/{key}', '{kind}' expected")
        lo, hi = rule.get("minimum"), rule.get("maximum")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            raise InputError(f"'/{key}' must be between {lo_s} and {hi_s}, got {value}")


def check_reasoning(value: Any) -> None:
    if not isinstance(value, dict):
        raise InputError("Type mismatch of '/reasoning', 'object' expected")
    if value.get("effort") is not None and value["effort"] not in EFFORTS:
        raise InputError("'/reasoning/effort' must be one of 'low', 'medium', 'high'")
    if value.get("summary") is not None and value["summary"] not in SUMMARIES:
        raise InputError("'/reasoning/summary' must be one of 'auto', 'concise', 'detailed'")


def check_params(spec: ModelSpec, body: dict[str, Any]) -> None:
    """Refuse what this model's schema refuses (ranges, types, absent sampling params, reasoning)."""
    params = params_of(spec)
    for key, value in body.items():
        if value is None:
            continue
        if key in params:
            _check_value(key, value, params[key])
        elif key in _KNOWN_SAMPLING:
            raise InputError(f"'/{key}' is not accepted by {spec.name}")
    if "options" in body and body["options"] is not None and not isinstance(body["options"], dict):
        raise InputError("Type mismatch of '/options', 'object' expected")
    if body.get("reasoning") is not None:
        if spec.response_shape != "responses":
            raise InputError(f"'/reasoning' is not accepted by {spec.name}")
        check_reasoning(body["reasoning"])
    if "input" in body and "prompt" not in body and "messages" not in body and spec.response_shape != "responses":
        raise InputError("Error: oneOf at '/' not met, required properties are 'prompt' or 'messages'")


def effort_of(spec: ModelSpec, body: dict[str, Any]) -> str:
    """The reasoning effort a request asks for (`reasoning.effort` or `reasoning_effort`), else the default."""
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    effort = effort or body.get("reasoning_effort")
    return effort if effort in EFFORTS else (spec.default_effort or "medium")

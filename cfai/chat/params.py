"""Text-generation parameters: their documented defaults and ranges (PROTOCOL.md), checks, and JSON mode.

Shared by the playground and the Compare page's text-generation request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cfai.model_params import PASSTHROUGH_KEYS
from cfai.model_params import ParamSpec as SchemaParamSpec

ResponseFormatKind = Literal["off", "json_object", "json_schema"]


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


def generic_specs() -> list[SchemaParamSpec]:
    """The documented Llama 3.1 set as schema parameters: what the playground offers when a model's schema
    cannot be read (the page says so)."""
    return [SchemaParamSpec(s.name, s.kind, s.minimum, s.maximum, s.default, s.step, description=s.help)
            for s in PARAM_SPECS.values()]


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
        elif name in PASSTHROUGH_KEYS:
            if not isinstance(value, Mapping):
                problems.append(f"{name} must be an object, e.g. {{\"rejectIfBusy\": true}}.")
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


def body_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a body, without the conversation itself (for labels and exports)."""
    return {k: v for k, v in body.items() if k not in ("messages", "prompt", "input")}

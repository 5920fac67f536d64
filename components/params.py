"""Text-generation parameters with the documented defaults and ranges, and JSON mode; reusable.

Blank optional fields are not sent, so the model's own default applies (and the code snippets stay short).
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from cfai.chat import DEFAULT_JSON_SCHEMA, PARAM_SPECS, parse_json_schema, response_format

RESPONSE_FORMATS = {"off": "Text", "json_object": "JSON object", "json_schema": "JSON schema"}
OPTIONAL = ("top_p", "top_k", "seed", "repetition_penalty", "frequency_penalty", "presence_penalty")


def _number(name: str, key_prefix: str, *, optional: bool) -> Any:
    spec = PARAM_SPECS[name]
    as_int = spec.kind == "int"
    cast = int if as_int else float
    return st.number_input(
        spec.label,
        min_value=cast(spec.minimum),
        max_value=cast(spec.maximum),
        value=None if optional else cast(spec.default),
        step=cast(spec.step),
        format=None if as_int else "%.2f",
        placeholder="model default" if optional else None,
        key=f"{key_prefix}_{name}",
        help=spec.help,
    )


def text_generation_params(key_prefix: str) -> dict[str, Any]:
    """Render the parameter widgets in the current container and return the body fields to send:
    max_tokens and temperature always, the optional ones when set, `response_format` in JSON mode. An
    unparseable schema is returned as typed so `cfai.chat.validate_params` reports it (and the page can
    refuse to send) rather than being silently dropped."""
    params: dict[str, Any] = {
        "max_tokens": _number("max_tokens", key_prefix, optional=False),
    }
    temp = PARAM_SPECS["temperature"]
    params["temperature"] = st.slider(
        temp.label, float(temp.minimum), float(temp.maximum), float(temp.default), 0.05,
        key=f"{key_prefix}_temperature", help=temp.help,
    )
    left, right = st.columns(2)
    for i, name in enumerate(OPTIONAL):
        with left if i % 2 == 0 else right:
            params[name] = _number(name, key_prefix, optional=True)

    kind = st.radio(
        "Response format", list(RESPONSE_FORMATS), format_func=RESPONSE_FORMATS.get, horizontal=True,
        key=f"{key_prefix}_response_format",
        help="JSON mode asks for a JSON answer (response_format); it cannot stream.",
    )
    if kind == "json_schema":
        text = st.text_area(
            "JSON schema", value=json.dumps(DEFAULT_JSON_SCHEMA, indent=2), height=180,
            key=f"{key_prefix}_json_schema", help="The JSON schema the answer must follow.",
        )
        schema, problem = parse_json_schema(text)
        if problem:
            st.error(problem, icon=":material/data_object:")
        params["response_format"] = response_format("json_schema", schema if schema is not None else text)
    elif kind == "json_object":
        params["response_format"] = response_format("json_object")
    return {k: v for k, v in params.items() if v is not None}

"""Text-generation parameters and JSON mode; reusable.

`text_generation_params` is the documented generic set (Compare). `model_params_form` is one model's own
parameters, ranges and defaults from its schema (`/ai/models/schema`, read once per connection and model), and
sends only what the user changed from those defaults. Blank optional fields are not sent, so the model's own
default applies (and the code snippets stay short).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from cfai.chat import (
    DEFAULT_JSON_SCHEMA,
    PARAM_SPECS,
    RequestShape,
    generic_specs,
    parse_json_schema,
    request_shape,
    response_format,
)
from cfai.chat.request import flatten
from cfai.client import Client
from cfai.config import Connection
from cfai.model_params import ParamSpec, changed_params, for_branch, param_specs
from components.connection import get_client, get_connection

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


# --- parameters per model, from its schema (the playground) ----------------------------------------------
LABELS = {
    "max_tokens": "Max tokens", "max_completion_tokens": "Max tokens", "temperature": "Temperature",
    "top_p": "Top-p", "top_k": "Top-k", "repetition_penalty": "Repetition penalty",
    "frequency_penalty": "Frequency penalty", "presence_penalty": "Presence penalty", "seed": "Seed",
    "reasoning_effort": "Reasoning effort", "reasoning.effort": "Reasoning effort",
    "chat_template_kwargs.enable_thinking": "Thinking (enable_thinking)",
}
BUDGET_NAMES = ("max_tokens", "max_completion_tokens")
SCHEMA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ModelParams:
    """A model's parameters as the page needs them: the specs (empty when unreadable, with `error`), the
    request shape, and where they came from."""

    specs: tuple[ParamSpec, ...]
    shape: RequestShape
    error: str | None = None

    @property
    def budget_default(self) -> int | None:
        spec = next((s for s in self.specs if s.name in BUDGET_NAMES), None)
        return int(spec.default) if spec is not None and isinstance(spec.default, int | float) else None


@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def _cached_schema(connection_key: str, model: str, _client: Client) -> dict[str, Any]:
    """One model's schema per connection (the key) and model; a failure raises, so it is not cached."""
    return _client.model_schema(model, deadline=SCHEMA_TIMEOUT_S)


def connection_key(conn: Connection) -> str:
    """What a schema depends on: where it is read from, and with which token (a hash of it, never the token:
    a session must not be given what another session's token fetched)."""
    token = hashlib.sha256(conn.api_token.encode()).hexdigest()[:16] if conn.api_token else "-"
    return f"{conn.mode}|{conn.api_base_url}|{conn.account_id}|{token}"


def load_model_params(model: str, catalogue_shape: str | None = None) -> ModelParams:
    """The model's parameters from `/ai/models/schema` (Cloudflare's in Cloudflare mode, the emulator's
    locally), cached per connection and model; the generic Llama 3.1 set, with the reason, when the schema
    cannot be read."""
    conn, client = get_connection(), get_client()
    problem: str | None = None
    schema: dict[str, Any] | None = None
    if not model or conn.validate():
        problem = "Fix the connection (or pick a model) to read the model's parameters."
    else:
        try:
            schema = _cached_schema(connection_key(conn), model, client)
        except Exception as e:  # noqa: BLE001 - any failure (HTTP, network, odd body) falls back the same way
            problem = f"The model's schema could not be read ({e})."
    specs = tuple(param_specs(schema)) if schema else ()
    shape = request_shape(schema, catalogue_shape)
    if not specs:
        return ModelParams(tuple(generic_specs()), shape, problem or "The model's schema lists no parameters.")
    return ModelParams(specs, shape, None)


def _format(spec: ParamSpec) -> str | None:
    if spec.kind == "int":
        return None
    return "%.3f" if spec.minimum is not None and 0 < spec.minimum < 0.01 else "%.2f"


def _help(spec: ParamSpec) -> str:
    bits = [spec.description.strip()] if spec.description.strip() else []
    if spec.kind in ("int", "float"):
        lo = "-∞" if spec.minimum is None else f"{spec.minimum:g}"
        hi = "∞" if spec.maximum is None else f"{spec.maximum:g}"
        bits.append(f"Range {lo} to {hi}.")
    bits.append(f"Model default: {spec.default}." if spec.default is not None else "No default in the schema: "
                "not sent unless set.")
    return " ".join(bits)


def _widget(spec: ParamSpec, key: str, *, label: str | None = None) -> Any:
    """One parameter's widget, starting at the model's default; kept for the browser session."""
    label = label or LABELS.get(spec.name, spec.name)
    if key not in st.session_state:
        st.session_state[key] = spec.default
    common: dict[str, Any] = {"key": key, "help": _help(spec), "persist_state": "session"}
    if spec.kind == "choice":
        options: list[Any] = list(spec.choices) if spec.default in spec.choices else [None, *spec.choices]
        return st.selectbox(label, options, format_func=lambda v: "model default" if v is None else str(v), **common)
    if spec.kind == "bool":
        if spec.default is None:
            return st.selectbox(label, [None, True, False], format_func=lambda v: {None: "model default",
                                True: "on", False: "off"}[v], **common)
        return st.toggle(label, **common)
    cast = int if spec.kind == "int" else float
    lo = cast(spec.minimum) if spec.minimum is not None else None
    hi = cast(spec.maximum) if spec.maximum is not None else None
    if spec.name == "temperature" and lo is not None and hi is not None and spec.default is not None:
        return st.slider(label, lo, hi, step=0.05, **common)
    return st.number_input(label, min_value=lo, max_value=hi, step=cast(spec.step or 1), format=_format(spec),
                           placeholder="model default", **common)


def model_params_form(key_prefix: str, model: str, params: ModelParams, branch: str) -> tuple[dict[str, Any],
                                                                                               list[str]]:
    """The model's parameters (as its schema gives them, for the request `branch`), reasoning effort and
    thinking where it has them, and JSON mode. Returns the body fragment with only what differs from the
    model's defaults (plus `response_format`) and the problems that stop sending. Widgets are keyed per
    model, so each model keeps its own settings and defaults."""
    specs = for_branch(list(params.specs), branch, keep=BUDGET_NAMES)
    if params.error:
        st.caption(f":orange[{params.error} Showing the generic Llama 3.1 ranges.]")
    values: dict[str, Any] = {}
    reasoning = [s for s in specs if s.kind in ("choice", "bool")]
    numbers = [s for s in specs if s.kind in ("int", "float")]
    for spec in reasoning:
        values[spec.name] = _widget(spec, f"{key_prefix}_p_{model}_{spec.name}")
    left, right = st.columns(2)
    for i, spec in enumerate(numbers):
        with left if i % 2 == 0 else right:
            values[spec.name] = _widget(spec, f"{key_prefix}_p_{model}_{spec.name}")
    problems: list[str] = []
    try:
        fragment = changed_params(specs, values)
    except ValueError as e:
        fragment, problems = {}, [str(e)]
    if branch == "Responses" and values:
        st.caption("gpt-oss goes out in the Responses shape: `input`, `reasoning: {effort}`, the budget as "
                   "`max_output_tokens`.")
    sent = ", ".join(f"`{k}`" for k in fragment)
    st.caption(f"Sent (changed from the model's defaults): {sent}." if sent else
               "Nothing changed from the model's defaults, so no parameters are sent.")
    fragment.update(_json_mode(key_prefix))
    return fragment, problems


def budget_in_force(fragment: dict[str, Any], params: ModelParams) -> int | None:
    """The max_tokens that applies: the one sent, else the model's default."""
    for name in (*BUDGET_NAMES, "max_output_tokens"):
        if isinstance(fragment.get(name), int):
            return int(fragment[name])
    return params.budget_default


def fragment_for(specs: tuple[ParamSpec, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Another model's share of the same settings (side by side's B): what it takes, within its ranges."""
    flat = flatten(values)
    by_name = {s.name: s for s in specs}
    kept = {k: v for k, v in flat.items() if k in by_name and by_name[k].check(v) is None}
    out = changed_params(list(specs), kept)
    if "response_format" in values:
        out["response_format"] = values["response_format"]
    return out


def _json_mode(key_prefix: str) -> dict[str, Any]:
    kind = st.radio(
        "Response format", list(RESPONSE_FORMATS), format_func=RESPONSE_FORMATS.get, horizontal=True,
        key=f"{key_prefix}_response_format", persist_state="session",
        help="JSON mode asks for a JSON answer (response_format); it cannot stream.",
    )
    if kind == "json_schema":
        key = f"{key_prefix}_json_schema"
        st.session_state.setdefault(key, json.dumps(DEFAULT_JSON_SCHEMA, indent=2))
        text = st.text_area("JSON schema", height=180, key=key, persist_state="session",
                            help="The JSON schema the answer must follow.")
        schema, problem = parse_json_schema(text)
        if problem:
            st.error(problem, icon=":material/data_object:")
        return {"response_format": response_format("json_schema", schema if schema is not None else text)}
    if kind == "json_object":
        return {"response_format": response_format("json_object")}
    return {}

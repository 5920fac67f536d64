"""A model's tunable parameters, read from its input schema, and request bodies with only what changed.

The schema is what `GET /ai/models/schema?model=` answers (`{input, output}`; Cloudflare in Cloudflare mode,
the emulator locally, same code path). Parameters come from every `oneOf`/`anyOf` branch of the input
(Prompt, Messages, Responses...); a nested `reasoning.effort` enum becomes the parameter `reasoning.effort`.
`changed_params` sends only what the user moved away from the model's defaults (docs/PROTOCOL.md 2.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

ParamKind = Literal["float", "int", "choice", "bool"]

# The sampling knobs a playground offers, in display order; the rest of a schema (stream, raw, n, ...) is not
# a tuning parameter.
TUNABLE = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "repetition_penalty",
           "frequency_penalty", "presence_penalty", "seed", "reasoning_effort", "reasoning.effort",
           "chat_template_kwargs.enable_thinking")
# Nested objects whose fields are knobs too: {parent: (field, ...)}, offered as "parent.field".
NESTED = {"reasoning": ("effort",), "chat_template_kwargs": ("enable_thinking",)}
# Top-level keys a text-generation body may carry besides the model input (reject-if-busy.mdx).
PASSTHROUGH_KEYS = ("options",)


@dataclass(frozen=True)
class ParamSpec:
    name: str  # dotted for nested fields: "reasoning.effort"
    kind: ParamKind
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None  # None: the schema names no default (the model decides)
    step: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    branches: tuple[str, ...] = ()  # input-schema branches that take it ("Prompt", "Messages", "Responses")

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    def check(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        if value is None:
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{self.name} must be true or false"
        if self.kind == "choice":
            return None if value in self.choices else f"{self.name} must be one of {', '.join(self.choices)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.name} must be a number"
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            return f"{self.name} must be a whole number"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be at most {self.maximum:g}"
        return None


def _branches(input_schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for combo in ("oneOf", "anyOf"):
        for i, branch in enumerate(input_schema.get(combo) or []):
            if isinstance(branch, dict):
                found.append((str(branch.get("title") or f"{combo}[{i}]"), branch.get("properties") or {}))
    if isinstance(input_schema.get("properties"), dict):
        found.append((str(input_schema.get("title") or ""), input_schema["properties"]))
    return found


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _step(kind: ParamKind, lo: float | None, hi: float | None) -> float | None:
    if kind == "int":
        return 1
    if lo is None or hi is None or not math.isfinite(hi - lo):
        return 0.01
    return 0.01 if hi - lo <= 2 else 0.05


def _spec(name: str, rule: dict[str, Any], branch: str) -> ParamSpec | None:
    enum = [e for e in rule.get("enum") or [] if isinstance(e, str)]
    description = str(rule.get("description") or "")
    if enum:
        return ParamSpec(name, "choice", default=rule.get("default"), choices=tuple(enum),
                         description=description, branches=(branch,))
    kind_raw = rule.get("type")
    kinds = kind_raw if isinstance(kind_raw, list) else [kind_raw]
    if "boolean" in kinds:
        default = rule.get("default")
        return ParamSpec(name, "bool", default=default if isinstance(default, bool) else None,
                         description=description, branches=(branch,))
    if "integer" in kinds:
        kind: ParamKind = "int"
    elif "number" in kinds:
        kind = "float"
    else:
        return None
    lo, hi = _number(rule.get("minimum")), _number(rule.get("maximum"))
    default = rule.get("default")
    if kind == "int" and isinstance(default, float) and default.is_integer():
        default = int(default)
    return ParamSpec(name, kind, lo, hi, default, _step(kind, lo, hi), (), description, (branch,))


def param_specs(schema: dict[str, Any]) -> list[ParamSpec]:
    """The tunable parameters of a model, from its `{input, output}` schema (or the input schema alone)."""
    input_schema = schema.get("input", schema) if isinstance(schema, dict) else {}
    if not isinstance(input_schema, dict):
        return []
    found: dict[str, ParamSpec] = {}
    for branch, props in _branches(input_schema):
        candidates: list[tuple[str, Any]] = list(props.items())
        for parent, fields in NESTED.items():
            node = props.get(parent)
            if isinstance(node, dict) and isinstance(node.get("properties"), dict):
                candidates += [(f"{parent}.{f}", node["properties"][f]) for f in fields if f in node["properties"]]
        for name, rule in candidates:
            if name not in TUNABLE or not isinstance(rule, dict):
                continue
            spec = _spec(name, rule, branch)
            if spec is None:
                continue
            if name in found:  # the same knob in another branch: remember that branch too
                spec = found[name]
                found[name] = ParamSpec(**{**spec.__dict__, "branches": (*spec.branches, branch)})
            else:
                found[name] = spec
    if "max_tokens" in found and "max_completion_tokens" in found:
        del found["max_completion_tokens"]  # the same budget under OpenAI's newer name: offer one
    return [found[n] for n in TUNABLE if n in found]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def check_values(specs: list[ParamSpec], values: dict[str, Any]) -> dict[str, str]:
    """{name: reason} for every value the model's schema refuses; names it does not take are refused too."""
    by_name = {s.name: s for s in specs}
    problems: dict[str, str] = {}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            if value is not None:
                problems[name] = f"{name} is not a parameter of this model"
            continue
        reason = spec.check(value)
        if reason:
            problems[name] = reason
    return problems


def changed_params(specs: list[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """A body fragment with only the values that differ from the model's defaults (nested where dotted).

    A value of None means "not set". A parameter without a schema default is sent whenever it is set.
    Raises ValueError naming every refused value, so nothing out of range is ever sent.
    """
    problems = check_values(specs, values)
    if problems:
        raise ValueError("; ".join(problems.values()))
    body: dict[str, Any] = {}
    for spec in specs:
        value = values.get(spec.name)
        if value is None or (spec.default is not None and _same(value, spec.default)):
            continue
        if spec.kind == "int":
            value = int(value)
        node = body
        *parents, leaf = spec.path
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return body


def for_branch(specs: list[ParamSpec], branch: str, *, keep: tuple[str, ...] = ()) -> list[ParamSpec]:
    """The parameters a request in `branch` (a schema branch title, e.g. "Responses") can carry, plus the
    names in `keep`. Specs read from a schema without branches take every request."""
    return [s for s in specs if not s.branches or branch in s.branches or "" in s.branches or s.name in keep]


def defaults(specs: list[ParamSpec]) -> dict[str, Any]:
    """{name: default} for the parameters whose schema names one (what a form starts from)."""
    return {s.name: s.default for s in specs if s.default is not None}

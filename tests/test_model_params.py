"""Parameters from a model's schema (cfai.model_params): nested switches, branches."""

from __future__ import annotations

from cfai.model_params import changed_params, param_specs


def test_nested_thinking_switch_and_branches_from_a_documented_schema():
    """glm-4.7-flash's file documents chat_template_kwargs.enable_thinking (=true): offered as a switch,
    sent only when turned off; `for_branch` keeps a Responses request to the Responses branch."""
    from cfai.model_params import for_branch

    schema = {"input": {"type": "object", "properties": {
        "chat_template_kwargs": {"type": "object", "properties": {"enable_thinking": {"type": "boolean", "default": True}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 1}}}}
    specs = param_specs(schema)
    thinking = next(s for s in specs if s.name == "chat_template_kwargs.enable_thinking")
    assert thinking.kind == "bool" and thinking.default is True
    assert changed_params(specs, {"chat_template_kwargs.enable_thinking": True}) == {}
    assert changed_params(specs, {"chat_template_kwargs.enable_thinking": False}) == {
        "chat_template_kwargs": {"enable_thinking": False}}
    oss = {"input": {"oneOf": [
        {"title": "Messages", "properties": {"max_tokens": {"type": "integer", "default": 256},
                                             "temperature": {"type": "number"}}},
        {"title": "Responses", "properties": {"reasoning": {"type": "object", "properties": {
            "effort": {"type": "string", "enum": ["low", "medium", "high"], "default": "medium"}}}}}]}}
    names = [s.name for s in for_branch(param_specs(oss), "Responses", keep=("max_tokens",))]
    assert names == ["max_tokens", "reasoning.effort"]

"""Conversations as JSON and Markdown, and the one-line summaries under answers and errors.

Exports hold models, parameters and metrics, never the API token (the conversation never sees it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cfai.chat.conversation import Conversation, TurnMetrics
from cfai.format import MISSING, format_count, format_ms, format_rate


def conversation_json(conversation: Conversation, *, mode: str | None = None) -> str:
    return json.dumps(conversation.to_dict(mode=mode), indent=2, ensure_ascii=False, default=str)


def conversation_markdown(conversation: Conversation, *, mode: str | None = None) -> str:
    lines = ["# Workers AI Lab conversation", ""]
    lines.append(f"Exported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                 + (f", {mode} mode" if mode else "") + ".")
    lines.append("")
    if conversation.system_prompt.strip():
        lines += ["## System", "", conversation.system_prompt.strip(), ""]
    for turn in conversation.turns:
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


def pair_to_json(a: Conversation, b: Conversation, *, mode: str | None = None) -> str:
    """Side-by-side export: both conversations, each with its own models, routes and metrics."""
    return json.dumps({"a": a.to_dict(mode=mode), "b": b.to_dict(mode=mode)}, indent=2, ensure_ascii=False,
                      default=str)


def pair_to_markdown(a: Conversation, b: Conversation, *, mode: str | None = None) -> str:
    def demote(md: str) -> str:  # nest each conversation's headings under its A/B heading
        return "\n".join("#" + line if line.startswith("#") else line for line in md.splitlines())

    return (f"# Side by side\n\n{demote(conversation_markdown(a, mode=mode))}\n\n"
            f"{demote(conversation_markdown(b, mode=mode))}\n").replace(
        "## Workers AI Lab conversation", "## A", 1).replace("## Workers AI Lab conversation", "## B", 1)


def first_label(m: TurnMetrics) -> str:
    """A stream's first token, or a whole answer's first byte: both are honest time-to-first numbers."""
    return "first token" if m.first_token_ms is not None else "first byte"


def metrics_summary(m: TurnMetrics) -> str:
    parts = [
        f"{first_label(m)} {format_ms(m.time_to_first_token_ms)}",
        f"total {format_ms(m.total_ms)}",
        f"tokens {format_count(m.prompt_tokens)} in / {format_count(m.completion_tokens)} out",
        format_rate(m.tokens_per_second, "tok/s"),
        f"route {m.route}",
        f"cache {m.cache_status or MISSING}",
        f"HTTP {m.status or MISSING}",
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

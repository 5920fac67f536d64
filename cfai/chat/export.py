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


def rate_label(m: TurnMetrics) -> str:
    """Tokens per second, saying when the count includes reasoning tokens (it counts all generated)."""
    text = format_rate(m.tokens_per_second, "tok/s")
    return f"{text} (reasoning included)" if m.tokens_per_second and m.generated_tokens_include_reasoning else text


def metrics_summary(m: TurnMetrics) -> str:
    parts = [f"{first_label(m)} {format_ms(m.time_to_first_token_ms)}"]
    if m.first_reasoning_ms is not None:
        parts.append(f"first reasoning token {format_ms(m.first_reasoning_ms)}")
    if m.first_answer_ms is not None and m.first_reasoning_ms is not None:
        parts.append(f"first answer token {format_ms(m.first_answer_ms)}")
    out = f"{format_count(m.completion_tokens)} out"
    if m.reasoning_tokens:
        out += f" ({format_count(m.reasoning_tokens)} reasoning)"
    parts += [
        f"total {format_ms(m.total_ms)}",
        f"tokens {format_count(m.prompt_tokens)} in / {out}",
        rate_label(m),
        f"route {m.route}",
        f"cache {m.cache_status or MISSING}",
        f"HTTP {m.status or MISSING}",
    ]
    if m.cached_tokens is not None or m.session_affinity:
        parts.append(cached_summary(m))
    return " · ".join(parts)


def cached_summary(m: TurnMetrics) -> str:
    """Prompt caching in words: how many prompt tokens were cached, and whether session affinity was sent."""
    cached = f"{format_count(m.cached_tokens or 0)} of {format_count(m.prompt_tokens)} prompt tokens cached"
    return cached + (" (session affinity sent)" if m.session_affinity else " (no session affinity)")


def error_summary(error: Mapping[str, Any]) -> str:
    text = str(error.get("message") or "Request failed")
    details = [f"HTTP {error['status']}" if error.get("status") else "", f"code {error['code']}" if error.get("code") else ""]
    details = [d for d in details if d]
    if details:
        text += f" ({', '.join(details)})"
    return text


# In a chat, one request at a time: the client's hints for runs (concurrency) and for timeouts in general
# are replaced by advice that names what applies here.
CHAT_RATE_LIMIT_HINT = "Rate limited: wait a moment and send again (Retry-After says how long)."
SERVER_TIMEOUT_HINT = ("The server's own timeout fired (HTTP {status}), not this app's: try again, or ask for less "
                       "(a smaller max_tokens); raising the read timeout would not help.")
READ_TIMEOUT_HINT = ("This app's read timeout fired (Advanced → Read timeout): the server sent nothing for that "
                     "long. Raise it, or ask for less (a smaller max_tokens).")
DEADLINE_HINT = ("This app's total deadline fired (Deadline in the connection panel): what arrived is kept. Raise "
                 "it, or ask for less (a smaller max_tokens).")


def chat_hint(error: Mapping[str, Any]) -> str:
    """The hint for an error in a chat: says which timeout fired; no advice about concurrency."""
    kind, status = error.get("kind"), error.get("status")
    if kind == "rate_limited":
        return CHAT_RATE_LIMIT_HINT
    if kind == "deadline":
        return DEADLINE_HINT
    if kind == "timeout":
        return SERVER_TIMEOUT_HINT.format(status=status) if status else READ_TIMEOUT_HINT
    return str(error.get("hint") or "")


def error_advice(error: Mapping[str, Any]) -> str:
    """What to do next, including how long to wait after a 429."""
    hint = chat_hint(error)
    retry_after = error.get("retry_after")
    if retry_after:
        hint = (hint + " " if hint else "") + f"Retry after {float(retry_after):g} s."
    return hint

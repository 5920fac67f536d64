"""Deterministic text-generation simulator: validated input -> readable text, token pieces and usage.

Text is assembled from sentence templates that mention the prompt's key words, chosen by an RNG seeded
from (model, input, sampling params, seed): the same request always gets the same answer. One tokenizer
(a word/punctuation split) counts prompt and completion alike, so streamed and plain usage agree.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from cfai.emulator.envelope import InputError

# Each piece keeps its leading whitespace, so "".join(pieces) rebuilds the text exactly.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")

_STOPWORDS = frozenset(
    str.split(
        """about above after again against all also and any are because been before being below between both
    but can could did does doing down during each few for from further had has have having her here hers
    him his how into its itself just let like more most myself nor not now off once only other our ours
    out over own please same she should some such tell than that the their theirs them then there these
    they this those through too under until very was were what when where which while who whom why will
    with would you your yours give write explain describe show make does what's i'm it's can't don't
    short long brief simple using use used one two three way ways thing things something really hello hi hey there thanks thank work works working
    happen happens get gets need want know think okay yes tell
    sentence sentences paragraph paragraphs word words line lines list bullet bullets point points
    summary summarize summarise answer question detail details example examples step steps briefly"""
    )
)


def tokenize(text: str) -> list[str]:
    """Split text into token pieces (words and punctuation marks, each with its leading whitespace)."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    return len(_PIECE.findall(text))


def first_tokens(text: str, n: int) -> str:
    """The start of `text` up to its n-th token piece: what a model with an n-token input window reads."""
    end = 0
    for i, match in enumerate(_PIECE.finditer(text)):
        if i == n:
            return text[:end]
        end = match.end()
    return text


# --- input validation -----------------------------------------------------------------------------------
# Outer bounds over every model; each model's own ranges are enforced first (cfai.emulator.model_params).
_NUMBER_RANGES = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 2.0),
    "repetition_penalty": (0.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}
_INT_RANGES = {"top_k": (1, 50), "seed": (1, 9999999999), "max_tokens": (1, 131072)}
_CHAT_ONLY = ("tools", "functions")
_PROMPT_ONLY = ("raw", "lora")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass
class GenRequest:
    """A validated text-generation request."""

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 256
    stream: bool = False
    seed: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, ... as given
    response_format: dict[str, Any] | None = None

    def last_user_text(self) -> str:
        if self.prompt is not None:
            return self.prompt
        for msg in reversed(self.messages or []):
            if msg["role"] == "user":
                return msg["content"]
        return (self.messages or [{"content": ""}])[-1]["content"]

    def prompt_tokens(self) -> int:
        if self.prompt is not None:
            return count_tokens(self.prompt) + 1  # + a begin-of-text token
        # Each message costs its role, its content, and two framing tokens; +1 for the assistant cue.
        return sum(count_tokens(m["role"]) + count_tokens(m["content"]) + 2 for m in self.messages or []) + 1


def _check_messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InputError("Type mismatch of '/messages', 'array' not in 'non-empty array'")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise InputError(f"Type mismatch of '/messages/{i}', 'object' expected")
        role, content = msg.get("role"), msg.get("content")
        if not isinstance(role, str) or not role:
            raise InputError(f"Required property 'role' missing or not a string at '/messages/{i}'")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content is None and msg.get("tool_calls"):
            content = ""
        if not isinstance(content, str):
            raise InputError(f"Type mismatch of '/messages/{i}/content', 'string' expected")
        out.append({"role": role, "content": content})
    return out


def parse_gen_request(body: dict[str, Any], *, openai: bool = False) -> GenRequest:
    """Validate a Workers AI (or, with openai=True, an OpenAI chat) text-generation body."""
    if openai and body.get("max_tokens") is None and body.get("max_completion_tokens") is not None:
        body = {**body, "max_tokens": body["max_completion_tokens"]}  # the newer OpenAI name
    has_prompt, has_messages = "prompt" in body, "messages" in body
    if openai and not has_messages:
        raise InputError("required property 'messages' is missing")
    if not has_prompt and not has_messages:
        raise InputError("Error: oneOf at '/' not met, required properties are 'prompt' or 'messages'")
    if has_prompt and has_messages:
        raise InputError("Error: oneOf at '/' not met, 'prompt' and 'messages' are mutually exclusive")
    req = GenRequest()
    if has_prompt:
        if not isinstance(body["prompt"], str):
            raise InputError("Type mismatch of '/prompt', 'string' expected")
        if not body["prompt"]:
            raise InputError("'/prompt' must not be empty (minLength 1)")
        req.prompt = body["prompt"]
        for key in _CHAT_ONLY:
            if key in body:
                raise InputError(f"'/{key}' is only allowed with 'messages'")
    else:
        req.messages = _check_messages(body["messages"])
        for key in _PROMPT_ONLY:
            if key in body and not openai:
                raise InputError(f"'/{key}' is only allowed with 'prompt'")
    for key, (lo, hi) in _NUMBER_RANGES.items():
        if key in body and body[key] is not None:
            v = body[key]
            if not _is_number(v):
                raise InputError(f"Type mismatch of '/{key}', 'number' expected")
            if not lo <= v <= hi:
                raise InputError(f"'/{key}' must be between {lo:g} and {hi:g}, got {v}")
            req.sampling[key] = v
    for key, (lo, hi) in _INT_RANGES.items():
        if key in body and body[key] is not None:
            v = body[key]
            if not _is_number(v) or (isinstance(v, float) and not v.is_integer()):
                raise InputError(f"Type mismatch of '/{key}', 'integer' expected")
            if not lo <= v <= hi:
                raise InputError(f"'/{key}' must be between {lo} and {hi}, got {v}")
    if body.get("max_tokens") is not None:
        req.max_tokens = int(body["max_tokens"])
    if body.get("seed") is not None:
        req.seed = int(body["seed"])
    for key in ("stream", "raw"):
        if key in body and body[key] is not None and not isinstance(body[key], bool):
            raise InputError(f"Type mismatch of '/{key}', 'boolean' expected")
    req.stream = bool(body.get("stream", False))
    if "lora" in body and body["lora"] is not None and not isinstance(body["lora"], str):
        raise InputError("Type mismatch of '/lora', 'string' expected")
    if "tools" in body and body["tools"] is not None and not isinstance(body["tools"], list):
        raise InputError("Type mismatch of '/tools', 'array' expected")
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("json_object", "json_schema", "text"):
            raise InputError("'/response_format/type' must be one of 'json_object', 'json_schema'")
        if rf["type"] == "json_schema" and not isinstance(rf.get("json_schema"), dict):
            raise InputError("'/response_format/json_schema' must be an object")
        if rf["type"] != "text":
            if req.stream and not openai:
                raise InputError("'response_format' is not supported with 'stream'")
            req.response_format = rf
    return req


# --- the simulator --------------------------------------------------------------------------------------
_OPENERS = (
    "Here is a short answer about {a}.",
    "Good question about {a}.",
    "Let's look at {a} step by step.",
    "{A} is a broad subject, so here is a brief overview.",
    "Sure, here is what matters most about {a}.",
)
_BODY = (
    "{A} is usually easiest to understand through a concrete example.",
    "In practice, {a} depends a lot on the context in which it is used.",
    "A useful way to think about {a} is to compare it with {b}.",
    "Most people first notice {a} when it starts to affect {b}.",
    "The main idea behind {a} is simple, even if the details take time to learn.",
    "When {a} and {b} appear together, the trade-offs become much clearer.",
    "It helps to separate what {a} does from how it is implemented.",
    "There are several common approaches to {a}, and each has its own costs.",
    "Experts often point out that {a} is more flexible than it first appears.",
    "For a beginner, the best starting point is a small experiment with {a}.",
    "One frequent mistake is to treat {a} and {b} as the same thing.",
    "Measuring {a} carefully usually shows where the real problems are.",
    "Interest in {a} grew steadily as {b} became more widespread.",
    "A short checklist can make working with {a} much more reliable.",
    "The answer also changes with scale, since {a} behaves differently in larger systems.",
    "If you need more detail on {b}, the official documentation is a good next step.",
    "Keep in mind that {a} has limits, and {b} will not solve every case.",
    "First, be clear about the goal; then choose how {a} should support it.",
    "A good rule of thumb is to start simple with {a} and add complexity only when needed.",
    "Many teams review {a} regularly, because {b} tends to change over time.",
    "The cost of {a} is often lower than expected, while the benefits for {b} are easy to see.",
    "Writing down your assumptions about {a} makes later decisions easier.",
)
_CLOSERS = (
    "In short, {a} rewards a careful and practical approach.",
    "I hope this gives you a clear starting point on {a}.",
    "Let me know if you would like more detail about {b}.",
    "Overall, {a} is worth the effort once the basics are in place.",
)


def _keywords(text: str) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall(text):
        w = word.lower().strip("'-")
        if len(w) > 2 and w not in _STOPWORDS and w not in seen:
            seen.append(w)
    return seen[:5]


def request_rng(model: str, req: GenRequest, default_seed: int) -> random.Random:
    """An RNG that depends only on what determines the answer (model, input, params, seed)."""
    key = json.dumps(
        {
            "m": model,
            "p": req.prompt,
            "msgs": req.messages,
            "s": req.seed if req.seed is not None else default_seed,
            "sampling": req.sampling,
            "rf": req.response_format,
        },
        sort_keys=True,
    )
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _fill(template: str, words: list[str], rng: random.Random) -> str:
    a = rng.choice(words)
    others = [w for w in words if w != a] or ["the wider system"]
    b = rng.choice(others)
    return template.format(a=a, A=a[:1].upper() + a[1:], b=b)


def compose_text(rng: random.Random, user_text: str) -> str:
    """Readable paragraphs about the prompt's key words, naturally 30-200 tokens."""
    words = _keywords(user_text) or ["this topic", "your question"]
    target = int(rng.triangular(30, 200, 90))
    sentences = [_fill(rng.choice(_OPENERS), words, rng)]
    body = list(_BODY)
    rng.shuffle(body)
    closer = _fill(rng.choice(_CLOSERS), words, rng)
    used = count_tokens(sentences[0]) + count_tokens(closer)
    for template in body:
        s = _fill(template, words, rng)
        if used + count_tokens(s) > target and len(sentences) > 1:
            break
        sentences.append(s)
        used += count_tokens(s)
    sentences.append(closer)
    # Paragraph breaks every few sentences, like a chat answer.
    out, since_break = sentences[0], 1
    for s in sentences[1:]:
        if since_break >= 3 and rng.random() < 0.5:
            out += "\n\n" + s
            since_break = 1
        else:
            out += " " + s
            since_break += 1
    return out


def _value_for(schema: Any, name: str, words: list[str], rng: random.Random, depth: int = 0) -> Any:
    if not isinstance(schema, dict):
        return " ".join(words[:2]) or name
    if "enum" in schema and schema["enum"]:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    for combo in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(combo), list) and schema[combo]:
            return _value_for(schema[combo][0], name, words, rng, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" and depth < 6:
        props = schema.get("properties") or {}
        if not props:
            return {"topic": words[0], "summary": f"A short note about {words[0]}."}
        return {k: _value_for(v, k, words, rng, depth + 1) for k, v in props.items()}
    if kind == "array" and depth < 6:
        n = max(int(schema.get("minItems", 1)), min(int(schema.get("maxItems", 3)), rng.randint(1, 3)))
        return [_value_for(schema.get("items", {}), name, words, rng, depth + 1) for _ in range(n)]
    if kind == "integer":
        lo, hi = int(schema.get("minimum", 1)), int(schema.get("maximum", 100))
        return rng.randint(lo, max(lo, hi))
    if kind == "number":
        low, high = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round(rng.uniform(low, max(low, high)), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    word = rng.choice(words)
    lname = name.lower()
    if "name" in lname or "title" in lname:
        return word.title()
    if "email" in lname:
        return f"{word.replace(' ', '.')}@example.com"
    if "date" in lname:
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if "url" in lname:
        return f"https://example.com/{word.replace(' ', '-')}"
    return f"A short note about {word}."


def compose_object(rng: random.Random, user_text: str, response_format: dict[str, Any]) -> Any:
    """A plausible JSON value for json_object / json_schema response formats."""
    words = _keywords(user_text) or ["this topic"]
    schema: Any = None
    if response_format.get("type") == "json_schema":
        js = response_format.get("json_schema") or {}
        schema = js.get("schema", js) if isinstance(js, dict) else None
    if not schema:
        return {"topic": words[0], "answer": compose_text(rng, user_text).split("\n\n")[0]}
    return _value_for(schema, "value", words, rng)


@dataclass
class Generation:
    """The simulator's answer to one request."""

    response: Any  # str, or an object with response_format
    pieces: list[str]  # token pieces of the text as streamed
    prompt_tokens: int
    finish_reason: str  # "stop" or "length"

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def generate(model: str, req: GenRequest, default_seed: int) -> Generation:
    rng = request_rng(model, req, default_seed)
    user_text = req.last_user_text()
    if req.response_format is not None:
        obj = compose_object(rng, user_text, req.response_format)
        # Objects are not cut at max_tokens: a truncated object would not be valid JSON.
        return Generation(obj, tokenize(json.dumps(obj)), req.prompt_tokens(), "stop")
    pieces = tokenize(compose_text(rng, user_text))
    finish = "stop"
    if len(pieces) > req.max_tokens:
        pieces, finish = pieces[: req.max_tokens], "length"
    return Generation("".join(pieces), pieces, req.prompt_tokens(), finish)

"""The current request as code to copy: curl, Python `requests`, the `openai` SDK and a Worker binding.

Pure functions of (connection, route, model, body, gateway options, response shape). The token is never
read here: the snippets always say `$CLOUDFLARE_API_TOKEN`, `os.environ[...]` or use the Worker's `env`, so
a snippet is safe to paste anywhere. Local mode gives the emulator's URLs and says so; Cloudflare mode the
real ones with the account id (an identifier, not a secret).

Routes (docs/PROTOCOL.md section 3): `direct` is `ai/run/{model}`; `gateway` is the AI Gateway URL
(`gateway.ai.cloudflare.com/v1/{account}/{gateway}/workers-ai/{model}`, with `cf-aig-authorization` for an
authenticated gateway); `unified` is the REST API at `api.cloudflare.com` with `cf-aig-gateway-id` and the
gateway's options as `cf-aig-*` headers, authenticated by the normal `Authorization` header.

Shapes (docs/PROTOCOL.md section 2): curl, `requests` and the Worker send the body the app sends on
`ai/run`; the `requests` snippet reads every answer shape. The `openai` snippet turns the body into the
endpoint it calls: chat completions for chat models, `client.responses.create` (`input`, `instructions`,
`reasoning: {effort}`) for Responses-shaped models such as gpt-oss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from cfai.client import GatewayOptions
from cfai.config import CLOUDFLARE_API_BASE, CLOUDFLARE_GATEWAY_BASE, ConfigError, Connection

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
GATEWAY_TOKEN_ENV = "CLOUDFLARE_GATEWAY_TOKEN"
SNIPPET_TIMEOUT_S = 120

SnippetRoute = Literal["direct", "gateway", "unified"]
SNIPPET_ROUTES: tuple[SnippetRoute, ...] = ("direct", "gateway", "unified")
GATEWAY_ID_HEADER = "cf-aig-gateway-id"
GATEWAY_AUTH_HEADER = "cf-aig-authorization"
# What the Worker names when the app's gateway exists only in the local emulator.
PLACEHOLDER_GATEWAY_ID = "YOUR_GATEWAY_ID"

RESPONSES_SHAPE = "responses"
KNOWN_SHAPES = ("classic", "chat_completion", RESPONSES_SHAPE)

# Body fields each OpenAI SDK method takes as keyword arguments; the rest go through `extra_body`.
OPENAI_NATIVE = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "frequency_penalty",
                 "presence_penalty", "response_format", "reasoning_effort", "stop", "tools", "tool_choice",
                 "stream_options")
RESPONSES_NATIVE = ("temperature", "top_p")
# Fields the conversions below read themselves (never passed through as they are).
_CHAT_CONVERTED = ("model", "messages", "prompt", "raw", "stream", "input", "instructions", "reasoning",
                   "max_output_tokens")
_RESPONSES_CONVERTED = ("model", "messages", "prompt", "raw", "stream", "input", "instructions", "reasoning",
                        "reasoning_effort", "max_tokens", "max_completion_tokens", "max_output_tokens")

LANGUAGES = {"curl": "bash", "python": "python", "openai": "python", "worker": "javascript"}
TITLES = {"curl": "curl", "python": "Python (requests)", "openai": "OpenAI SDK", "worker": "Worker (env.AI)"}


def sh_quote(value: str) -> str:
    """Single-quote for POSIX shells, always (readable and safe for JSON with quotes, $ and newlines)."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


# --- routes ---------------------------------------------------------------------------------------------
def check_route(route: str) -> SnippetRoute:
    if route not in SNIPPET_ROUTES:
        raise ValueError(f"Unknown route {route!r}: use one of {', '.join(SNIPPET_ROUTES)}.")
    return route  # narrowed by the membership test


def _gateway_id(connection: Connection) -> str:
    if not connection.gateway_id:
        raise ConfigError("gateway_id", "Set a Gateway ID to use the gateway or unified route.")
    return connection.gateway_id


def request_url(connection: Connection, route: str, model: str) -> str:
    """Where curl, `requests` and the app send the body. The unified route is the account's own
    `ai/run/{model}`: the `cf-aig-gateway-id` header is what routes it through the gateway."""
    route = check_route(route)
    if route == "gateway":
        return connection.run_url(model, "gateway")
    if route == "unified":
        _gateway_id(connection)
    return connection.run_url(model, "direct")


def openai_base_url(connection: Connection, route: str) -> str:
    """The `base_url` to give the `openai` SDK on `route`."""
    route = check_route(route)
    if route == "gateway":
        return connection.openai_base_url("gateway")
    if route == "unified":
        _gateway_id(connection)
    return connection.openai_base_url("direct")


def gateway_headers(connection: Connection, route: str, gateway: GatewayOptions | None) -> dict[str, str]:
    """The cf-aig-* headers the request carries, without any authorization: the gateway id on the unified
    route, and the gateway's options on both gateway routes. None on the direct route."""
    route = check_route(route)
    headers: dict[str, str] = {}
    if route == "unified":
        headers[GATEWAY_ID_HEADER] = _gateway_id(connection)
    if route != "direct" and gateway is not None:
        headers.update(gateway.headers())
    return headers


def gateway_token_env(connection: Connection, route: str) -> str | None:
    """The env var whose token goes in `cf-aig-authorization`, or None when the route takes none.

    Only the AI Gateway URL route takes the header. Gateways are authenticated by default (the `default`
    gateway is) and an open gateway accepts the header too (`authentication.mdx`), so it is always sent
    there: the separate gateway token when one is configured, else the Cloudflare API token."""
    if check_route(route) != "gateway":
        return None
    return GATEWAY_TOKEN_ENV if connection.gateway_token else TOKEN_ENV


def _emulator_root(connection: Connection) -> str:
    base = connection.api_base_url.rstrip("/")
    return base.removesuffix("/client/v4")


def _local_note(connection: Connection, route: str, comment: str) -> list[str]:
    """Local mode: say the URLs are the emulator's, what Cloudflare's are, and what the gateway id is."""
    if not connection.is_local:
        return []
    lines = [
        f"{comment} Local emulator: this URL is this app's stand-in at {_emulator_root(connection)}, not Cloudflare;",
        f"{comment} it accepts any ${TOKEN_ENV}. On Cloudflare: {CLOUDFLARE_API_BASE}",
        f"{comment} (AI Gateway: {CLOUDFLARE_GATEWAY_BASE}), with your account id instead of "
        f"{connection.account_id!r}.",
    ]
    if route != "direct":
        lines.append(f"{comment} Gateway {connection.gateway_id!r} exists only in the emulator: on your account use "
                     "one you created (or 'default').")
    return lines


def _is_stream(body: Mapping[str, Any]) -> bool:
    return bool(body.get("stream"))


# --- shapes ---------------------------------------------------------------------------------------------
def is_responses_body(body: Mapping[str, Any]) -> bool:
    """A Responses-API body (`input`, no `messages` or `prompt`), as gpt-oss takes on ai/run."""
    return "input" in body and "messages" not in body and "prompt" not in body


def snippet_shape(body: Mapping[str, Any], shape: str | None = None) -> str:
    """The model's response shape: what the catalogue said, else what the body shows (classic otherwise)."""
    if shape in KNOWN_SHAPES:
        return shape
    return RESPONSES_SHAPE if is_responses_body(body) else "classic"


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def chat_messages(body: Mapping[str, Any]) -> list[Any]:
    """The chat `messages` a body stands for: its own, its `prompt` as one user message, or a Responses
    `input` with `instructions` as the system message."""
    if "messages" in body:
        return list(body["messages"] or [])
    if "prompt" in body:
        return [{"role": "user", "content": body["prompt"]}]
    messages: list[Any] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    raw = body.get("input")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                role = "system" if item.get("role") == "developer" else item.get("role", "user")
                messages.append({"role": role, "content": _text(item.get("content"))})
    elif raw is not None:
        messages.append({"role": "user", "content": _text(raw)})
    return messages


def responses_input(body: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(`instructions`, `input`) for the Responses API: a leading system message becomes the instructions,
    a lone user message a plain string, anything longer the list of messages."""
    if is_responses_body(body):
        return body.get("instructions"), body["input"]
    messages = chat_messages(body)
    instructions: str | None = None
    if messages and isinstance(messages[0], Mapping) and messages[0].get("role") == "system":
        instructions, messages = _text(messages[0].get("content")), messages[1:]
    if (len(messages) == 1 and isinstance(messages[0], Mapping) and messages[0].get("role") == "user"
            and isinstance(messages[0].get("content"), str)):
        return instructions, messages[0]["content"]
    return instructions, [{"role": m.get("role"), "content": m.get("content")} for m in messages
                          if isinstance(m, Mapping)]


def _reasoning_effort(body: Mapping[str, Any]) -> Any:
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
        return reasoning["effort"]
    return body.get("reasoning_effort")


def chat_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    """`chat.completions.create` keyword arguments (without model and stream) for `body`."""
    kwargs: dict[str, Any] = {"messages": chat_messages(body)}
    if body.get("max_tokens") is None and body.get("max_output_tokens") is not None:
        kwargs["max_tokens"] = body["max_output_tokens"]
    effort = _reasoning_effort(body)
    if effort is not None:
        kwargs["reasoning_effort"] = effort
    kwargs.update({k: body[k] for k in OPENAI_NATIVE if body.get(k) is not None and k not in kwargs})
    extra = {k: v for k, v in body.items()
             if k not in (*OPENAI_NATIVE, *_CHAT_CONVERTED) and v is not None}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def responses_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    """`responses.create` keyword arguments (without model and stream): `input`, `instructions`,
    `reasoning: {effort}`, `max_output_tokens`; what the Responses API has no name for goes in extra_body."""
    instructions, model_input = responses_input(body)
    kwargs: dict[str, Any] = {}
    if instructions is not None:
        kwargs["instructions"] = instructions
    kwargs["input"] = model_input
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping):
        kwargs["reasoning"] = dict(reasoning)
    elif body.get("reasoning_effort") is not None:
        kwargs["reasoning"] = {"effort": body["reasoning_effort"]}
    budget = next((body[k] for k in ("max_output_tokens", "max_tokens", "max_completion_tokens")
                   if body.get(k) is not None), None)
    if budget is not None:
        kwargs["max_output_tokens"] = budget
    kwargs.update({k: body[k] for k in RESPONSES_NATIVE if body.get(k) is not None})
    extra = {k: v for k, v in body.items()
             if k not in (*RESPONSES_NATIVE, *_RESPONSES_CONVERTED) and v is not None}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def uses_responses_api(route: str, body: Mapping[str, Any], shape: str | None) -> bool:
    """Whether the OpenAI SDK snippet calls `client.responses.create`: for Responses-shaped models, on the
    routes that document `/ai/v1/responses` (direct and unified). AI Gateway's Workers AI provider URL
    documents only `/workers-ai/v1/chat/completions`, so the gateway route asks such models through it."""
    return snippet_shape(body, shape) == RESPONSES_SHAPE and check_route(route) != "gateway"


# --- curl -----------------------------------------------------------------------------------------------
def curl_snippet(
    connection: Connection, route: str, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None, *, shape: str | None = None,
) -> str:
    lines = _local_note(connection, route, "#")
    args = [f"curl {'-N ' if _is_stream(body) else ''}-X POST {sh_quote(request_url(connection, route, model))}"]
    # Double quotes on purpose: the shell expands the variable, the value never appears in the snippet.
    args.append(f'-H "Authorization: Bearer ${TOKEN_ENV}"')
    gateway_env = gateway_token_env(connection, route)
    if gateway_env:
        args.append(f'-H "{GATEWAY_AUTH_HEADER}: Bearer ${gateway_env}"')
    args.append(f"-H {sh_quote('Content-Type: application/json')}")
    args += [f"-H {sh_quote(f'{k}: {v}')}" for k, v in gateway_headers(connection, route, gateway).items()]
    args.append(f"-d {sh_quote(json.dumps(body, indent=2, ensure_ascii=False))}")
    lines.append(" \\\n  ".join(args))
    return "\n".join(lines) + "\n"


# --- literals -------------------------------------------------------------------------------------------
LINE_WIDTH = 88


def literal(value: Any, lang: str = "python", indent: int = 0) -> str:
    """`value` as a Python or JavaScript literal, on one line when it fits, else one item per line.
    Strings go through json.dumps: its escapes are valid in both languages."""
    flat = _flat_literal(value, lang)
    if indent + len(flat) <= LINE_WIDTH or not isinstance(value, Mapping | list | tuple) or not value:
        return flat
    step = 4 if lang == "python" else 2  # each language's usual indent
    inner = " " * (indent + step)
    if isinstance(value, Mapping):
        items = [f"{inner}{_key(k, lang)}: {literal(v, lang, indent + step)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{inner}{literal(v, lang, indent + step)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


def _key(key: Any, lang: str) -> str:
    if lang == "javascript" and isinstance(key, str) and key.isidentifier():
        return key
    return json.dumps(str(key), ensure_ascii=False)


def _flat_literal(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return ("True" if value else "False") if lang == "python" else ("true" if value else "false")
    if value is None:
        return "None" if lang == "python" else "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k, lang)}: {_flat_literal(v, lang)}" for k, v in value.items())
        return ("{" + items + "}") if lang == "python" or not items else ("{ " + items + " }")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flat_literal(v, lang) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _py_literal(value: Any, indent: int = 0) -> str:
    return literal(value, "python", indent)


def _py_headers(connection: Connection, route: str, gateway: GatewayOptions | None,
                *, with_api_auth: bool) -> list[str]:
    """Lines of a Python dict literal; authorization values read from the environment."""
    entries: list[str] = []
    if with_api_auth:
        entries.append(f'"Authorization": f"Bearer {{os.environ[\'{TOKEN_ENV}\']}}",')
    gateway_env = gateway_token_env(connection, route)
    if gateway_env:
        entries.append(f'"{GATEWAY_AUTH_HEADER}": f"Bearer {{os.environ[\'{gateway_env}\']}}",')
    entries += [f"{_py_literal(k)}: {_py_literal(v)}," for k, v in gateway_headers(connection, route, gateway).items()]
    return entries


# Printing streamed pieces, shared by both Python snippets: a heading only when the model reasons.
_PRINT_PIECES = '''
printing = None  # the part being printed: "reasoning" or "answer"
for kind, text in stream_pieces():
    if not text:
        continue
    if kind != printing and "reasoning" in (kind, printing):
        print(("\\n\\n" if printing else "") + kind.capitalize() + ":")
    printing = kind
    print(text, end="", flush=True)
print()
'''.strip("\n").splitlines()

_PRINT_ANSWER = '''
if reasoning:
    print("Reasoning:", reasoning, "", "Answer:", sep="\\n")
print(answer or "(no answer text: max_tokens may have run out while the model was reasoning)")
'''.strip("\n").splitlines()


# --- Python requests ------------------------------------------------------------------------------------
_READ_ANSWER = '''
def read_answer(result):
    """(reasoning, answer) from any Workers AI text-generation answer."""
    if "response" in result:  # classic Workers AI: {"response": ..., "usage": ...}
        text = result["response"]
        if not isinstance(text, str):  # JSON mode: the answer is an object
            return "", json.dumps(text)
        reasoning, closed, answer = text.rpartition("</think>")  # DeepSeek-R1, QwQ: reasoning inline
        return (reasoning.replace("<think>", "").strip(), answer.strip()) if closed else ("", text)
    if "choices" in result:  # OpenAI chat completion (glm-4.7-flash)
        message = result["choices"][0]["message"]
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        return reasoning, message.get("content") or ""
    reasoning = answer = ""  # OpenAI Responses (gpt-oss): reasoning and message items in "output"
    for item in result.get("output", []):
        for part in item.get("content") or []:
            if part.get("type") == "reasoning_text":
                reasoning += part["text"]
            elif part.get("type") == "output_text":
                answer += part["text"]
    return reasoning, answer
'''.strip("\n").splitlines()

_EVENT_PIECES = '''
def event_pieces(event):
    """(kind, text) pairs of one streamed event, kind "reasoning" or "answer", in any shape."""
    if not isinstance(event, dict):
        return []
    if isinstance(event.get("response"), str):  # classic (R1 and QwQ reasoning ends in </think>)
        return [("answer", event["response"])]
    if event.get("choices"):  # OpenAI chat-completion chunks
        delta = event["choices"][0].get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        return [("reasoning", reasoning), ("answer", delta.get("content"))]
    if event.get("type") == "response.reasoning_text.delta":  # OpenAI Responses events (gpt-oss)
        return [("reasoning", event["delta"])]
    if event.get("type") == "response.output_text.delta":
        return [("answer", event["delta"])]
    return []
'''.strip("\n").splitlines()


def python_snippet(
    connection: Connection, route: str, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None, *, shape: str | None = None,
) -> str:
    stream = _is_stream(body)
    lines = _local_note(connection, route, "#")
    lines += ["import json", "import os", "", "import requests", ""]
    lines.append(f"url = {_py_literal(request_url(connection, route, model))}")
    lines.append("headers = {")
    lines += ["    " + e for e in _py_headers(connection, route, gateway, with_api_auth=True)]
    lines.append("}")
    lines.append(f"body = {_py_literal(dict(body))}")
    lines += ["", ""]
    if stream:
        lines += [*_EVENT_PIECES, "", "",
                  "def stream_pieces():",
                  f"    with requests.post(url, headers=headers, json=body, stream=True, "
                  f"timeout={SNIPPET_TIMEOUT_S}) as response:",
                  "        if not response.ok:",
                  '            raise SystemExit(f"HTTP {response.status_code}: {response.text}")',
                  "        # Server-sent events: 'data: {...}' lines, ending with 'data: [DONE]'.",
                  "        for line in response.iter_lines(chunk_size=None):",
                  '            data = line[5:].strip() if line.startswith(b"data:") else b""',
                  '            if data and data != b"[DONE]":',
                  "                yield from event_pieces(json.loads(data))",
                  "", "", *_PRINT_PIECES]
    else:
        lines += [*_READ_ANSWER, "", "",
                  f"response = requests.post(url, headers=headers, json=body, timeout={SNIPPET_TIMEOUT_S})",
                  "if not response.ok:",
                  '    raise SystemExit(f"HTTP {response.status_code}: {response.text}")',
                  "data = response.json()",
                  'reasoning, answer = read_answer(data.get("result", data))  # ai/run wraps the answer in "result"',
                  *_PRINT_ANSWER]
    return "\n".join(lines) + "\n"


# --- openai SDK -----------------------------------------------------------------------------------------
def _py_call(name: str, model: str, kwargs: Mapping[str, Any], stream: bool) -> list[str]:
    args = [f"    model={_py_literal(model)},"]
    args += [f"    {k}={_py_literal(v, 4)}," for k, v in kwargs.items()]
    if stream:
        args.append("    stream=True,")
    return [f"{name}(", *args, ")"]


def openai_snippet(
    connection: Connection, route: str, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None, *, shape: str | None = None,
) -> str:
    stream = _is_stream(body)
    responses_api = uses_responses_api(route, body, shape)
    lines = _local_note(connection, route, "#")
    lines += ["import os", "", "from openai import OpenAI", ""]
    lines += [
        "client = OpenAI(",
        f"    base_url={_py_literal(openai_base_url(connection, route))},",
        f'    api_key=os.environ["{TOKEN_ENV}"],',
    ]
    header_entries = _py_headers(connection, route, gateway, with_api_auth=False)
    if header_entries:
        lines += ["    default_headers={", *("        " + e for e in header_entries), "    },"]
    lines += [f"    timeout={SNIPPET_TIMEOUT_S},", ")"]
    if "prompt" in body and not responses_api:
        lines.append("# The OpenAI-compatible endpoint takes messages: the prompt goes as one user message.")
    if body.get("raw"):
        lines.append("# `raw` (no chat template) exists only on ai/run; it is left out here.")
    if snippet_shape(body, shape) == RESPONSES_SHAPE and not responses_api:
        lines.append("# AI Gateway's Workers AI URL documents the chat-completions path only, so this model is "
                     "asked through it here;")
        lines.append("# the direct and unified routes use the Responses API (client.responses.create).")
    if responses_api:
        lines += _py_call("response = client.responses.create", model, responses_kwargs(body), stream)
        if stream:
            lines += ["", "", "def stream_pieces():",
                      "    for event in response:",
                      '        if event.type == "response.reasoning_text.delta":',
                      '            yield "reasoning", event.delta',
                      '        elif event.type == "response.output_text.delta":',
                      '            yield "answer", event.delta',
                      "", "", *_PRINT_PIECES]
        else:
            lines += ['reasoning = "".join(part.text for item in response.output if item.type == "reasoning"',
                      "                    for part in item.content or [])",
                      "answer = response.output_text",
                      *_PRINT_ANSWER]
        return "\n".join(lines) + "\n"
    lines += _py_call("completion = client.chat.completions.create", model, chat_kwargs(body), stream)
    if stream:
        lines += ["", "", "def stream_pieces():",
                  "    for chunk in completion:",
                  "        if chunk.choices:",
                  "            delta = chunk.choices[0].delta",
                  "            # Workers AI's reasoning models send reasoning_content (not an OpenAI SDK field).",
                  '            yield "reasoning", getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)',
                  '            yield "answer", delta.content',
                  "", "", *_PRINT_PIECES]
    else:
        lines += ["message = completion.choices[0].message",
                  "# Workers AI's reasoning models send reasoning_content (not an OpenAI SDK field).",
                  'reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)',
                  "answer = message.content",
                  *_PRINT_ANSWER]
    return "\n".join(lines) + "\n"


# --- Worker binding -------------------------------------------------------------------------------------
def worker_gateway_options(connection: Connection, gateway: GatewayOptions | None) -> dict[str, Any]:
    """The binding's `gateway` object: the same options as the cf-aig-* headers, in camelCase. In local mode
    the id is a placeholder: the binding calls Cloudflare, where the emulator's gateways do not exist."""
    options: dict[str, Any] = {"id": PLACEHOLDER_GATEWAY_ID if connection.is_local else connection.gateway_id}
    if gateway is None:
        return options
    if gateway.skip_cache:
        options["skipCache"] = True
    if gateway.cache_ttl is not None:
        options["cacheTtl"] = gateway.cache_ttl
    if gateway.cache_key:
        options["cacheKey"] = gateway.cache_key
    if gateway.metadata:
        options["metadata"] = dict(gateway.metadata)
    if gateway.collect_log is not None:
        options["collectLog"] = gateway.collect_log
    if gateway.event_id:
        options["eventId"] = gateway.event_id
    if gateway.request_timeout_ms is not None:
        options["requestTimeoutMs"] = gateway.request_timeout_ms
    return options


def _js_literal(value: Any, indent: int) -> str:
    return literal(value, "javascript", indent)


def worker_snippet(
    connection: Connection, route: str, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None, *, shape: str | None = None,
) -> str:
    route = check_route(route)
    lines = ['// wrangler.toml: [ai] binding = "AI". The binding authenticates as the Worker\'s account.']
    if connection.is_local:
        lines.append("// The binding always calls Cloudflare from your Worker, never this app's local emulator.")
    call_args = [f"      {json.dumps(model)},", f"      {_js_literal(dict(body), 6)},"]
    if route != "direct":
        _gateway_id(connection)
        lines.append("// Through AI Gateway: the `gateway` option does what the gateway URL or cf-aig-gateway-id "
                     "does over REST.")
        if connection.is_local:
            lines.append(f"// {PLACEHOLDER_GATEWAY_ID}: a gateway on your account ('default' is created on first "
                         f"use); {connection.gateway_id!r} exists only in the emulator.")
        call_args.append(f"      {_js_literal({'gateway': worker_gateway_options(connection, gateway)}, 6)},")
    lines += [
        "export default {",
        "  async fetch(request, env) {",
        "    const answer = await env.AI.run(",
        *call_args,
        "    );",
    ]
    if _is_stream(body):
        lines.append('    return new Response(answer, { headers: { "content-type": "text/event-stream" } });')
    else:
        lines.append("    return Response.json(answer);")
    lines += ["  },", "};"]
    return "\n".join(lines) + "\n"


SNIPPET_BUILDERS = {"curl": curl_snippet, "python": python_snippet, "openai": openai_snippet, "worker": worker_snippet}


def all_snippets(
    connection: Connection, route: str, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None, *, shape: str | None = None,
) -> dict[str, str]:
    """Every snippet, keyed curl / python / openai / worker (see TITLES and LANGUAGES). `shape` is the
    model's response shape when the catalogue knows it (classic, chat_completion, responses)."""
    return {name: build(connection, route, model, body, gateway, shape=shape)
            for name, build in SNIPPET_BUILDERS.items()}

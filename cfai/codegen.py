"""The current request as code to copy: curl, Python `requests`, the `openai` SDK and a Worker binding.

Pure functions of (connection, route, model, body, gateway options). The token is never read here: the
snippets always say `$CLOUDFLARE_API_TOKEN`, `os.environ[...]` or use the Worker's `env`, so a snippet is
safe to paste anywhere. Local mode gives the emulator's URLs, Cloudflare mode the real ones with the
account id (an identifier, not a secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cfai.client import GatewayOptions
from cfai.config import Connection, Route

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
GATEWAY_TOKEN_ENV = "CLOUDFLARE_GATEWAY_TOKEN"
SNIPPET_TIMEOUT_S = 120

# Body fields the OpenAI SDK accepts as keyword arguments; the rest go through `extra_body`.
OPENAI_NATIVE = ("max_tokens", "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
                 "response_format")
LANGUAGES = {"curl": "bash", "python": "python", "openai": "python", "worker": "javascript"}
TITLES = {"curl": "curl", "python": "Python (requests)", "openai": "OpenAI SDK", "worker": "Worker (env.AI)"}


def sh_quote(value: str) -> str:
    """Single-quote for POSIX shells, always (readable and safe for JSON with quotes, $ and newlines)."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def request_url(connection: Connection, route: Route, model: str) -> str:
    return connection.run_url(model, route)


def gateway_headers(connection: Connection, route: Route, gateway: GatewayOptions | None) -> dict[str, str]:
    """The cf-aig-* headers the request carries (gateway route only), without any authorization."""
    if route != "gateway" or gateway is None:
        return {}
    return dict(gateway.headers())


def _needs_gateway_auth(connection: Connection, route: Route) -> bool:
    return route == "gateway" and bool(connection.gateway_token)


def _local_note(connection: Connection, comment: str) -> list[str]:
    if not connection.is_local:
        return []
    return [f"{comment} Local emulator: this URL is the app's own stand-in for Cloudflare; set {TOKEN_ENV} "
            "to any value."]


def _is_stream(body: Mapping[str, Any]) -> bool:
    return bool(body.get("stream"))


# --- curl -----------------------------------------------------------------------------------------------
def curl_snippet(
    connection: Connection, route: Route, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None,
) -> str:
    lines = _local_note(connection, "#")
    args = [f"curl {'-N ' if _is_stream(body) else ''}-X POST {sh_quote(request_url(connection, route, model))}"]
    # Double quotes on purpose: the shell expands the variable, the value never appears in the snippet.
    args.append(f'-H "Authorization: Bearer ${TOKEN_ENV}"')
    if _needs_gateway_auth(connection, route):
        args.append(f'-H "cf-aig-authorization: Bearer ${GATEWAY_TOKEN_ENV}"')
    args.append(f"-H {sh_quote('Content-Type: application/json')}")
    args += [f"-H {sh_quote(f'{k}: {v}')}" for k, v in gateway_headers(connection, route, gateway).items()]
    args.append(f"-d {sh_quote(json.dumps(body, indent=2, ensure_ascii=False))}")
    lines.append(" \\\n  ".join(args))
    return "\n".join(lines) + "\n"


# --- Python requests ------------------------------------------------------------------------------------
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


def _py_headers(connection: Connection, route: Route, gateway: GatewayOptions | None,
                *, with_api_auth: bool) -> list[str]:
    """Lines of a Python dict literal; authorization values read from the environment."""
    entries: list[str] = []
    if with_api_auth:
        entries.append(f'"Authorization": f"Bearer {{os.environ[\'{TOKEN_ENV}\']}}",')
    if _needs_gateway_auth(connection, route):
        entries.append(f'"cf-aig-authorization": f"Bearer {{os.environ[\'{GATEWAY_TOKEN_ENV}\']}}",')
    entries += [f"{_py_literal(k)}: {_py_literal(v)}," for k, v in gateway_headers(connection, route, gateway).items()]
    return entries


def python_snippet(
    connection: Connection, route: Route, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None,
) -> str:
    stream = _is_stream(body)
    lines = _local_note(connection, "#")
    lines += (["import json", "import os"] if stream else ["import os"]) + ["", "import requests", ""]
    lines.append(f"url = {_py_literal(request_url(connection, route, model))}")
    lines.append("headers = {")
    lines += ["    " + e for e in _py_headers(connection, route, gateway, with_api_auth=True)]
    lines.append("}")
    lines.append(f"body = {_py_literal(dict(body))}")
    lines.append("")
    if stream:
        lines += [
            f"with requests.post(url, headers=headers, json=body, stream=True, timeout={SNIPPET_TIMEOUT_S}) as response:",
            "    response.raise_for_status()",
            "    # Server-sent events: 'data: {...}' lines, ending with 'data: [DONE]'.",
            "    for line in response.iter_lines(chunk_size=None):",
            '        if line.startswith(b"data: ") and line != b"data: [DONE]":',
            "            event = json.loads(line[6:])",
            '            print(event.get("response") or "", end="", flush=True)',
            "print()",
        ]
    else:
        lines += [
            f"response = requests.post(url, headers=headers, json=body, timeout={SNIPPET_TIMEOUT_S})",
            "response.raise_for_status()",
            'print(response.json()["result"]["response"])',
        ]
    return "\n".join(lines) + "\n"


# --- openai SDK -----------------------------------------------------------------------------------------
def openai_snippet(
    connection: Connection, route: Route, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None,
) -> str:
    stream = _is_stream(body)
    lines = _local_note(connection, "#")
    lines += ["import os", "", "from openai import OpenAI", ""]
    lines += [
        "client = OpenAI(",
        f"    base_url={_py_literal(connection.openai_base_url(route))},",
        f'    api_key=os.environ["{TOKEN_ENV}"],',
        f"    timeout={SNIPPET_TIMEOUT_S},",
        ")",
    ]
    if "prompt" in body:
        lines.append("# The OpenAI-compatible endpoint takes messages: the prompt goes as one user message.")
        if body.get("raw"):
            lines.append("# `raw` (no chat template) exists only on ai/run; it is left out here.")
        messages: Any = [{"role": "user", "content": body["prompt"]}]
    else:
        messages = body.get("messages", [])
    args = [f"model={_py_literal(model)},", f"messages={_py_literal(messages, 4)},"]
    args += [f"{k}={_py_literal(body[k], 4)}," for k in OPENAI_NATIVE if body.get(k) is not None]
    extra = {k: v for k, v in body.items()
             if k not in (*OPENAI_NATIVE, "messages", "prompt", "stream", "raw") and v is not None}
    if extra:
        args.append(f"extra_body={_py_literal(extra, 4)},")
    header_entries = _py_headers(connection, route, gateway, with_api_auth=False)
    if header_entries:
        args.append("extra_headers={")
        args += ["    " + e for e in header_entries]
        args.append("},")
    if stream:
        args.append("stream=True,")
    lines.append("completion = client.chat.completions.create(")
    lines += ["    " + a for a in args]
    lines.append(")")
    if stream:
        lines += [
            "for chunk in completion:",
            "    if chunk.choices:",
            '        print(chunk.choices[0].delta.content or "", end="", flush=True)',
            "print()",
        ]
    else:
        lines.append("print(completion.choices[0].message.content)")
    return "\n".join(lines) + "\n"


# --- Worker binding -------------------------------------------------------------------------------------
def worker_gateway_options(connection: Connection, gateway: GatewayOptions | None) -> dict[str, Any]:
    """The binding's `gateway` object: the same options as the cf-aig-* headers, in camelCase."""
    options: dict[str, Any] = {"id": connection.gateway_id}
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
    connection: Connection, route: Route, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None,
) -> str:
    lines = ['// wrangler.toml: [ai] binding = "AI". The binding authenticates as the Worker\'s account.']
    if connection.is_local:
        lines.append("// The binding always calls Cloudflare; the local emulator serves this app only.")
    call_args = [f"      {json.dumps(model)},", f"      {_js_literal(dict(body), 6)},"]
    if route == "gateway":
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
    connection: Connection, route: Route, model: str, body: Mapping[str, Any],
    gateway: GatewayOptions | None = None,
) -> dict[str, str]:
    """Every snippet, keyed curl / python / openai / worker (see TITLES and LANGUAGES)."""
    return {name: build(connection, route, model, body, gateway) for name, build in SNIPPET_BUILDERS.items()}

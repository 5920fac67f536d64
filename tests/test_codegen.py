"""Code snippets: exact URLs and bodies, proper quoting, gateway options, and never the token."""

from __future__ import annotations

import ast
import json
import shlex

import pytest

from cfai.client import GatewayOptions
from cfai.codegen import (
    all_snippets,
    curl_snippet,
    literal,
    openai_snippet,
    python_snippet,
    sh_quote,
    worker_gateway_options,
    worker_snippet,
)
from cfai.config import Connection, local_connection

CANARY = "canary-TOKEN-5e1d0c9b7a"
GATEWAY_CANARY = "gw-canary-TOKEN-88aa11"
ACCOUNT = "0123456789abcdef0123456789abcdef"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
TRICKY = "It's a \"quote\", a $HOME, a `tick` and\na newline — ünïcode"
BODY = {"messages": [{"role": "user", "content": TRICKY}], "max_tokens": 64, "temperature": 0.2, "top_k": 5}
GATEWAY = GatewayOptions(cache_ttl=3600, skip_cache=True, cache_key="k 1", metadata={"user": "ann", "n": 2})


def cloud(**changes) -> Connection:
    base = Connection(mode="cloudflare", account_id=ACCOUNT, api_token=CANARY, gateway_id="my-gw",
                      gateway_token=GATEWAY_CANARY)
    return base.with_changes(**changes)


def _curl_parts(snippet: str) -> list[str]:
    return shlex.split("\n".join(line for line in snippet.splitlines() if not line.startswith("#")))


@pytest.mark.parametrize("route", ["direct", "gateway"])
@pytest.mark.parametrize("body", [BODY, {**BODY, "stream": True}, {"prompt": TRICKY, "raw": True}])
def test_no_snippet_ever_contains_a_token(route, body):
    for conn in (cloud(), local_connection("http://127.0.0.1:9", api_token=CANARY)):
        for name, text in all_snippets(conn, route, MODEL, body, GATEWAY).items():
            assert CANARY not in text and GATEWAY_CANARY not in text, name


def test_curl_is_valid_shell_with_the_exact_url_headers_and_body():
    parts = _curl_parts(curl_snippet(cloud(), "gateway", MODEL, BODY, GATEWAY))
    assert parts[:4] == ["curl", "-X", "POST", f"https://gateway.ai.cloudflare.com/v1/{ACCOUNT}/my-gw/workers-ai/{MODEL}"]
    headers = [parts[i + 1] for i, p in enumerate(parts) if p == "-H"]
    # shlex does not expand variables: the placeholder is what a shell would expand.
    assert "Authorization: Bearer $CLOUDFLARE_API_TOKEN" in headers
    assert "cf-aig-authorization: Bearer $CLOUDFLARE_GATEWAY_TOKEN" in headers
    assert {"cf-aig-cache-ttl: 3600", "cf-aig-skip-cache: true", "cf-aig-cache-key: k 1",
            'cf-aig-metadata: {"user":"ann","n":2}'} <= set(headers)
    assert json.loads(parts[parts.index("-d") + 1]) == BODY


def test_curl_direct_has_no_gateway_headers_and_streams_unbuffered():
    snippet = curl_snippet(cloud(), "direct", MODEL, {**BODY, "stream": True}, GATEWAY)
    parts = _curl_parts(snippet)
    assert parts[1] == "-N"
    assert f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/run/{MODEL}" in parts
    assert "cf-aig" not in snippet


def test_local_mode_uses_the_emulator_urls():
    conn = local_connection("http://127.0.0.1:8787")
    snippet = curl_snippet(conn, "gateway", MODEL, BODY, None)
    assert "http://127.0.0.1:8787/v1/local/demo/workers-ai/@cf/meta/llama-3.1-8b-instruct" in snippet
    assert snippet.startswith("# Local emulator")
    assert "http://127.0.0.1:8787/client/v4/accounts/local/ai/v1" in openai_snippet(conn, "direct", MODEL, BODY)


def test_sh_quote_round_trips():
    assert shlex.split(sh_quote(TRICKY)) == [TRICKY]


@pytest.mark.parametrize("value", [BODY, {"a": [1, 2.5, None, True, False, "x\ny"], "b": {}}, [], "ünï\"'"])
def test_python_literals_round_trip(value):
    for indent in (0, 4, 80):
        assert ast.literal_eval(literal(value, "python", indent)) == value


def _exec_header_and_body(snippet: str) -> tuple[dict, dict, str]:
    """Evaluate the literal assignments of the Python snippet without running the request."""
    tree = ast.parse(snippet)
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("url", "body"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    env = {"os": type("os", (), {"environ": {"CLOUDFLARE_API_TOKEN": "T", "CLOUDFLARE_GATEWAY_TOKEN": "G"}})}
    headers_node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "headers")
    headers = eval(compile(ast.Expression(headers_node.value), "<snippet>", "eval"), env)  # noqa: S307
    return headers, values["body"], values["url"]


@pytest.mark.parametrize("stream", [False, True])
def test_python_snippet_is_valid_python_with_the_exact_request(stream):
    body = {**BODY, "stream": True} if stream else BODY
    snippet = python_snippet(cloud(), "gateway", MODEL, body, GATEWAY)
    headers, sent_body, url = _exec_header_and_body(snippet)
    assert sent_body == body and url.endswith(f"/my-gw/workers-ai/{MODEL}")
    assert headers["Authorization"] == "Bearer T" and headers["cf-aig-authorization"] == "Bearer G"
    assert headers["cf-aig-cache-ttl"] == "3600"
    assert ("iter_lines" in snippet) == stream and "timeout=" in snippet


def test_openai_snippet_splits_native_and_extra_params():
    snippet = openai_snippet(cloud(), "gateway", MODEL, {**BODY, "repetition_penalty": 1.1, "stream": True}, GATEWAY)
    compile(snippet, "<snippet>", "exec")
    call = next(n for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "create")
    kwargs = {k.arg: k.value for k in call.keywords}
    assert ast.literal_eval(kwargs["model"]) == MODEL
    assert ast.literal_eval(kwargs["messages"]) == BODY["messages"]
    assert ast.literal_eval(kwargs["max_tokens"]) == 64 and ast.literal_eval(kwargs["temperature"]) == 0.2
    assert ast.literal_eval(kwargs["extra_body"]) == {"top_k": 5, "repetition_penalty": 1.1}
    assert ast.literal_eval(kwargs["stream"]) is True
    assert "extra_headers" in kwargs and 'base_url="https://gateway.ai.cloudflare.com/v1/' in snippet


def test_openai_snippet_turns_a_prompt_into_one_user_message():
    snippet = openai_snippet(cloud(), "direct", MODEL, {"prompt": "Hi", "raw": True, "max_tokens": 5})
    compile(snippet, "<snippet>", "exec")
    assert '[{"role": "user", "content": "Hi"}]' in snippet and "`raw`" in snippet
    assert "extra_headers" not in snippet


def test_worker_snippet_has_the_binding_call_and_gateway_options():
    snippet = worker_snippet(cloud(), "gateway", MODEL, BODY, GATEWAY)
    assert "env.AI.run(" in snippet and json.dumps(MODEL) in snippet
    assert worker_gateway_options(cloud(), GATEWAY) == {
        "id": "my-gw", "skipCache": True, "cacheTtl": 3600, "cacheKey": "k 1", "metadata": {"user": "ann", "n": 2}}
    assert "skipCache: true" in snippet and "cacheTtl: 3600" in snippet
    direct = worker_snippet(cloud(), "direct", MODEL, {**BODY, "stream": True})
    assert "gateway" not in direct and "text/event-stream" in direct

"""Code snippets: exact URLs and bodies, proper quoting, gateway options, and never the token."""

from __future__ import annotations

import ast
import json
import shlex

import pytest

from cfai.client import GatewayOptions
from cfai.codegen import (
    PLACEHOLDER_GATEWAY_ID,
    SNIPPET_ROUTES,
    all_snippets,
    chat_kwargs,
    curl_snippet,
    literal,
    openai_snippet,
    python_snippet,
    responses_kwargs,
    sh_quote,
    worker_gateway_options,
    worker_snippet,
)
from cfai.config import ConfigError, Connection, local_connection

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
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("url", "body"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    env = {"os": type("os", (), {"environ": {"CLOUDFLARE_API_TOKEN": "T", "CLOUDFLARE_GATEWAY_TOKEN": "G"}})}
    headers_node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "headers")
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
    assert "default_headers" in snippet and 'base_url="https://gateway.ai.cloudflare.com/v1/' in snippet


def test_openai_snippet_turns_a_prompt_into_one_user_message():
    snippet = openai_snippet(cloud(), "direct", MODEL, {"prompt": "Hi", "raw": True, "max_tokens": 5})
    compile(snippet, "<snippet>", "exec")
    assert '[{"role": "user", "content": "Hi"}]' in snippet and "`raw`" in snippet
    assert "default_headers" not in snippet


def test_worker_snippet_has_the_binding_call_and_gateway_options():
    snippet = worker_snippet(cloud(), "gateway", MODEL, BODY, GATEWAY)
    assert "env.AI.run(" in snippet and json.dumps(MODEL) in snippet
    assert worker_gateway_options(cloud(), GATEWAY) == {
        "id": "my-gw", "skipCache": True, "cacheTtl": 3600, "cacheKey": "k 1", "metadata": {"user": "ann", "n": 2}}
    assert "skipCache: true" in snippet and "cacheTtl: 3600" in snippet
    direct = worker_snippet(cloud(), "direct", MODEL, {**BODY, "stream": True})
    assert "gateway" not in direct and "text/event-stream" in direct


# --- issue 12 point 5: every shape, every route, the unified route, gateway auth, local mode ---------------
GPT_OSS = "@cf/openai/gpt-oss-120b"
CHAT_BODY = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TRICKY}],
             "max_tokens": 300, "temperature": 0.5, "reasoning_effort": "low"}


def _create_call(snippet: str) -> tuple[str, dict]:
    """The SDK call of an openai snippet: ("chat.completions" | "responses", its keyword arguments)."""
    call = next(n for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "create")
    owner = ast.unparse(call.func.value).removeprefix("client.")
    return owner, {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def _client_kwargs(snippet: str) -> dict:
    """The OpenAI(...) constructor's arguments, with os.environ reads evaluated against fake values."""
    call = next(n for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "OpenAI")
    env = {"os": type("os", (), {"environ": {"CLOUDFLARE_API_TOKEN": "T", "CLOUDFLARE_GATEWAY_TOKEN": "G"}})}
    return {k.arg: eval(compile(ast.Expression(k.value), "<snippet>", "eval"), env)  # noqa: S307
            for k in call.keywords}


def _headers_of_curl(snippet: str) -> dict[str, str]:
    parts = _curl_parts(snippet)
    return dict(p.split(": ", 1) for p in (parts[i + 1] for i, x in enumerate(parts) if x == "-H"))


def test_unified_route_is_ai_run_with_the_gateway_id_header_and_normal_auth():
    """The unified route: api.cloudflare.com ai/run/{model}, cf-aig-gateway-id and the cf-aig-* options,
    authenticated by Authorization alone (no cf-aig-authorization)."""
    conn = cloud()
    url = f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/run/{MODEL}"
    curl = curl_snippet(conn, "unified", MODEL, BODY, GATEWAY)
    assert _curl_parts(curl)[3] == url
    headers = _headers_of_curl(curl)
    assert headers["Authorization"] == "Bearer $CLOUDFLARE_API_TOKEN" and "cf-aig-authorization" not in headers
    assert headers["cf-aig-gateway-id"] == "my-gw" and headers["cf-aig-cache-ttl"] == "3600"
    assert headers["cf-aig-skip-cache"] == "true" and headers["cf-aig-metadata"] == '{"user":"ann","n":2}'

    py_headers, sent_body, py_url = _exec_header_and_body(python_snippet(conn, "unified", MODEL, BODY, GATEWAY))
    assert py_url == url and sent_body == BODY
    assert py_headers == {"Authorization": "Bearer T", "cf-aig-gateway-id": "my-gw", **GATEWAY.headers()}

    client = _client_kwargs(openai_snippet(conn, "unified", MODEL, BODY, GATEWAY))
    assert client["base_url"] == f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/v1"
    assert client["api_key"] == "T"
    assert client["default_headers"] == {"cf-aig-gateway-id": "my-gw", **GATEWAY.headers()}

    worker = worker_snippet(conn, "unified", MODEL, BODY, GATEWAY)  # the binding's gateway option (run in node:
    assert 'id: "my-gw"' in worker and "skipCache: true" in worker  # tests/test_snippets_run.py)


def test_unknown_route_and_missing_gateway_id_are_refused_clearly():
    with pytest.raises(ValueError, match="Unknown route 'gateway-skip'"):
        curl_snippet(cloud(), "gateway-skip", MODEL, BODY)
    for route in ("gateway", "unified"):
        for build in (curl_snippet, python_snippet, openai_snippet, worker_snippet):
            with pytest.raises(ConfigError, match="Gateway ID"):
                build(cloud(gateway_id=""), route, MODEL, BODY)


@pytest.mark.parametrize("gateway_token, env_var", [(GATEWAY_CANARY, "CLOUDFLARE_GATEWAY_TOKEN"),
                                                    (None, "CLOUDFLARE_API_TOKEN")])
def test_gateway_url_route_always_authenticates_to_the_gateway(gateway_token, env_var):
    """Gateways are authenticated by default: cf-aig-authorization goes on every gateway-URL snippet, from the
    separate gateway token's env var when one is configured, else the API token's. Never on other routes."""
    conn = cloud(gateway_token=gateway_token)
    fake = {"CLOUDFLARE_API_TOKEN": "T", "CLOUDFLARE_GATEWAY_TOKEN": "G"}
    assert _headers_of_curl(curl_snippet(conn, "gateway", MODEL, BODY))["cf-aig-authorization"] == f"Bearer ${env_var}"
    py_headers, _, _ = _exec_header_and_body(python_snippet(conn, "gateway", MODEL, BODY))
    assert py_headers["cf-aig-authorization"] == f"Bearer {fake[env_var]}"
    for shape in (None, "responses"):
        client = _client_kwargs(openai_snippet(conn, "gateway", GPT_OSS, BODY, shape=shape))
        assert client["default_headers"]["cf-aig-authorization"] == f"Bearer {fake[env_var]}"
    for route in ("direct", "unified"):
        for text in all_snippets(conn, route, MODEL, BODY, GATEWAY).values():
            assert "cf-aig-authorization" not in text
    for text in all_snippets(conn, "gateway", MODEL, BODY, GATEWAY).values():
        assert CANARY not in text and GATEWAY_CANARY not in text


def test_worker_in_local_mode_names_no_emulator_gateway():
    """The binding calls Cloudflare: the emulator's `demo` gateway does not exist there."""
    conn = local_connection("http://127.0.0.1:8787")
    for route in ("gateway", "unified"):
        worker = worker_snippet(conn, route, MODEL, BODY, GATEWAY)
        assert f'id: "{PLACEHOLDER_GATEWAY_ID}"' in worker and '"demo"' not in worker
        assert "// YOUR_GATEWAY_ID: a gateway on your account" in worker
        assert "never this app's local emulator" in worker
    assert worker_gateway_options(conn, None) == {"id": PLACEHOLDER_GATEWAY_ID}
    assert 'id: "my-gw"' in worker_snippet(cloud(), "gateway", MODEL, BODY)  # Cloudflare mode: the real id


@pytest.mark.parametrize("route", SNIPPET_ROUTES)
def test_local_snippets_say_where_they_point_and_never_call_the_emulator_cloudflare(route):
    conn = local_connection("http://127.0.0.1:8787")
    snippets = all_snippets(conn, route, MODEL, BODY, GATEWAY)
    for name in ("curl", "python", "openai"):
        text = snippets[name]
        head = [line for line in text.splitlines() if line.startswith("#")]
        assert head[0].startswith("# Local emulator: this URL is this app's stand-in at http://127.0.0.1:8787, "
                                  "not Cloudflare"), name
        assert any("https://api.cloudflare.com/client/v4" in line for line in head), name
        code = [line for line in text.splitlines() if not line.startswith("#")]
        # The emulator's base is only ever used as the emulator's; Cloudflare's only in the comments.
        assert any("http://127.0.0.1:8787" in line for line in code), name
        assert not any("cloudflare.com" in line for line in code), name
        assert ("exists only in the emulator" in text) == (route != "direct"), name
    # Cloudflare mode says nothing of an emulator.
    assert not any("emulator" in t.lower() for t in all_snippets(cloud(), route, MODEL, BODY, GATEWAY).values())


def test_openai_snippet_uses_the_responses_api_for_responses_models_where_it_is_documented():
    for route in ("direct", "unified"):
        owner, kwargs = _create_call(openai_snippet(cloud(), route, GPT_OSS, CHAT_BODY, shape="responses"))
        assert owner == "responses"
        assert kwargs == {"model": GPT_OSS, "instructions": "Be brief.", "input": TRICKY,
                          "reasoning": {"effort": "low"}, "max_output_tokens": 300, "temperature": 0.5}
    # The gateway URL documents chat completions only: the same request goes there, as a chat.
    owner, kwargs = _create_call(openai_snippet(cloud(), "gateway", GPT_OSS, CHAT_BODY, shape="responses"))
    assert owner == "chat.completions" and kwargs["messages"] == CHAT_BODY["messages"]
    assert kwargs["reasoning_effort"] == "low" and kwargs["max_tokens"] == 300
    # Chat models (and an unknown shape) use chat completions everywhere.
    for shape in ("chat_completion", "classic", None):
        owner, _ = _create_call(openai_snippet(cloud(), "direct", "@cf/zai-org/glm-4.7-flash", CHAT_BODY, shape=shape))
        assert owner == "chat.completions"


def test_a_responses_body_is_recognised_without_the_catalogue_and_converted_both_ways():
    body = {"input": [{"role": "developer", "content": "Terse."}, {"role": "user", "content": "Hi"}],
            "instructions": "Be brief.", "reasoning": {"effort": "high", "summary": "auto"}, "max_tokens": 50}
    owner, kwargs = _create_call(openai_snippet(cloud(), "direct", GPT_OSS, body))  # no shape given
    assert owner == "responses"
    assert kwargs == {"model": GPT_OSS, "instructions": "Be brief.", "input": body["input"],
                      "reasoning": {"effort": "high", "summary": "auto"}, "max_output_tokens": 50}
    chat = chat_kwargs(body)
    assert chat["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Terse."},
                                {"role": "user", "content": "Hi"}]
    assert chat["reasoning_effort"] == "high" and "extra_body" not in chat
    # A prompt is the input; a multi-turn chat keeps its turns; unknown fields travel in extra_body.
    assert responses_kwargs({"prompt": "Hi", "raw": True, "top_k": 5}) == {"input": "Hi", "extra_body": {"top_k": 5}}
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert responses_kwargs({"messages": turns})["input"] == turns


@pytest.mark.parametrize("route", SNIPPET_ROUTES)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("shape", ["classic", "chat_completion", "responses"])
def test_every_python_snippet_compiles_for_every_shape_and_route(route, stream, shape):
    body = {**CHAT_BODY, "stream": True} if stream else CHAT_BODY
    for conn in (cloud(), cloud(gateway_token=None), local_connection("http://127.0.0.1:8787")):
        for name in ("python", "openai"):
            compile(all_snippets(conn, route, GPT_OSS, body, GATEWAY, shape=shape)[name], f"<{name}>", "exec")

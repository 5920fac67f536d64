"""The "view as code" snippets, run for real: curl under bash, the Python ones under this venv's python (with
`requests` and `openai`), the Worker under node, against the session emulator and the contract fixtures.

Snippets are generated for Cloudflare (its URLs, a 32-hex account), then only the base URLs and the token env
vars are changed to reach 127.0.0.1, so what runs is what a user copies. The expected answer is what the
app's own client reads from the emulator for the same request (cfai.shapes), per model shape.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cfai import shapes
from cfai.client import Client, GatewayOptions
from cfai.codegen import all_snippets, worker_snippet
from cfai.config import CLOUDFLARE_API_BASE, CLOUDFLARE_GATEWAY_BASE, Connection, local_connection
from tests.replay_server import SHAPES, ReplayServer

ACCOUNT = "5eed0c0de5eed0c0de5eed0c0de5eed0"
GATEWAY_ID = "snippets-auth"  # created with authentication on, as Cloudflare's `default` gateway is
API_TOKEN = "snippet-test-token"
GATEWAY_TOKEN = "snippet-gateway-token"

CLASSIC, CHAT, RESPONSES, INLINE = ("@cf/meta/llama-3.1-8b-instruct", "@cf/zai-org/glm-4.7-flash",
                                    "@cf/openai/gpt-oss-120b", "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b")
SHAPE_OF = {CLASSIC: "classic", CHAT: "chat_completion", RESPONSES: "responses", INLINE: "classic"}
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Why cache model answers?"}]
BODIES = {
    CLASSIC: {"messages": MESSAGES, "max_tokens": 120, "temperature": 0.4},
    CHAT: {"messages": MESSAGES, "max_tokens": 600, "temperature": 0.7},
    RESPONSES: {"messages": MESSAGES, "max_tokens": 600, "reasoning_effort": "low"},
    INLINE: {"messages": MESSAGES, "max_tokens": 600},
}
OPTIONS = GatewayOptions(skip_cache=True, metadata={"from": "snippet-test"})
RUN_TIMEOUT_S = 60


def cloud_connection() -> Connection:
    """Cloudflare mode as a user has it, no separate gateway token (the API token authenticates the gateway)."""
    return Connection(mode="cloudflare", account_id=ACCOUNT, api_token=API_TOKEN, gateway_id=GATEWAY_ID)


def snippet_env() -> dict[str, str]:
    """This process's environment without Cloudflare settings or proxies, plus the tokens the snippets read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLOUDFLARE_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(CLOUDFLARE_API_TOKEN=API_TOKEN, CLOUDFLARE_GATEWAY_TOKEN=GATEWAY_TOKEN, NO_PROXY="127.0.0.1")
    return env


def to_local(text: str, base_url: str, api_base: str | None = None) -> str:
    """Point a Cloudflare snippet at `base_url`: only the two base URLs change, and at least one must."""
    out = text.replace(CLOUDFLARE_API_BASE, api_base or f"{base_url}/client/v4")
    out = out.replace(CLOUDFLARE_GATEWAY_BASE, f"{base_url}/v1")
    assert out != text, "the snippet named no Cloudflare base URL"
    return out


def run_snippets(snippets: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Run each snippet (curl under bash, the rest under python) at once; their stdout by name."""
    procs = {}
    for name, text in snippets.items():
        path = tmp_path / (f"snippet_{name}.sh" if name == "curl" else f"snippet_{name}.py")  # never "openai.py"
        path.write_text(text)
        cmd = ["bash", str(path)] if name == "curl" else [sys.executable, str(path)]
        procs[name] = subprocess.Popen(cmd, env=snippet_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, cwd=tmp_path)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{stderr}\n{stdout}\n---\n{snippets[name]}"
        out[name] = stdout
    return out


def read_curl_output(stdout: str, stream: bool, model: str) -> shapes.Answer:
    """What curl printed (the raw body or SSE), read by the app's one shape reader."""
    if not stream:
        return shapes.read_answer(json.loads(stdout), reasoning_first=model == INLINE)
    reader = shapes.StreamReader(reasoning_first=model == INLINE)
    for line in stdout.splitlines():
        if line.startswith("data:"):
            reader.feed(line[5:].strip())
    return reader.answer()


@pytest.fixture(scope="module")
def auth_gateway(emulator) -> str:
    """An authenticated gateway on the emulator, made through its gateway API (not created on first use)."""
    url = f"{emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways"
    resp = requests.post(url, json={"id": GATEWAY_ID, "authentication": True}, timeout=10)
    if resp.status_code != 200:  # already made by an earlier run in this session: switch it on again
        resp = requests.put(f"{url}/{GATEWAY_ID}", json={"authentication": True}, timeout=10)
    assert resp.ok and resp.json()["result"]["authentication"] is True, resp.text
    return GATEWAY_ID


@pytest.fixture(scope="module")
def expected(emulator):
    """Per model: the answer the app's client reads for the body on the direct route."""
    client = Client(local_connection(emulator.base_url))
    try:
        answers = {}
        for model, body in BODIES.items():
            result = client.run(model, body)
            result.raise_for_error()
            answers[model] = result.answer
            assert answers[model].text.strip(), (model, result.output)
        return answers
    finally:
        client.close()


def assert_printed(stdout: str, answer: shapes.Answer, what: str) -> None:
    assert answer.text.strip() in stdout, f"{what}: the answer is not in the output:\n{stdout}"
    if answer.reasoning:
        assert answer.reasoning.strip() in stdout, f"{what}: the reasoning is not in the output:\n{stdout}"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ["direct", "gateway", "unified"])
@pytest.mark.parametrize("model", [CLASSIC, CHAT, RESPONSES], ids=["classic", "chat", "responses"])
def test_curl_requests_and_openai_print_the_answer(emulator, auth_gateway, expected, tmp_path, model, route,
                                                   stream):
    body = {**BODIES[model], "stream": True} if stream else BODIES[model]
    snippets = all_snippets(cloud_connection(), route, model, body, OPTIONS, shape=SHAPE_OF[model])
    runnable = {name: to_local(snippets[name], emulator.base_url) for name in ("curl", "python", "openai")}
    out = run_snippets(runnable, tmp_path)
    answer = expected[model]
    curl = read_curl_output(out["curl"], stream, model)
    assert curl.text.strip() == answer.text.strip() and curl.reasoning.strip() == answer.reasoning.strip()
    assert_printed(out["python"], answer, "python")
    assert_printed(out["openai"], answer, "openai")
    if answer.reasoning:  # said apart, under headings, by both Python snippets
        for name in ("python", "openai"):
            assert out[name].index("Reasoning:") < out[name].index("Answer:") < out[name].index(answer.text.strip())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_inline_reasoning_model_prints_reasoning_and_answer(emulator, expected, tmp_path, stream):
    """DeepSeek-R1-distill (classic shape, reasoning inline before </think>), through the gateway URL."""
    body = {**BODIES[INLINE], "stream": True} if stream else BODIES[INLINE]
    conn = cloud_connection().with_changes(gateway_id="default")
    snippets = all_snippets(conn, "gateway", INLINE, body, None, shape="classic")
    out = run_snippets({n: to_local(snippets[n], emulator.base_url) for n in ("python", "openai")}, tmp_path)
    answer = expected[INLINE]
    assert answer.reasoning, "the emulator's R1 reasons"
    for name, stdout in out.items():
        assert_printed(stdout, answer, name)
    if not stream:
        assert "</think>" not in out["python"], "the whole answer is split at </think>"


def test_local_mode_snippets_run_unchanged(emulator, expected, tmp_path):
    """Local mode's snippets point at the emulator already (gateway `demo`): they run as shown."""
    conn = local_connection(emulator.base_url)
    for route in ("gateway", "unified"):
        snippets = all_snippets(conn, route, RESPONSES, BODIES[RESPONSES], OPTIONS, shape="responses")
        out = run_snippets({n: snippets[n] for n in ("curl", "python", "openai")}, tmp_path)
        assert read_curl_output(out["curl"], False, RESPONSES).text == expected[RESPONSES].text
        assert_printed(out["python"], expected[RESPONSES], f"python {route}")
        assert_printed(out["openai"], expected[RESPONSES], f"openai {route}")


def test_gateway_snippets_authenticate_with_the_gateway_token_when_one_is_set(tmp_path):
    """A strict emulator (one token): the gateway-token env var is what the gateway checks; the old snippets,
    without cf-aig-authorization, got 401 / 2009 from an authenticated gateway."""
    from cfai.emulator import start_emulator

    handle = start_emulator(host="127.0.0.1", port=0, speed=50, seed=1, api_token=GATEWAY_TOKEN,
                            rate_limits=False)
    try:
        base = handle.base_url
        made = requests.post(f"{base}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways",
                             headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                             json={"id": GATEWAY_ID, "authentication": True}, timeout=10)
        assert made.ok, made.text
        conn = cloud_connection().with_changes(gateway_token="held-by-the-server")
        snippets = all_snippets(conn, "gateway", CLASSIC, BODIES[CLASSIC], None, shape="classic")
        # The emulator knows one token: API calls must carry it too, so both env vars hold it here, and a
        # wrong gateway token is what fails.
        runnable = {n: to_local(snippets[n], base) for n in ("curl", "python", "openai")}
        env_ok = {**snippet_env(), "CLOUDFLARE_API_TOKEN": GATEWAY_TOKEN}
        for name, text in runnable.items():
            path = tmp_path / f"snippet_{name}.{'sh' if name == 'curl' else 'py'}"
            path.write_text(text)
            cmd = ["bash", str(path)] if name == "curl" else [sys.executable, str(path)]
            ok = subprocess.run(cmd, env=env_ok, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            assert ok.returncode == 0 and "2009" not in ok.stdout, (name, ok.stdout, ok.stderr)
            bad = subprocess.run(cmd, env={**env_ok, "CLOUDFLARE_GATEWAY_TOKEN": "wrong"}, capture_output=True,
                                 text=True, timeout=RUN_TIMEOUT_S)
            said = bad.stdout + bad.stderr  # curl prints the body; the openai SDK only the status
            assert "2009" in said or (name == "openai" and "Error code: 401" in said), (name, said)
            assert bad.returncode != 0 or name == "curl", (name, said)
    finally:
        handle.stop()


# --- the contract fixtures (tests/fixtures/shapes): bodies as Cloudflare documents them -------------------
# (fixture, the model's shape, streamed, the snippets whose endpoint answers that body). The classic body is
# ai/run's only: the openai snippet's chat-completions endpoint never answers it.
FIXTURE_CASES = [
    ("chat_completion_reasoning", "chat_completion", False, ("python", "openai")),
    ("classic_r1_inline_think", "classic", False, ("python",)),
    ("responses_reasoning_message", "responses", False, ("python", "openai")),
    ("chat_completion_stream_reasoning", "chat_completion", True, ("python", "openai")),
    ("responses_stream_events", "responses", True, ("python", "openai")),
]


@pytest.fixture(scope="module")
def replay():
    server = ReplayServer()
    yield server
    server.stop()


@pytest.mark.parametrize("fixture, shape, stream, names", FIXTURE_CASES, ids=[c[0] for c in FIXTURE_CASES])
def test_python_snippets_read_every_documented_shape(replay, tmp_path, fixture, shape, stream, names):
    body = {**BODIES[CHAT], "stream": True} if stream else BODIES[CHAT]
    snippets = all_snippets(cloud_connection(), "direct", RESPONSES, body, None, shape=shape)
    api_base = f"{replay.base_url}/shape/{fixture}"
    out = run_snippets({n: to_local(snippets[n], replay.base_url, api_base) for n in names}, tmp_path)
    want = SHAPES[fixture]["expect"]
    for name, stdout in out.items():
        assert want["text"] in stdout and want["reasoning"] in stdout, (name, stdout)
        assert stdout.index("Reasoning:") < stdout.index("Answer:"), (name, stdout)


# --- the Worker: valid JavaScript, and the call it makes ---------------------------------------------------
NODE = shutil.which("node")
# Imports each Worker module given, calls its fetch with a recording env.AI, prints what each call saw.
HARNESS = """
const seen = [];
for (const file of process.argv.slice(2)) {
  const mod = await import(file);
  const calls = [];
  const env = { AI: { run: async (...args) => {
    calls.push(args);
    if (args[1].stream) {
      return new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("data: [DONE]\\n\\n")); c.close(); } });
    }
    return { response: "hi" };
  } } };
  const res = await mod.default.fetch(new Request("http://worker.test/"), env);
  seen.push({ calls, status: res.status, type: res.headers.get("content-type"), body: await res.text() });
}
console.log(JSON.stringify(seen));
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("mode", ["cloudflare", "local"])
@pytest.mark.parametrize("route", ["direct", "gateway", "unified"])
def test_worker_is_valid_javascript_and_calls_the_binding_as_documented(tmp_path, mode, route):
    conn = cloud_connection() if mode == "cloudflare" else local_connection("http://127.0.0.1:9")
    cases, files = [], []
    for model in (CLASSIC, CHAT, RESPONSES, INLINE):
        for stream in (False, True):
            body = {**BODIES[model], "stream": True} if stream else BODIES[model]
            worker = tmp_path / f"worker_{len(files)}.mjs"
            worker.write_text(worker_snippet(conn, route, model, body, OPTIONS, shape=SHAPE_OF[model]))
            check = subprocess.run([NODE, "--check", str(worker)], capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, (check.stderr, worker.read_text())
            cases.append((model, body))
            files.append(worker.as_uri())
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS)
    run = subprocess.run([NODE, str(harness), *files], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for (model, body), seen in zip(cases, json.loads(run.stdout), strict=True):
        expected_args = [model, body]
        if route != "direct":
            gateway_id = GATEWAY_ID if mode == "cloudflare" else "YOUR_GATEWAY_ID"
            expected_args.append({"gateway": {"id": gateway_id, "skipCache": True,
                                              "metadata": {"from": "snippet-test"}}})
        assert seen["calls"] == [expected_args], model
        assert seen["status"] == 200
        if body.get("stream"):
            assert seen["type"] == "text/event-stream" and seen["body"] == "data: [DONE]\n\n"
        else:
            assert seen["type"].startswith("application/json") and json.loads(seen["body"]) == {"response": "hi"}

"""Real clients against the emulator with only the base URL changed: openai SDK, cloudflare SDK, curl."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from cfai.emulator.textgen import generate, parse_gen_request

ACCOUNT = "local"
TOKEN = "any-token"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"


def simulated_text(emulator, model: str, body: dict, openai: bool = False) -> str:
    """The deterministic simulator's answer to this body on this emulator (its seed), computed directly."""
    return generate(model, parse_gen_request(body, openai=openai), emulator.state.options.seed).response


@pytest.fixture(scope="module")
def openai_client(emulator):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai/v1", api_key=TOKEN,
                           max_retries=0, timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def cf(emulator):
    cloudflare = pytest.importorskip("cloudflare")
    client = cloudflare.Cloudflare(api_token=TOKEN, base_url=f"{emulator.base_url}/client/v4", max_retries=0,
                                   timeout=10)
    yield client
    client.close()


# --- openai -----------------------------------------------------------------------------------------
def test_openai_chat_plain(emulator, openai_client):
    messages = [{"role": "user", "content": "Explain how glaciers move"}]
    completion = openai_client.chat.completions.create(model=LLAMA, messages=messages, max_tokens=60)
    text = completion.choices[0].message.content
    assert text == simulated_text(emulator, LLAMA, {"model": LLAMA, "messages": messages, "max_tokens": 60}, True)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.model == LLAMA


def test_openai_chat_stream_matches_plain(openai_client):
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    plain = openai_client.chat.completions.create(model=LLAMA, messages=messages)
    parts, usage = [], None
    for chunk in openai_client.chat.completions.create(model=LLAMA, messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(parts) == plain.choices[0].message.content
    assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens


def test_openai_embeddings(openai_client):
    result = openai_client.embeddings.create(model="@cf/baai/bge-small-en-v1.5", input=["one", "two"])
    assert [len(d.embedding) for d in result.data] == [384, 384]


def test_openai_errors_are_raised(openai_client):
    openai = pytest.importorskip("openai")
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model="@cf/nobody/nothing", messages=[{"role": "user", "content": "x"}])


# --- cloudflare -----------------------------------------------------------------------------------
def test_cloudflare_ai_run_text_generation(emulator, cf):
    result = cf.ai.run(LLAMA, account_id=ACCOUNT, prompt="Tell me about lighthouses")
    assert result["response"] == simulated_text(emulator, LLAMA, {"prompt": "Tell me about lighthouses"})
    assert "lighthouses" in result["response"].lower()  # the prompt's only key word: every sentence names it
    usage = result["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["completion_tokens"] >= 30


def test_cloudflare_ai_run_classification(cf):
    result = cf.ai.run("@cf/huggingface/distilbert-sst-2-int8", account_id=ACCOUNT, text="What a lovely day!")
    scores = {x.label: x.score for x in result}  # the SDK parses this task into models
    assert scores["POSITIVE"] > scores["NEGATIVE"]


def test_cloudflare_models_list_and_schema(cf):
    page = cf.ai.models.list(account_id=ACCOUNT, per_page=5)
    assert len(page.result) == 5 and page.result_info.total_count >= 15
    names = [m["name"] for m in cf.ai.models.list(account_id=ACCOUNT, per_page=5)]  # auto-paginates
    assert len(names) == page.result_info.total_count == len(set(names))
    tg = list(cf.ai.models.list(account_id=ACCOUNT, task="Text Generation"))
    assert tg and all(m["task"]["name"] == "Text Generation" for m in tg)
    schema = cf.ai.models.schema.get(account_id=ACCOUNT, model=LLAMA)
    assert schema.input.type == "object" and schema.output.type == "object"


def test_cloudflare_errors_are_raised(cf):
    cloudflare = pytest.importorskip("cloudflare")
    with pytest.raises(cloudflare.BadRequestError) as info:
        cf.ai.run("@cf/nobody/nothing", account_id=ACCOUNT, prompt="x")
    assert info.value.status_code == 400


# --- curl exactly as the Cloudflare docs show it (base URL swapped) -----------------------------------
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "--silent", "--show-error", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=30, check=True)


@needs_curl
def test_curl_run_messages(emulator):
    data = ('{ "messages": [{ "role": "system", "content": "You are a friendly assistant" }, '
            '{ "role": "user", "content": "Why is pizza so good" }]}')
    out = curl(
        f"{emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai/run/@cf/meta/llama-3.1-8b-instruct",
        "-X", "POST",
        "-H", f"Authorization: Bearer {TOKEN}",
        "-d", data,
    )
    body = json.loads(out.stdout)
    assert body["success"] is True and body["result"]["response"] == simulated_text(emulator, LLAMA, json.loads(data))


@needs_curl
def test_curl_run_stream(emulator):
    out = curl(
        f"{emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai/run/@cf/meta/llama-3.1-8b-instruct",
        "-X", "POST",
        "-H", f"Authorization: Bearer {TOKEN}",
        "-d", '{ "prompt": "Where did the phrase Hello World come from", "stream": true }',
    )
    lines = [line for line in out.stdout.split("\n") if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


@needs_curl
def test_curl_models_search_and_token_verify(emulator):
    out = curl(f"{emulator.base_url}/client/v4/accounts/{ACCOUNT}/ai/models/search",
               "-H", f"Authorization: Bearer {TOKEN}")
    assert json.loads(out.stdout)["result"]
    out = curl(f"{emulator.base_url}/client/v4/user/tokens/verify", "-H", f"Authorization: Bearer {TOKEN}")
    assert json.loads(out.stdout)["result"]["status"] == "active"

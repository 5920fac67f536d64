"""The client reads reasoning models the emulator serves in their documented shapes, whole and streamed:
answer, reasoning, usage with reasoning tokens, first-reasoning vs first-answer timing, and a budget spent
entirely on reasoning. Real HTTP to the session emulator."""

from __future__ import annotations

import pytest

from cfai.catalog import TEXT_GENERATION, load_catalogue
from cfai.shapes import STOPPED_WHILE_REASONING

R1 = "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b"
GLM = "@cf/zai-org/glm-4.7-flash"
GPT_OSS = "@cf/openai/gpt-oss-120b"
MESSAGES = [{"role": "user", "content": "Why is the sky blue? One sentence."}]


@pytest.fixture(scope="module")
def models(emulator):
    from cfai.client import Client
    from cfai.config import local_connection

    with Client(local_connection(emulator.base_url)) as client:
        return {m.id: m for m in load_catalogue(client, TEXT_GENERATION).models}


def test_the_catalogue_says_which_models_reason_and_how(models):
    assert models[R1].reasoning and models[R1].reasoning_first
    assert models[GLM].reasoning and not models[GLM].reasoning_first  # reasoning_content, not inline
    assert models[GPT_OSS].reasoning and models[GPT_OSS].response_shape == "responses"
    assert not models["@cf/meta/llama-3.1-8b-instruct"].reasoning


@pytest.mark.parametrize("model", [R1, GLM])
def test_whole_answers_separate_reasoning_from_the_answer(client, models, model):
    result = client.run(model, {"messages": MESSAGES, "max_tokens": 512},
                        reasoning_first=models[model].reasoning_first)
    assert result.ok, result.error
    assert result.reasoning and result.text
    assert "</think>" not in result.text and "</think>" not in result.reasoning
    assert result.usage["completion_tokens"] > 0


def test_the_responses_shape_reads_the_same(client):
    result = client.run(GPT_OSS, {"input": "Why is the sky blue?", "reasoning": {"effort": "low"}})
    assert result.ok, result.error
    assert result.answer.shape == "responses"
    assert result.reasoning and result.text
    assert result.usage["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.parametrize("model", [R1, GLM])
def test_a_stream_times_first_reasoning_and_first_answer_apart(client, models, model):
    stream = client.stream(model, {"messages": MESSAGES, "max_tokens": 512},
                           reasoning_first=models[model].reasoning_first)
    deltas = [d for d in stream.deltas() if d.text]
    result = stream.result
    assert result.ok, result.error
    kinds = [d.kind for d in deltas]
    assert kinds[0] == "reasoning" and "answer" in kinds
    assert kinds.index("answer") > max(i for i, k in enumerate(kinds) if k == "reasoning")  # reasoning first
    t = result.timings
    assert t.first_token_ms == t.first_reasoning_ms < t.first_answer_ms <= t.total_ms
    assert len(result.token_events) == len(deltas)
    assert result.text == "".join(d.text for d in deltas if d.kind == "answer")


@pytest.mark.parametrize("model", [R1, GLM])
def test_a_budget_spent_on_reasoning_is_said_so(client, models, model):
    result = client.run(model, {"messages": MESSAGES, "max_tokens": 8}, reasoning_first=models[model].reasoning_first)
    assert result.ok, result.error
    assert result.text == ""
    assert result.answer.finish_note == STOPPED_WHILE_REASONING

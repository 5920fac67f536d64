"""The models the emulator serves: ids, tasks, latency classes, and the entries of models/search and schema.

Entries are shaped like Cloudflare's model-search results (id, source, name, description, task, tags,
properties) so `cloudflare.ai.models.list` and our own catalog code parse them unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

TEXT_GENERATION = "Text Generation"
TEXT_CLASSIFICATION = "Text Classification"
TEXT_EMBEDDINGS = "Text Embeddings"
SUMMARIZATION = "Summarization"
TRANSLATION = "Translation"

TASK_DESCRIPTIONS = {
    TEXT_GENERATION: "Family of generative text models, such as large language models (LLM), that can be "
    "adapted for a variety of natural language tasks.",
    TEXT_CLASSIFICATION: "Sentiment analysis or text classification is a common NLP task that classifies a "
    "text input into labels or classes.",
    TEXT_EMBEDDINGS: "Feature extraction models transform raw data into numerical features that can be "
    "processed while preserving the information in the original dataset.",
    SUMMARIZATION: "Summarization is the task of producing a shorter version of a document while "
    "preserving its important information.",
    TRANSLATION: "Translation models convert a sequence of text from one language to another.",
}

# Which simulator answers each task (sent back in the cf-emulator-backend header).
TASK_BACKEND = {
    TEXT_GENERATION: "simulated-llm",
    TEXT_CLASSIFICATION: "vader",
    TEXT_EMBEDDINGS: "simulated-embeddings",
    SUMMARIZATION: "simulated-summarizer",
    TRANSLATION: "simulated-translator",
}

_NS = uuid.UUID("6a1f4c1e-7d0b-4f7e-9a59-0c5e0f1d2a11")  # stable ids across runs


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    summary: str
    context_window: int = 0
    ttft_ms: float = 0.0  # text generation: time to first token at speed 1
    per_token_ms: float = 0.0  # text generation: time per further token at speed 1
    latency_ms: float = 0.0  # other tasks: the whole call
    dims: int = 0  # embeddings only
    created_at: str = "2024-04-01 00:00:00.000"
    # Text generation (docs/PROTOCOL.md 2.4): the answer's shape, whether it reasons before answering,
    # the efforts it takes, and which parameter set (cfai.emulator.model_params) its schema has.
    response_shape: str = "classic"  # classic | chat_completion | responses
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    default_effort: str = ""
    params: str = "llama-3.1"

    @property
    def backend(self) -> str:
        return TASK_BACKEND[self.task]

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NS, self.name))

    @property
    def author(self) -> str:
        parts = self.name.split("/")
        return parts[1] if len(parts) > 2 else ""


def _tg(name: str, summary: str, ctx: int, ttft: float, per_token: float, created: str) -> ModelSpec:
    return ModelSpec(name, TEXT_GENERATION, summary, ctx, ttft, per_token, created_at=created)


# Speed classes: bigger models answer later and emit tokens more slowly; "-fast" variants are quicker.
MODELS: tuple[ModelSpec, ...] = (
    _tg("@cf/meta/llama-3.1-8b-instruct", "Meta Llama 3.1 8B instruction-tuned chat model.",
        7968, 300, 20, "2024-07-23 00:00:00.000"),
    _tg("@cf/meta/llama-3.1-8b-instruct-fast", "Faster serving of Llama 3.1 8B instruct.",
        128000, 150, 8, "2024-09-25 00:00:00.000"),
    _tg("@cf/meta/llama-3.3-70b-instruct-fp8-fast", "Llama 3.3 70B instruct, fp8-quantized for speed.",
        24000, 550, 32, "2024-12-06 00:00:00.000"),
    _tg("@cf/meta/llama-3.2-3b-instruct", "Llama 3.2 3B multilingual instruct model.",
        128000, 200, 11, "2024-09-25 00:00:00.000"),
    _tg("@cf/meta/llama-3.2-1b-instruct", "Llama 3.2 1B multilingual instruct model.",
        60000, 140, 7, "2024-09-25 00:00:00.000"),
    _tg("@cf/meta/llama-3-8b-instruct", "Meta Llama 3 8B instruction-tuned chat model.",
        7968, 320, 22, "2024-04-18 00:00:00.000"),
    _tg("@cf/mistral/mistral-7b-instruct-v0.1", "Mistral 7B instruct v0.1.",
        2824, 350, 22, "2023-09-27 00:00:00.000"),
    _tg("@hf/nousresearch/hermes-2-pro-mistral-7b", "Hermes 2 Pro on Mistral 7B, with function calling.",
        24000, 380, 24, "2024-04-01 00:00:00.000"),
    _tg("@cf/google/gemma-3-12b-it", "Google Gemma 3 12B instruction-tuned.",
        80000, 420, 27, "2025-03-18 00:00:00.000"),
    _tg("@cf/qwen/qwen2.5-coder-32b-instruct", "Qwen 2.5 Coder 32B instruct, tuned for code.",
        32768, 520, 34, "2025-02-27 00:00:00.000"),
    _tg("@cf/openai/gpt-oss-20b", "OpenAI gpt-oss 20B open-weight reasoning model.",
        128000, 400, 15, "2025-08-05 00:00:00.000"),
    _tg("@cf/openai/gpt-oss-120b", "OpenAI gpt-oss 120B open-weight reasoning model.",
        128000, 600, 25, "2025-08-05 00:00:00.000"),
    ModelSpec("@cf/huggingface/distilbert-sst-2-int8", TEXT_CLASSIFICATION,
              "Sentiment classifier (POSITIVE / NEGATIVE); answered by the VADER lexicon model.",
              latency_ms=25, created_at="2023-09-25 00:00:00.000"),
    ModelSpec("@cf/baai/bge-small-en-v1.5", TEXT_EMBEDDINGS, "BAAI small English embeddings, 384 dimensions.",
              512, latency_ms=20, dims=384, created_at="2023-11-07 00:00:00.000"),
    ModelSpec("@cf/baai/bge-base-en-v1.5", TEXT_EMBEDDINGS, "BAAI base English embeddings, 768 dimensions.",
              512, latency_ms=30, dims=768, created_at="2023-09-25 00:00:00.000"),
    ModelSpec("@cf/baai/bge-large-en-v1.5", TEXT_EMBEDDINGS, "BAAI large English embeddings, 1024 dimensions.",
              512, latency_ms=45, dims=1024, created_at="2023-11-07 00:00:00.000"),
    ModelSpec("@cf/facebook/bart-large-cnn", SUMMARIZATION, "BART large fine-tuned on CNN Daily Mail.",
              latency_ms=80, created_at="2024-02-27 00:00:00.000"),
    ModelSpec("@cf/meta/m2m100-1.2b", TRANSLATION, "Multilingual many-to-many translation model.",
              latency_ms=80, created_at="2023-09-25 00:00:00.000"),
)

# Reasoning models and the models whose schema differs from Llama 3.1's (issue 12, PROTOCOL.md 2.4).
_EFFORTS = ("low", "medium", "high")
MODELS += (
    _tg("@cf/meta/llama-4-scout-17b-16e-instruct", "Meta Llama 4 Scout 17B, 16 experts, multimodal.",
        131000, 450, 18, "2025-04-05 00:00:00.000"),
    _tg("@cf/zai-org/glm-4.7-flash", "GLM-4.7-Flash, a fast multilingual reasoning model.",
        131072, 250, 9, "2026-01-28 16:04:39.346"),
    _tg("@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", "DeepSeek-R1 distilled into Qwen 32B; reasons inline.",
        80000, 600, 30, "2025-01-20 00:00:00.000"),
    _tg("@cf/qwen/qwq-32b", "Qwen QwQ 32B reasoning model; reasons inline.",
        24000, 620, 32, "2025-03-05 00:00:00.000"),
)
_TRAITS: dict[str, dict[str, Any]] = {
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": {"params": "llama-3.3"},
    "@cf/meta/llama-4-scout-17b-16e-instruct": {"params": "llama-4"},
    "@cf/google/gemma-3-12b-it": {"params": "gemma-3"},
    "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b": {"reasoning": True, "params": "r1"},
    "@cf/qwen/qwq-32b": {"reasoning": True, "params": "r1"},
    "@cf/openai/gpt-oss-120b": {"response_shape": "responses", "reasoning": True, "params": "gpt-oss",
                                "reasoning_efforts": _EFFORTS, "default_effort": "medium"},
    "@cf/openai/gpt-oss-20b": {"response_shape": "responses", "reasoning": True, "params": "gpt-oss",
                               "reasoning_efforts": _EFFORTS, "default_effort": "medium"},
    "@cf/zai-org/glm-4.7-flash": {"response_shape": "chat_completion", "reasoning": True, "params": "glm",
                                  "reasoning_efforts": _EFFORTS, "default_effort": "medium"},
}
MODELS = tuple(replace(m, **_TRAITS.get(m.name, {})) for m in MODELS)

_BY_NAME = {m.name: m for m in MODELS}

# The `price` property of each model's catalogue entry: (unit, USD) as Cloudflare lists them, from the
# Workers AI pricing page (developers.cloudflare.com/workers-ai/platform/pricing/, last updated 2026-08-28;
# see docs/PROTOCOL.md). Models the page does not price have no entry, so they list no price.
_IN, _CACHED, _OUT = "per M input tokens", "per M cached input tokens", "per M output tokens"
LIST_PRICES: dict[str, tuple[tuple[str, float], ...]] = {
    "@cf/meta/llama-3.1-8b-instruct": ((_IN, 0.282), (_OUT, 0.827)),
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": ((_IN, 0.293), (_OUT, 2.253)),
    "@cf/meta/llama-3.2-3b-instruct": ((_IN, 0.051), (_OUT, 0.335)),
    "@cf/meta/llama-3.2-1b-instruct": ((_IN, 0.027), (_OUT, 0.201)),
    "@cf/meta/llama-3-8b-instruct": ((_IN, 0.282), (_OUT, 0.827)),
    "@cf/mistral/mistral-7b-instruct-v0.1": ((_IN, 0.110), (_OUT, 0.190)),
    "@cf/google/gemma-3-12b-it": ((_IN, 0.345), (_OUT, 0.556)),
    "@cf/qwen/qwen2.5-coder-32b-instruct": ((_IN, 0.660), (_OUT, 1.000)),
    "@cf/openai/gpt-oss-20b": ((_IN, 0.200), (_OUT, 0.300)),
    "@cf/openai/gpt-oss-120b": ((_IN, 0.350), (_OUT, 0.750)),
    "@cf/meta/llama-4-scout-17b-16e-instruct": ((_IN, 0.270), (_OUT, 0.850)),
    "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b": ((_IN, 0.497), (_OUT, 4.881)),
    "@cf/qwen/qwq-32b": ((_IN, 0.660), (_OUT, 1.000)),
    "@cf/zai-org/glm-4.7-flash": ((_IN, 0.060), (_OUT, 0.400)),
    "@cf/huggingface/distilbert-sst-2-int8": ((_IN, 0.026),),
    "@cf/baai/bge-small-en-v1.5": ((_IN, 0.020),),
    "@cf/baai/bge-base-en-v1.5": ((_IN, 0.067),),
    "@cf/baai/bge-large-en-v1.5": ((_IN, 0.204),),
    "@cf/meta/m2m100-1.2b": ((_IN, 0.342), (_OUT, 0.342)),
}


def get_model(name: str) -> ModelSpec | None:
    return _BY_NAME.get(name)


def model_entry(spec: ModelSpec) -> dict[str, Any]:
    """One models/search result, in Cloudflare's shape."""
    properties: list[dict[str, Any]] = []
    if spec.context_window:
        properties.append({"property_id": "context_window", "value": str(spec.context_window)})
    if spec.name in LIST_PRICES:
        properties.append({"property_id": "price", "value": [
            {"unit": unit, "price": price, "currency": "USD"} for unit, price in LIST_PRICES[spec.name]
        ]})
    properties.append({"property_id": "info", "value": "Simulated by the local emulator"})
    properties += _reasoning_properties(spec)
    return {
        "id": spec.id,
        "source": 1,
        "name": spec.name,
        "description": f"Simulated by the local emulator. {spec.summary}",
        "task": {"id": str(uuid.uuid5(_NS, spec.task)), "name": spec.task, "description": TASK_DESCRIPTIONS[spec.task]},
        "created_at": spec.created_at,
        "tags": [],
        "properties": properties,
    }


def _reasoning_properties(spec: ModelSpec) -> list[dict[str, Any]]:
    """`reasoning` and `reasoning_effort` as Cloudflare's model files carry them (PROTOCOL.md 5.1), and the
    emulator-only `response_shape` (Cloudflare has no such property; clients must read the body)."""
    props: list[dict[str, Any]] = []
    if spec.task != TEXT_GENERATION:
        return props
    if spec.reasoning:
        props.append({"property_id": "reasoning", "value": "true"})
    if spec.reasoning_efforts and spec.response_shape == "responses":  # glm takes the parameter, no property
        props.append({"property_id": "reasoning_effort", "value": {
            "supported_efforts": list(spec.reasoning_efforts), "default_effort": spec.default_effort,
            "mandatory": spec.response_shape == "responses", "default_enabled": True}})
    props.append({"property_id": "response_shape", "value": spec.response_shape})
    return props


def search_models(task: str = "", search: str = "", author: str = "") -> list[ModelSpec]:
    """Filters as the real API: task by name (case-insensitive), author exact, search in name/description."""
    found = []
    for spec in MODELS:
        if task and spec.task.lower() != task.lower():
            continue
        if author and spec.author.lower() != author.lower():
            continue
        if search and search.lower() not in f"{spec.name} {spec.summary}".lower():
            continue
        found.append(spec)
    return found


# --- JSON schemas for models/schema ---------------------------------------------------------------------
_USAGE = {
    "type": "object",
    "description": "Usage statistics for the inference request",
    "properties": {
        "prompt_tokens": {"type": "number", "default": 0},
        "completion_tokens": {"type": "number", "default": 0},
        "total_tokens": {"type": "number", "default": 0},
    },
}

_TG_PARAMS = {
    "max_tokens": {"type": "integer", "default": 256, "description": "The maximum number of tokens to generate."},
    "temperature": {"type": "number", "default": 0.6, "minimum": 0, "maximum": 5},
    "top_p": {"type": "number", "minimum": 0, "maximum": 2},
    "top_k": {"type": "integer", "minimum": 1, "maximum": 50},
    "seed": {"type": "integer", "minimum": 1, "maximum": 9999999999},
    "repetition_penalty": {"type": "number", "minimum": 0, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": 0, "maximum": 2},
    "presence_penalty": {"type": "number", "minimum": 0, "maximum": 2},
    "stream": {"type": "boolean", "default": False},
    "response_format": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": ["json_object", "json_schema"]}, "json_schema": {}},
    },
}

_SCHEMAS: dict[str, dict[str, Any]] = {
    TEXT_GENERATION: {
        "input": {
            "type": "object",
            "description": "Prompt or chat messages",
            "additionalProperties": True,
            "oneOf": [
                {
                    "title": "Prompt",
                    "properties": {
                        "prompt": {"type": "string", "minLength": 1},
                        "raw": {"type": "boolean", "default": False},
                        "lora": {"type": "string"},
                        **_TG_PARAMS,
                    },
                    "required": ["prompt"],
                },
                {
                    "title": "Messages",
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
                                "required": ["role", "content"],
                            },
                        },
                        "tools": {"type": "array"},
                        **_TG_PARAMS,
                    },
                    "required": ["messages"],
                },
            ],
        },
        "output": {
            "type": "object",
            "description": "Generated text (or an object with response_format), tool calls and usage",
            "additionalProperties": False,
            "properties": {
                "response": {"type": "string"},
                "tool_calls": {"type": "array"},
                "usage": _USAGE,
            },
        },
    },
    TEXT_CLASSIFICATION: {
        "input": {
            "type": "object",
            "description": "The text to classify",
            "additionalProperties": False,
            "properties": {"text": {"type": "string", "minLength": 1}},
            "required": ["text"],
        },
        "output": {
            "type": "array",
            "description": "Labels with their scores",
            "additionalProperties": False,
            "items": {
                "type": "object",
                "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
            },
        },
    },
    TEXT_EMBEDDINGS: {
        "input": {
            "type": "object",
            "description": "One text or up to 100 texts",
            "additionalProperties": False,
            "properties": {
                "text": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 100},
                    ]
                },
                "pooling": {"type": "string", "enum": ["mean", "cls"], "default": "mean"},
            },
            "required": ["text"],
        },
        "output": {
            "type": "object",
            "description": "Embedding vectors",
            "additionalProperties": False,
            "properties": {
                "shape": {"type": "array", "items": {"type": "number"}},
                "data": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "pooling": {"type": "string", "enum": ["mean", "cls"]},
            },
        },
    },
    SUMMARIZATION: {
        "input": {
            "type": "object",
            "description": "The text to summarize",
            "additionalProperties": False,
            "properties": {
                "input_text": {"type": "string", "minLength": 1},
                "max_length": {"type": "integer", "default": 1024},
            },
            "required": ["input_text"],
        },
        "output": {
            "type": "object",
            "description": "The summary",
            "additionalProperties": False,
            "properties": {"summary": {"type": "string"}},
        },
    },
    TRANSLATION: {
        "input": {
            "type": "object",
            "description": "The text and the languages",
            "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "source_lang": {"type": "string", "default": "en"},
                "target_lang": {"type": "string"},
            },
            "required": ["text", "target_lang"],
        },
        "output": {
            "type": "object",
            "description": "The translated text",
            "additionalProperties": False,
            "properties": {"translated_text": {"type": "string"}},
        },
    },
}


def model_schema(spec: ModelSpec) -> dict[str, Any]:
    return _SCHEMAS[spec.task]

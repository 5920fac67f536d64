"""Models by task: the live catalogue (`ai/models/search`), or a built-in list when it cannot be read.

A catalogue entry names the model in `name` (`@cf/meta/...`); `id` is a UUID on Cloudflare. Context
windows come from the entry's `properties` (`{"property_id": "context_window", "value": "7968"}`), list
prices from its `price` property (read by `cfai.pricing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cfai.pricing import ModelPrice, price_from_entry

TEXT_GENERATION = "Text Generation"
TEXT_CLASSIFICATION = "Text Classification"
TEXT_EMBEDDINGS = "Text Embeddings"
SUMMARIZATION = "Summarization"
TRANSLATION = "Translation"

# The model each page (and the CLI) starts with, per task: the one definition.
DEFAULT_TEXT_GENERATION_MODEL = "@cf/meta/llama-3.1-8b-instruct"
DEFAULT_CLASSIFICATION_MODEL = "@cf/huggingface/distilbert-sst-2-int8"


class ModelLister(Protocol):
    """What the catalogue needs from a client (`cfai.client.Client.list_models`)."""

    def list_models(self, task: str | None = None, *, deadline: float | None = None) -> list[dict[str, Any]]: ...


# A page waits for the catalogue before it can draw its model picker: a slow or trickling API gets this long
# (all pages of the catalogue together), then the built-in list is offered with the reason.
CATALOGUE_DEADLINE_S = 15.0


@dataclass(frozen=True)
class ModelInfo:
    id: str  # the model id used in URLs, e.g. @cf/meta/llama-3.1-8b-instruct
    task: str
    description: str = ""
    context_window: int | None = None
    source: Literal["catalogue", "built-in"] = "catalogue"
    price: ModelPrice | None = None  # the catalogue's list price; None: no price listed
    reasoning: bool = False  # the catalogue's `reasoning` property: the model thinks before it answers
    response_shape: str | None = None  # classic | chat_completion | responses, where the catalogue says

    @property
    def reasoning_first(self) -> bool:
        """Reads its answer with reasoning inline before `</think>` (R1-distill, QwQ): see cfai.shapes."""
        return self.reasoning and self.response_shape in (None, "classic")


@dataclass(frozen=True)
class Catalogue:
    """The models for one task; `error` says why the built-in list is shown instead of the live one."""

    task: str
    models: tuple[ModelInfo, ...]
    error: str | None = None

    @property
    def from_fallback(self) -> bool:
        return self.error is not None

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def get(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models if m.id == model_id), None)


# PROTOCOL.md's common models: what the picker offers when the catalogue cannot be read.
FALLBACK_MODELS: dict[str, tuple[ModelInfo, ...]] = {
    TEXT_GENERATION: tuple(
        ModelInfo(m, TEXT_GENERATION, source="built-in")
        for m in (
            DEFAULT_TEXT_GENERATION_MODEL,
            "@cf/meta/llama-3.1-8b-instruct-fast",
            "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
            "@cf/meta/llama-3.2-3b-instruct",
            "@cf/mistral/mistral-7b-instruct-v0.1",
            "@hf/nousresearch/hermes-2-pro-mistral-7b",
            "@cf/openai/gpt-oss-20b",
        )
    ),
    TEXT_CLASSIFICATION: (ModelInfo(DEFAULT_CLASSIFICATION_MODEL, TEXT_CLASSIFICATION, source="built-in"),),
    TEXT_EMBEDDINGS: tuple(
        ModelInfo(m, TEXT_EMBEDDINGS, source="built-in")
        for m in ("@cf/baai/bge-small-en-v1.5", "@cf/baai/bge-base-en-v1.5", "@cf/baai/bge-large-en-v1.5")
    ),
    SUMMARIZATION: (ModelInfo("@cf/facebook/bart-large-cnn", SUMMARIZATION, source="built-in"),),
    TRANSLATION: (ModelInfo("@cf/meta/m2m100-1.2b", TRANSLATION, source="built-in"),),
}


def context_window(entry: Mapping[str, Any]) -> int | None:
    """The context window in tokens from an entry's properties, or None when absent or unreadable."""
    for prop in entry.get("properties") or []:
        if not isinstance(prop, Mapping):
            continue
        if str(prop.get("property_id", "")).lower() in ("context_window", "max_input_tokens"):
            try:
                value = int(float(str(prop.get("value", "")).replace(",", "").strip()))
            except ValueError:
                return None
            return value if value > 0 else None
    return None


def model_id(entry: Mapping[str, Any]) -> str | None:
    """Cloudflare puts the model id in `name` and a UUID in `id`; accept an `@`-id in either."""
    for key in ("name", "id"):
        value = entry.get(key)
        if isinstance(value, str) and value.startswith("@"):
            return value
    name = entry.get("name")
    return name if isinstance(name, str) and name else None


def model_from_entry(entry: Mapping[str, Any], task: str = "") -> ModelInfo | None:
    mid = model_id(entry)
    if not mid:
        return None
    task_field = entry.get("task")
    entry_task = task_field.get("name", "") if isinstance(task_field, Mapping) else str(task_field or "")
    return ModelInfo(
        id=mid,
        task=entry_task or task,
        description=str(entry.get("description") or "").strip(),
        context_window=context_window(entry),
        price=price_from_entry(entry, mid),
        reasoning=str(_property(entry, "reasoning")).lower() == "true",
        response_shape=_property(entry, "response_shape") if isinstance(_property(entry, "response_shape"), str)
        else None,
    )


def _property(entry: Mapping[str, Any], property_id: str) -> Any:
    """The value of one of a catalogue entry's `properties` ({property_id, value}); None when absent."""
    for prop in entry.get("properties") or ():
        if isinstance(prop, Mapping) and prop.get("property_id") == property_id:
            return prop.get("value")
    return None


def models_from_entries(entries: Iterable[Mapping[str, Any]], task: str = "") -> tuple[ModelInfo, ...]:
    """Parsed, de-duplicated and sorted by id; entries of another task are dropped when `task` is given."""
    seen: dict[str, ModelInfo] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        info = model_from_entry(entry, task)
        if info is None or (task and info.task and info.task.lower() != task.lower()):
            continue
        seen.setdefault(info.id, info)
    return tuple(sorted(seen.values(), key=lambda m: m.id))


def load_catalogue(client: ModelLister, task: str = TEXT_GENERATION) -> Catalogue:
    """Models for `task` from `client.list_models`; the built-in list, with the reason, when that fails or
    comes back empty. Never raises: the picker must always offer something."""
    try:
        entries = client.list_models(task=task, deadline=CATALOGUE_DEADLINE_S)
    except Exception as e:  # noqa: BLE001 - any failure (HTTP, network, odd body) falls back the same way
        return Catalogue(task, FALLBACK_MODELS.get(task, ()), error=f"Model catalogue unavailable: {e}")
    models = models_from_entries(entries, task)
    if not models:
        return Catalogue(task, FALLBACK_MODELS.get(task, ()), error="The model catalogue returned no models.")
    return Catalogue(task, models)


"""The model catalogue: live from the emulator's models/search, the built-in fallback, context windows."""

from __future__ import annotations

import socket

from cfai.catalog import (
    FALLBACK_MODELS,
    TEXT_CLASSIFICATION,
    TEXT_GENERATION,
    ModelInfo,
    context_window,
    load_catalogue,
    model_from_entry,
    models_from_entries,
)
from cfai.client import Client
from cfai.config import local_connection

CLOUDFLARE_ENTRY = {  # shaped like a live models/search result
    "id": "429b9e8b-d99e-44de-91ad-706cf8183658",
    "source": 1,
    "name": "@cf/meta/llama-3.1-8b-instruct",
    "description": "The Meta Llama 3.1 collection ...",
    "task": {"id": "c329a1f9", "name": "Text Generation", "description": "..."},
    "tags": [],
    "properties": [{"property_id": "context_window", "value": "7968"}, {"property_id": "info", "value": "x"}],
}


def test_entry_parsing_takes_the_id_from_name_and_the_context_window():
    info = model_from_entry(CLOUDFLARE_ENTRY)
    assert info == ModelInfo("@cf/meta/llama-3.1-8b-instruct", TEXT_GENERATION,
                             "The Meta Llama 3.1 collection ...", 7968)


def test_context_window_is_optional_and_tolerant():
    assert context_window({}) is None
    assert context_window({"properties": [{"property_id": "context_window", "value": "128,000"}]}) == 128000
    assert context_window({"properties": [{"property_id": "context_window", "value": "lots"}]}) is None


def test_entries_are_deduplicated_sorted_and_filtered_by_task():
    other = {**CLOUDFLARE_ENTRY, "name": "@cf/x/classifier", "task": {"name": TEXT_CLASSIFICATION}}
    zed = {**CLOUDFLARE_ENTRY, "name": "@cf/a/zed"}
    models = models_from_entries([CLOUDFLARE_ENTRY, other, zed, CLOUDFLARE_ENTRY, "junk"], TEXT_GENERATION)
    assert [m.id for m in models] == ["@cf/a/zed", "@cf/meta/llama-3.1-8b-instruct"]


def test_live_catalogue_from_the_emulator(client):
    catalogue = load_catalogue(client, TEXT_GENERATION)
    assert not catalogue.from_fallback
    assert "@cf/meta/llama-3.1-8b-instruct" in catalogue.ids
    assert all(m.task == TEXT_GENERATION for m in catalogue.models)
    assert catalogue.get("@cf/meta/llama-3.1-8b-instruct").context_window
    classifiers = load_catalogue(client, TEXT_CLASSIFICATION)
    assert classifiers.ids == ["@cf/huggingface/distilbert-sst-2-int8"]


def test_fallback_when_the_catalogue_cannot_be_reached():
    with socket.socket() as s:  # a loopback port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(local_connection(f"http://127.0.0.1:{port}")) as unreachable:
        catalogue = load_catalogue(unreachable, TEXT_GENERATION)
    assert catalogue.from_fallback and "unavailable" in catalogue.error
    assert catalogue.models == FALLBACK_MODELS[TEXT_GENERATION]
    assert "@cf/meta/llama-3.1-8b-instruct" in catalogue.ids


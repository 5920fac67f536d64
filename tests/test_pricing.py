"""Model prices: the catalogue's `price` property (a contract fixture from Cloudflare's docs, over loopback
HTTP, and the emulator's own catalogue), custom contract prices, and dollar formatting."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cfai.catalog import (
    TEXT_CLASSIFICATION,
    TEXT_EMBEDDINGS,
    TEXT_GENERATION,
    load_catalogue,
    model_from_entry,
    models_from_entries,
)
from cfai.client import Client
from cfai.config import Connection
from cfai.emulator.models_catalog import LIST_PRICES, MODELS
from cfai.format import NO_PRICE, format_neurons, format_unit_price, format_usd
from cfai.pricing import (
    FREE_USD_PER_DAY,
    PUBLISHED_NEURONS,
    USD_PER_NEURON,
    ModelPrice,
    NeuronRates,
    PriceError,
    PriceItem,
    custom_price,
    effective_price,
    format_price,
    price_from_entry,
    price_items,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "catalogue_prices.json").read_text())


class _CatalogueHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        data = json.dumps(FIXTURE["body"]).encode()
        self.send_response(FIXTURE["status"])
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def recorded_catalogue():
    """A loopback server answering every GET with the recorded models/search response."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CatalogueHandler)
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _cloudflare_client(server: ThreadingHTTPServer) -> Client:
    host, port = server.server_address[:2]
    conn = Connection(mode="cloudflare", account_id="0" * 32, api_token="test-token", gateway_id="g",
                      api_base_url=f"http://{host}:{port}/client/v4", gateway_base_url=f"http://{host}:{port}/v1",
                      read_timeout=5)
    return Client(conn)


# --- the contract: Cloudflare's documented catalogue entries -------------------------------------------
def test_client_reads_prices_from_the_recorded_catalogue(recorded_catalogue):
    with _cloudflare_client(recorded_catalogue) as client:
        entries = client.list_models()
    assert recorded_catalogue.paths[-1].startswith("/client/v4/accounts/" + "0" * 32 + "/ai/models/search")
    models = {m.id: m for m in models_from_entries(entries)}

    gpt = models["@cf/openai/gpt-oss-120b"]
    assert gpt.context_window == 128000
    assert (gpt.price.input_per_m, gpt.price.cached_input_per_m, gpt.price.output_per_m) == (0.35, None, 0.75)
    assert gpt.price.source == "catalogue" and gpt.price.other == ()
    assert gpt.price.neurons == NeuronRates(31818, None, 68182)  # the pricing page's mapping for the model

    kimi = models["@cf/moonshotai/kimi-k2.6"].price
    assert (kimi.input_per_m, kimi.cached_input_per_m, kimi.output_per_m) == (0.95, 0.16, 4.0)
    assert format_price(kimi) == "$0.95 / M input · $0.16 / M cached input · $4 / M output"

    bert = models["@cf/huggingface/distilbert-sst-2-int8"]
    assert bert.task == TEXT_CLASSIFICATION
    assert (bert.price.input_per_m, bert.price.output_per_m) == (0.026, None)

    whisper = models["@cf/openai/whisper"].price  # a non-token unit: kept, marked, never a token price
    assert not whisper.has_token_price
    assert whisper.other == (PriceItem("per audio minute", 0.00045, "USD"),)
    assert whisper.other[0].token_kind is None
    assert format_price(whisper) == "$0.00045 per audio minute"

    unpriced = models["@cf/meta/llama-3.1-8b-instruct-fast"]
    assert unpriced.price is None
    assert format_price(unpriced.price) == NO_PRICE


def test_every_recorded_price_item_has_the_documented_shape():
    for entry in FIXTURE["body"]["result"]:
        for prop in entry["properties"]:
            if prop["property_id"] == "price":
                assert all(set(item) == {"unit", "price", "currency"} for item in prop["value"])


# --- the emulator serves the same property --------------------------------------------------------------
def test_emulator_catalogue_serves_list_prices_in_the_same_shape(client):
    for task in (TEXT_GENERATION, TEXT_CLASSIFICATION, TEXT_EMBEDDINGS):
        entries = client.list_models(task=task)
        for entry in entries:
            props = [p for p in entry["properties"] if p["property_id"] == "price"]
            name = entry["name"]
            if name not in LIST_PRICES:
                assert props == [], name
                continue
            assert len(props) == 1 and all(set(i) == {"unit", "price", "currency"} for i in props[0]["value"])
            assert [(i["unit"], i["price"]) for i in props[0]["value"]] == list(LIST_PRICES[name])

    catalogue = load_catalogue(client, TEXT_GENERATION)
    llama = catalogue.get("@cf/meta/llama-3.1-8b-instruct")
    assert (llama.price.input_per_m, llama.price.output_per_m) == (0.282, 0.827)
    assert llama.price.neurons == NeuronRates(25608, None, 75147)
    # The pricing page lists no price for these: the catalogue says so instead of inventing one.
    assert catalogue.get("@cf/meta/llama-3.1-8b-instruct-fast").price is None
    assert catalogue.get("@hf/nousresearch/hermes-2-pro-mistral-7b").price is None
    bert = load_catalogue(client, TEXT_CLASSIFICATION).get("@cf/huggingface/distilbert-sst-2-int8")
    assert bert.price.input_per_m == 0.026
    assert load_catalogue(client, TEXT_EMBEDDINGS).get("@cf/baai/bge-small-en-v1.5").price.input_per_m == 0.020


def test_emulator_prices_agree_with_the_published_neurons():
    """Dollars on the pricing page are neurons x $0.011 / 1,000, rounded to 3 decimals: a typo in either
    table shows here. Every emulated model the page prices has a price, and only those."""
    tasks = {TEXT_GENERATION, TEXT_CLASSIFICATION, TEXT_EMBEDDINGS}
    for spec in MODELS:
        if spec.task in tasks:
            assert (spec.name in LIST_PRICES) == (spec.name in PUBLISHED_NEURONS), spec.name
    units = {"per M input tokens": "input_per_m", "per M output tokens": "output_per_m",
             "per M cached input tokens": "cached_input_per_m"}
    for name, items in LIST_PRICES.items():
        neurons = PUBLISHED_NEURONS[name]
        for unit, usd in items:
            assert usd == pytest.approx(getattr(neurons, units[unit]) * USD_PER_NEURON, abs=0.0005 + 1e-9), (name, unit)  # the page rounds to 3 decimals


# --- parsing ------------------------------------------------------------------------------------------
def _entry(*items: Any, name: str = "@cf/x/y") -> dict[str, Any]:
    return {"name": name, "properties": [{"property_id": "context_window", "value": "8000"},
                                         {"property_id": "price", "value": list(items)}]}


def test_units_are_recognised_in_their_spellings_and_prices_as_strings():
    price = price_from_entry(_entry(
        {"unit": "Per 1M Input Tokens", "price": "0.95"},
        {"unit": "per million cached input tokens", "price": 0.19},
        {"unit": "per M output tokens", "price": "$4.00", "currency": "usd"},
    ), "@cf/x/y")
    assert (price.input_per_m, price.cached_input_per_m, price.output_per_m) == (0.95, 0.19, 4.0)


def test_unreadable_items_are_skipped_and_odd_units_kept_aside():
    items = price_items(_entry(
        {"unit": "per M input tokens", "price": True},  # a bool is not a price
        {"unit": "per M input tokens", "price": -1},
        {"unit": "per M input tokens", "price": "NaN"},
        {"unit": "", "price": 1},
        "junk",
        {"unit": "per M input tokens", "price": 0.5},
    ))
    assert items == (PriceItem("per M input tokens", 0.5, "USD"),)
    price = price_from_entry(_entry(
        {"unit": "per M input tokens", "price": 0.5},
        {"unit": "per M input tokens", "price": 0.7},  # a second listing: kept, not used
        {"unit": "per M tokens", "price": 0.3},  # no direction: not a token price we can apply
        {"unit": "per M output tokens", "price": 2, "currency": "EUR"},  # not dollars
        {"unit": "per 512x512 tile", "price": 0.0000528},
    ), "@cf/x/y")
    assert (price.input_per_m, price.output_per_m) == (0.5, None)
    assert [i.unit for i in price.other] == ["per M input tokens", "per M tokens", "per M output tokens",
                                             "per 512x512 tile"]
    assert "(EUR)" in format_price(price)


def test_an_entry_without_a_price_has_none():
    assert price_from_entry({"properties": [{"property_id": "price", "value": []}]}, "m") is None
    assert price_from_entry({"properties": [{"property_id": "price", "value": "0.3"}]}, "m") is None
    assert price_from_entry({}, "m") is None
    assert model_from_entry({"name": "@cf/a/b"}).price is None


def test_cached_input_falls_back_to_the_input_price():
    price = ModelPrice("m", input_per_m=0.3, output_per_m=1.0)
    assert price.rate("cached_input") == 0.3
    assert ModelPrice("m", 0.3, 0.1, 1.0).rate("cached_input") == 0.1
    neurons = ModelPrice("m", 0.3, neurons=NeuronRates(100, None, 200))
    assert neurons.neuron_rate("cached_input") == 100 and neurons.neuron_rate("output") == 200
    assert ModelPrice("m", 0.3).neuron_rate("input") is None


# --- custom contract prices ---------------------------------------------------------------------------
def test_a_custom_price_overrides_and_round_trips_through_json():
    catalogue = ModelPrice("@cf/meta/llama-3.1-8b-instruct", 0.282, None, 0.827,
                           neurons=PUBLISHED_NEURONS["@cf/meta/llama-3.1-8b-instruct"])
    override = custom_price("@cf/meta/llama-3.1-8b-instruct", input_per_m=0.2, output_per_m=0.6,
                            cached_input_per_m=0.05, note="ACME contract 2026")
    assert effective_price(catalogue, override) is override
    assert effective_price(catalogue, None) is catalogue
    assert effective_price(None, None) is None
    assert override.source == "custom" and override.neurons is None  # a contract in dollars has no neurons
    assert format_price(override) == "$0.20 / M input · $0.05 / M cached input · $0.60 / M output (custom)"
    for price in (override, catalogue, price_from_entry(FIXTURE["body"]["result"][3], "@cf/openai/whisper")):
        stored = json.loads(json.dumps(price.to_dict()))
        assert ModelPrice.from_dict(stored) == price


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs an input or an output price"),
    ({"cached_input_per_m": 0.1, "output_per_m": 1}, "needs an input price too"),
    ({"input_per_m": -0.1}, "input_per_m"),
    ({"input_per_m": math.nan}, "input_per_m"),
    ({"output_per_m": math.inf}, "output_per_m"),
    ({"input_per_m": "cheap"}, "input_per_m"),
])
def test_bad_custom_prices_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(PriceError, match=message):
        custom_price("@cf/meta/llama-3.1-8b-instruct", **kwargs)


def test_a_stored_price_is_validated_when_read_back():
    with pytest.raises(PriceError, match="model id"):
        ModelPrice.from_dict({"model": " ", "input_per_m": 1})
    with pytest.raises(PriceError, match="source"):
        ModelPrice.from_dict({"model": "m", "input_per_m": 1, "source": "guess"})
    with pytest.raises(PriceError, match="other"):
        ModelPrice.from_dict({"model": "m", "other": [{"unit": "per step", "price": -2}]})


# --- formatting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, text", [
    (None, "no price listed"), (math.nan, "no price listed"), (0, "$0"), (0.0, "$0"),
    (1234.567, "$1,234.57"), (12.3, "$12.30"), (1, "$1.00"), (0.5, "$0.50"), (0.999, "$0.999"),
    (0.0123456, "$0.0123"), (0.00001846, "$0.0000185"), (0.00000118, "$0.00000118"),
    (1e-12, "<$0.000000001"), (-0.25, "-$0.25"), (FREE_USD_PER_DAY, "$0.11"),
])
def test_dollars_have_sensible_significant_figures(value, text):
    assert format_usd(value) == text


def test_rates_neurons_and_prices_read_like_the_pricing_page():
    assert [format_unit_price(v) for v in (0.027, 2.253, 4, 0.35, 0.2, 0.0000528, 1234.5)] == [
        "$0.027", "$2.253", "$4", "$0.35", "$0.20", "$0.0000528", "$1,234.50"]
    assert [format_neurons(v) for v in (None, 0, 0.5234, 25.6, 1234.4)] == [
        "", "0 neurons", "0.523 neurons", "25.6 neurons", "1,234 neurons"]
    assert format_price(None) == NO_PRICE
    assert format_price(ModelPrice("m")) == NO_PRICE  # an empty price is still "no price", never $0

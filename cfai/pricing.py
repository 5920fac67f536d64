"""Model prices: read from the catalogue's `price` property, overridden by a custom contract, formatted.

A models/search entry carries its list price as
`{"property_id": "price", "value": [{"unit": "per M input tokens", "price": 0.35, "currency": "USD"}, ...]}`
(units seen: per M input / cached input / output tokens, and non-token units such as "per audio minute",
"per 512x512 tile" or "per step"). Token prices become typed fields; every other unit is kept, marked as not
token-based, and never used in a token cost. Workers AI bills in neurons ($0.011 per 1,000, 10,000 free per
account per day); the neurons per million tokens that Cloudflare publishes are in `PUBLISHED_NEURONS`.
Sources and dates: docs/PROTOCOL.md. Costs built on these prices live in `cfai.cost`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from cfai.format import NO_PRICE, format_unit_price

USD_PER_NEURON = 0.011 / 1000
FREE_NEURONS_PER_DAY = 10_000  # per account, reset daily at 00:00 UTC, on Workers Free and Paid alike
FREE_USD_PER_DAY = FREE_NEURONS_PER_DAY * USD_PER_NEURON  # $0.11
PRICING_URL = "https://developers.cloudflare.com/workers-ai/platform/pricing/"
PRICING_DATE = "2026-08-28"  # "Last updated" of the pricing page the built-in figures come from
BILLING_NOTE = (
    "Estimated from list prices (Cloudflare's model catalogue, or your custom price), not an invoice. Workers AI "
    "bills in neurons: $0.011 per 1,000, with 10,000 free per account per day."
)
GATEWAY_NOTE = (
    "A request answered from the AI Gateway cache never reaches Workers AI and is not billed; the gateway's "
    "caching, rate limiting and analytics are free on every plan."
)

TokenKind = Literal["input", "cached_input", "output"]
PriceSource = Literal["catalogue", "custom"]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PriceError(ValueError):
    """A price that cannot be used, in words a user can act on."""


@dataclass(frozen=True)
class PriceItem:
    """One `{unit, price, currency}` of the catalogue, as listed."""

    unit: str
    price: NonNegative
    currency: str = "USD"

    @property
    def token_kind(self) -> TokenKind | None:
        """Which token price this is, or None for a unit that is not per million tokens (images, audio...)."""
        return _token_kind(self.unit) if self.currency.upper() == "USD" else None


@dataclass(frozen=True)
class NeuronRates:
    """Neurons per million tokens, as Cloudflare publishes them next to the dollar prices."""

    input_per_m: NonNegative | None = None
    cached_input_per_m: NonNegative | None = None
    output_per_m: NonNegative | None = None


@dataclass(frozen=True)
class ModelPrice:
    """A model's prices in USD per million tokens. None means not listed (never zero)."""

    model: str
    input_per_m: NonNegative | None = None
    cached_input_per_m: NonNegative | None = None  # when None, cached input tokens are billed as input
    output_per_m: NonNegative | None = None
    other: tuple[PriceItem, ...] = ()  # listed units that are not token prices: shown, never used for tokens
    source: PriceSource = "catalogue"
    neurons: NeuronRates | None = None  # where Cloudflare publishes the mapping
    note: str = ""  # e.g. the contract's name

    @property
    def has_token_price(self) -> bool:
        return self.input_per_m is not None or self.output_per_m is not None

    def rate(self, kind: TokenKind) -> float | None:
        """USD per million tokens of `kind`; cached input falls back to the input price (no discount listed)."""
        if kind == "cached_input":
            return self.cached_input_per_m if self.cached_input_per_m is not None else self.input_per_m
        return self.input_per_m if kind == "input" else self.output_per_m

    def neuron_rate(self, kind: TokenKind) -> float | None:
        n = self.neurons
        if n is None:
            return None
        if kind == "cached_input":
            return n.cached_input_per_m if n.cached_input_per_m is not None else n.input_per_m
        return n.input_per_m if kind == "input" else n.output_per_m

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for storing with a run and exporting; `from_dict` reads it back."""
        data = asdict(self)
        data["other"] = [asdict(item) for item in self.other]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelPrice:
        """Validated (non-negative finite prices, a model id); raises PriceError naming the bad field."""
        try:
            price = _PRICE_ADAPTER.validate_python(dict(data))
        except ValidationError as e:
            raise PriceError(_validation_message(e)) from None
        if not price.model.strip():
            raise PriceError("A price needs the model id it applies to.")
        return price


_PRICE_ADAPTER = TypeAdapter(ModelPrice)


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "price"
        parts.append(f"{where}: {item['msg']}")
    return "Invalid price: " + "; ".join(parts)


def custom_price(
    model: str,
    input_per_m: float | None = None,
    output_per_m: float | None = None,
    cached_input_per_m: float | None = None,
    note: str = "",
) -> ModelPrice:
    """A user's own contract price for `model`, in USD per million tokens. It replaces the catalogue price as
    a whole (a field left empty is "not priced", not "take the list price"). Raises PriceError."""
    if input_per_m is None and output_per_m is None:
        raise PriceError("A custom price needs an input or an output price (USD per million tokens).")
    if cached_input_per_m is not None and input_per_m is None:
        raise PriceError("A cached input price needs an input price too.")
    return ModelPrice.from_dict({
        "model": model, "input_per_m": input_per_m, "output_per_m": output_per_m,
        "cached_input_per_m": cached_input_per_m, "source": "custom", "note": note,
    })


def effective_price(catalogue: ModelPrice | None, override: ModelPrice | None) -> ModelPrice | None:
    """The price a cost uses: the user's override when set, else the catalogue's (None: no price listed)."""
    return override if override is not None else catalogue


# --- parsing the catalogue ----------------------------------------------------------------------------
def _token_kind(unit: str) -> TokenKind | None:
    words = " ".join(unit.lower().replace("(", " ").replace(")", " ").split())
    per_million = any(s in f" {words} " for s in (" per m ", " per 1m ", " per million ", " per 1 million "))
    if "token" not in words or not per_million:
        return None
    if "cached" in words or "cache read" in words:
        return "cached_input" if "input" in words or "prompt" in words or "read" in words else None
    if "input" in words or "prompt" in words:
        return "input"
    if "output" in words or "completion" in words:
        return "output"
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def price_items(entry: Mapping[str, Any]) -> tuple[PriceItem, ...]:
    """The `price` property of a models/search entry as listed; unreadable items are skipped."""
    items: list[PriceItem] = []
    for prop in entry.get("properties") or []:
        if not isinstance(prop, Mapping) or str(prop.get("property_id", "")).lower() != "price":
            continue
        values = prop.get("value")
        for raw in values if isinstance(values, list) else []:
            if not isinstance(raw, Mapping):
                continue
            unit = str(raw.get("unit") or "").strip()
            price = _number(raw.get("price"))
            if unit and price is not None:
                items.append(PriceItem(unit, price, str(raw.get("currency") or "USD").strip().upper()))
    return tuple(items)


def price_from_items(model: str, items: tuple[PriceItem, ...]) -> ModelPrice | None:
    """Token prices into typed fields (the first listing of each kind wins), other units kept in `other`."""
    if not items:
        return None
    rates: dict[TokenKind, float] = {}
    other: list[PriceItem] = []
    for item in items:
        kind = item.token_kind
        if kind is None or kind in rates:
            other.append(item)
        else:
            rates[kind] = item.price
    return ModelPrice(
        model, input_per_m=rates.get("input"), cached_input_per_m=rates.get("cached_input"),
        output_per_m=rates.get("output"), other=tuple(other), neurons=PUBLISHED_NEURONS.get(model),
    )


def price_from_entry(entry: Mapping[str, Any], model: str) -> ModelPrice | None:
    """The list price of one models/search entry, or None when it lists none."""
    return price_from_items(model, price_items(entry))


def format_price(price: ModelPrice | None) -> str:
    """One line for a model picker or a report: "$0.35 / M input · $0.75 / M output" or "no price listed"."""
    if price is None:
        return NO_PRICE
    parts = [f"{format_unit_price(rate)} / M {label}" for rate, label in (
        (price.input_per_m, "input"), (price.cached_input_per_m, "cached input"), (price.output_per_m, "output"),
    ) if rate is not None]
    parts += [f"{format_unit_price(item.price)} {item.unit}" + ("" if item.currency == "USD" else f" ({item.currency})")
              for item in price.other]
    text = " · ".join(parts) if parts else NO_PRICE
    return f"{text} (custom)" if price.source == "custom" else text


# --- Cloudflare's published neuron mapping ------------------------------------------------------------
def _n(input_per_m: float, output_per_m: float | None = None, cached_input_per_m: float | None = None) -> NeuronRates:
    return NeuronRates(input_per_m, cached_input_per_m, output_per_m)


# Neurons per million tokens from the pricing page (PRICING_URL, last updated PRICING_DATE), token-priced
# models only. Neurons are what Workers AI bills; the dollar prices are these times $0.011 / 1,000, rounded.
PUBLISHED_NEURONS: dict[str, NeuronRates] = {
    "@cf/meta/llama-3.2-1b-instruct": _n(2457, 18252),
    "@cf/meta/llama-3.2-3b-instruct": _n(4625, 30475),
    "@cf/meta/llama-3.1-8b-instruct-fp8-fast": _n(4119, 34868),
    "@cf/meta/llama-3.2-11b-vision-instruct": _n(4410, 61493),
    "@cf/meta/llama-3.1-70b-instruct-fp8-fast": _n(26668, 204805),
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": _n(26668, 204805),
    "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b": _n(45170, 443756),
    "@cf/deepseek-ai/deepseek-v4-flash-0731": _n(40000, 120000, cached_input_per_m=1273),
    "@cf/deepseek-ai/deepseek-v4-pro-0813": _n(120000, 360000, cached_input_per_m=4000),
    "@cf/mistral/mistral-7b-instruct-v0.1": _n(10000, 17300),
    "@cf/mistralai/mistral-small-3.1-24b-instruct": _n(31876, 50488),
    "@cf/meta/llama-3.1-8b-instruct": _n(25608, 75147),
    "@cf/meta/llama-3.1-8b-instruct-fp8": _n(13778, 26128),
    "@cf/meta/llama-3.1-8b-instruct-awq": _n(11161, 24215),
    "@cf/meta/llama-3-8b-instruct": _n(25608, 75147),
    "@cf/meta/llama-3-8b-instruct-awq": _n(11161, 24215),
    "@cf/meta/llama-2-7b-chat-fp16": _n(50505, 606061),
    "@cf/meta/llama-guard-3-8b": _n(44003, 2730),
    "@cf/meta/llama-4-scout-17b-16e-instruct": _n(24545, 77273),
    "@cf/google/gemma-3-12b-it": _n(31371, 50560),
    "@cf/qwen/qwq-32b": _n(60000, 90909),
    "@cf/qwen/qwen2.5-coder-32b-instruct": _n(60000, 90909),
    "@cf/qwen/qwen3-30b-a3b-fp8": _n(4625, 30475),
    "@cf/qwen/qwen3.8-27b": _n(40909, 290909),
    "@cf/openai/gpt-oss-120b": _n(31818, 68182),
    "@cf/openai/gpt-oss-20b": _n(18182, 27273),
    "@cf/aisingapore/gemma-sea-lion-v4-27b-it": _n(31876, 50488),
    "@cf/ibm-granite/granite-4.0-h-micro": _n(1542, 10158),
    "@cf/zai-org/glm-4.7-flash": _n(5500, 36400),
    "@cf/zai-org/glm-5.2": _n(127273, 400000, cached_input_per_m=23636),
    "@cf/zai-org/glm-5.3": _n(127273, 400000, cached_input_per_m=23636),
    "@cf/zai-org/glm-5.3-flash": _n(13636, 45455, cached_input_per_m=2727),
    "@cf/nvidia/nemotron-3-120b-a12b": _n(45455, 136364),
    "@cf/moonshotai/kimi-k2.5": _n(54545, 272727, cached_input_per_m=9091),
    "@cf/moonshotai/kimi-k2.6": _n(86364, 363636, cached_input_per_m=14545),
    "@cf/moonshotai/kimi-k2.7-code": _n(86364, 363636, cached_input_per_m=17273),
    "@cf/google/gemma-4-26b-a4b-it": _n(9091, 27273),
    "@cf/baai/bge-small-en-v1.5": _n(1841),
    "@cf/baai/bge-base-en-v1.5": _n(6058),
    "@cf/baai/bge-large-en-v1.5": _n(18582),
    "@cf/baai/bge-m3": _n(1075),
    "@cf/pfnet/plamo-embedding-1b": _n(1689),
    "@cf/qwen/qwen3-embedding-0.6b": _n(1075),
    "@cf/huggingface/distilbert-sst-2-int8": _n(2394),
    "@cf/baai/bge-reranker-base": _n(283),
    "@cf/meta/m2m100-1.2b": _n(31050, 31050),
    "@cf/ai4bharat/indictrans2-en-indic-1B": _n(31050, 31050),
    "@cf/moondream/moondream3.1-9B-A2B": _n(27273, 90909),
}


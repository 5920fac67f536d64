"""What answers, runs and batches cost at list price, what the AI Gateway cache saved, and a monthly projection.

Rules (the README explains them to users):
- Cost = uncached input tokens x input price + cached input tokens x cached input price (the input price when
  no cached price is listed) + output tokens x output price, prices in USD per million tokens.
- Reasoning tokens are billed as output. Usage in the OpenAI shape counts them inside `completion_tokens`
  (`completion_tokens_details.reasoning_tokens` is a part of it), so they are not added twice.
- A response served from the AI Gateway cache (`cf-aig-cache-status: HIT`) never reaches Workers AI: it costs
  $0, and what it would have cost is what the cache saved.
- No price (or no token counts) means an unknown cost, never $0. Failed requests are left out, as the latency
  statistics leave them out. Warm-ups are left out of run statistics.
- The monthly projection takes Cloudflare's free allocation (10,000 neurons = $0.11 a day, per account) off
  each day's bill; it is shared with everything else the account runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from cfai.format import NO_PRICE, format_usd
from cfai.pricing import (
    BILLING_NOTE,
    FREE_USD_PER_DAY,
    GATEWAY_NOTE,
    ModelPrice,
    TokenKind,
)
from cfai.stats import measured, route_sort_key

PER_MILLION = 1_000_000
DAYS_PER_MONTH = 30.0
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text, for models whose answers carry no usage
CACHED_TOKENS_COLUMN = "tokens_cached"  # optional record column: cached prompt tokens (of tokens_in)
ROUTE_COST_COLUMNS = (
    "route", "requests", "priced", "hits", "cost_p50_usd", "cost_mean_usd", "cost_total_usd",
    "without_cache_usd", "saved_usd", "saved_pct", "neurons_total",
)
CURVE_COLUMNS = ("hit_rate_pct", "monthly_usd", "monthly_list_usd", "point")


# --- one answer ---------------------------------------------------------------------------------------
def _count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number >= 0 else None


def _first(usage: Mapping[str, Any], *paths: str) -> int | None:
    for path in paths:
        node: Any = usage
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        count = _count(node)
        if count is not None:
            return count
    return None


@dataclass(frozen=True)
class Usage:
    """Token counts of one answer. `input_tokens` includes the cached ones; `output_tokens` includes reasoning
    unless `reasoning_in_output` is False (then reasoning is billed on top)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning_in_output: bool = True

    @property
    def uncached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cached_input_tokens, 0)

    @property
    def cached_tokens(self) -> int:
        return min(self.cached_input_tokens, self.input_tokens)

    @property
    def billed_output_tokens(self) -> int:
        return self.output_tokens + (0 if self.reasoning_in_output else self.reasoning_tokens)

    def tokens(self, kind: TokenKind) -> int:
        return {"input": self.uncached_input_tokens, "cached_input": self.cached_tokens,
                "output": self.billed_output_tokens}[kind]

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        """From a response's `usage` in any shape Workers AI answers with: its own and the OpenAI chat shape
        (`prompt_tokens`, `completion_tokens`, `*_details`), the Responses shape (`input_tokens`,
        `output_tokens`), a gateway log (`tokens_in`, `tokens_out`). None when it has no token counts."""
        if not isinstance(usage, Mapping):
            return None
        prompt = _first(usage, "prompt_tokens", "input_tokens", "tokens_in")
        completion = _first(usage, "completion_tokens", "output_tokens", "tokens_out")
        if prompt is None and completion is None:
            return None
        cached = _first(usage, "prompt_tokens_details.cached_tokens", "input_tokens_details.cached_tokens",
                        "cached_tokens") or 0
        reasoning = _first(usage, "completion_tokens_details.reasoning_tokens",
                           "output_tokens_details.reasoning_tokens", "reasoning_tokens") or 0
        completion = completion or 0
        # A part cannot exceed the whole: more reasoning than output tokens means they were counted apart.
        return cls(prompt or 0, cached, completion, reasoning, reasoning_in_output=reasoning <= completion)


KINDS: tuple[TokenKind, ...] = ("input", "cached_input", "output")


@dataclass(frozen=True)
class Cost:
    """The cost of one answer. `usd` None: unknown (no price listed, or no token counts); `reason` says why.
    `unpriced` lists token kinds the answer used that the price does not list: `usd` counts the others."""

    usd: float | None
    input_usd: float | None = None
    cached_input_usd: float | None = None
    output_usd: float | None = None
    neurons: float | None = None  # None when Cloudflare publishes no neuron mapping for the model
    cache_hit: bool = False
    unpriced: tuple[TokenKind, ...] = ()
    reason: str = ""

    @property
    def complete(self) -> bool:
        return self.usd is not None and not self.unpriced

    @property
    def label(self) -> str:
        """"$0.0000118", "$0 (cache hit)", "no price listed", "at least $0.00001 (no output price listed)"."""
        if self.usd is None:
            return self.reason or NO_PRICE
        if self.cache_hit:
            return "$0 (cache hit)"
        if self.unpriced:
            missing = " or ".join(kind.replace("_", " ") for kind in self.unpriced)
            return f"at least {format_usd(self.usd)} (no {missing} price listed)"
        return format_usd(self.usd)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["unpriced"] = list(self.unpriced)
        data["label"] = self.label
        return data


def answer_cost(usage: Usage | Mapping[str, Any] | None, price: ModelPrice | None, cache_hit: bool = False) -> Cost:
    """The list-price cost of one answer. A cache hit costs $0 whatever the price."""
    if cache_hit:
        return Cost(0.0, 0.0, 0.0, 0.0, neurons=0.0, cache_hit=True)
    if price is None or not price.has_token_price:
        return Cost(None, reason=NO_PRICE)
    parsed = usage if isinstance(usage, Usage) else Usage.from_usage(usage)
    if parsed is None:
        return Cost(None, reason="no token counts in the answer")
    parts: dict[TokenKind, float | None] = {}
    unpriced: list[TokenKind] = []
    for kind in KINDS:
        tokens, rate = parsed.tokens(kind), price.rate(kind)
        if tokens and rate is None:
            unpriced.append(kind)
            parts[kind] = None
        else:
            parts[kind] = tokens * (rate or 0.0) / PER_MILLION
    used = [kind for kind in KINDS if parsed.tokens(kind)]
    neurons: float | None = None
    if price.neurons is not None and all(price.neuron_rate(kind) is not None for kind in used):
        neurons = sum(parsed.tokens(kind) * (price.neuron_rate(kind) or 0.0) for kind in used) / PER_MILLION
    if used and len(unpriced) == len(used):  # nothing the answer used is priced
        missing = " or ".join(kind.replace("_", " ") for kind in unpriced)
        return Cost(None, unpriced=tuple(unpriced), reason=f"no {missing} price listed")
    return Cost(
        sum(v for v in parts.values() if v is not None), parts["input"], parts["cached_input"], parts["output"],
        neurons=neurons if not unpriced else None, unpriced=tuple(unpriced),
    )


# --- a comparison run ----------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """A rough token count for a text (about 4 characters a token), for answers that carry no usage, such as
    text classification. Real tokenizers differ; callers mark figures built on it as estimates."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0


def _tokens(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def _kind_cost(tokens: pd.Series, rate: float | None) -> pd.Series:
    """tokens x rate per million; NaN where tokens were used but the kind has no price."""
    if rate is None:
        return pd.Series(np.where(tokens.fillna(0) > 0, np.nan, 0.0), index=tokens.index)
    return tokens.fillna(0) * rate / PER_MILLION


def record_costs(df: pd.DataFrame, price: ModelPrice | None, estimated_input_tokens: int | None = None) -> pd.DataFrame:
    """The records with `would_cost_usd` (the request at list price), `cost_usd` (0 for a cache hit) and
    `neurons`: NaN for failed requests, without a price, or without token counts (hits included: a run
    total must not read $0 when only the misses lack a price). `tokens_in` and
    `tokens_out` come from the records (`tokens_cached`, when present, is the cached part of `tokens_in`);
    `estimated_input_tokens` stands in for a missing `tokens_in` (answers without usage)."""
    out = df.copy()
    tokens_in = _tokens(df, "tokens_in")
    if estimated_input_tokens is not None:
        tokens_in = tokens_in.fillna(float(estimated_input_tokens))
    tokens_out = _tokens(df, "tokens_out")
    cached = _tokens(df, CACHED_TOKENS_COLUMN).fillna(0).clip(lower=0)
    cached = cached.where(cached <= tokens_in.fillna(0), tokens_in.fillna(0))  # never more than the input
    uncached = (tokens_in - cached).clip(lower=0)
    ok = df["ok"].astype(bool) if "ok" in df else pd.Series(True, index=df.index)
    has_tokens = tokens_in.notna() | tokens_out.notna()
    hit = df["cache_status"].astype(str).str.upper().eq("HIT") if "cache_status" in df else pd.Series(False, index=df.index)
    if price is None or not price.has_token_price:
        would = pd.Series(np.nan, index=df.index)
        neurons = pd.Series(np.nan, index=df.index)
    else:
        would = (_kind_cost(uncached, price.rate("input")) + _kind_cost(cached, price.rate("cached_input"))
                 + _kind_cost(tokens_out, price.rate("output")))
        if price.neurons is not None:
            neurons = (_kind_cost(uncached, price.neuron_rate("input"))
                       + _kind_cost(cached, price.neuron_rate("cached_input"))
                       + _kind_cost(tokens_out, price.neuron_rate("output")))
        else:
            neurons = pd.Series(np.nan, index=df.index)
    known = ok & has_tokens & would.notna()  # a hit counts as $0 only where its list price is known too
    out["would_cost_usd"] = would.where(known).astype(float)
    out["cost_usd"] = would.where(~hit, 0.0).where(known).astype(float)
    out["neurons"] = neurons.where(~hit, 0.0).where(known).astype(float)
    return out


def route_costs(df: pd.DataFrame, price: ModelPrice | None, estimated_input_tokens: int | None = None) -> pd.DataFrame:
    """One row per route (warm-ups excluded, successful requests): requests, priced (with a known cost), hits,
    cost per request (p50, mean), total cost, what the route would have cost without its cache hits, what the
    cache saved ($ and % of the cost without cache) and neurons. Costs are NaN when nothing could be priced."""
    costed = record_costs(measured(df), price, estimated_input_tokens)
    costed = costed.loc[costed["ok"].astype(bool)] if "ok" in costed else costed
    rows = []
    for route in sorted(costed["route"].astype(str).unique(), key=route_sort_key):
        group = costed.loc[costed["route"].astype(str) == route]
        priced = group.loc[group["cost_usd"].notna()]
        cost, would = priced["cost_usd"].to_numpy(float), priced["would_cost_usd"].to_numpy(float)
        hits = int(group["cache_status"].astype(str).str.upper().eq("HIT").sum()) if "cache_status" in group else 0
        total = float(cost.sum()) if len(cost) else math.nan
        without = float(would.sum()) if len(would) else math.nan
        saved = without - total if len(cost) else math.nan
        rows.append({
            "route": route, "requests": len(group), "priced": len(priced), "hits": hits,
            "cost_p50_usd": float(np.percentile(cost, 50)) if len(cost) else math.nan,
            "cost_mean_usd": float(cost.mean()) if len(cost) else math.nan,
            "cost_total_usd": total, "without_cache_usd": without, "saved_usd": saved,
            "saved_pct": 100.0 * saved / without if len(cost) and without > 0 else math.nan,
            "neurons_total": float(priced["neurons"].sum()) if len(priced) and priced["neurons"].notna().all() else math.nan,
        })
    return pd.DataFrame(rows, columns=list(ROUTE_COST_COLUMNS))


class _CacheSaving:
    """What a cache saved: the difference of a cost with and without it, in dollars and as a share."""

    with_cache_usd: float
    without_cache_usd: float

    @property
    def saved_usd(self) -> float:
        return self.without_cache_usd - self.with_cache_usd

    @property
    def saved_pct(self) -> float | None:
        return 100.0 * self.saved_usd / self.without_cache_usd if self.without_cache_usd > 0 else None


@dataclass(frozen=True)
class Saving(_CacheSaving):
    """What the cache saved on one route of a run: the headline "cache saved $X (Y%)"."""

    route: str
    requests: int
    hits: int
    with_cache_usd: float
    without_cache_usd: float


    @property
    def label(self) -> str:
        pct = self.saved_pct
        return f"cache saved {format_usd(self.saved_usd)}" + ("" if pct is None else f" ({pct:.0f}%)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_usd": self.saved_usd, "saved_pct": self.saved_pct, "label": self.label}


def cache_saving(df: pd.DataFrame, price: ModelPrice | None, route: str = "gateway",
                 estimated_input_tokens: int | None = None) -> Saving | None:
    """The saving on `route`, or None when the run has no such route or nothing on it could be priced."""
    table = route_costs(df, price, estimated_input_tokens)
    row = table.loc[table["route"] == route]
    if row.empty or not row.iloc[0]["priced"]:
        return None
    r = row.iloc[0]
    return Saving(route, int(r["requests"]), int(r["hits"]), float(r["cost_total_usd"]), float(r["without_cache_usd"]))


def cost_per_request(df: pd.DataFrame, price: ModelPrice | None, estimated_input_tokens: int | None = None) -> float | None:
    """The mean list-price cost of one request of the run as Workers AI bills it uncached (all routes,
    successful measured requests): the basis of the projection. None when nothing could be priced."""
    costed = record_costs(measured(df), price, estimated_input_tokens)
    values = costed["would_cost_usd"].dropna()
    return float(values.mean()) if len(values) else None


# --- a projection --------------------------------------------------------------------------------------
def _check_projection(cost_per_request_usd: float, requests_per_day: float, hit_rate: float, days: float) -> None:
    problems = []
    if not (math.isfinite(cost_per_request_usd) and cost_per_request_usd >= 0):
        problems.append("The cost per request must be a non-negative number of dollars.")
    if not (math.isfinite(requests_per_day) and requests_per_day >= 0):
        problems.append("Requests per day must be zero or more.")
    if not (math.isfinite(hit_rate) and 0 <= hit_rate <= 1):
        problems.append("The hit rate must be between 0% and 100%.")
    if not (math.isfinite(days) and days > 0):
        problems.append("Days per month must be above 0.")
    if problems:
        raise ValueError(" ".join(problems))


def _billed_per_day(list_per_day: float, free_usd_per_day: float) -> float:
    return max(0.0, list_per_day - free_usd_per_day)


@dataclass(frozen=True)
class Projection(_CacheSaving):
    """Monthly cost of `requests_per_day` at `hit_rate`, with and without the cache. `*_list_usd` is before
    the free daily allocation, the others after it (each day's allocation only covers that day)."""

    requests_per_day: float
    hit_rate: float  # 0..1
    cost_per_request_usd: float
    days_per_month: float
    free_usd_per_day: float
    with_cache_list_usd: float
    without_cache_list_usd: float
    with_cache_usd: float
    without_cache_usd: float


    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_usd": self.saved_usd, "saved_pct": self.saved_pct}


def project_monthly(cost_per_request_usd: float, requests_per_day: float, hit_rate: float,
                    days_per_month: float = DAYS_PER_MONTH, free_usd_per_day: float = FREE_USD_PER_DAY) -> Projection:
    """Requests that hit the cache cost nothing; the rest cost `cost_per_request_usd` each. Raises ValueError
    with every problem of the inputs. Pass `free_usd_per_day=0` when the account's allocation goes elsewhere."""
    _check_projection(cost_per_request_usd, requests_per_day, hit_rate, days_per_month)
    without_day = requests_per_day * cost_per_request_usd
    with_day = without_day * (1.0 - hit_rate)
    free = max(free_usd_per_day, 0.0)
    return Projection(
        requests_per_day, hit_rate, cost_per_request_usd, days_per_month, free,
        with_cache_list_usd=with_day * days_per_month, without_cache_list_usd=without_day * days_per_month,
        with_cache_usd=_billed_per_day(with_day, free) * days_per_month,
        without_cache_usd=_billed_per_day(without_day, free) * days_per_month,
    )


def cost_vs_hit_rate(cost_per_request_usd: float, requests_per_day: float, measured_hit_rate: float | None = None,
                     step_pct: int = 5, days_per_month: float = DAYS_PER_MONTH,
                     free_usd_per_day: float = FREE_USD_PER_DAY) -> pd.DataFrame:
    """Tidy, for a chart: monthly cost at hit rates 0, step, ..., 100% (`point` "curve"), plus one row for the
    measured hit rate (`point` "measured") when given. Columns: CURVE_COLUMNS."""
    if not 1 <= step_pct <= 100:
        raise ValueError("The hit-rate step must be between 1 and 100 percentage points.")
    rates = [*np.unique(np.append(np.arange(0, 100, step_pct, dtype=float), 100.0))]
    points = [(pct, "curve") for pct in rates]
    if measured_hit_rate is not None:
        points.append((100.0 * measured_hit_rate, "measured"))
    rows = []
    for pct, point in points:
        p = project_monthly(cost_per_request_usd, requests_per_day, pct / 100.0, days_per_month, free_usd_per_day)
        rows.append({"hit_rate_pct": pct, "monthly_usd": p.with_cache_usd, "monthly_list_usd": p.with_cache_list_usd,
                     "point": point})
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


# --- a classify batch ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchCost:
    """A batch's cost. `texts` are the classified rows; cache hits among them cost nothing."""

    texts: int
    billed_texts: int
    input_tokens: int
    estimated: bool  # token counts estimated from the texts (classification answers carry no usage)
    usd: float | None
    without_cache_usd: float | None
    neurons: float | None

    @property
    def per_1000_usd(self) -> float | None:
        return None if self.usd is None or not self.texts else 1000.0 * self.usd / self.texts

    @property
    def label(self) -> str:
        if self.usd is None:
            return NO_PRICE
        approx = "about " if self.estimated else ""
        return f"{approx}{format_usd(self.usd)} for {self.texts:,} texts ({format_usd(self.per_1000_usd)} per 1,000)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_1000_usd": self.per_1000_usd, "label": self.label}


def batch_cost(frame: pd.DataFrame, price: ModelPrice | None) -> BatchCost:
    """Cost of the successful rows of a classify batch (`cfai.classify.results_frame`): input tokens from a
    `tokens_in` column when there is one, else estimated from each text."""
    done = frame.loc[frame["status"].astype(str) == "ok"] if "status" in frame else frame
    if "tokens_in" in done and pd.to_numeric(done["tokens_in"], errors="coerce").notna().all():
        tokens = pd.to_numeric(done["tokens_in"], errors="coerce").astype(int).tolist()
        estimated = False
    else:
        tokens = [estimate_tokens(str(t)) for t in done["text"].tolist()]
        estimated = True
    hits = (done["cache_status"].astype(str).str.upper().eq("HIT").tolist() if "cache_status" in done
            else [False] * len(done))
    billed_tokens = sum(t for t, hit in zip(tokens, hits, strict=True) if not hit)
    all_tokens = sum(tokens)
    usd = answer_cost(Usage(billed_tokens), price)
    without = answer_cost(Usage(all_tokens), price)
    return BatchCost(
        texts=len(done), billed_texts=hits.count(False), input_tokens=all_tokens, estimated=estimated,
        usd=usd.usd, without_cache_usd=without.usd, neurons=usd.neurons,
    )


# --- for the CLI, stored runs and exports --------------------------------------------------------------
def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_cost_summary(df: pd.DataFrame, price: ModelPrice | None, estimated_input_tokens: int | None = None,
                     cache_route: str = "gateway") -> dict[str, Any]:
    """JSON-ready cost figures of a run: the price used, per-route costs, the cache saving, the cost of one
    uncached request, and the notes a reader needs (list prices, not an invoice)."""
    table = route_costs(df, price, estimated_input_tokens)
    saving = cache_saving(df, price, cache_route, estimated_input_tokens)
    return {
        "price": price.to_dict() if price is not None else None,
        "routes": {row["route"]: {k: _json_number(v) for k, v in row.items() if k != "route"}
                   for row in table.to_dict("records")},
        "cache_saved": saving.to_dict() if saving is not None else None,
        "cost_per_request_usd": cost_per_request(df, price, estimated_input_tokens),
        "estimated_tokens": estimated_input_tokens is not None,
        "notes": [BILLING_NOTE, GATEWAY_NOTE],
    }

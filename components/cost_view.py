"""Cost on the pages: under an answer, a custom contract price, a comparison run's cost section with the
"cache saved" card and a monthly projection, a classify batch, and cost columns for run statistics.

Every figure comes from `cfai.cost` / `cfai.pricing` (this module only lays them out); a missing price reads
"no price listed", never $0. Dollar signs are escaped in Markdown, where a pair of them would start LaTeX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from cfai.cost import (
    DAYS_PER_MONTH,
    BatchCost,
    Cost,
    Saving,
    Usage,
    cache_saving,
    cost_per_request,
    cost_vs_hit_rate,
    project_monthly,
    record_costs,
    route_costs,
)
from cfai.format import NO_PRICE, format_neurons, format_unit_price, format_usd
from cfai.pricing import (
    BILLING_NOTE,
    FREE_NEURONS_PER_DAY,
    FREE_USD_PER_DAY,
    GATEWAY_NOTE,
    PRICING_DATE,
    PRICING_URL,
    ModelPrice,
    PriceError,
    TokenKind,
    custom_price,
    effective_price,
    format_price,
)
from cfai.stats import measured
from components import cost_charts

KIND_LABELS: dict[TokenKind, str] = {"input": "input", "cached_input": "cached input", "output": "output"}
HIT_NOTE = "answered from the AI Gateway cache: not billed by Workers AI, and the gateway's caching is free"
ESTIMATE_NOTE = ("About: classification answers carry no token counts, so input tokens are estimated from the "
                 "texts (about 4 characters a token); real tokenizers differ.")
COST_STAT_COLUMNS = ("cost_p50_usd", "cost_mean_usd", "cost_total_usd", "saved_usd")
COST_STAT_LABELS = {"cost_p50_usd": "p50 / request", "cost_mean_usd": "mean / request",
                    "cost_total_usd": "total", "saved_usd": "saved"}
DEFAULT_REQUESTS_PER_DAY = 10_000


def _md(text: str) -> str:
    """Markdown-safe: a pair of unescaped "$" would be rendered as LaTeX."""
    return text.replace("$", r"\$")


def _usd(value: float | None, approx: bool = False) -> str:
    text = format_usd(value)
    return f"about {text}" if approx and text != NO_PRICE and text != "$0" else text


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- under an answer ----------------------------------------------------------------------------------
def cost_breakdown(cost: Cost, usage: Usage | Mapping[str, Any] | None, price: ModelPrice | None) -> list[str]:
    """"42 input × $0.282/M", ... for the token kinds the answer used; empty for a hit or unknown usage."""
    parsed = usage if isinstance(usage, Usage) else Usage.from_usage(usage)
    if cost.cache_hit or parsed is None:
        return []
    if price is None or not price.has_token_price:  # nothing to multiply: just the counts
        counts = [f"{parsed.tokens(k):,} {label}" for k, label in KIND_LABELS.items() if parsed.tokens(k)]
        return [" + ".join(counts) + " tokens"] if counts else []
    parts = []
    for kind, label in KIND_LABELS.items():
        tokens = parsed.tokens(kind)
        if not tokens:
            continue
        rate = price.rate(kind) if price is not None else None
        if rate is None:
            parts.append(f"{tokens:,} {label} ({NO_PRICE})")
            continue
        text = f"{tokens:,} {label} × {format_unit_price(rate)}/M"
        if kind == "cached_input" and price is not None and price.cached_input_per_m is None:
            text += " (no cached rate listed: input price)"
        parts.append(text)
    return parts


def answer_cost_line(cost: Cost, usage: Usage | Mapping[str, Any] | None = None,
                     price: ModelPrice | None = None) -> str:
    """One line under an answer (and under each side of side by side): the cost, then, when `usage` and
    `price` are given, tokens × price per kind, and neurons where Cloudflare publishes the mapping. Returns
    the line as plain text (for exports and tests)."""
    parts = [f"cost **{cost.label}**"]
    if cost.cache_hit:
        parts.append(HIT_NOTE)
    else:
        parts += cost_breakdown(cost, usage, price)
        neurons = format_neurons(cost.neurons)
        if neurons:
            parts.append(neurons)
        if price is not None and price.source == "custom":
            parts.append("custom price" + (f" ({price.note})" if price.note else ""))
    line = " · ".join(parts)
    help_text = f"{BILLING_NOTE} {GATEWAY_NOTE}" if cost.cache_hit else BILLING_NOTE
    st.markdown(f":material/payments: {_md(line)}", help=help_text)
    return line.replace("**", "")


# --- a custom contract price --------------------------------------------------------------------------
def _seed(keys: Mapping[str, str], initial: ModelPrice | None, model: str) -> None:
    """Start the editor from a stored override (a reopened run) the first time it is drawn."""
    if initial is None or initial.source != "custom" or initial.model != model or keys["on"] in st.session_state:
        return
    st.session_state[keys["on"]] = True
    st.session_state[keys["input"]] = initial.input_per_m
    st.session_state[keys["cached"]] = initial.cached_input_per_m
    st.session_state[keys["output"]] = initial.output_per_m
    st.session_state[keys["note"]] = initial.note


def list_price_caption(model: str, price: ModelPrice | None) -> str:
    """Where a list price comes from, or that there is none."""
    if price is None or not price.has_token_price:
        extra = f" (listed: {format_price(price)})" if price is not None and price.other else ""
        return (f"`{model}`: {NO_PRICE} in the model catalogue{extra}, so its costs read "
                f"\"{NO_PRICE}\" unless you set a custom price.")
    return (f"`{model}` list price: {format_price(price)} (the model catalogue's `price` property; "
            f"[Cloudflare's pricing page]({PRICING_URL}), last updated {PRICING_DATE}).")


def price_override_editor(model: str, catalogue_price: ModelPrice | None, key: str,
                          initial: ModelPrice | None = None) -> ModelPrice | None:
    """The list price with its source, and a custom contract price the user can set instead (validated by
    `cfai.pricing.custom_price`, its error shown under the fields; the entries are kept). Returns the
    effective price: the override when valid, else the list price (None: no price listed). Store
    `price.to_dict()` with a run; pass it back as `initial` (`stored_price`) to reopen it."""
    keys = {name: f"{key}_{name}_{model}" for name in ("on", "input", "cached", "output", "note")}
    _seed(keys, initial, model)
    st.markdown(_md(list_price_caption(model, catalogue_price)))
    if not st.toggle("Use a custom price (your contract)", key=keys["on"],
                     help="Replaces the list price as a whole, in USD per million tokens; a field left empty "
                          "is not priced. Stored with the run."):
        return effective_price(catalogue_price, None)
    c1, c2, c3 = st.columns(3)
    common: dict[str, Any] = {"min_value": 0.0, "value": None, "step": 0.01, "format": "%g"}
    input_per_m = c1.number_input("Input, $ per M tokens", key=keys["input"], **common)
    cached_per_m = c2.number_input("Cached input, $ per M tokens", key=keys["cached"],
                                   help="Leave empty to bill cached input at the input price.", **common)
    output_per_m = c3.number_input("Output, $ per M tokens", key=keys["output"], **common)
    note = st.text_input("Contract name (optional)", key=keys["note"], max_chars=80)
    try:
        override = custom_price(model, input_per_m, output_per_m, cached_per_m, note=note.strip())
    except PriceError as e:
        where = c2 if "cached" in str(e).lower() else st
        where.error(str(e), icon=":material/error:")
        st.caption("Costs use the list price until the custom price is complete.")
        return effective_price(catalogue_price, None)
    st.caption(_md(f"Costs use your price: {format_price(override)}."))
    return effective_price(catalogue_price, override)


def stored_price(data: Mapping[str, Any] | None) -> ModelPrice | None:
    """A price stored with a run (`ModelPrice.to_dict()`), or None when absent or unreadable (an old run, a
    hand-edited import): the page then falls back to the catalogue."""
    if not isinstance(data, Mapping):
        return None
    try:
        return ModelPrice.from_dict(data)
    except PriceError:
        return None


# --- a comparison run ----------------------------------------------------------------------------------
def no_saving_reason(df: pd.DataFrame, price: ModelPrice | None, route: str = "gateway") -> str:
    """Why a run has no "cache saved" figure: no price, or nothing measured on the cached route to price
    (a direct-only run, or one cancelled during its warm-ups); "no price listed" only when that is true."""
    if price is None or not price.has_token_price:
        return NO_PRICE
    table = route_costs(df, price)
    if not (table["route"] == route).any():
        return f"no {route} requests"  # none measured and successful: short, it is a card
    return "no token counts"


def cost_headline(saving: Saving | None, reason: str = NO_PRICE, container: Any = None) -> str:
    """The card "cache saved $X (Y%)", meant to sit next to the speed-up card; `reason` is shown when there
    is no saving to report. Returns the card's text."""
    where = container if container is not None else st
    if saving is None:
        where.metric("Cache saved", reason, border=True, help=f"{BILLING_NOTE} {GATEWAY_NOTE}")
        return f"cache saved: {reason}"
    pct = saving.saved_pct
    where.metric(  # two significant figures and a short delta: the card shares a row with the speed-up
        "Cache saved", format_usd(saving.saved_usd, digits=2), border=True,
        delta=f"{pct:.0f}% of the {saving.route} route's cost" if pct is not None else None,
        delta_color="off", delta_arrow="off",
        help=(f"{saving.hits:,} of {saving.requests:,} successful measured {saving.route} requests were cache "
              f"hits. Cost with the cache {format_usd(saving.with_cache_usd)}, without it "
              f"{format_usd(saving.without_cache_usd)}. {GATEWAY_NOTE} {BILLING_NOTE}"),
    )
    return saving.label


ROUTE_VIEW_COLUMNS = ("route", "requests", "p50 / request", "mean / request", "total", "cache saved")


def route_cost_view(table: pd.DataFrame, approx: bool = False) -> pd.DataFrame:
    """`route_costs` as text for a narrow table (six columns fit 1024 px with the sidebar open): dollars
    formatted, "no price listed" where unknown; neurons go to `route_neurons_note`."""
    rows = []
    for r in table.itertuples(index=False):
        saved = _usd(r.saved_usd, approx)
        if _finite(r.saved_pct) is not None:
            saved += f" ({r.saved_pct:.0f}%)"
        requests = f"{r.requests:,} ({r.hits:,} hits)" if r.hits else f"{r.requests:,}"
        if r.priced != r.requests:
            requests += f", {r.priced:,} priced"
        rows.append({
            "route": r.route, "requests": requests, "p50 / request": _usd(r.cost_p50_usd, approx),
            "mean / request": _usd(r.cost_mean_usd, approx), "total": _usd(r.cost_total_usd, approx),
            "cache saved": saved,
        })
    return pd.DataFrame(rows, columns=list(ROUTE_VIEW_COLUMNS))


def route_neurons_note(table: pd.DataFrame) -> str:
    """"Neurons: direct 11.3, gateway 0." where Cloudflare publishes the model's mapping, else ""."""
    parts = [f"{r.route} {format_neurons(r.neurons_total).removesuffix(' neurons')}"
             for r in table.itertuples(index=False) if format_neurons(r.neurons_total)]
    return f"Neurons (what Workers AI bills): {', '.join(parts)}." if parts else ""


def measured_hit_rate(table: pd.DataFrame, route: str) -> float | None:
    """Hits over successful measured requests on `route` (the projection's hit rate), None without it."""
    row = table.loc[table["route"] == route]
    if row.empty or not int(row.iloc[0]["requests"]):
        return None
    return int(row.iloc[0]["hits"]) / int(row.iloc[0]["requests"])


def projection_block(per_request_usd: float, hit_rate: float | None, key: str, cache_route: str = "gateway",
                     approx: bool = False) -> None:
    """Requests per day (input) x the measured hit rate: monthly cost with and without the cache, the free
    allocation taken off (a toggle, since it is shared with the rest of the account), and the cost-vs-hit-rate
    chart with the measured point."""
    st.markdown("**Projection per month**")
    c1, c2 = st.columns([1, 1])
    per_day = c1.number_input("Requests per day", min_value=0, max_value=1_000_000_000,
                              value=DEFAULT_REQUESTS_PER_DAY, step=1_000, key=f"{key}_per_day")
    free = c2.toggle("Free allocation covers this traffic", value=True, key=f"{key}_free",
                     help=f"Workers AI's {FREE_NEURONS_PER_DAY:,} free neurons a day ({format_usd(FREE_USD_PER_DAY)}) "
                          "are per account and shared with everything else it runs; turn this off when other "
                          "work uses them.")
    free_usd = FREE_USD_PER_DAY if free else 0.0
    rate = hit_rate if hit_rate is not None else 0.0
    p = project_monthly(per_request_usd, float(per_day), rate, free_usd_per_day=free_usd)
    m1, m2, m3 = st.columns(3)  # short labels: three cards share a row at 1024 px with the sidebar open
    m1.metric("Without cache", format_usd(p.without_cache_usd), border=True, delta="per month",
              delta_color="off", delta_arrow="off")
    m2.metric("With cache", format_usd(p.with_cache_usd), border=True, delta=f"per month, {rate:.0%} hits",
              delta_color="off", delta_arrow="off")
    m3.metric("Saved", format_usd(p.saved_usd), border=True, delta_color="off", delta_arrow="off",
              delta=f"per month, {p.saved_pct:.0f}%" if p.saved_pct is not None else "per month")
    where = (f"the {rate:.0%} hit rate measured on {cache_route}" if hit_rate is not None
             else f"no {cache_route} route in this run, so 0% hits")
    free_text = (f"less the free {FREE_NEURONS_PER_DAY:,} neurons ({format_usd(FREE_USD_PER_DAY)}) a day"
                 if free else "no free allocation taken off")
    st.caption(_md(
        f"{per_day:,} requests a day × {_usd(per_request_usd, approx)} per request (this run's mean, uncached) × "
        f"{DAYS_PER_MONTH:.0f} days, at {where}, {free_text}. At list price: "
        f"{format_usd(p.without_cache_list_usd)} without the cache, {format_usd(p.with_cache_list_usd)} with it."))
    curve = cost_vs_hit_rate(per_request_usd, float(per_day), hit_rate, free_usd_per_day=free_usd)
    st.altair_chart(cost_charts.cost_vs_hit_rate_chart(curve, float(per_day)), width="stretch")


def run_cost_section(df: pd.DataFrame, price: ModelPrice | None, *, key: str, model: str | None = None,
                     cache_route: str = "gateway", estimated_input_tokens: int | None = None) -> Saving | None:
    """A run's cost (Compare and History): the price used, per-route cost per request (p50, mean), total and
    what the cache saved, a bar chart, and the projection. Returns the cache saving on `cache_route` (None
    when the run has no such route or no price) for `cost_headline`. `estimated_input_tokens` prices answers
    without usage (classification) and marks figures "about"."""
    st.subheader("Cost")
    name = model or (price.model if price is not None else "this model")
    approx = estimated_input_tokens is not None
    if price is None or not price.has_token_price:
        st.info(_md(list_price_caption(name, price)), icon=":material/money_off:")
        return None
    source = "your custom price" if price.source == "custom" else "list price"
    st.caption(_md(f"Priced at {source}: {format_price(price)}. {BILLING_NOTE} {GATEWAY_NOTE}"
                   + (f" {ESTIMATE_NOTE}" if approx else "")))
    table = route_costs(df, price, estimated_input_tokens)
    if table.empty or not table["priced"].any():
        st.info("No successful measured request with token counts to price yet.")
        return None
    st.dataframe(route_cost_view(table, approx), hide_index=True, width="stretch")
    notes = [route_neurons_note(table)]
    unpriced = int((table["requests"] - table["priced"]).sum())
    if unpriced:
        notes.append(f"{unpriced:,} successful requests carried no token counts and are not priced.")
    if any(notes):
        st.caption(_md(" ".join(n for n in notes if n)))
    st.altair_chart(cost_charts.route_cost_chart(cost_charts.route_cost_data(table)), width="stretch")
    per_request = cost_per_request(df, price, estimated_input_tokens)
    if per_request is not None:
        projection_block(per_request, measured_hit_rate(table, cache_route), key, cache_route, approx)
    return cache_saving(df, price, cache_route, estimated_input_tokens)


# --- a classify batch ---------------------------------------------------------------------------------
def batch_cost_line(batch: BatchCost) -> str:
    """The batch's cost and its cost per 1,000 texts ("about" when tokens were estimated), cache hits not
    billed, neurons where known. Returns the line as plain text."""
    if not batch.texts:
        line = "cost: no texts classified yet"
    elif batch.usd is None:
        line = f"cost **{NO_PRICE}**"
    else:
        parts = [f"cost **{_usd(batch.usd, batch.estimated)}** for {batch.texts:,} texts",
                 f"**{_usd(batch.per_1000_usd, batch.estimated)} per 1,000 texts**"]
        hits = batch.texts - batch.billed_texts
        if hits:
            parts.append(f"{hits:,} cache hits not billed (without the cache "
                         f"{_usd(batch.without_cache_usd, batch.estimated)})")
        neurons = format_neurons(batch.neurons)
        if neurons:
            parts.append(neurons)
        line = " · ".join(parts)
    st.markdown(f":material/payments: {_md(line)}", help=BILLING_NOTE)
    if batch.estimated and batch.usd is not None and batch.texts:
        st.caption(ESTIMATE_NOTE)
    return line.replace("**", "")


# --- cost columns for run statistics (History overlays) -------------------------------------------------
def cost_columns(summary: pd.DataFrame, records: pd.DataFrame, price: ModelPrice | None,
                 estimated_input_tokens: int | None = None) -> pd.DataFrame:
    """`stats.summarize(records)` with COST_STAT_COLUMNS added to each row (a route, or a route and cache
    status): cost per request p50 and mean, total cost and what the cache saved, over the successful
    measured requests of that row. NaN where nothing could be priced (shown as "no price listed")."""
    out = summary.copy()
    for column in COST_STAT_COLUMNS:
        out[column] = np.nan
    if out.empty or records.empty:
        return out
    costed = record_costs(measured(records), price, estimated_input_tokens)
    costed = costed.loc[costed["ok"].astype(bool) & costed["cost_usd"].notna()]
    routes = costed["route"].astype(str)
    statuses = costed["cache_status"].astype(str) if "cache_status" in costed else pd.Series("", index=costed.index)
    for i, row in out.iterrows():
        mask = routes.eq(str(row["route"]))
        if row.get("cache_status", "all") != "all":
            mask &= statuses.eq(str(row["cache_status"]))
        group = costed.loc[mask]
        if group.empty:
            continue
        cost = group["cost_usd"].to_numpy(float)
        out.at[i, "cost_p50_usd"] = float(np.percentile(cost, 50))
        out.at[i, "cost_mean_usd"] = float(cost.mean())
        out.at[i, "cost_total_usd"] = float(cost.sum())
        out.at[i, "saved_usd"] = float(group["would_cost_usd"].sum() - cost.sum())
    return out


def cost_stats_view(summary: pd.DataFrame, approx: bool = False) -> pd.DataFrame:
    """The cost columns of `cost_columns`' output as text, with the row's group (and run, when overlaid)."""
    first = [c for c in ("run", "group", "count") if c in summary]
    view = summary[first].copy()
    for column in COST_STAT_COLUMNS:
        view[COST_STAT_LABELS[column]] = [_usd(v, approx) for v in summary[column]]
    return view


def cost_stats_table(summary: pd.DataFrame, approx: bool = False) -> pd.DataFrame:
    """Render the cost columns per run and route (beside the statistics table); returns what is shown."""
    view = cost_stats_view(summary, approx)
    st.dataframe(view, hide_index=True, width="stretch",
                 column_config={"group": "route · cache", "count": st.column_config.NumberColumn("requests")})
    st.caption(_md(f"Cost per request and totals over successful measured requests, at each run's price. "
                   f"{BILLING_NOTE}"))
    return view

"""The cost renderers (components/cost_view.py) under AppTest, fed with real `cfai.cost` objects computed from
answers, runs and batches fetched from the emulator and priced from its own catalogue; and the cost charts'
data (components/cost_charts.py) checked directly."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cfai.catalog import TEXT_CLASSIFICATION, TEXT_GENERATION, load_catalogue
from cfai.classify import BatchSettings, RowResult, results_frame, run_batch
from cfai.client import Client, GatewayOptions
from cfai.compare import Plan, Runner
from cfai.config import local_connection
from cfai.cost import (
    answer_cost,
    batch_cost,
    cache_saving,
    cost_per_request,
    cost_vs_hit_rate,
    project_monthly,
    route_costs,
)
from cfai.format import NO_PRICE, format_neurons, format_usd
from cfai.pricing import ModelPrice, custom_price
from cfai.stats import summarize
from components import cost_charts
from components.cost_view import cost_columns, route_cost_view

LLAMA = "@cf/meta/llama-3.1-8b-instruct"  # priced in the emulator's catalogue (0.282 / 0.827 per M)
UNPRICED = "@cf/meta/llama-3.1-8b-instruct-fast"  # listed without a price
BERT = "@cf/huggingface/distilbert-sst-2-int8"


@pytest.fixture(scope="module")
def live(emulator):
    client = Client(local_connection(emulator.base_url))
    yield client
    client.close()


@pytest.fixture(scope="module")
def prices(live) -> dict[str, ModelPrice | None]:
    text = load_catalogue(live, TEXT_GENERATION)
    classify = load_catalogue(live, TEXT_CLASSIFICATION)
    return {LLAMA: text.get(LLAMA).price, UNPRICED: text.get(UNPRICED).price, BERT: classify.get(BERT).price}


@pytest.fixture(scope="module")
def run_frame(live) -> pd.DataFrame:
    """A real comparison run: direct and gateway, 6 measured each after a warm-up that fills the cache."""
    plan = Plan(model=LLAMA, body={"prompt": f"cost view {uuid.uuid4().hex}", "max_tokens": 24}, n=6, warmup=1)
    return Runner(live, plan).run().to_frame()


def _unescape(text: str) -> str:
    return text.replace(r"\$", "$")


def _markdown(at: AppTest) -> str:
    return "\n".join(_unescape(m.value) for m in at.markdown)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _app(script, *args) -> AppTest:
    at = AppTest.from_function(script, args=args, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


# --- under an answer ----------------------------------------------------------------------------------
def _answer_script(cost, usage, price):
    import streamlit as st

    from components.cost_view import answer_cost_line

    st.session_state["line"] = answer_cost_line(cost, usage, price)


def test_answer_cost_line_shows_cfai_cost_figures_for_a_real_answer(live, prices):
    price = prices[LLAMA]
    result = live.chat(LLAMA, [{"role": "user", "content": f"price me {uuid.uuid4().hex}"}], max_tokens=16)
    assert result.error is None and result.usage
    cost = answer_cost(result.usage, price)
    tin, tout = result.usage["prompt_tokens"], result.usage["completion_tokens"]
    assert cost.usd == pytest.approx((tin * 0.282 + tout * 0.827) / 1e6)  # the emulator's list price
    at = _app(_answer_script, cost, result.usage, price)
    shown = _markdown(at)
    assert f"cost **{format_usd(cost.usd)}**" in shown
    assert f"{tin:,} input × $0.282/M" in shown and f"{tout:,} output × $0.827/M" in shown
    assert format_neurons(cost.neurons) in shown and cost.neurons
    assert "$" in at.markdown[0].value and "$" not in at.markdown[0].value.replace(r"\$", "")  # no LaTeX
    assert at.session_state["line"].startswith(f"cost {format_usd(cost.usd)}")


def test_a_gateway_cache_hit_reads_zero_and_says_the_gateway_is_free(live, prices):
    price = prices[LLAMA]
    messages = [{"role": "user", "content": f"hit me {uuid.uuid4().hex}"}]
    options = GatewayOptions(cache_ttl=300)
    live.chat(LLAMA, messages, route="gateway", gateway=options, max_tokens=8)
    again = live.chat(LLAMA, messages, route="gateway", gateway=options, max_tokens=8)
    assert again.cache_status == "HIT"
    at = _app(_answer_script, answer_cost(again.usage, price, cache_hit=True), again.usage, price)
    shown = _markdown(at)
    assert "$0 (cache hit)" in shown and "not billed by Workers AI" in shown and "caching is free" in shown
    assert "× $" not in shown  # nothing was billed, so no tokens x price


def test_a_model_without_a_price_says_so_never_zero(live, prices):
    assert prices[UNPRICED] is None  # the catalogue lists it without a price
    result = live.chat(UNPRICED, [{"role": "user", "content": "hello"}], max_tokens=8)
    at = _app(_answer_script, answer_cost(result.usage, prices[UNPRICED]), result.usage, prices[UNPRICED])
    shown = _markdown(at)
    assert f"cost **{NO_PRICE}**" in shown and "$0" not in shown
    assert f"{result.usage['prompt_tokens']:,} input + {result.usage['completion_tokens']:,} output tokens" in shown


# --- the custom contract price ------------------------------------------------------------------------
def _editor_script(model, catalogue, usage, initial=None):
    import streamlit as st

    from cfai.cost import answer_cost
    from components.cost_view import answer_cost_line, price_override_editor

    price = price_override_editor(model, catalogue, key="ovr", initial=initial)
    st.session_state["effective"] = price.to_dict() if price is not None else None
    answer_cost_line(answer_cost(usage, price), usage, price)


def test_override_editor_validates_and_the_override_flows_into_the_cost(live, prices):
    price = prices[LLAMA]
    usage = live.chat(LLAMA, [{"role": "user", "content": "contract"}], max_tokens=8).usage
    at = _app(_editor_script, LLAMA, price, usage)
    assert "$0.282 / M input" in _markdown(at) and "2026-08-28" in _markdown(at)  # the list price, source, date
    assert at.session_state["effective"] == price.to_dict()

    at.toggle[0].set_value(True).run()
    at.number_input(key=f"ovr_cached_{LLAMA}").set_value(0.1).run()  # a cached price alone is not a price
    assert at.error and "input or an output price" in at.error[0].value
    assert at.session_state["effective"]["source"] == "catalogue"  # the list price until it is complete

    at.number_input(key=f"ovr_input_{LLAMA}").set_value(1.0)
    at.number_input(key=f"ovr_output_{LLAMA}").set_value(2.0)
    at.text_input(key=f"ovr_note_{LLAMA}").set_value("ACME 2027").run()
    assert not at.error
    expected = custom_price(LLAMA, 1.0, 2.0, 0.1, note="ACME 2027")
    assert at.session_state["effective"] == expected.to_dict()
    cost = answer_cost(usage, expected)
    assert cost.usd == pytest.approx(usage["prompt_tokens"] * 1e-6 + usage["completion_tokens"] * 2e-6)
    assert f"cost **{format_usd(cost.usd)}**" in _markdown(at) and "custom price (ACME 2027)" in _markdown(at)


def test_override_editor_reopens_a_stored_override(prices):
    from components.cost_view import stored_price

    stored = custom_price(LLAMA, 0.5, 1.5, note="stored").to_dict()
    assert stored_price(stored) == ModelPrice.from_dict(stored)
    assert stored_price({"model": LLAMA, "input_per_m": -1}) is None and stored_price(None) is None
    at = _app(_editor_script, LLAMA, prices[LLAMA], {"prompt_tokens": 10, "completion_tokens": 2},
              stored_price(stored))
    assert at.toggle[0].value is True
    assert at.session_state["effective"] == stored


# --- a comparison run ----------------------------------------------------------------------------------
def _run_script(frame, price, per_day=None):
    import streamlit as st

    from components.cost_view import cost_headline, run_cost_section

    saving = run_cost_section(frame, price, key="cmp", model="@cf/meta/llama-3.1-8b-instruct")
    st.session_state["saving"] = saving.to_dict() if saving is not None else None
    cost_headline(saving)


def test_run_cost_section_matches_cfai_cost_for_a_real_run(run_frame, prices):
    price = prices[LLAMA]
    table = route_costs(run_frame, price)
    saving = cache_saving(run_frame, price)
    assert table.set_index("route").loc["gateway", "hits"] == 6 and saving.saved_pct == pytest.approx(100)
    at = _app(_run_script, run_frame, price)
    assert at.session_state["saving"] == saving.to_dict()

    shown = at.dataframe[0].value.set_index("route")
    for r in table.itertuples(index=False):
        assert shown.loc[r.route, "total"] == format_usd(r.cost_total_usd)
        assert shown.loc[r.route, "mean / request"] == format_usd(r.cost_mean_usd)
        assert shown.loc[r.route, "p50 / request"] == format_usd(r.cost_p50_usd)
    assert shown.loc["gateway", "cache saved"] == f"{format_usd(saving.saved_usd)} (100%)"
    assert shown.loc["gateway", "requests"] == "6 (6 hits)" and shown.loc["direct", "requests"] == "6"
    neurons = format_neurons(table.iloc[0]["neurons_total"]).removesuffix(" neurons")
    assert any(f"direct {neurons}, gateway 0." in c.value for c in at.caption)

    metrics = _metrics(at)
    assert metrics["Cache saved"] == format_usd(saving.saved_usd, digits=2)
    per_request = cost_per_request(run_frame, price)
    hit_rate = 6 / 6
    p = project_monthly(per_request, 10_000, hit_rate)
    assert metrics["Without cache"] == format_usd(p.without_cache_usd)
    assert metrics["With cache"] == format_usd(p.with_cache_usd)
    assert {m.label: m.delta for m in at.metric}["With cache"] == "per month, 100% hits"

    at.number_input(key="cmp_per_day").set_value(250_000).run()
    at.toggle(key="cmp_free").set_value(False).run()
    p = project_monthly(per_request, 250_000, hit_rate, free_usd_per_day=0)
    assert _metrics(at)["Without cache"] == format_usd(p.without_cache_usd)
    assert p.without_cache_usd == pytest.approx(250_000 * per_request * 30)
    assert any("no free allocation" in _unescape(c.value) for c in at.caption)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert [s["title"]["text"] for s in specs] == ["Run cost per route", "Monthly cost vs cache hit rate"]


def test_run_cost_section_without_a_price(run_frame):
    at = _app(_run_script, run_frame, None)
    assert at.session_state["saving"] is None
    assert NO_PRICE in at.info[0].value and not at.dataframe
    assert _metrics(at)["Cache saved"] == NO_PRICE
    assert "$0" not in _markdown(at) and "$0" not in _unescape(at.info[0].value)


def test_run_cost_section_with_an_override_prices_at_the_contract(run_frame):
    override = custom_price(LLAMA, input_per_m=1.0, output_per_m=2.0)
    at = _app(_run_script, run_frame, override)
    total = route_costs(run_frame, override).set_index("route").loc["direct", "cost_total_usd"]
    assert at.dataframe[0].value.set_index("route").loc["direct", "total"] == format_usd(total)
    assert any("your custom price" in _unescape(c.value) for c in at.caption)


# --- a classify batch ---------------------------------------------------------------------------------
def _batch_script(batch):
    import streamlit as st

    from components.cost_view import batch_cost_line

    st.session_state["line"] = batch_cost_line(batch)


def test_batch_cost_line_for_a_real_batch(live, prices):
    texts = ["great product", "terrible support", "it works, mostly", "x" * 40, f"{uuid.uuid4().hex}"]
    rows = [RowResult(i, i + 1, t) for i, t in enumerate(texts)]
    done: list[RowResult] = []
    run_batch(live, BatchSettings(model=BERT, concurrency=2), rows, on_result=done.append)
    batch = batch_cost(results_frame(sorted(done, key=lambda r: r.index)), prices[BERT])
    assert batch.texts == 5 and batch.estimated and batch.usd > 0
    at = _app(_batch_script, batch)
    shown = _markdown(at)
    assert f"about {format_usd(batch.usd)}** for 5 texts" in shown
    assert f"about {format_usd(batch.per_1000_usd)} per 1,000 texts" in shown
    assert "no token counts" in at.caption[0].value
    unpriced = _app(_batch_script, batch_cost(results_frame(done), None))
    assert f"cost **{NO_PRICE}**" in _markdown(unpriced)


# --- cost columns for run statistics --------------------------------------------------------------------
def test_cost_columns_agree_with_route_costs(run_frame, prices):
    price = prices[LLAMA]
    table = route_costs(run_frame, price).set_index("route")
    with_cost = cost_columns(summarize(run_frame), run_frame, price)
    by_route = with_cost.loc[with_cost["cache_status"] == "all"].set_index("route")
    for route in ("direct", "gateway"):
        assert by_route.loc[route, "cost_mean_usd"] == pytest.approx(table.loc[route, "cost_mean_usd"])
        assert by_route.loc[route, "cost_total_usd"] == pytest.approx(table.loc[route, "cost_total_usd"])
        assert by_route.loc[route, "saved_usd"] == pytest.approx(table.loc[route, "saved_usd"])
    hits = with_cost.loc[with_cost["cache_status"] == "HIT"].iloc[0]
    assert hits["cost_total_usd"] == 0 and hits["saved_usd"] == pytest.approx(table.loc["gateway", "without_cache_usd"])
    assert cost_columns(summarize(run_frame), run_frame, None)["cost_total_usd"].isna().all()


def _stats_script(summary):
    from components.cost_view import cost_stats_table

    cost_stats_table(summary)


def test_cost_stats_table_formats_runs_and_says_no_price(run_frame, prices):
    priced = cost_columns(summarize(run_frame), run_frame, prices[LLAMA]).assign(run="priced")
    unpriced = cost_columns(summarize(run_frame), run_frame, None).assign(run="unpriced")
    at = _app(_stats_script, pd.concat([priced, unpriced], ignore_index=True))
    shown = at.dataframe[0].value
    direct = shown.loc[(shown["run"] == "priced") & (shown["group"] == "direct")].iloc[0]
    assert direct["total"] == format_usd(priced.loc[priced["group"] == "direct", "cost_total_usd"].iloc[0])
    assert (shown.loc[shown["run"] == "unpriced", "total"] == NO_PRICE).all()


def test_route_cost_view_says_no_price_not_zero(run_frame):
    view = route_cost_view(route_costs(run_frame, None))
    assert (view["total"] == NO_PRICE).all() and (view["p50 / request"] == NO_PRICE).all()


# --- chart data ---------------------------------------------------------------------------------------
def test_cost_curve_data_is_tidy_aggregated_and_marks_the_measured_point():
    curve = cost_vs_hit_rate(0.001, 10_000, measured_hit_rate=0.6)
    data = cost_charts.curve_data(curve)
    assert tuple(data.columns) == cost_charts.CURVE_DATA_COLUMNS
    assert len(data) == 2 * len(curve) == 2 * 22  # 21 hit rates (0, 5, ..., 100) + the measured one, 2 series
    assert set(data["series"]) == set(cost_charts.CURVE_SERIES.values())
    line = data.loc[(data["point"] == "curve") & (data["series"] == cost_charts.CURVE_SERIES["monthly_usd"])]
    assert line["hit_rate_pct"].min() == 0 and line["hit_rate_pct"].max() == 100
    measured = data.loc[(data["point"] == "measured") & (data["series"] == cost_charts.CURVE_SERIES["monthly_usd"])]
    assert measured["hit_rate_pct"].tolist() == [pytest.approx(60)]
    assert measured["monthly_usd"].tolist() == [pytest.approx(116.7)]  # ($10 x 40% - $0.11) x 30
    spec = cost_charts.cost_vs_hit_rate_chart(curve, 10_000).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 100]
    texts = [v["label"] for v in spec["datasets"].values() for v in v if "label" in v]
    assert texts == ["measured 60% hits: $116.70/month"]
    spec = cost_charts.cost_vs_hit_rate_chart(cost_vs_hit_rate(0.001, 100, measured_hit_rate=1.0), 100).to_dict()
    labels = [(layer["mark"], v["label"]) for layer in spec["layer"] if layer["mark"]["type"] == "text"
              for v in spec["datasets"][layer["data"]["name"]]]
    assert labels == [(labels[0][0], "measured 100% hits: $0/month")] and labels[0][0]["align"] == "right"
    with pytest.raises(ValueError, match="missing"):
        cost_charts.curve_data(curve.drop(columns="point"))


def test_route_cost_data_from_a_real_run(run_frame, prices):
    table = route_costs(run_frame, prices[LLAMA])
    data = cost_charts.route_cost_data(table)
    assert tuple(data.columns) == cost_charts.ROUTE_COST_DATA_COLUMNS and len(data) == 2 * len(table)
    gateway = data.loc[data["route"] == "gateway"].set_index("case")["usd"]
    assert gateway[cost_charts.CASE_ORDER[0]] == 0  # every measured gateway request was a hit
    assert gateway[cost_charts.CASE_ORDER[1]] == pytest.approx(table.iloc[1]["without_cache_usd"])
    spec = cost_charts.route_cost_chart(data).to_dict()
    assert spec["height"] == {"step": 22}  # a discrete axis sized by step, never a fixed height
    assert cost_charts.route_cost_data(route_costs(run_frame, None)).empty


def _report_script(frame, plan, price, presenter):
    from components.run_report import run_report

    run_report(frame, plan, key="rep", price=price, presenter=presenter)


@pytest.mark.parametrize("presenter", [False, True])
def test_cache_saved_card_without_gateway_requests_does_not_claim_no_price(live, prices, presenter):
    """A run with no measured gateway request (direct only, or cancelled during the warm-ups) has nothing to
    save; the card said "no price listed" beside a cost section priced at the list price."""
    plan = Plan(model=LLAMA, body={"prompt": f"no gateway {uuid.uuid4().hex}", "max_tokens": 8}, n=2, warmup=0,
                routes=("direct",))
    frame = Runner(live, plan).run().to_frame()
    at = _app(_report_script, frame, plan, prices[LLAMA], presenter)
    card = _metrics(at)["Cache saved"]
    assert card != NO_PRICE and "no gateway" in card, card
    at = _app(_report_script, frame, plan, None, presenter)
    assert _metrics(at)["Cache saved"] == NO_PRICE

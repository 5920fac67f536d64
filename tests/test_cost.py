"""Costs at list price, checked against figures computed by hand (in the comments): one answer (cached input,
reasoning, missing prices, overrides), a comparison run per route and the cache saving, the monthly
projection with the free allocation, the cost-vs-hit-rate curve and a classify batch."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cfai.classify import RowResult, results_frame
from cfai.compare import Record, records_frame
from cfai.cost import (
    CURVE_COLUMNS,
    ROUTE_COST_COLUMNS,
    Usage,
    answer_cost,
    batch_cost,
    cache_saving,
    cost_per_request,
    cost_vs_hit_rate,
    estimate_tokens,
    project_monthly,
    record_costs,
    route_costs,
    run_cost_summary,
)
from cfai.pricing import PUBLISHED_NEURONS, ModelPrice, custom_price

LLAMA = ModelPrice("@cf/meta/llama-3.1-8b-instruct", 0.282, None, 0.827,
                   neurons=PUBLISHED_NEURONS["@cf/meta/llama-3.1-8b-instruct"])
KIMI = ModelPrice("@cf/moonshotai/kimi-k2.6", 0.95, 0.16, 4.0, neurons=PUBLISHED_NEURONS["@cf/moonshotai/kimi-k2.6"])
GPT_OSS_20B = ModelPrice("@cf/openai/gpt-oss-20b", 0.2, None, 0.3)
BERT = ModelPrice("@cf/huggingface/distilbert-sst-2-int8", 0.026,
                  neurons=PUBLISHED_NEURONS["@cf/huggingface/distilbert-sst-2-int8"])


# --- one answer ---------------------------------------------------------------------------------------
def test_cost_of_an_answer_from_workers_ai_usage():
    cost = answer_cost({"prompt_tokens": 42, "completion_tokens": 8, "total_tokens": 50}, LLAMA)
    # 42 x $0.282/M = $0.000011844; 8 x $0.827/M = $0.000006616; total $0.00001846
    assert cost.input_usd == pytest.approx(11.844e-6)
    assert cost.output_usd == pytest.approx(6.616e-6)
    assert cost.cached_input_usd == 0
    assert cost.usd == pytest.approx(18.46e-6)
    # neurons: 42 x 25,608/M + 8 x 75,147/M = 1.075536 + 0.601176
    assert cost.neurons == pytest.approx(1.676712)
    assert cost.complete and cost.label == "$0.0000185"


def test_cached_input_tokens_are_billed_at_the_cached_price():
    chat = {"prompt_tokens": 1000, "completion_tokens": 200,
            "prompt_tokens_details": {"cached_tokens": 600}, "completion_tokens_details": {"reasoning_tokens": 150}}
    responses = {"input_tokens": 1000, "output_tokens": 200,
                 "input_tokens_details": {"cached_tokens": 600}, "output_tokens_details": {"reasoning_tokens": 150}}
    for usage in (chat, responses):
        cost = answer_cost(usage, KIMI)
        # 400 uncached x $0.95/M = $0.00038; 600 cached x $0.16/M = $0.000096; 200 out x $4/M = $0.0008
        assert (cost.input_usd, cost.cached_input_usd, cost.output_usd) == pytest.approx((380e-6, 96e-6, 800e-6))
        assert cost.usd == pytest.approx(0.001276)
        # 400 x 86,364/M + 600 x 14,545/M + 200 x 363,636/M = 34.5456 + 8.727 + 72.7272
        assert cost.neurons == pytest.approx(115.9998)


def test_cached_tokens_without_a_cached_price_cost_the_input_price():
    cost = answer_cost({"prompt_tokens": 100, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 40}},
                       LLAMA)
    assert cost.usd == pytest.approx(100 * 0.282e-6)  # 60 + 40 tokens, both at $0.282/M: $0.0000282
    assert cost.cached_input_usd == pytest.approx(40 * 0.282e-6)


def test_reasoning_tokens_are_billed_as_output_once():
    inside = Usage.from_usage({"prompt_tokens": 100, "completion_tokens": 60,
                               "completion_tokens_details": {"reasoning_tokens": 50}})
    assert inside.billed_output_tokens == 60  # OpenAI counts reasoning inside completion_tokens
    apart = Usage.from_usage({"prompt_tokens": 100, "completion_tokens": 10,
                              "completion_tokens_details": {"reasoning_tokens": 50}})
    assert not apart.reasoning_in_output and apart.billed_output_tokens == 60  # 10 answer + 50 reasoning
    # Both: 100 x $0.20/M + 60 x $0.30/M = $0.00002 + $0.000018 = $0.000038
    assert answer_cost(inside, GPT_OSS_20B).usd == pytest.approx(38e-6)
    assert answer_cost(apart, GPT_OSS_20B).usd == pytest.approx(38e-6)


def test_usage_shapes_and_junk():
    assert Usage.from_usage({"tokens_in": 7, "tokens_out": 3}) == Usage(7, 0, 3)
    assert Usage.from_usage({"prompt_tokens": "12", "completion_tokens": 4.0}) == Usage(12, 0, 4)
    assert Usage.from_usage({"prompt_tokens": True, "completion_tokens": -3}) is None
    assert Usage.from_usage({}) is None and Usage.from_usage(None) is None and Usage.from_usage("x") is None
    assert Usage(10, 25, 0).uncached_input_tokens == 0 and Usage(10, 25, 0).cached_tokens == 10


def test_no_price_or_no_usage_is_unknown_never_zero():
    usage = {"prompt_tokens": 42, "completion_tokens": 8}
    for price in (None, ModelPrice("m"), ModelPrice("m", other=())):
        cost = answer_cost(usage, price)
        assert cost.usd is None and cost.label == "no price listed" and not cost.complete
    cost = answer_cost(None, LLAMA)
    assert cost.usd is None and cost.label == "no token counts in the answer"


def test_a_partly_priced_answer_says_what_is_missing():
    cost = answer_cost({"prompt_tokens": 10, "completion_tokens": 5}, BERT)  # BERT lists no output price
    assert cost.usd == pytest.approx(10 * 0.026e-6)  # $0.00000026 for the input; output unknown
    assert cost.unpriced == ("output",) and not cost.complete and cost.neurons is None
    assert cost.label == "at least $0.00000026 (no output price listed)"
    only_output = answer_cost({"prompt_tokens": 10, "completion_tokens": 0}, ModelPrice("m", output_per_m=1.0))
    assert only_output.usd is None and only_output.label == "no input price listed"


def test_a_cache_hit_costs_nothing_even_without_a_price():
    for price in (LLAMA, None):
        cost = answer_cost({"prompt_tokens": 42, "completion_tokens": 8}, price, cache_hit=True)
        assert cost.usd == 0 and cost.neurons == 0 and cost.label == "$0 (cache hit)"


def test_an_override_replaces_the_list_price():
    override = custom_price(LLAMA.model, input_per_m=1.0, output_per_m=2.0)
    cost = answer_cost({"prompt_tokens": 42, "completion_tokens": 8}, override)
    assert cost.usd == pytest.approx(58e-6)  # 42 x $1/M + 8 x $2/M
    assert cost.neurons is None  # a contract in dollars maps to no published neurons
    assert json.loads(json.dumps(cost.to_dict()))["label"] == "$0.000058"


# --- a comparison run ---------------------------------------------------------------------------------
def _record(seq: int, route: str, *, ok: bool = True, hit: bool | None = None, warmup: bool = False,
            tokens_in: int | None = 100, tokens_out: int | None = 20) -> Record:
    cache = None if hit is None else ("HIT" if hit else "MISS")
    return Record("r1", seq, route, warmup, 0.0, 0.0, 200 if ok else 500, ok, cache_status=cache,
                  ttfb_ms=5.0, total_ms=10.0, tokens_in=tokens_in if ok else None, tokens_out=tokens_out if ok else None)


@pytest.fixture
def run() -> pd.DataFrame:
    """direct: 3 ok + 1 failed; gateway: a warm-up miss, then 1 miss and 3 hits (100 in, 20 out each)."""
    records = [_record(0, "direct", warmup=True), _record(1, "gateway", hit=False, warmup=True)]
    records += [_record(2 + i, "direct") for i in range(3)] + [_record(5, "direct", ok=False)]
    records += [_record(6, "gateway", hit=False)] + [_record(7 + i, "gateway", hit=True) for i in range(3)]
    return records_frame(records)


PER_REQUEST = 100 * 0.282e-6 + 20 * 0.827e-6  # $0.0000282 + $0.00001654 = $0.00004474
NEURONS_PER_REQUEST = (100 * 25608 + 20 * 75147) / 1e6  # 2.5608 + 1.50294 = 4.06374


def test_record_costs_zero_for_hits_unknown_for_failures(run):
    costed = record_costs(run, LLAMA)
    failed = costed.loc[~costed["ok"]]
    assert failed["cost_usd"].isna().all() and failed["would_cost_usd"].isna().all()
    hits = costed.loc[costed["cache_status"] == "HIT"]
    assert (hits["cost_usd"] == 0).all() and (hits["neurons"] == 0).all()
    assert hits["would_cost_usd"].to_numpy() == pytest.approx([PER_REQUEST] * 3)
    misses = costed.loc[costed["ok"] & (costed["cache_status"] != "HIT")]
    assert misses["cost_usd"].to_numpy() == pytest.approx([PER_REQUEST] * len(misses))


def test_route_costs_per_request_total_and_saving(run):
    table = route_costs(run, LLAMA)
    assert tuple(table.columns) == ROUTE_COST_COLUMNS and list(table["route"]) == ["direct", "gateway"]
    direct, gateway = table.iloc[0], table.iloc[1]
    assert (direct["requests"], direct["priced"], direct["hits"]) == (3, 3, 0)  # the failure and warm-up left out
    assert direct["cost_p50_usd"] == pytest.approx(PER_REQUEST)
    assert direct["cost_mean_usd"] == pytest.approx(PER_REQUEST)
    assert direct["cost_total_usd"] == pytest.approx(3 * PER_REQUEST)  # $0.00013422
    assert direct["saved_usd"] == pytest.approx(0) and direct["saved_pct"] == pytest.approx(0)
    assert direct["neurons_total"] == pytest.approx(3 * NEURONS_PER_REQUEST)  # 12.19122
    assert (gateway["requests"], gateway["hits"]) == (4, 3)
    assert gateway["cost_p50_usd"] == 0  # costs 0, 0, 0, $0.00004474: the median is a hit
    assert gateway["cost_mean_usd"] == pytest.approx(PER_REQUEST / 4)  # $0.000011185
    assert gateway["cost_total_usd"] == pytest.approx(PER_REQUEST)
    assert gateway["without_cache_usd"] == pytest.approx(4 * PER_REQUEST)  # $0.00017896
    assert gateway["saved_usd"] == pytest.approx(3 * PER_REQUEST)
    assert gateway["saved_pct"] == pytest.approx(75.0)
    assert gateway["neurons_total"] == pytest.approx(NEURONS_PER_REQUEST)


def test_cache_saving_headline_and_cost_per_request(run):
    saving = cache_saving(run, LLAMA)
    assert (saving.requests, saving.hits) == (4, 3)
    assert saving.saved_usd == pytest.approx(3 * PER_REQUEST) and saving.saved_pct == pytest.approx(75.0)
    assert saving.label == "cache saved $0.000134 (75%)"
    assert cache_saving(run, LLAMA, route="gateway-skip") is None
    assert cost_per_request(run, LLAMA) == pytest.approx(PER_REQUEST)


def test_a_run_without_a_price_has_no_costs(run):
    table = route_costs(run, None)
    assert table["cost_total_usd"].isna().all() and (table["priced"] == 0).all()
    assert cache_saving(run, None) is None and cost_per_request(run, None) is None
    summary = run_cost_summary(run, None)
    assert summary["price"] is None and summary["cache_saved"] is None
    assert summary["routes"]["direct"]["cost_total_usd"] is None
    json.dumps(summary, allow_nan=False)


def test_cached_prompt_tokens_in_records_use_the_cached_price():
    frame = records_frame([_record(0, "direct")])
    frame["tokens_cached"] = [60]
    costed = record_costs(frame, KIMI)
    # 40 x $0.95/M + 60 x $0.16/M + 20 x $4/M = $0.000038 + $0.0000096 + $0.00008
    assert costed["cost_usd"].iloc[0] == pytest.approx(127.6e-6)


def test_answers_without_usage_can_use_an_estimate():
    frame = records_frame([_record(0, "direct", tokens_in=None, tokens_out=None)])
    assert record_costs(frame, BERT)["cost_usd"].isna().all()
    costed = record_costs(frame, BERT, estimated_input_tokens=estimate_tokens("great product"))
    assert costed["cost_usd"].iloc[0] == pytest.approx(4 * 0.026e-6)  # 13 characters ~ 4 tokens


def test_run_cost_summary_is_json_ready_with_the_price_used(run):
    override = custom_price(LLAMA.model, input_per_m=1.0, output_per_m=2.0, note="contract")
    summary = json.loads(json.dumps(run_cost_summary(run, override), allow_nan=False))
    assert summary["price"]["source"] == "custom" and summary["price"]["note"] == "contract"
    per_request = 100 * 1e-6 + 20 * 2e-6  # $0.00014
    assert summary["routes"]["direct"]["cost_total_usd"] == pytest.approx(3 * per_request)
    assert summary["cache_saved"]["saved_usd"] == pytest.approx(3 * per_request)
    assert summary["cache_saved"]["label"] == "cache saved $0.00042 (75%)"
    assert summary["cost_per_request_usd"] == pytest.approx(per_request)
    assert any("not an invoice" in note for note in summary["notes"])
    assert any("cache" in note and "free" in note for note in summary["notes"])


# --- the monthly projection -----------------------------------------------------------------------------
def test_projection_takes_hits_and_the_free_allocation_into_account():
    p = project_monthly(0.001, 10_000, 0.6)
    # without cache: 10,000 x $0.001 = $10 a day, $9.89 after the free $0.11, x 30 = $296.70
    # with cache: 40% of that = $4 a day, $3.89 after the free $0.11, x 30 = $116.70
    assert p.without_cache_list_usd == pytest.approx(300.0)
    assert p.with_cache_list_usd == pytest.approx(120.0)
    assert p.without_cache_usd == pytest.approx(296.7)
    assert p.with_cache_usd == pytest.approx(116.7)
    assert p.saved_usd == pytest.approx(180.0)
    assert p.saved_pct == pytest.approx(100 * 180 / 296.7)
    assert json.loads(json.dumps(p.to_dict()))["saved_usd"] == pytest.approx(180.0)


def test_projection_under_the_free_allocation_costs_nothing():
    p = project_monthly(0.001, 100, 0.0)  # $0.10 a day, under the $0.11 allocation
    assert p.without_cache_list_usd == pytest.approx(3.0)
    assert p.without_cache_usd == 0 and p.with_cache_usd == 0 and p.saved_pct is None
    shared = project_monthly(0.001, 100, 0.0, free_usd_per_day=0)  # the allocation is used elsewhere
    assert shared.without_cache_usd == pytest.approx(3.0)
    assert project_monthly(0.001, 10_000, 0.5, days_per_month=31).without_cache_usd == pytest.approx(9.89 * 31)


@pytest.mark.parametrize("args, message", [
    ((0.001, 100, 1.5), "hit rate"), ((0.001, -1, 0.5), "Requests per day"),
    ((-0.001, 100, 0.5), "cost per request"), ((math.nan, 100, 0.5), "cost per request"),
])
def test_projection_inputs_are_checked(args, message):
    with pytest.raises(ValueError, match=message):
        project_monthly(*args)


def test_cost_vs_hit_rate_curve_is_tidy_and_marks_the_measured_point():
    curve = cost_vs_hit_rate(0.001, 10_000, measured_hit_rate=0.6, step_pct=25)
    assert tuple(curve.columns) == CURVE_COLUMNS
    line = curve.loc[curve["point"] == "curve"]
    assert list(line["hit_rate_pct"]) == [0, 25, 50, 75, 100]
    # $10 a day x (1 - hit rate) - $0.11, x 30: 296.7, 221.7, 146.7, 71.7, 0
    assert list(line["monthly_usd"]) == pytest.approx([296.7, 221.7, 146.7, 71.7, 0.0])
    assert list(line["monthly_list_usd"]) == pytest.approx([300, 225, 150, 75, 0])
    point = curve.loc[curve["point"] == "measured"].iloc[0]
    assert point["hit_rate_pct"] == pytest.approx(60) and point["monthly_usd"] == pytest.approx(116.7)
    assert len(cost_vs_hit_rate(0.001, 10_000)) == 21  # 0, 5, ..., 100
    with pytest.raises(ValueError, match="step"):
        cost_vs_hit_rate(0.001, 10_000, step_pct=0)


# --- a classify batch ---------------------------------------------------------------------------------
def _rows() -> pd.DataFrame:
    rows = [
        RowResult(0, 1, "great product", status="ok", predicted="POSITIVE", cache_status="MISS"),  # 4 tokens
        RowResult(1, 2, "bad", status="ok", predicted="NEGATIVE"),  # 1 token
        RowResult(2, 3, "a" * 40, status="ok", predicted="POSITIVE"),  # 10 tokens
        RowResult(3, 4, "boom", status="error", error="500"),  # failed: not billed, not counted
        RowResult(4, 5, "x" * 8, status="ok", predicted="NEGATIVE", cache_status="HIT"),  # 2 tokens, a hit
    ]
    return results_frame(rows)


def test_batch_cost_and_cost_per_1000_texts():
    batch = batch_cost(_rows(), BERT)
    assert (batch.texts, batch.billed_texts, batch.input_tokens, batch.estimated) == (4, 3, 17, True)
    assert batch.usd == pytest.approx(15 * 0.026e-6)  # 4 + 1 + 10 billed tokens: $0.00000039
    assert batch.without_cache_usd == pytest.approx(17 * 0.026e-6)  # $0.000000442
    assert batch.per_1000_usd == pytest.approx(15 * 0.026e-6 / 4 * 1000)  # $0.0000975
    assert batch.neurons == pytest.approx(15 * 2394 / 1e6)  # 0.03591
    assert batch.label == "about $0.00000039 for 4 texts ($0.0000975 per 1,000)"
    assert json.loads(json.dumps(batch.to_dict()))["per_1000_usd"] == pytest.approx(9.75e-5)


def test_batch_cost_with_counted_tokens_and_without_a_price():
    frame = _rows()
    frame["tokens_in"] = [10, 10, 10, 0, 10]
    counted = batch_cost(frame, BERT)
    assert not counted.estimated and counted.usd == pytest.approx(30 * 0.026e-6)
    unpriced = batch_cost(frame, None)
    assert unpriced.usd is None and unpriced.per_1000_usd is None and unpriced.label == "no price listed"
    empty = batch_cost(results_frame([]), BERT)
    assert empty.texts == 0 and empty.usd == 0 and empty.per_1000_usd is None


def test_estimate_tokens():
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde", "great product")] == [0, 1, 1, 2, 4]


# --- end to end: a real run against the emulator, priced from its own catalogue -------------------------
def test_a_local_run_is_priced_from_the_emulator_catalogue(client):
    import uuid

    from cfai.catalog import TEXT_GENERATION, load_catalogue
    from cfai.compare import Plan, Runner

    model = "@cf/meta/llama-3.1-8b-instruct"
    price = load_catalogue(client, TEXT_GENERATION).get(model).price
    plan = Plan(model=model, body={"prompt": f"cost {uuid.uuid4().hex}", "max_tokens": 16}, n=4, warmup=1)
    frame = Runner(client, plan).run().to_frame()
    table = route_costs(frame, price).set_index("route")
    ok = frame.loc[~frame["warmup"] & frame["ok"] & (frame["route"] == "direct")]
    expected = ((ok["tokens_in"] * 0.282 + ok["tokens_out"] * 0.827) / 1e6).astype(float)
    assert table.loc["direct", "cost_total_usd"] == pytest.approx(expected.sum())
    assert table.loc["direct", "priced"] == 4 and table.loc["gateway", "hits"] == 4  # the warm-up filled the cache
    assert table.loc["gateway", "cost_total_usd"] == 0
    saving = cache_saving(frame, price)
    assert saving.saved_pct == pytest.approx(100.0) and saving.saved_usd > 0

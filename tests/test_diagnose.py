"""Why a gateway never hit, which causes fit the run, and whether overlaid runs compare (cfai.diagnose)."""

from __future__ import annotations

from cfai.diagnose import gateway_never_hit, misses_expected, no_hit_causes, overlay_mismatch, request_kind
from cfai.plan import Plan
from tests.synthetic import synthetic_records


def test_gateway_never_hit():
    assert not gateway_never_hit(synthetic_records(5))
    assert gateway_never_hit(synthetic_records(5, hit=False))
    assert not gateway_never_hit(synthetic_records(1, warmup=0, hit=False))  # one request can only miss
    assert not gateway_never_hit(synthetic_records(5, routes=("direct",)))


def test_no_hit_causes_lists_only_what_applies():
    plan = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"})
    causes = no_hit_causes(plan, synthetic_records(5, hit=False))
    # TTL sent, not streamed, identical bodies: nothing in the run explains it, and it says so.
    assert [c.key for c in causes] == ["unexplained"] and not causes[0].likely and causes[0].fix
    no_ttl = no_hit_causes(Plan(model="m", body={"prompt": "hi"}, cache_ttl=None), synthetic_records(5, hit=False))
    assert [c.key for c in no_ttl] == ["caching_off"]  # not "streamed", not "the body changed"


def test_no_hit_causes_name_what_the_plan_shows():
    plan = Plan(model="m", body={"prompt": "hi"}, stream=True, cache_ttl=None, concurrency=8, warmup=0)
    causes = no_hit_causes(plan, synthetic_records(5, hit=False, warmup=0))
    assert {c.key for c in causes} == {"caching_off", "stream", "concurrent_first"}
    assert all(c.likely and c.fix for c in causes)


def test_unique_mode_expects_misses_and_says_so():
    unique = Plan(model="m", body={"prompt": "hi"}, cache_mode="unique")
    assert "expected" in misses_expected(unique) and misses_expected({"cache_mode": "unique"})
    assert misses_expected(Plan(model="m", body={"prompt": "hi"})) is None
    keys = [c.key for c in no_hit_causes(unique, synthetic_records(5, hit=False))]
    assert keys == ["unique_mode"]  # TTL was sent, nothing streamed: no other cause listed


def test_no_hit_causes_accept_a_stored_plan_dict():
    plan = {"routes": ["gateway-skip"], "stream": False, "cache_ttl": 300}
    keys = [c.key for c in no_hit_causes(plan, synthetic_records(5, routes=("gateway-skip",)))]
    assert "skip_only" in keys


def test_overlay_mismatch_names_what_differs():
    llama = {"model": "@cf/meta/llama-3.1-8b-instruct", "body": {"prompt": "hi"}}
    sst2 = {"model": "@cf/huggingface/distilbert-sst-2-int8", "body": {"text": "hi"}}
    assert overlay_mismatch({"a": llama, "b": dict(llama)}) is None
    text = overlay_mismatch({"a": llama, "b": sst2})
    assert "model (a: @cf/meta/llama-3.1-8b-instruct; b: @cf/huggingface/distilbert-sst-2-int8)" in text
    assert "request kind (a: text generation; b: text classification)" in text
    same_model = overlay_mismatch({"a": llama, "b": {**llama, "body": {"messages": []}}})
    assert same_model is None  # prompt and messages are both text generation
    assert "request kind" in overlay_mismatch({"a": llama, "b": {**llama, "body": {"foo": 1}}})


def test_request_kind_by_body_shape():
    assert request_kind({"prompt": "hi"}) == request_kind({"messages": []}) == "text generation"
    assert request_kind({"text": "hi"}) == "text classification"
    assert request_kind({"image": [1]}) == request_kind("not a body") == "other JSON"


def test_errors_and_only_warmups_are_named_when_they_happened():
    plan = Plan(model="m", body={"prompt": "hi"})
    failing = synthetic_records(6, hit=False, error_every=1)
    keys = {c.key: c.likely for c in no_hit_causes(plan, failing)}
    assert keys["errors"] is True
    warmups_only = synthetic_records(0, warmup=2, hit=False)
    assert "only_warmup" in {c.key for c in no_hit_causes(plan, warmups_only)}
    assert not {"errors", "only_warmup"} & {c.key for c in no_hit_causes(plan, synthetic_records(5, hit=False))}

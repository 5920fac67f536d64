"""The emulator's AI Gateway as docs/PROTOCOL.md section 3 describes Cloudflare's, over loopback HTTP: the
unified route, the per-request headers, the OpenAI-compatible routes, the logs API as the SDK types it, and the
emulator-only error codes (section 6)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.test_emulator_gateway import (  # helpers only (imported test functions would run twice)
    ACCOUNT,
    AUTH,
    GW_AUTH,
    LLAMA,
    SST2,
    TIMEOUT,
    Clock,
    assert_gateway_error,
    create_gateway,
    gw_url,
    logs,
    mgmt_url,
    post,
    unique_prompt,
    wait_for_log,
)

BGE = "@cf/baai/bge-base-en-v1.5"
GPT_OSS = "@cf/openai/gpt-oss-120b"
GATEWAY_ID = "cf-aig-gateway-id"


def api(base: str, path: str) -> str:
    return f"{base}/client/v4/accounts/{ACCOUNT}{path}"


def log_row(base: str, gateway: str, response: requests.Response) -> dict:
    return wait_for_log(base, gateway, response.headers["cf-aig-log-id"])


def event_filter(event_id: str) -> dict:
    """The logs API's event-id filter in the form the cloudflare SDK sends it (dotted keys)."""
    return {"filters.key": "event_id", "filters.operator": "eq", "filters.value": event_id}


# --- 1. the default gateway ----------------------------------------------------------------------------
def test_the_default_gateway_refuses_requests_without_cf_aig_authorization(emulator, session):
    r = post(session, gw_url(emulator.base_url, gateway="default", model=SST2), {"text": "hi"})
    body = assert_gateway_error(r, 401, 2009)
    assert body["error"] == [{"code": 2009, "message": "Unauthorized"}]  # tests/fixtures/shapes/gateway_error_2009.json
    for bad in ("Bearer ", "Basic dGVzdA==", "test-token"):
        r = post(session, gw_url(emulator.base_url, gateway="default", model=SST2), {"text": "hi"},
                 {"cf-aig-authorization": bad})
        assert_gateway_error(r, 401, 2009)
    ok = post(session, gw_url(emulator.base_url, gateway="default", model=SST2), {"text": "hi"}, GW_AUTH)
    assert ok.status_code == 200 and ok.json()["success"] is True


def test_with_an_api_token_only_that_token_opens_the_default_gateway(own_emulator, session):
    h = own_emulator(api_token="the-token")
    good = {"Authorization": "Bearer the-token"}
    url, body = gw_url(h.base_url, gateway="default", model=SST2), {"text": "hi"}
    assert_gateway_error(post(session, url, body, {**good, "cf-aig-authorization": "Bearer other"}), 401, 2009)
    assert post(session, url, body, {**good, "cf-aig-authorization": "Bearer the-token"}).status_code == 200


# --- 2. the unified route ------------------------------------------------------------------------------
def test_the_unified_run_route_goes_through_the_gateway(emulator, session):
    url, body = api(emulator.base_url, f"/ai/run/{LLAMA}"), unique_prompt()
    meta = {"route": "unified", "n": 1}
    first = post(session, url, body, {GATEWAY_ID: "demo", "cf-aig-metadata": json.dumps(meta)})
    second = post(session, url, body, {GATEWAY_ID: "demo"})
    assert first.status_code == second.status_code == 200
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert second.content == first.content and first.json()["result"]["response"]
    row = log_row(emulator.base_url, "demo", first)
    assert row["model"] == LLAMA and row["cached"] is False and json.loads(row["metadata"]) == meta
    assert row["tokens_in"] > 0 and row["tokens_out"] > 0
    # Without the header it is the direct route: no gateway, no cache, no log id.
    direct = post(session, url, body)
    assert direct.status_code == 200 and "cf-aig-cache-status" not in direct.headers
    assert "cf-aig-log-id" not in direct.headers


def test_the_unified_chat_completions_and_model_in_body_routes(emulator, session):
    chat = {"model": LLAMA, "messages": [{"role": "user", "content": uuid.uuid4().hex}], "max_tokens": 8}
    url = api(emulator.base_url, "/ai/v1/chat/completions")
    first, second = (post(session, url, chat, {GATEWAY_ID: "demo"}) for _ in range(2))
    assert first.json()["choices"][0]["message"]["content"]
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert log_row(emulator.base_url, "demo", first)["path"] == "v1/chat/completions"

    run = {"model": LLAMA, "input": unique_prompt()}
    url = api(emulator.base_url, "/ai/run")
    first, second = (post(session, url, run, {GATEWAY_ID: "demo"}) for _ in range(2))
    assert first.status_code == 200 and first.json()["result"]["response"]
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    # The same model input answers the same text as the path form.
    same = post(session, api(emulator.base_url, f"/ai/run/{LLAMA}"), run["input"])
    assert same.json()["result"]["response"] == first.json()["result"]["response"]
    assert log_row(emulator.base_url, "demo", first)["model"] == LLAMA
    bad = post(session, url, {"model": LLAMA}, {GATEWAY_ID: "demo"})
    assert bad.status_code == 400 and "input" in bad.json()["errors"][0]["message"]


def test_the_unified_route_authenticates_with_the_authorization_header(own_emulator, session):
    h = own_emulator()
    url, body = api(h.base_url, f"/ai/run/{SST2}"), {"text": "hello"}
    # No cf-aig-authorization needed: the Cloudflare token in Authorization authenticates the gateway.
    ok = post(session, url, body, {GATEWAY_ID: "default"})
    assert ok.status_code == 200 and ok.headers["cf-aig-log-id"]
    r = session.post(url, json=body, headers={GATEWAY_ID: "default"}, timeout=TIMEOUT)
    assert_gateway_error(r, 401, 2009)
    assert_gateway_error(post(session, url, body, {GATEWAY_ID: "never-created"}), 400, 2001)
    assert_gateway_error(post(session, url, body, {GATEWAY_ID: "Bad--Id"}), 400, 2001)


def test_the_unified_route_applies_the_gateways_rate_limit_and_options(emulator, session):
    gid = create_gateway(emulator.base_url, rate_limiting_limit=2, rate_limiting_interval=60)
    url, body = api(emulator.base_url, f"/ai/run/{SST2}"), {"text": "fine"}
    assert [post(session, url, body, {GATEWAY_ID: gid}).status_code for _ in range(2)] == [200, 200]
    assert_gateway_error(post(session, url, body, {GATEWAY_ID: gid}), 429, 2003)
    cached = create_gateway(emulator.base_url)
    prompt = unique_prompt()
    ttl = {GATEWAY_ID: cached, "cf-aig-cache-ttl": "60"}
    assert post(session, api(emulator.base_url, f"/ai/run/{LLAMA}"), prompt, ttl).headers["cf-aig-cache-status"] == "MISS"
    assert post(session, api(emulator.base_url, f"/ai/run/{LLAMA}"), prompt, ttl).headers["cf-aig-cache-status"] == "HIT"


# --- 3. headers ----------------------------------------------------------------------------------------
def test_metadata_past_five_entries_keeps_the_first_five(emulator, session):
    meta = {"a": 1, "b": "two", "c": True, "d": 4.5, "e": "five", "f": 6, "g": "seven"}
    r = post(session, gw_url(emulator.base_url), unique_prompt(), {"cf-aig-metadata": json.dumps(meta)})
    assert r.status_code == 200
    assert json.loads(log_row(emulator.base_url, "demo", r)["metadata"]) == dict(list(meta.items())[:5])


def test_collect_log_true_saves_the_log_of_a_gateway_with_logging_off(emulator, session):
    gid = create_gateway(emulator.base_url, collect_logs=False)
    url = gw_url(emulator.base_url, gateway=gid, model=SST2)
    quiet = post(session, url, {"text": "quiet"})
    kept = post(session, url, {"text": "kept"}, {"cf-aig-collect-log": "true", "cf-aig-event-id": "kept-1"})
    assert quiet.status_code == kept.status_code == 200
    rows = logs(emulator.base_url, gid)["result"]
    assert [r["id"] for r in rows] == [kept.headers["cf-aig-log-id"]]
    # And false still keeps a request out of a logging gateway's log.
    on = create_gateway(emulator.base_url)
    post(session, gw_url(emulator.base_url, gateway=on, model=SST2), {"text": "x"}, {"cf-aig-collect-log": "false"})
    assert logs(emulator.base_url, on)["result"] == []


def test_the_old_cache_header_names_still_work(emulator, session):
    gid = create_gateway(emulator.base_url)  # caching off
    url, body = gw_url(emulator.base_url, gateway=gid), unique_prompt()
    assert post(session, url, body, {"cf-cache-ttl": "60"}).headers["cf-aig-cache-status"] == "MISS"
    assert post(session, url, body, {"cf-cache-ttl": "60"}).headers["cf-aig-cache-status"] == "HIT"
    assert post(session, url, body, {"cf-cache-ttl": "60", "cf-skip-cache": "true"}).headers[
        "cf-aig-cache-status"] == "MISS"
    assert_gateway_error(post(session, url, body, {"cf-cache-ttl": "1"}), 400, 2002)


def test_a_cache_key_on_a_gateway_with_caching_off_is_cached_five_minutes(own_emulator, session):
    h = own_emulator()
    clock = Clock()
    h.state.extras["gateway"].set_clock(clock)
    gid = create_gateway(h.base_url)
    url, key = gw_url(h.base_url, gateway=gid, model=SST2), {"cf-aig-cache-key": "my-key"}
    assert post(session, url, {"text": "a"}, key).headers["cf-aig-cache-status"] == "MISS"
    clock.t += 299
    assert post(session, url, {"text": "b"}, key).headers["cf-aig-cache-status"] == "HIT"
    clock.t += 2
    assert post(session, url, {"text": "a"}, key).headers["cf-aig-cache-status"] == "MISS"


def test_the_final_retry_attempt_waits_past_the_request_timeout(emulator, session):
    url = gw_url(emulator.base_url, model=SST2)
    slow = {"x-emulator-delay-ms": "600", "cf-aig-request-timeout": "150", "cf-aig-skip-cache": "true"}
    # Without retries the timeout answers 408 ...
    assert_gateway_error(post(session, url, {"text": "slow"}, slow), 408, 2008)
    # ... with retries, the first attempt times out and the last one waits for the answer.
    started = time.perf_counter()
    r = post(session, url, {"text": "slow"}, {**slow, "cf-aig-max-attempts": "2"})
    assert r.status_code == 200 and r.json()["success"] is True
    assert time.perf_counter() - started >= 0.15 + 0.6  # one timed-out attempt, then the full answer


def test_the_gateways_retry_settings_apply_when_the_request_sends_none(emulator, session):
    gid = create_gateway(emulator.base_url, retry_max_attempts=2, retry_delay=100, retry_backoff="constant")
    got = requests.get(mgmt_url(emulator.base_url, f"/{gid}"), headers=AUTH, timeout=TIMEOUT).json()["result"]
    assert (got["retry_max_attempts"], got["retry_delay"], got["retry_backoff"]) == (2, 100, "constant")
    url = gw_url(emulator.base_url, gateway=gid, model=SST2)
    slow = {"x-emulator-delay-ms": "500", "cf-aig-request-timeout": "150"}
    assert post(session, url, {"text": "slow"}, slow).status_code == 200
    assert_gateway_error(post(session, url, {"text": "slow"}, {**slow, "cf-aig-max-attempts": "1"}), 408, 2008)


def test_session_affinity_reaches_workers_ai_through_the_gateway(emulator, session):
    words = " ".join(f"word{i}" for i in range(80))
    body = {"model": LLAMA, "messages": [{"role": "user", "content": f"{uuid.uuid4().hex} {words}"}], "max_tokens": 8}
    affinity = {"x-session-affinity": f"ses-{uuid.uuid4().hex}", "cf-aig-skip-cache": "true"}
    for url in (f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai/v1/chat/completions",
                api(emulator.base_url, "/ai/v1/chat/completions")):
        headers = {**affinity, GATEWAY_ID: "demo"} if "client/v4" in url else affinity
        cold = post(session, url, body, headers).json()["usage"]["prompt_tokens_details"]["cached_tokens"]
        warm = post(session, url, body, headers).json()["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert warm > 0 and warm >= cold
        affinity = {"x-session-affinity": f"ses-{uuid.uuid4().hex}", "cf-aig-skip-cache": "true"}


def test_the_gateway_counts_tokens_of_responses_shaped_answers(emulator, session):
    base = f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai"
    body = {"model": GPT_OSS, "input": f"Explain caching {uuid.uuid4().hex}", "max_output_tokens": 64}
    whole = post(session, f"{base}/v1/responses", body)
    assert whole.status_code == 200 and whole.json()["object"] == "response"
    usage = whole.json()["usage"]
    row = log_row(emulator.base_url, "demo", whole)
    assert (row["tokens_in"], row["tokens_out"]) == (usage["input_tokens"], usage["output_tokens"])
    run = post(session, f"{base}/{GPT_OSS}", {"input": f"Explain caching {uuid.uuid4().hex}"})
    assert run.status_code == 200
    row = log_row(emulator.base_url, "demo", run)
    assert row["tokens_in"] == run.json()["result"]["usage"]["input_tokens"] and row["tokens_out"] > 0
    with session.post(f"{base}/v1/responses", json={**body, "stream": True}, headers=AUTH, stream=True,
                      timeout=TIMEOUT) as streamed:
        assert streamed.status_code == 200
        log_id = streamed.headers["cf-aig-log-id"]
        text = b"".join(streamed.iter_content(chunk_size=None)).decode()
    assert "response.completed" in text or "response.incomplete" in text
    row = wait_for_log(emulator.base_url, "demo", log_id)
    assert row["tokens_in"] > 0 and row["tokens_out"] > 0 and row["request_type"] == "responses.stream"


# --- 4. OpenAI-compatible embeddings through the gateway -----------------------------------------------
def test_openai_embeddings_through_the_gateway(emulator, session):
    url = f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai/v1/embeddings"
    body = {"model": BGE, "input": [f"first {uuid.uuid4().hex}", "second"]}
    first, second = post(session, url, body), post(session, url, body)
    assert first.status_code == 200, first.text
    data = first.json()
    assert data["object"] == "list" and [d["index"] for d in data["data"]] == [0, 1]
    assert len(data["data"][0]["embedding"]) == 768
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    row = log_row(emulator.base_url, "demo", first)
    assert row["model"] == BGE and row["path"] == "v1/embeddings" and row["model_type"] == "text-embeddings"


def test_the_openai_sdk_embeds_through_the_gateway(emulator):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai/v1", api_key="test-token",
                           max_retries=0, timeout=TIMEOUT)
    try:
        out = client.embeddings.create(model=BGE, input="hello gateway")
    finally:
        client.close()
    assert len(out.data) == 1 and len(out.data[0].embedding) == 768


# --- 5. logs API and the gateway object as the SDK types them -------------------------------------------
def test_the_event_id_is_reachable_only_through_filters(emulator, session):
    gid = create_gateway(emulator.base_url)
    url = gw_url(emulator.base_url, gateway=gid, model=SST2)
    wanted = post(session, url, {"text": "a"}, {"cf-aig-event-id": "evt-123"})
    post(session, url, {"text": "b"}, {"cf-aig-event-id": "evt-456"})
    post(session, url, {"text": "c"})
    found = logs(emulator.base_url, gid, **event_filter("evt-123"))
    assert [r["id"] for r in found["result"]] == [wanted.headers["cf-aig-log-id"]]
    # A top-level event_id is no parameter of the API: it filters nothing.
    assert logs(emulator.base_url, gid, event_id="evt-123")["result_info"]["total_count"] == 3
    # Several filters, in the SDK's order (each filters.key starts the next one), several values each.
    query = [("filters.key", "event_id"), ("filters.operator", "eq"), ("filters.value", "evt-123"),
             ("filters.value", "evt-456"), ("filters.key", "success"), ("filters.operator", "eq"),
             ("filters.value", "true")]
    r = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs"), params=query, headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["result_info"]["total_count"] == 2
    neq = logs(emulator.base_url, gid, **{**event_filter("evt-123"), "filters.operator": "neq"})
    assert neq["result_info"]["total_count"] == 2
    as_json = logs(emulator.base_url, gid, filters=json.dumps([{"key": "event_id", "operator": "eq",
                                                                 "value": ["evt-456"]}]))
    assert as_json["result_info"]["total_count"] == 1
    for bad in ({"filters.key": "nope", "filters.operator": "eq", "filters.value": "x"},
                {"filters.key": "event_id", "filters.operator": "like", "filters.value": "x"},
                {"filters.operator": "eq"}):
        r = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs"), params=bad, headers=AUTH, timeout=TIMEOUT)
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == 4901


def test_logs_order_by_the_sdks_fields_with_direction(emulator, session):
    gid = create_gateway(emulator.base_url, cache_ttl=300)
    body = unique_prompt()
    post(session, gw_url(emulator.base_url, gateway=gid), body)
    post(session, gw_url(emulator.base_url, gateway=gid), body)  # a hit
    post(session, gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "x"})
    post(session, gw_url(emulator.base_url, gateway=gid), unique_prompt(), {"x-emulator-fault": "500"})
    by = {field: {d: logs(emulator.base_url, gid, order_by=field, order_by_direction=d)["result"]
                  for d in ("asc", "desc")}
          for field in ("created_at", "provider", "model", "model_type", "success", "cached")}
    assert [r["cached"] for r in by["cached"]["desc"]] == [True, False, False, False]
    assert [r["success"] for r in by["success"]["asc"]][0] is False
    assert [r["model"] for r in by["model"]["asc"]] == sorted(r["model"] for r in by["model"]["asc"])
    assert [r["model_type"] for r in by["model_type"]["desc"]][0] == "text-generation"
    assert by["model_type"]["asc"][0]["model_type"] == "text-classification"
    assert by["created_at"]["asc"] == list(reversed(by["created_at"]["desc"]))
    assert logs(emulator.base_url, gid, model_type="text-classification")["result_info"]["total_count"] == 1
    assert logs(emulator.base_url, gid, min_tokens_in=1)["result_info"]["total_count"] >= 2
    r = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs"), params={"order_by": "duration"}, headers=AUTH,
                     timeout=TIMEOUT)
    assert r.status_code == 400 and "order_by" in r.json()["errors"][0]["message"]


def test_the_cloudflare_sdk_reads_logs_and_gateways(emulator, session):
    cloudflare = pytest.importorskip("cloudflare")
    gid = create_gateway(emulator.base_url, cache_ttl=120)
    meta = {"run": "r1", "n": 2}
    r = post(session, gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "sdk"},
             {"cf-aig-metadata": json.dumps(meta), "cf-aig-event-id": "sdk-evt"})
    post(session, gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "other"})
    cf = cloudflare.Cloudflare(api_token="test-token", base_url=f"{emulator.base_url}/client/v4", max_retries=0,
                               timeout=TIMEOUT)
    try:
        page = cf.ai_gateway.logs.list(gid, account_id=ACCOUNT, per_page=10, order_by="created_at",
                                       order_by_direction="desc",
                                       filters=[{"key": "event_id", "operator": "eq", "value": ["sdk-evt"]}])
        rows = list(page.result)
        gw = cf.ai_gateway.get(gid, account_id=ACCOUNT)
        pages = list(cf.ai_gateway.logs.list(gid, account_id=ACCOUNT, per_page=1))  # the auto-pager
    finally:
        cf.close()
    assert [row.id for row in rows] == [r.headers["cf-aig-log-id"]]
    assert json.loads(rows[0].metadata) == meta and rows[0].ai_model_type == "text-classification"
    assert rows[0].duration >= 0 and rows[0].provider == "workers-ai"
    assert gw.id == gid and gw.cache_ttl == 120 and gw.rate_limiting_limit is None and gw.is_default is False
    assert gw.collect_logs is True and gw.authentication is False
    assert len(pages) == 2


def test_the_gateway_object_has_the_documented_fields(emulator, session):
    post(session, gw_url(emulator.base_url, gateway="default", model=SST2), {"text": "x"}, GW_AUTH)
    got = requests.get(mgmt_url(emulator.base_url, "/default"), headers=AUTH, timeout=TIMEOUT).json()["result"]
    with open("tests/fixtures/shapes/gateway_object.json") as f:
        fixture = json.load(f)["body"]["result"]
    assert set(fixture) <= set(got)
    for name in ("is_default", "cache_ttl", "collect_logs", "rate_limiting_interval", "rate_limiting_limit",
                 "authentication", "retry_max_attempts", "retry_delay", "retry_backoff", "logpush"):
        assert got[name] == fixture[name], name
    assert got["account_id"] == ACCOUNT
    cleared = requests.put(mgmt_url(emulator.base_url, "/demo"), json={"cache_ttl": None}, headers=AUTH,
                           timeout=TIMEOUT).json()["result"]
    assert cleared["cache_ttl"] is None
    requests.put(mgmt_url(emulator.base_url, "/demo"), json={"cache_ttl": 300}, headers=AUTH, timeout=TIMEOUT)


def test_the_logs_api_can_answer_as_for_an_account_without_legacy_logs(own_emulator, session):
    h = own_emulator(legacy_logs=False)
    r = post(session, gw_url(h.base_url, model=SST2), {"text": "x"})
    assert r.status_code == 200 and r.headers["cf-aig-log-id"]  # the gateway itself works
    for path in ("/demo/logs", f"/demo/logs/{r.headers['cf-aig-log-id']}"):
        got = requests.get(mgmt_url(h.base_url, path), headers=AUTH, timeout=TIMEOUT)
        assert got.status_code == 404 and got.json()["success"] is False
        error = got.json()["errors"][0]
        assert error["code"] == 4903 and "Legacy Logs" in error["message"]
    assert requests.get(mgmt_url(h.base_url, "/demo"), headers=AUTH, timeout=TIMEOUT).status_code == 200
    # An unknown gateway is still "not found", not "logs unavailable".
    missing = requests.get(mgmt_url(h.base_url, "/nobody/logs"), headers=AUTH, timeout=TIMEOUT)
    assert missing.json()["errors"][0]["code"] == 4902


# --- 6. emulator-only error codes ----------------------------------------------------------------------
def test_management_errors_use_the_emulator_only_codes(emulator):
    missing = requests.get(mgmt_url(emulator.base_url, "/nobody-here"), headers=AUTH, timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 4902
    bad = requests.post(mgmt_url(emulator.base_url), json={"id": "Bad Id"}, headers=AUTH, timeout=TIMEOUT)
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == 4901
    # 7001 keeps one meaning: a method the route does not allow.
    wrong = requests.patch(mgmt_url(emulator.base_url), headers=AUTH, timeout=TIMEOUT)
    assert wrong.status_code == 405 and wrong.json()["errors"][0]["code"] == 7001

"""The emulator's AI Gateway over real loopback HTTP: caching, streams, errors, limits, auth, logs, CRUD."""

from __future__ import annotations

import http.client
import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from cfai.emulator import start_emulator

ACCOUNT = "0123456789abcdef0123456789abcdef"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
SST2 = "@cf/huggingface/distilbert-sst-2-int8"
AUTH = {"Authorization": "Bearer test-token"}
# The `default` gateway has authentication on (manage-gateway.mdx): its requests carry cf-aig-authorization.
GW_AUTH = {"cf-aig-authorization": "Bearer test-token"}
TIMEOUT = 10


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def gw_url(base: str, gateway: str = "demo", model: str = LLAMA) -> str:
    return f"{base}/v1/{ACCOUNT}/{gateway}/workers-ai/{model}"


def mgmt_url(base: str, suffix: str = "") -> str:
    return f"{base}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways{suffix}"


def unique_prompt() -> dict:
    # The session emulator is shared: a fresh body keeps other tests' cache entries out of the way.
    return {"prompt": f"Tell me about caching {uuid.uuid4().hex}", "max_tokens": 16}


def post(session: requests.Session, url: str, body: dict, headers: dict | None = None) -> requests.Response:
    return session.post(url, json=body, headers={**AUTH, **(headers or {})}, timeout=TIMEOUT)


def create_gateway(base: str, headers: dict | None = None, **settings) -> str:
    gid = settings.pop("id", None) or f"t-{uuid.uuid4().hex[:12]}"
    r = requests.post(mgmt_url(base), json={"id": gid, **settings}, headers=headers or AUTH, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return gid


def assert_gateway_error(r: requests.Response, status: int, code: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["result"] == [] and body["messages"] == []
    assert body["name"] == "AiGatewayError" and body["httpCode"] == status
    assert body["error"][0]["code"] == code and body["error"][0]["message"]
    assert r.headers["cf-aig-log-id"] and r.headers["cf-aig-cache-status"] == "MISS"
    return body


def logs(base: str, gateway: str, **params) -> dict:
    r = requests.get(mgmt_url(base, f"/{gateway}/logs"), params=params, headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


# --- caching -------------------------------------------------------------------------------------------
def test_hit_after_miss_replays_the_response(emulator, session):
    url, body = gw_url(emulator.base_url), unique_prompt()
    first = post(session, url, body)
    second = post(session, url, body)
    assert first.status_code == second.status_code == 200
    assert first.headers["cf-aig-cache-status"] == "MISS" and second.headers["cf-aig-cache-status"] == "HIT"
    assert second.content == first.content and second.json()["success"] is True
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert second.headers["cf-emulator-backend"] == first.headers["cf-emulator-backend"]
    assert first.headers["cf-aig-log-id"] != second.headers["cf-aig-log-id"]
    assert first.headers["cf-aig-step"] == second.headers["cf-aig-step"] == "0"
    # Key order and spacing do not matter: the body is compared in canonical form.
    reordered = session.post(url, data=json.dumps(dict(reversed(list(body.items()))), indent=2),
                             headers={**AUTH, "content-type": "application/json"}, timeout=TIMEOUT)
    assert reordered.headers["cf-aig-cache-status"] == "HIT"


def test_what_misses(emulator, session):
    url, body = gw_url(emulator.base_url), unique_prompt()
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"
    assert post(session, url, body).headers["cf-aig-cache-status"] == "HIT"
    skipped = post(session, url, body, {"cf-aig-skip-cache": "true"})
    assert skipped.status_code == 200 and skipped.headers["cf-aig-cache-status"] == "MISS"
    assert post(session, url, {**body, "max_tokens": 17}).headers["cf-aig-cache-status"] == "MISS"
    other_token = post(session, url, body, {"Authorization": "Bearer someone-else"})
    assert other_token.headers["cf-aig-cache-status"] == "MISS"
    other_model = post(session, gw_url(emulator.base_url, model="@cf/meta/llama-3.2-3b-instruct"), body)
    assert other_model.headers["cf-aig-cache-status"] == "MISS"
    other_gateway = post(session, gw_url(emulator.base_url, gateway=create_gateway(emulator.base_url,
                                                                                   cache_ttl=300)), body)
    assert other_gateway.headers["cf-aig-cache-status"] == "MISS"


def test_default_gateway_caches_only_when_asked(emulator, session):
    url, body = gw_url(emulator.base_url, gateway="default"), unique_prompt()
    for _ in range(3):
        assert post(session, url, body, GW_AUTH).headers["cf-aig-cache-status"] == "MISS"
    ttl = {**GW_AUTH, "cf-aig-cache-ttl": "60"}
    assert post(session, url, body, ttl).headers["cf-aig-cache-status"] == "MISS"
    assert post(session, url, body, ttl).headers["cf-aig-cache-status"] == "HIT"
    # Without the header the request does not use the cache at all on a gateway with caching off.
    assert post(session, url, body, GW_AUTH).headers["cf-aig-cache-status"] == "MISS"


def test_cache_key_caches_with_caching_off(emulator, session):
    url, key = gw_url(emulator.base_url, gateway="default"), {**GW_AUTH, "cf-aig-cache-key": uuid.uuid4().hex}
    first = post(session, url, unique_prompt(), key)
    second = post(session, url, unique_prompt(), key)  # another body, same key: the key decides
    assert first.headers["cf-aig-cache-status"] == "MISS" and second.headers["cf-aig-cache-status"] == "HIT"
    assert second.content == first.content


def test_ttl_expiry_with_an_injected_clock(own_emulator, session):
    h = own_emulator()
    clock = Clock()
    h.state.extras["gateway"].set_clock(clock)
    gid = create_gateway(h.base_url, cache_ttl=120)
    url, body = gw_url(h.base_url, gateway=gid, model=SST2), {"text": "what a great day"}
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"
    clock.t += 119
    assert post(session, url, body).headers["cf-aig-cache-status"] == "HIT"
    clock.t += 2  # the entry was stored at t0 with 120 s: expired now
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"
    # The request header wins over the gateway setting.
    clock.t += 121
    assert post(session, url, body, {"cf-aig-cache-ttl": "60"}).headers["cf-aig-cache-status"] == "MISS"
    clock.t += 61
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"
    # cache_invalidate_on_update: changing the gateway drops what it had cached.
    assert post(session, url, body).headers["cf-aig-cache-status"] == "HIT"
    r = requests.put(mgmt_url(h.base_url, f"/{gid}"), json={"cache_invalidate_on_update": True}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"


def test_chat_completions_through_the_gateway(emulator, session):
    url = f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai/v1/chat/completions"
    body = {"model": LLAMA, "messages": [{"role": "user", "content": uuid.uuid4().hex}], "max_tokens": 8}
    first, second = post(session, url, body), post(session, url, body)
    assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"]
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    entry = next(e for e in logs(emulator.base_url, "demo", per_page=50)["result"]
                 if e["id"] == second.headers["cf-aig-log-id"])
    assert entry["model"] == LLAMA and entry["cached"] is True and entry["path"] == "v1/chat/completions"


def test_openai_sdk_through_the_gateway(emulator):
    from openai import OpenAI

    client = OpenAI(base_url=f"{emulator.base_url}/v1/{ACCOUNT}/demo/workers-ai/v1", api_key="test-token",
                    max_retries=0, timeout=TIMEOUT)
    messages = [{"role": "user", "content": uuid.uuid4().hex}]
    first = client.chat.completions.with_raw_response.create(model=LLAMA, messages=messages, max_tokens=8)
    second = client.chat.completions.with_raw_response.create(model=LLAMA, messages=messages, max_tokens=8)
    assert first.headers["cf-aig-cache-status"] == "MISS" and second.headers["cf-aig-cache-status"] == "HIT"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    chunks = client.chat.completions.create(model=LLAMA, messages=messages, max_tokens=8, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == first.parse().choices[0].message.content  # streams are relayed, never cached
    client.close()


# --- streams -------------------------------------------------------------------------------------------
def test_streams_are_relayed_as_they_arrive_and_never_cached(own_emulator, session):
    # Slower than the session emulator so the pace is measurable: ~20 ms to the first token, 2 ms per token.
    h = own_emulator(speed=15)
    url = gw_url(h.base_url)
    body = {"prompt": uuid.uuid4().hex, "stream": True, "max_tokens": 80}
    spreads = []
    for _ in range(2):
        started = time.perf_counter()
        with session.post(url, json=body, headers={**AUTH, "cf-aig-cache-ttl": "600"}, stream=True,
                          timeout=TIMEOUT) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cf-aig-cache-status"] == "MISS" and r.headers["cf-aig-log-id"]
            arrivals, events = [], []
            for line in r.iter_lines(chunk_size=None):
                if line.startswith(b"data:"):
                    arrivals.append(time.perf_counter() - started)
                    events.append(line[5:].strip())
        assert events[-1] == b"[DONE]"
        texts = [json.loads(e).get("response", "") for e in events[:-1]]
        assert len(texts) > 30 and "".join(texts).strip()
        spreads.append(arrivals[-1] - arrivals[0])
    # Paced, not buffered: the events span the generation time (tens of ms) instead of arriving at once.
    assert max(spreads) > 0.04, spreads
    rows = logs(h.base_url, "demo", per_page=5)["result"]
    assert len(rows) == 2 and all(r["request_type"] == "run.stream" and not r["cached"] for r in rows)
    assert rows[0]["tokens_out"] and rows[0]["success"] is True


def wait_for_log(base: str, gateway: str, log_id: str) -> dict:
    """A stream's log row is written when the stream ends; poll for it (readiness, not a fixed sleep)."""
    deadline = time.monotonic() + 5
    while True:
        r = requests.get(mgmt_url(base, f"/{gateway}/logs/{log_id}"), timeout=TIMEOUT)
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()["result"]
        time.sleep(0.01)


def test_broken_and_abandoned_streams(emulator, session):
    url = gw_url(emulator.base_url, gateway="default")
    body = {"prompt": uuid.uuid4().hex, "stream": True, "max_tokens": 60}
    # Upstream drops the connection mid-stream: the client's connection breaks too, the log says failed.
    with pytest.raises(requests.exceptions.ChunkedEncodingError), session.post(
        url, json=body, headers={**AUTH, **GW_AUTH, "x-emulator-fault": "drop-stream"}, stream=True, timeout=TIMEOUT
    ) as r:
        dropped_id = r.headers["cf-aig-log-id"]
        for _ in r.iter_lines(chunk_size=None):
            pass
    assert wait_for_log(emulator.base_url, "default", dropped_id)["success"] is False
    # The client goes away after the first event: upstream is closed and the request logged as failed.
    with requests.Session() as s2:
        r = s2.post(url, json=body, headers={**AUTH, **GW_AUTH}, stream=True, timeout=TIMEOUT)
        left_id = r.headers["cf-aig-log-id"]
        next(r.iter_lines(chunk_size=None))
        r.close()
    entry = wait_for_log(emulator.base_url, "default", left_id)
    assert entry["success"] is False and entry["status_code"] == 200


# --- request validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"cf-aig-cache-ttl": "59"},
    {"cf-aig-cache-ttl": "2592001"},
    {"cf-aig-cache-ttl": "a while"},
    {"cf-aig-metadata": '{"nested": {"x": 1}}'},
    {"cf-aig-metadata": "not json"},
])
def test_bad_gateway_headers_answer_400(emulator, session, headers):
    r = post(session, gw_url(emulator.base_url), unique_prompt(), headers)
    body = assert_gateway_error(r, 400, 2002)
    name = next(iter(headers))
    assert name in body["error"][0]["message"]


def test_request_timeout_to_first_byte(emulator, session):
    started = time.perf_counter()
    r = post(session, gw_url(emulator.base_url, gateway="default"), unique_prompt(),
             {**GW_AUTH, "cf-aig-request-timeout": "150", "x-emulator-fault": "timeout"})
    assert_gateway_error(r, 408, 2008)
    assert time.perf_counter() - started < 3
    # A generous timeout changes nothing.
    ok = post(session, gw_url(emulator.base_url, gateway="default"), unique_prompt(),
              {**GW_AUTH, "cf-aig-request-timeout": "5000"})
    assert ok.status_code == 200


# --- upstream errors are relayed, never cached ---------------------------------------------------------
def test_upstream_errors_relayed_and_not_cached(emulator, session):
    url, body = gw_url(emulator.base_url), unique_prompt()
    for _ in range(2):
        r = post(session, url, body, {"x-emulator-fault": "500", "cf-aig-cache-ttl": "600"})
        assert r.status_code == 500 and r.headers["cf-aig-cache-status"] == "MISS"
        assert r.json()["success"] is False and r.json()["errors"][0]["code"]
    assert post(session, url, body).headers["cf-aig-cache-status"] == "MISS"  # the fault was not cached
    bad = gw_url(emulator.base_url, model="@cf/nobody/no-such-model")
    for _ in range(2):
        r = post(session, bad, {"prompt": "x"})
        assert r.status_code == 400 and r.headers["cf-aig-cache-status"] == "MISS"
        assert r.json()["errors"][0]["code"] == 5007
    limited = post(session, url, body, {"x-emulator-fault": "429", "cf-aig-skip-cache": "true"})
    assert limited.status_code == 429 and limited.headers.get("retry-after")


def test_retries_give_up_with_the_last_answer(emulator, session):
    r = post(session, gw_url(emulator.base_url, gateway="default"), unique_prompt(),
             {**GW_AUTH, "x-emulator-fault": "503", "cf-aig-max-attempts": "3", "cf-aig-retry-delay": "10"})
    assert r.status_code == 503 and r.json()["success"] is False


# --- rate limiting, auth, strict gateways --------------------------------------------------------------
@pytest.mark.parametrize("technique", ["fixed", "sliding"])
def test_rate_limiting(emulator, session, technique):
    gid = create_gateway(emulator.base_url, rate_limiting_limit=3, rate_limiting_interval=60,
                         rate_limiting_technique=technique)
    url, body = gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "fine"}
    assert [post(session, url, body).status_code for _ in range(3)] == [200, 200, 200]
    r = post(session, url, body)
    assert_gateway_error(r, 429, 2003)
    assert r.json()["error"][0]["message"] == "Rate limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    rows = logs(emulator.base_url, gid)["result"]
    assert rows[0]["status_code"] == 429 and rows[0]["success"] is False


def test_rate_limit_window_resets_with_the_clock(own_emulator, session):
    h = own_emulator()
    clock = Clock()
    h.state.extras["gateway"].set_clock(clock)
    gid = create_gateway(h.base_url, rate_limiting_limit=2, rate_limiting_interval=10)
    url = gw_url(h.base_url, gateway=gid, model=SST2)
    assert [post(session, url, {"text": "a"}).status_code for _ in range(3)] == [200, 200, 429]
    clock.t += 10
    assert post(session, url, {"text": "a"}).status_code == 200


def test_authenticated_gateway(emulator, session):
    gid = create_gateway(emulator.base_url, authentication=True)
    url, body = gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "hello"}
    assert_gateway_error(post(session, url, body), 401, 2009)
    assert_gateway_error(post(session, url, body, {"cf-aig-authorization": "Bearer "}), 401, 2009)
    assert_gateway_error(post(session, url, body, {"cf-aig-authorization": "Basic abc"}), 401, 2009)
    assert post(session, url, body, {"cf-aig-authorization": "Bearer anything"}).status_code == 200


def test_authenticated_gateway_with_an_api_token(own_emulator, session):
    h = own_emulator(api_token="secret-token")
    good = {"Authorization": "Bearer secret-token"}
    gid = create_gateway(h.base_url, headers=good, authentication=True)
    url, body = gw_url(h.base_url, gateway=gid, model=SST2), {"text": "hello"}
    assert_gateway_error(post(session, url, body, {**good, "cf-aig-authorization": "Bearer wrong"}), 401, 2009)
    ok = post(session, url, body, {**good, "cf-aig-authorization": "Bearer secret-token"})
    assert ok.status_code == 200
    # A bad provider token is Workers AI's refusal, relayed as is.
    r = post(session, url, body, {"Authorization": "Bearer wrong", "cf-aig-authorization": "Bearer secret-token"})
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == 10000
    # The management API needs the token too.
    r = requests.get(mgmt_url(h.base_url), headers={"Authorization": "Bearer wrong"}, timeout=TIMEOUT)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == 10000
    r = requests.get(mgmt_url(h.base_url), timeout=TIMEOUT)
    assert r.status_code == 401


def test_only_the_default_gateway_is_created_on_first_use(own_emulator, session):
    h = own_emulator()
    body = {"text": "hello"}
    # Any other unknown id must be created first.
    assert_gateway_error(post(session, gw_url(h.base_url, gateway="nobody-made-me", model=SST2), body), 400, 2001)
    assert requests.get(mgmt_url(h.base_url, "/nobody-made-me"), timeout=TIMEOUT).status_code == 404
    assert_gateway_error(post(session, gw_url(h.base_url, gateway="Not--Valid", model=SST2), {}), 400, 2001)
    # `default` does not exist until an authenticated request uses it; an unauthenticated one does not create it.
    assert requests.get(mgmt_url(h.base_url, "/default"), timeout=TIMEOUT).status_code == 404
    assert_gateway_error(post(session, gw_url(h.base_url, gateway="default", model=SST2), body), 401, 2009)
    assert requests.get(mgmt_url(h.base_url, "/default"), timeout=TIMEOUT).status_code == 404
    assert post(session, gw_url(h.base_url, gateway="default", model=SST2), body, GW_AUTH).status_code == 200
    gw = requests.get(mgmt_url(h.base_url, "/default"), timeout=TIMEOUT).json()["result"]
    assert (gw["authentication"], gw["collect_logs"], gw["cache_ttl"], gw["is_default"]) == (True, True, None, True)
    assert gw["rate_limiting_limit"] is None and gw["rate_limiting_interval"] is None
    # Deleted, it comes back on the next authenticated request.
    assert requests.delete(mgmt_url(h.base_url, "/default"), timeout=TIMEOUT).status_code == 200
    assert post(session, gw_url(h.base_url, gateway="default", model=SST2), body, GW_AUTH).status_code == 200
    assert requests.get(mgmt_url(h.base_url, "/default"), timeout=TIMEOUT).status_code == 200
    # `demo` is there from the start, authentication off, caching on; a created gateway works at once.
    demo = requests.get(mgmt_url(h.base_url, "/demo"), timeout=TIMEOUT).json()["result"]
    assert (demo["authentication"], demo["cache_ttl"]) == (False, 300)
    assert post(session, gw_url(h.base_url, gateway="demo", model=SST2), body).status_code == 200
    gid = create_gateway(h.base_url)
    assert post(session, gw_url(h.base_url, gateway=gid, model=SST2), body).status_code == 200


def test_lenient_gateways_create_any_id_on_first_use(own_emulator, session):
    h = own_emulator(lenient_gateways=True)
    gid = f"fresh-{uuid.uuid4().hex[:8]}"
    assert post(session, gw_url(h.base_url, gateway=gid, model=SST2), {"text": "x"}).status_code == 200
    r = requests.get(mgmt_url(h.base_url, f"/{gid}"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["result"]["cache_ttl"] is None
    assert r.json()["result"]["authentication"] is False
    assert_gateway_error(post(session, gw_url(h.base_url, gateway="Not--Valid", model=SST2), {}), 400, 2001)
    # `default` keeps Cloudflare's settings even then.
    assert_gateway_error(post(session, gw_url(h.base_url, gateway="default", model=SST2), {"text": "x"}), 401, 2009)


# --- logs ----------------------------------------------------------------------------------------------
def test_logs_content_filters_order_and_pages(emulator, session):
    gid = create_gateway(emulator.base_url, cache_ttl=300)
    url, body = gw_url(emulator.base_url, gateway=gid), {"prompt": "log me", "max_tokens": 12}
    meta = {"user": "u-1", "n": 7, "beta": True}
    first = post(session, url, body, {"cf-aig-metadata": json.dumps(meta), "cf-aig-event-id": "ev-1"})
    second = post(session, url, body)
    post(session, url, body, {"cf-aig-collect-log": "false"})  # not logged
    post(session, gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "good"})
    post(session, url, unique_prompt(), {"x-emulator-fault": "500"})

    data = logs(emulator.base_url, gid)
    assert data["success"] is True and data["result_info"]["total_count"] == 4
    rows = data["result"]
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    by_id = {r["id"]: r for r in rows}
    miss, hit = by_id[first.headers["cf-aig-log-id"]], by_id[second.headers["cf-aig-log-id"]]
    assert miss["cached"] is False and hit["cached"] is True
    # metadata is a string holding JSON (SDK 5.9 LogListResponse); the event id is not a field of the row.
    assert isinstance(miss["metadata"], str) and json.loads(miss["metadata"]) == meta and "event_id" not in miss
    assert hit["metadata"] is None
    for row in (miss, hit):
        assert row["model"] == LLAMA and row["provider"] == "workers-ai" and row["status_code"] == 200
        assert row["success"] is True and row["tokens_in"] > 0 and row["tokens_out"] > 0
        assert row["cost"] == 0 and row["step"] == 0 and row["duration"] >= 0
    assert miss["duration"] >= hit["duration"]

    assert [r["id"] for r in logs(emulator.base_url, gid, cached="true")["result"]] == [hit["id"]]
    failed = logs(emulator.base_url, gid, success="false")["result"]
    assert len(failed) == 1 and failed[0]["status_code"] == 500
    assert len(logs(emulator.base_url, gid, model=SST2)["result"]) == 1
    asc = logs(emulator.base_url, gid, direction="asc")["result"]
    assert asc[0]["id"] == miss["id"]
    page2 = logs(emulator.base_url, gid, page=2, per_page=3)
    assert page2["result_info"] == {"page": 2, "per_page": 3, "count": 1, "total_count": 4}
    future = logs(emulator.base_url, gid, start_date="2999-01-01T00:00:00Z")
    assert future["result"] == [] and future["result_info"]["total_count"] == 0
    assert len(logs(emulator.base_url, gid, end_date="2999-01-01T00:00:00Z")["result"]) == 4

    one = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs/{miss['id']}"), timeout=TIMEOUT)
    assert one.status_code == 200 and one.json()["result"] == miss
    missing = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs/nope"), timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["success"] is False
    bad = requests.get(mgmt_url(emulator.base_url, f"/{gid}/logs"), params={"direction": "up"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"]


def test_gateway_with_logging_off(emulator, session):
    gid = create_gateway(emulator.base_url, collect_logs=False)
    r = post(session, gw_url(emulator.base_url, gateway=gid, model=SST2), {"text": "quiet"})
    assert r.status_code == 200 and r.headers["cf-aig-log-id"]
    assert logs(emulator.base_url, gid)["result"] == []


# --- management API ------------------------------------------------------------------------------------
def test_gateway_crud(emulator):
    base = emulator.base_url
    gid = f"crud-{uuid.uuid4().hex[:8]}"
    r = requests.post(mgmt_url(base), json={"id": gid, "cache_ttl": 600, "rate_limiting_limit": 10,
                                            "rate_limiting_interval": 60}, timeout=TIMEOUT)
    assert r.status_code == 200
    created = r.json()["result"]
    assert created["id"] == gid and created["cache_ttl"] == 600 and created["collect_logs"] is True
    assert created["account_id"] == ACCOUNT and created["is_default"] is False
    dup = requests.post(mgmt_url(base), json={"id": gid}, timeout=TIMEOUT)
    assert dup.status_code == 400 and dup.json()["success"] is False
    for bad in ({"id": "Bad Id"}, {"id": "ok-id-" + uuid.uuid4().hex[:6], "cache_ttl": -5}, {}):
        r = requests.post(mgmt_url(base), json=bad, timeout=TIMEOUT)
        assert r.status_code == 400 and r.json()["errors"][0]["message"]

    listed = requests.get(mgmt_url(base), params={"per_page": 100}, timeout=TIMEOUT).json()
    ids = [g["id"] for g in listed["result"]]
    assert {"demo", gid} <= set(ids)
    assert listed["result_info"]["total_count"] >= 2 and listed["result_info"]["page"] == 1
    found = requests.get(mgmt_url(base), params={"search": gid[5:]}, timeout=TIMEOUT).json()["result"]
    assert [g["id"] for g in found] == [gid]

    r = requests.put(mgmt_url(base, f"/{gid}"), json={"cache_ttl": 60, "rate_limiting_technique": "sliding"},
                     timeout=TIMEOUT)
    assert r.status_code == 200
    updated = requests.get(mgmt_url(base, f"/{gid}"), timeout=TIMEOUT).json()["result"]
    assert updated["cache_ttl"] == 60 and updated["rate_limiting_technique"] == "sliding"
    assert updated["created_at"] == created["created_at"] and updated["modified_at"] >= created["modified_at"]

    assert requests.delete(mgmt_url(base, f"/{gid}"), timeout=TIMEOUT).json()["result"] == {"id": gid}
    gone = requests.get(mgmt_url(base, f"/{gid}"), timeout=TIMEOUT)
    assert gone.status_code == 404 and gone.json()["success"] is False
    assert requests.delete(mgmt_url(base, f"/{gid}"), timeout=TIMEOUT).status_code == 404
    assert requests.put(mgmt_url(base, "/never-was"), json={}, timeout=TIMEOUT).status_code == 404


# --- load and speed ------------------------------------------------------------------------------------
def test_32_concurrent_clients(emulator):
    url = gw_url(emulator.base_url)
    shared = {"prompt": f"shared {uuid.uuid4().hex}", "max_tokens": 8}

    def client(i: int) -> list[tuple[int, str]]:
        out = []
        with requests.Session() as s:
            for j in range(3):
                body = shared if j % 2 else {"prompt": f"own {i} {j} {uuid.uuid4().hex}", "max_tokens": 4}
                r = post(s, url, body)
                out.append((r.status_code, r.headers.get("cf-aig-cache-status", "")))
        return out

    with requests.Session() as s:  # prime it: simultaneous first requests may all miss (best effort, as on Cloudflare)
        assert post(s, url, shared).status_code == 200
    with ThreadPoolExecutor(32) as pool:
        results = [x for chunk in pool.map(client, range(32)) for x in chunk]
    assert len(results) == 96 and all(status == 200 for status, _ in results)
    assert {c for _, c in results} <= {"HIT", "MISS"} and any(c == "HIT" for _, c in results)


def test_a_hit_is_much_faster_than_a_miss(emulator, session):
    url, body = gw_url(emulator.base_url), unique_prompt() | {"max_tokens": 64}
    post(session, url, body)

    def median_ms(headers: dict, n: int = 15) -> float:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            r = post(session, url, body, headers)
            times.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200
        return sorted(times)[n // 2]

    hit, miss = median_ms({}), median_ms({"cf-aig-skip-cache": "true"}, n=5)
    assert hit * 3 < miss, (hit, miss)  # loose on a shared 2-core machine; bench/ measures it properly


def test_a_caller_that_leaves_releases_the_upstream_request():
    """After the client's own read timeout, the gateway drops its upstream call (logged as 499) instead of
    holding it until the stalled upstream answers."""
    with start_emulator(port=0, speed=50, allow_faults=True) as emu:
        url = gw_url(emu.base_url)
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(url, json={"prompt": "x"}, headers={"x-emulator-fault": "timeout"}, timeout=(2, 0.3))
        logs_url = mgmt_url(emu.base_url, "/demo/logs")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = requests.get(logs_url, timeout=5).json()["result"]
            if any(row["status_code"] == 499 for row in rows):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the gateway kept waiting for an upstream answer nobody wanted")


# --- under abuse ---------------------------------------------------------------------------------------
def raw_post(port: int, target: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST exactly this request target (http.client neither decodes nor normalises it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("POST", target, body=body, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


TRAVERSALS = [
    f"..%2F..%2F..%2Fclient%2Fv4%2Faccounts%2F{ACCOUNT}%2Fai-gateway%2Fgateways",
    f"..%2f..%2f..%2fclient%2fv4%2faccounts%2f{ACCOUNT}%2fai-gateway%2fgateways",
    f"%2E%2E%2F%2e%2e%2F%2E%2E%2Fclient%2Fv4%2Faccounts%2F{ACCOUNT}%2Fai-gateway%2Fgateways",
    f"..%252F..%252F..%252Fclient%252Fv4%252Faccounts%252F{ACCOUNT}%252Fai-gateway%252Fgateways",
    f"@cf/x/..%2F..%2F..%2F..%2Fclient%2Fv4%2Faccounts%2F{ACCOUNT}%2Fai-gateway%2Fgateways",
    f"..%5C..%5C..%5Cclient%5Cv4%5Caccounts%5C{ACCOUNT}%5Cai-gateway%5Cgateways",
]


@pytest.mark.parametrize("model", TRAVERSALS)
def test_an_encoded_dot_segment_in_a_gateway_model_path_never_reaches_the_management_api(emulator, model):
    gid = f"pwned-{uuid.uuid4().hex[:8]}"
    status, body = raw_post(emulator.port, f"/v1/{ACCOUNT}/demo/workers-ai/{model}", json.dumps({"id": gid}).encode())
    assert status == 400 and body["error"][0]["code"] == 2010, body
    r = requests.get(mgmt_url(emulator.base_url, f"/{gid}"), headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 404, "the traversal created a gateway"


def test_a_dot_segment_account_never_leaves_its_route(emulator):
    status, body = raw_post(emulator.port, f"/v1/..%2F..%2Fclient%2Fv4/demo/workers-ai/{SST2}", b'{"text": "x"}')
    assert status in (400, 404) and body["success"] is False  # 400 from the gateway, or 404: no route at all
    status, body = raw_post(emulator.port, f"/v1/../demo/workers-ai/{SST2}", b'{"text": "x"}')
    assert status == 400 and body["error"][0]["code"] == 2010


@pytest.mark.parametrize("raw", [
    '{"prompt": "x", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"prompt": "caf\\ud800e"}',
    '{"prompt": "x", "temperature": NaN}',
])
def test_hostile_bodies_through_the_gateway_answer_400_and_the_logs_stay_readable(own_emulator, raw):
    h = own_emulator()
    status, body = raw_post(h.port, f"/v1/{ACCOUNT}/demo/workers-ai/{LLAMA}", raw.encode())
    assert status == 400 and body["errors"][0]["code"] == 5006, body
    chat_raw = raw.replace('"prompt": ', '"model": ').replace('{"model": "x"', '{"model": "' + LLAMA + '"')
    status, body = raw_post(h.port, f"/v1/{ACCOUNT}/demo/workers-ai/v1/chat/completions", chat_raw.encode())
    assert status == 400 and body["errors"][0]["code"] == 5006, body
    assert logs(h.base_url, "demo")["result_info"]["total_count"] == 2  # the logs API still renders every row


@pytest.mark.parametrize("raw", ['{"id": "x", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                 '{"id": "caf\\udc00e"}', '{"id": "x", "cache_ttl": 1e400}'])
def test_hostile_management_bodies_answer_400(emulator, raw):
    status, body = raw_post(emulator.port, f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways", raw.encode())
    assert status == 400 and body["errors"][0]["code"] == 4901, body


@pytest.mark.parametrize("metadata", ['{"a": ' + "[" * 5000 + "]" * 5000 + "}", '{"a": "\\ud800"}'])
def test_hostile_metadata_headers_answer_400(emulator, session, metadata):
    r = post(session, gw_url(emulator.base_url), unique_prompt(), {"cf-aig-metadata": metadata})
    assert_gateway_error(r, 400, 2002)


def test_the_gateway_log_is_bounded_in_bytes_as_well_as_in_entries(own_emulator, session):
    budget = 256 * 1024
    h = own_emulator(gateway_log_max_bytes=budget)
    gid = create_gateway(h.base_url, cache_ttl=300)
    url, body = gw_url(h.base_url, gateway=gid, model=SST2), {"text": "one cached answer"}
    metadata = json.dumps({f"k{i}": "m" * 2500 for i in range(5)})  # 12.5 KB per entry, as in the report
    for i in range(100):
        r = post(session, url, body, {"cf-aig-metadata": metadata, "cf-aig-event-id": f"event-{i}"})
        assert r.status_code == 200
    runtime = h.state.extras["gateway"]
    assert 0 < runtime.logs.bytes_used <= budget
    page = logs(h.base_url, gid, per_page=100)
    assert 10 <= page["result_info"]["total_count"] < 100
    newest = logs(h.base_url, gid, **{"filters.key": "event_id", "filters.operator": "eq", "filters.value": "event-99"})
    oldest = logs(h.base_url, gid, **{"filters.key": "event_id", "filters.operator": "eq", "filters.value": "event-0"})
    assert newest["result_info"]["total_count"] == 1 and oldest["result_info"]["total_count"] == 0


def test_a_simulated_network_round_trip_once_per_request_on_both_routes(own_emulator, session):
    rtt, jitter, seed = 30.0, 8.0, 5
    h = own_emulator(network_rtt_ms=rtt, network_jitter_ms=jitter, seed=seed)
    expected = random.Random(f"network:{seed}")
    gw, body = gw_url(h.base_url, model=SST2), {"text": f"round trip {uuid.uuid4().hex}"}
    direct = session.post(f"{h.base_url}/client/v4/accounts/{ACCOUNT}/ai/run/{SST2}", json=body, headers=AUTH,
                          timeout=TIMEOUT)
    miss, hit = post(session, gw, body), post(session, gw, body)
    assert (miss.headers["cf-aig-cache-status"], hit.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    seen = []
    for r in (direct, miss, hit):
        assert r.status_code == 200
        value = float(r.headers["cf-emulator-network-rtt-ms"])
        # One draw per client request, in order: the gateway's own hop to Workers AI pays none.
        assert value == round(max(0.0, rtt + expected.uniform(-jitter, jitter)), 1)
        assert rtt - jitter <= value <= rtt + jitter and r.elapsed.total_seconds() * 1000 >= value
        seen.append(value)
    assert len(set(seen)) == 3  # jittered


def test_no_simulated_round_trip_by_default(emulator, session):
    r = post(session, gw_url(emulator.base_url, model=SST2), {"text": "no network here"})
    assert r.headers["cf-emulator-network-rtt-ms"] == "0.0"

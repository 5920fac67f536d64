"""Unit tests of the gateway's parts without a server: cache, rate limiter, logs, headers, config."""

from __future__ import annotations

import pytest

from cfai.emulator.gateway.cache import TTLCache, cache_key, canonical_body
from cfai.emulator.gateway.config import ConfigError, GatewayStore, validate_settings
from cfai.emulator.gateway.headers import (
    HeaderError,
    RetryDefaults,
    StreamUsage,
    parse_request_options,
    usage_tokens,
)
from cfai.emulator.gateway.logs import LogEntry, LogFilter, LogQuery, LogStore, new_log_id, parse_time
from cfai.emulator.gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


H = (("content-type", "application/json"),)


# --- cache ---------------------------------------------------------------------------------------------
def test_cache_ttl_expiry():
    clock = Clock()
    c = TTLCache(clock=clock)
    assert c.put("k", 200, b"body", H, ttl=60)
    assert c.get("k").body == b"body"
    clock.t += 59.9
    assert c.get("k") is not None
    clock.t += 0.2
    assert c.get("k") is None
    assert len(c) == 0 and c.bytes_used == 0


def test_cache_lru_by_entries():
    c = TTLCache(max_entries=3)
    for k in "abc":
        c.put(k, 200, b"x", H, ttl=60)
    c.get("a")  # a is now the most recently used: b goes first
    c.put("d", 200, b"x", H, ttl=60)
    assert c.get("b") is None
    assert all(c.get(k) is not None for k in "acd")
    assert c.evictions == 1


def test_cache_lru_by_bytes():
    c = TTLCache(max_entries=100, max_bytes=4000)
    for k in "abcd":
        c.put(k, 200, b"x" * 700, H, ttl=60)  # about 900 bytes each with overhead
    assert c.bytes_used <= 4000
    c.put("e", 200, b"x" * 700, H, ttl=60)
    assert c.get("a") is None and c.get("e") is not None
    assert c.bytes_used <= 4000


def test_cache_refuses_an_entry_too_big_and_replaces_same_key():
    c = TTLCache(max_bytes=4000)
    assert not c.put("big", 200, b"x" * 2000, H, ttl=60)
    assert c.get("big") is None
    c.put("k", 200, b"one", H, ttl=60)
    c.put("k", 201, b"two!", H, ttl=60, tokens=(3, 4))
    hit = c.get("k")
    assert (hit.status, hit.body, hit.tokens_in, hit.tokens_out) == (201, b"two!", 3, 4)
    assert len(c) == 1


def test_cache_key_parts():
    base = dict(scope="acct\0gw\0001", path="@cf/m", model="@cf/m", authorization="Bearer a")
    k = cache_key(body=canonical_body(b'{"a": 1, "b": 2}'), **base)
    assert k == cache_key(body=canonical_body(b'{"b":2,"a":1}'), **base)  # key order and spacing
    assert k != cache_key(body=canonical_body(b'{"a": 1, "b": 3}'), **base)
    assert k != cache_key(body=canonical_body(b'{"a": 1, "b": 2}'), **{**base, "authorization": "Bearer b"})
    assert k != cache_key(body=canonical_body(b'{"a": 1, "b": 2}'), **{**base, "scope": "acct\0gw\0002"})
    ck = cache_key(body=b"x", custom_key="mine", **base)
    assert ck == cache_key(body=b"other body", custom_key="mine", **base)
    assert ck != cache_key(body=b"x", custom_key="mine", **{**base, "authorization": "Bearer b"})
    assert canonical_body(b"not json") == b"not json"


# --- rate limiter --------------------------------------------------------------------------------------
def test_fixed_window_resets_at_the_boundary():
    clock = Clock(1000.0)  # a multiple of the interval: the window starts now
    rl = RateLimiter(clock)
    assert all(rl.check("g", 3, 10, "fixed").allowed for _ in range(3))
    d = rl.check("g", 3, 10, "fixed")
    assert not d.allowed and d.retry_after == 10
    clock.t += 7.5
    assert rl.check("g", 3, 10, "fixed").retry_after == 3
    clock.t += 2.5  # next window
    assert rl.check("g", 3, 10, "fixed").allowed
    assert rl.check("other", 3, 10, "fixed").allowed  # gateways are counted apart


def test_sliding_window_counts_the_last_interval():
    clock = Clock(1005.0)  # mid-way through a fixed window [1000, 1010)
    fixed, sliding = RateLimiter(clock), RateLimiter(clock)
    for t in (1005.0, 1005.0, 1007.0, 1007.0):
        clock.t = t
        assert fixed.check("g", 4, 10, "fixed").allowed and sliding.check("g", 4, 10, "sliding").allowed
    clock.t = 1010.0  # a new fixed window: the fixed limiter forgets; the sliding one still sees 4
    assert fixed.check("g", 4, 10, "fixed").allowed
    d = sliding.check("g", 4, 10, "sliding")
    assert not d.allowed and d.retry_after == 5
    clock.t = 1014.9
    assert not sliding.check("g", 4, 10, "sliding").allowed
    clock.t = 1015.0  # the two from 1005 have left the window, the two from 1007 have not
    assert sliding.check("g", 4, 10, "sliding").allowed and sliding.check("g", 4, 10, "sliding").allowed
    d = sliding.check("g", 4, 10, "sliding")
    assert not d.allowed and d.retry_after == 2
    clock.t += 100  # long idle: nothing counts
    assert all(sliding.check("g", 4, 10, "sliding").allowed for _ in range(4))


def test_sliding_retry_after_is_enough():
    clock = Clock(1000.0)
    rl = RateLimiter(clock)
    for i in range(5):
        clock.t = 1000.0 + i * 7
        rl.check("g", 5, 60, "sliding")
    d = rl.check("g", 5, 60, "sliding")
    assert not d.allowed and d.retry_after <= 60
    clock.t += d.retry_after - 1.5
    assert not rl.check("g", 5, 60, "sliding").allowed
    clock.t += 1.5
    assert rl.check("g", 5, 60, "sliding").allowed


def test_rate_limit_off_when_zero():
    rl = RateLimiter(Clock())
    assert all(rl.check("g", 0, 0).allowed for _ in range(100))


# --- logs ----------------------------------------------------------------------------------------------
def _entry(i: int, **kw) -> LogEntry:
    return LogEntry(id=f"id{i}", created_ts=1000.0 + i, gateway_id="g", model=kw.pop("model", "m"),
                    path="m", request_type="run", **kw)


def test_log_store_bounds_per_gateway_and_total():
    logs = LogStore(per_gateway=5, total=8)
    for i in range(7):
        logs.add("a", _entry(i))
    assert logs.get("a", "id0") is None and logs.get("a", "id2") is not None
    for i in range(7, 12):
        logs.add("b", _entry(i))
    assert len(logs) == 8
    rows, total = logs.query("a", LogQuery(per_page=50))
    assert total == 3 and [e.id for e in rows] == ["id6", "id5", "id4"]
    assert logs.get("b", "id11") is not None and logs.get("a", "id11") is None  # ids are per gateway
    logs.drop_gateway("b")
    assert len(logs) == 3


def test_log_query_filters_order_and_pages():
    logs = LogStore()
    for i in range(30):
        logs.add("g", _entry(i, cached=i % 3 == 0, success=i % 5 != 0, duration=100 - i,
                             model="x" if i < 10 else "y", event_id="e7" if i == 7 else None))
    rows, total = logs.query("g", LogQuery(page=2, per_page=10, direction="asc"))
    assert total == 30 and [e.id for e in rows][:2] == ["id10", "id11"]
    rows, total = logs.query("g", LogQuery(cached=True, per_page=50))
    assert total == 10 and all(e.cached for e in rows)
    rows, total = logs.query("g", LogQuery(success=False, model="y", per_page=50))
    assert {e.id for e in rows} == {"id10", "id15", "id20", "id25"}
    rows, _ = logs.query("g", LogQuery(ranges={"duration": (None, 73)}, direction="asc", per_page=50))
    assert sorted(e.duration for e in rows) == [71, 72, 73]
    rows, _ = logs.query("g", LogQuery(order_by="cached", direction="desc", per_page=10))
    assert all(e.cached for e in rows) and len(rows) == 10
    rows, _ = logs.query("g", LogQuery(order_by="success", direction="asc", per_page=6))
    assert [e.success for e in rows] == [False] * 6
    rows, total = logs.query("g", LogQuery(start_ts=1005, end_ts=1009, per_page=50))
    assert total == 5
    assert [e.id for e in logs.query("g", LogQuery(filters=[LogFilter("event_id", "eq", ("e7",))]))[0]] == ["id7"]
    assert logs.query("g", LogQuery(filters=[LogFilter("event_id", "neq", ("e7",))]))[1] == 29
    assert logs.query("g", LogQuery(filters=[LogFilter("duration", "gt", ("95",))]))[1] == 5
    assert logs.query("g", LogQuery(filters=[LogFilter("model", "eq", ("x", "y")),
                                             LogFilter("cached", "eq", ("true",))]))[1] == 10


def test_log_ids_and_times():
    a, b = new_log_id(1000.0), new_log_id(1001.0)
    assert len(a) == 26 and a < b and a != new_log_id(1000.0)
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_time("1704067200") == 1704067200.0
    e = _entry(1, metadata={"k": "v"}).to_api()
    assert e["created_at"].endswith("Z") and "created_ts" not in e and e["metadata"] == '{"k":"v"}'
    assert _entry(2).to_api()["metadata"] is None and "gateway_id" not in e and "event_id" not in e


# --- request headers -----------------------------------------------------------------------------------
def test_parse_request_options():
    o = parse_request_options({
        "cf-aig-cache-ttl": "3600", "cf-aig-skip-cache": "true", "cf-aig-cache-key": "k",
        "cf-aig-metadata": '{"user": "u1", "n": 3, "ok": true}', "cf-aig-collect-log": "false",
        "cf-aig-event-id": "ev", "cf-aig-request-timeout": "2500", "cf-aig-max-attempts": "3",
        "cf-aig-retry-delay": "100", "cf-aig-backoff": "exponential",
    })
    assert (o.cache_ttl, o.skip_cache, o.cache_key, o.collect_log, o.event_id) == (3600, True, "k", False, "ev")
    assert o.metadata == {"user": "u1", "n": 3, "ok": True} and o.request_timeout_ms == 2500
    assert [o.retry_wait_s(i) for i in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert parse_request_options({}).collect_log is None  # the gateway's own setting decides
    assert parse_request_options({"cf-aig-collect-log": "true"}).collect_log is True


def test_old_header_names_and_metadata_past_five_entries():
    o = parse_request_options({"cf-skip-cache": "true", "cf-cache-ttl": "120"})
    assert (o.skip_cache, o.cache_ttl) == (True, 120)
    # The cf-aig-* name wins over the old one.
    assert parse_request_options({"cf-cache-ttl": "120", "cf-aig-cache-ttl": "600"}).cache_ttl == 600
    with pytest.raises(HeaderError):
        parse_request_options({"cf-cache-ttl": "5"})
    o = parse_request_options({"cf-aig-metadata": '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":{"x":1}}'})
    assert o.metadata == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}  # the first five kept, the rest ignored


def test_gateway_retry_settings_are_the_defaults_headers_override():
    d = RetryDefaults(max_attempts=4, delay_ms=500, backoff="linear")
    o = parse_request_options({}, d)
    assert (o.max_attempts, o.retry_delay_ms, o.backoff) == (4, 500, "linear")
    o = parse_request_options({"cf-aig-max-attempts": "2", "cf-aig-retry-delay": "0", "cf-aig-backoff": "constant"}, d)
    assert (o.max_attempts, o.retry_delay_ms, o.backoff) == (2, 0, "constant")


@pytest.mark.parametrize("headers", [
    {"cf-aig-cache-ttl": "59"},
    {"cf-aig-cache-ttl": "2592001"},
    {"cf-aig-cache-ttl": "soon"},
    {"cf-aig-metadata": "[1]"},
    {"cf-aig-metadata": "{bad"},
    {"cf-aig-metadata": '{"nested": {"x": 1}}'},
    {"cf-aig-skip-cache": "maybe"},
    {"cf-aig-max-attempts": "6"},
    {"cf-aig-backoff": "random"},
])
def test_bad_headers_are_refused(headers):
    with pytest.raises(HeaderError):
        parse_request_options(headers)


def test_usage_from_bodies_and_streams():
    assert usage_tokens({"result": {"usage": {"prompt_tokens": 3, "completion_tokens": 5}}}) == (3, 5)
    assert usage_tokens({"usage": {"prompt_tokens": 1, "completion_tokens": 2}}) == (1, 2)
    assert usage_tokens({"result": [1]}) == (None, None)
    # Responses-shaped usage (gpt-oss), whole, in the envelope, and in the final stream event.
    responses_usage = {"input_tokens": 11, "output_tokens": 40, "total_tokens": 51}
    assert usage_tokens({"object": "response", "usage": responses_usage}) == (11, 40)
    assert usage_tokens({"result": {"output": [], "usage": responses_usage}}) == (11, 40)
    assert usage_tokens({"type": "response.completed", "response": {"usage": responses_usage}}) == (11, 40)
    s = StreamUsage()
    for chunk in (b'data: {"response":"hi"}\n\ndata: {"response":"","us', b'age":{"prompt_tokens":7,',
                  b'"completion_tokens":9}}\n\ndata: [DONE]\n\n'):
        s.feed(chunk)
    assert s.tokens == (7, 9)


# --- gateway settings ----------------------------------------------------------------------------------
def test_gateway_store_presets_and_validation():
    store = GatewayStore(max_gateways=4, clock=Clock())  # the two presets count
    assert store.get("acct", "default") is None  # created on first use only
    default = store.resolve("acct", "default")
    assert default is not None and default.authentication and default.collect_logs and default.ttl == 0
    assert store.get("acct", "demo").cache_ttl == 300 and not store.get("acct", "demo").authentication
    assert store.resolve("acct", "new-one") is None
    assert store.resolve("acct", "new-one", lenient=True).id == "new-one"
    assert not store.get("acct", "new-one").authentication
    assert store.resolve("acct", "Bad--Id", lenient=True) is None
    for bad in ("", "-x", "x-", "a--b", "UPPER", "x" * 65):
        with pytest.raises(ConfigError):
            store.create("acct", bad, {})
    with pytest.raises(ConfigError):
        store.create("acct", "new-one", {})  # exists
    store.create("acct", "third", {})
    with pytest.raises(ConfigError):
        store.create("acct", "fourth", {})  # bounded
    gen = store.get("acct", "third").generation
    store.update("acct", "third", {"cache_ttl": 60})
    assert store.get("acct", "third").generation == gen
    store.update("acct", "third", {"cache_invalidate_on_update": True})
    assert store.get("acct", "third").generation != gen
    assert [g.id for g in store.list("other")] == ["demo"]


@pytest.mark.parametrize("settings", [
    {"cache_ttl": -1}, {"cache_ttl": "60"}, {"cache_ttl": 2592001}, {"collect_logs": "yes"},
    {"rate_limiting_technique": "leaky"}, {"rate_limiting_limit": True}, {"retry_max_attempts": 6},
    {"retry_delay": 5001}, {"retry_backoff": "random"}, {"log_management_strategy": "KEEP"},
])
def test_bad_settings(settings):
    with pytest.raises(ConfigError):
        validate_settings(settings)

"""Token-level timing against hand-computed streams (cfai.token_timing)."""

from __future__ import annotations

import pytest

from cfai.token_timing import (
    METRIC_DEFINITIONS,
    TOKEN_TIMING_FIELDS,
    TokenEvent,
    chunk_gaps,
    delta_kinds,
    inter_token_latencies,
    read_stream,
    token_timing,
    tpot,
)


def test_four_single_token_chunks():
    # Tokens at 100, 120, 150, 160 ms; the stream closes at 200 ms.
    t = token_timing([(100, "answer", 1), (120, "answer", 1), (150, "answer", 1), (160, "answer", 1)], 200.0)
    assert t.ttft_ms == 100
    assert t.first_answer_ms == 100 and t.first_reasoning_ms is None
    assert t.itl_ms == (20, 30, 10)
    assert t.itl_p50_ms == 20
    assert t.itl_p90_ms == pytest.approx(28.0)  # sorted 10, 20, 30: rank 1.8 -> 20 + 0.8 * 10
    assert t.itl_p99_ms == pytest.approx(29.8)
    assert t.tpot_ms == pytest.approx(100 / 3)  # (200 - 100) / (4 - 1)
    assert t.output_tps == pytest.approx(20.0)  # 4 tokens / 0.2 s
    assert t.stream_tokens == 4
    assert t.chunk_gaps_ms == (20, 30, 10)


def test_one_token_has_no_gaps_and_no_tpot():
    t = token_timing([TokenEvent(50.0)], 60.0)
    assert t.ttft_ms == 50
    assert t.itl_ms == () and t.itl_p50_ms is None and t.itl_p99_ms is None
    assert t.tpot_ms is None
    assert t.output_tps == pytest.approx(1 / 0.06)


def test_no_tokens_gives_nothing_but_keeps_the_servers_count():
    empty = token_timing([(30.0, "answer", 0)], 40.0)  # a usage-only event carries no token
    assert empty.ttft_ms is None and empty.tpot_ms is None and empty.output_tps is None
    assert empty.stream_tokens == 0 and empty.itl_ms == ()
    reported = token_timing([], 40.0, usage_tokens=5)
    assert reported.stream_tokens == 5 and reported.ttft_ms is None and reported.tpot_ms is None
    assert set(empty.record_fields()) == set(TOKEN_TIMING_FIELDS)


def test_equal_timestamps_give_zero_gaps():
    t = token_timing([(100, "answer", 1)] * 3, 100.0)
    assert t.itl_ms == (0, 0)
    assert t.tpot_ms == 0
    assert t.output_tps == pytest.approx(30.0)


def test_chunks_carrying_several_tokens_spread_their_gap():
    events = [TokenEvent(100.0, tokens=1), TokenEvent(140.0, tokens=4)]
    assert inter_token_latencies(events) == [10, 10, 10, 10]
    assert chunk_gaps(events) == [40]
    first_heavy = [TokenEvent(100.0, tokens=3), TokenEvent(130.0, tokens=1)]
    assert inter_token_latencies(first_heavy) == [0, 0, 30]
    t = token_timing(first_heavy, 150.0)
    assert t.stream_tokens == 4
    assert t.tpot_ms == pytest.approx(50 / 3)
    # The ITL of a response always sums to last token - first token.
    assert sum(token_timing(events, 150.0).itl_ms) == pytest.approx(40)


def test_server_token_count_wins_for_tpot_and_throughput():
    t = token_timing([(10, "answer", 1), (20, "answer", 1), (30, "answer", 1)], 60.0, usage_tokens=6)
    assert t.stream_tokens == 6
    assert t.tpot_ms == pytest.approx(50 / 5)
    assert t.output_tps == pytest.approx(100.0)
    assert len(t.itl_ms) == 2  # the gaps are what we saw arrive


def test_reasoning_then_answer_and_any_order():
    t = token_timing([(120, "answer", 1), (50, "reasoning", 1), (70, "reasoning", 1)], 130.0)
    assert (t.ttft_ms, t.first_reasoning_ms, t.first_answer_ms) == (50, 50, 120)
    assert t.itl_ms == (20, 50)


def test_bad_events_are_refused():
    with pytest.raises(ValueError, match="kind"):
        token_timing([(1.0, "thinking", 1)], 2.0)
    with pytest.raises(ValueError, match="token count"):
        token_timing([(1.0, "answer", -1)], 2.0)


def test_tpot_edges():
    assert tpot(None, 1.0, 5) is None and tpot(10.0, None, 5) is None and tpot(10.0, 1.0, 1) is None
    assert tpot(10.0, 12.0, 3) == 0  # clock noise never gives a negative time per token


def test_delta_kinds_of_both_event_flavours():
    assert delta_kinds({"response": "Hi", "p": "xx"}) == [("answer", "Hi")]
    assert delta_kinds({"response": "", "usage": {"completion_tokens": 3}}) == []
    chat = {"choices": [{"delta": {"reasoning_content": "hmm", "content": ""}}]}
    assert delta_kinds(chat) == [("reasoning", "hmm")]
    assert delta_kinds({"choices": [{"delta": {"content": "ok"}}]}) == [("answer", "ok")]
    assert delta_kinds({"choices": [{"text": "old"}]}) == [("answer", "old")]


def test_every_metric_has_a_one_line_definition():
    for name in (*TOKEN_TIMING_FIELDS, "ttft_ms"):
        assert name in METRIC_DEFINITIONS
        assert "\n" not in METRIC_DEFINITIONS[name] and METRIC_DEFINITIONS[name].strip()


def test_read_stream_times_a_real_stream(client):
    stream = client.stream("@cf/meta/llama-3.1-8b-instruct", {"prompt": "Count slowly to ten.", "max_tokens": 24})
    result, timing = read_stream(stream)
    assert result.ok, result.error
    assert timing.stream_tokens == result.usage["completion_tokens"]
    assert timing.ttft_ms is not None and result.timings.first_token_ms is not None
    # Stamped in the consumer right after the Stream's own stamp, on the same clock and origin.
    assert 0 <= timing.ttft_ms - result.timings.first_token_ms < 5
    assert timing.tpot_ms is not None and timing.tpot_ms > 0
    assert timing.ttft_ms <= result.timings.total_ms

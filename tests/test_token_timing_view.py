"""Token timing per route: the frames on hand-made records, and the section under AppTest (real streams from
the emulator, runs without token columns, runs that did not stream, reasoning, cached replays)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cfai import token_report as tr
from cfai.records import Record, records_frame
from cfai.token_timing import METRIC_DEFINITIONS, TOKEN_TIMING_FIELDS, token_timing
from components.token_timing_view import (
    NO_COLUMNS_NOTE,
    NO_REPLAY_NOTE,
    NOT_STREAMED_NOTE,
    SUBTITLE_WIDTH,
    box_chart,
)
from tests.token_records import streamed_records

APP = str(Path(__file__).resolve().parent / "apps" / "token_timing_app.py")


def hand_made(rows: list[dict]) -> pd.DataFrame:
    """Records from (route, cache, ttfb, total, events...) dicts, their token fields computed by
    cfai.token_timing from the listed token arrival times."""
    records, extra = [], []
    for seq, row in enumerate(rows):
        events = [(t, row.get("kind_of", {}).get(i, "answer"), 1) for i, t in enumerate(row.get("at", []))]
        timing = token_timing(events, row["total"]) if events else None
        records.append(Record(run_id="t", seq=seq, route=row["route"], warmup=row.get("warmup", False),
                              intended_start_s=seq, actual_start_s=seq, status=200, ok=row.get("ok", True),
                              cache_status=row.get("cache"), ttfb_ms=row.get("at", [row["total"]])[0],
                              total_ms=row["total"]))
        extra.append(timing.record_fields() if timing else dict.fromkeys(TOKEN_TIMING_FIELDS))
    frame = records_frame(records)
    for name, dtype in TOKEN_TIMING_FIELDS.items():
        frame[name] = pd.Series([e[name] for e in extra], dtype="float64").astype(dtype)
    return frame


# gaps: direct 10,10,30 (TPOT (60-10)/3); gateway MISS 20,20; gateway HIT 1,1 (replayed fast)
ROWS = [
    {"route": "direct", "at": [10, 20, 30, 60], "total": 60},
    {"route": "direct", "at": [20, 30, 40, 70], "total": 70},
    {"route": "gateway", "cache": "MISS", "at": [40, 60, 80], "total": 80},
    {"route": "gateway", "cache": "HIT", "at": [2, 3, 4], "total": 4},
    {"route": "gateway", "cache": "HIT", "at": [4, 5, 6], "total": 6},
    {"route": "direct", "at": [5, 6], "total": 6, "warmup": True},  # left out
    {"route": "direct", "total": 90},  # not streamed: left out
    {"route": "direct", "at": [1, 2], "total": 3, "ok": False},  # failed: left out
]


def test_distributions_per_route_and_cache_status_are_hand_computable():
    rows = tr.streamed_records(hand_made(ROWS))
    assert tr.group_order(rows) == ["direct", "gateway · MISS", "gateway · HIT"]
    dist = tr.distributions(rows).set_index(["group", "metric"])
    assert dist.loc[("direct", "ttft_ms"), "count"] == 2
    assert dist.loc[("direct", "ttft_ms"), "p50"] == 15  # first tokens at 10 and 20
    assert dist.loc[("direct", "tpot_ms"), "p50"] == pytest.approx(50 / 3)  # (60-10)/3 and (70-20)/3
    assert dist.loc[("direct", "itl_p50_ms"), "max"] == 10  # each request's gaps 10, 10, 30
    assert dist.loc[("gateway · MISS", "itl_p99_ms"), "p50"] == 20
    assert dist.loc[("gateway · HIT", "output_tps"), "min"] == pytest.approx(3 / 0.006)
    assert dist.loc[("direct", "stream_tokens"), "p50"] == 4


def test_the_cached_replay_is_compared_with_the_forwarded_stream():
    replay = tr.replay_comparison(tr.distributions(tr.streamed_records(hand_made(ROWS)))).set_index("metric")
    assert replay.loc["ttft_ms", "miss_p50"] == 40 and replay.loc["ttft_ms", "hit_p50"] == 3
    assert replay.loc["ttft_ms", "ratio"] == pytest.approx(40 / 3)
    assert replay.loc["itl_p50_ms", "ratio"] == pytest.approx(20.0)
    assert set(replay["route"]) == {"gateway"}  # direct has no cache


def test_first_reasoning_and_first_answer_tokens_are_split():
    rows = tr.streamed_records(hand_made([
        {"route": "direct", "at": [10, 20, 200, 210], "total": 220, "kind_of": {0: "reasoning", 1: "reasoning"}},
        {"route": "direct", "at": [30, 40, 300, 310], "total": 320, "kind_of": {0: "reasoning", 1: "reasoning"}},
    ]))
    assert tr.has_reasoning(rows)
    split = tr.reasoning_split(rows).iloc[0]
    assert split["first_reasoning_p50_ms"] == 20 and split["first_answer_p50_ms"] == 250
    assert split["thinking_p50_ms"] == 230


def test_box_chart_goes_log_when_the_groups_differ_tenfold_and_says_what_it_shows():
    dist = tr.distributions(tr.streamed_records(hand_made(ROWS)))
    ttft = dist.loc[dist["metric"] == "ttft_ms"]
    spec = box_chart(ttft, tr.group_order(tr.streamed_records(hand_made(ROWS))), "TTFT per route",
                     METRIC_DEFINITIONS["ttft_ms"], "ms").to_dict()
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"  # 3 ms hits next to 40 ms misses
    assert "Time to first token" in json.dumps(spec["title"])
    rows = [r for d in spec["datasets"].values() for r in d]
    assert len(rows) == 3  # one aggregated row per group, never the raw requests


def test_box_chart_subtitles_wrap_instead_of_being_cut_in_a_half_width_column():
    """Vega cuts a title line at the chart's width with "…": in a half-width column at 1024 px (about 300 px)
    the TTFT definition lost its end ("...the first streamed token (reason…")."""
    dist = tr.distributions(tr.streamed_records(hand_made(ROWS)))
    definition = METRIC_DEFINITIONS["ttft_ms"] + " One value per request."
    spec = box_chart(dist.loc[dist["metric"] == "ttft_ms"], tr.group_order(tr.streamed_records(hand_made(ROWS))),
                     "TTFT per route", definition, "ms").to_dict()
    lines = spec["title"]["subtitle"]
    assert all(len(line) <= SUBTITLE_WIDTH for line in lines), lines
    assert " ".join(lines).startswith(definition)


# --- the section under AppTest --------------------------------------------------------------------------------
def _section(records: pd.DataFrame):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["records"] = records
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_run_without_token_columns_or_streams_gets_one_line():
    plain = records_frame([Record(run_id="r", seq=0, route="direct", warmup=False, intended_start_s=0,
                                  actual_start_s=0, status=200, ok=True, ttfb_ms=5, total_ms=9)])
    # A run stored before records carried token timing has none of its columns.
    at = _section(plain.drop(columns=[c for c in TOKEN_TIMING_FIELDS if c in plain]))
    assert [c.value for c in at.caption] == [NO_COLUMNS_NOTE] and not at.get("vega_lite_chart")
    with_columns = plain.assign(**{name: pd.Series([None], dtype="float64") for name in TOKEN_TIMING_FIELDS})
    at = _section(with_columns)
    assert [c.value for c in at.caption] == [NOT_STREAMED_NOTE] and not at.get("vega_lite_chart")


def test_streamed_requests_from_the_emulator_show_their_distributions(client):
    at = _section(streamed_records(client, n=4))
    text = " ".join(m.value for m in at.markdown)
    for name in ("ttft_ms", "itl_p50_ms", "tpot_ms", "output_tps"):
        assert METRIC_DEFINITIONS[name] in text  # each metric defined on the page, in one line
    specs = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    for title in ("TTFT per route", "Inter-token latency per route", "TPOT per route", "Output tokens/s per route"):
        assert title in specs
    summary = at.dataframe[0].value
    assert list(summary["route · cache"]) == ["direct", "gateway · MISS"]  # the emulator never caches streams
    assert set(summary["streamed requests"]) == {"4"}
    assert summary["TTFT p50"].str.endswith("ms").all()
    assert NO_REPLAY_NOTE in [c.value for c in at.caption]


def test_cached_replays_and_reasoning_are_shown_when_present():
    rows = ROWS + [{"route": "direct", "at": [10, 20, 200], "total": 220, "kind_of": {0: "reasoning"}}]
    at = _section(hand_made(rows))
    replay = at.dataframe[1].value
    assert set(replay["route"]) == {"gateway"}
    assert replay.set_index("metric").loc["TTFT", "MISS ÷ HIT"] == "13.3×"
    specs = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "First reasoning token vs first answer token" in specs
    assert any(c.value.startswith("Thinking before the answer") for c in at.caption)


def _report(records):
    from components.run_report import run_report

    run_report(records, {"stream": True, "routes": ["direct", "gateway"]}, key="rep")


def test_a_streamed_run_report_has_one_token_timing_heading():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_report, args=(hand_made(ROWS),), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    headings = [h.value for h in at.subheader if "Token timing" in h.value]
    assert headings == ["Token timing (streamed requests)"], headings

"""Token-level timing of a run's streamed requests, per route: `token_timing_section(records)`.

Distributions (from `cfai.token_report`, aggregated per route · cache status) of TTFT, inter-token latency
(each request's p50, p90 and p99 gap), TPOT and output tokens/s; first reasoning token against first answer
token when the model reasoned; and how the gateway's replay of a cached stream (HIT) differs from a
forwarded one (MISS). Each metric is defined in one line (cfai.token_timing.METRIC_DEFINITIONS). A run
without streamed requests, or stored before token timing was recorded, gets a one-line note instead.
"""

from __future__ import annotations

import textwrap

import altair as alt
import pandas as pd
import streamlit as st

from cfai import token_report as tr
from cfai.format import MISSING, format_count, format_ms, format_rate, format_ratio
from components.compare_charts import _title
from components.sweep_charts import readable, wants_log

NO_COLUMNS_NOTE = ("Token timing: not recorded for this run (it was stored before per-token timing was "
                   "measured).")
NOT_STREAMED_NOTE = ("Token timing: no measured request in this run was streamed successfully; turn **Stream** "
                     "on to measure TTFT, inter-token latency, TPOT and output tokens/s.")
NO_REPLAY_NOTE = ("Cached replay: no streamed gateway request was answered from the cache (HIT) in this run, so "
                  "there is no replay to compare (the gateway may not cache streamed responses).")
BOX_NOTE = "Box: p25–p75 of the requests; whiskers p5–p95; white tick: median"
ITL_SERIES = ("ITL p50", "ITL p90", "ITL p99")
# Vega cuts a title line at the chart's width ("…"); these charts sit in half-width columns, about 300 px at
# 1024 px with the sidebar open: subtitles are wrapped to lines that fit there.
SUBTITLE_WIDTH = 52


def format_value(value: object, unit: str) -> str:
    if unit == "ms":
        return format_ms(value)
    if unit == "tok/s":
        return format_rate(value, "tok/s")
    return format_count(value)


def box_chart(dist: pd.DataFrame, groups: list[str], title: str, subtitle: str, unit: str,
              series: tuple[str, ...] = ()) -> alt.TopLevelMixin:
    """Horizontal boxes from precomputed quantiles: one row per group (and per series, side by side)."""
    log = wants_log(list(dist["p5"]) + list(dist["p95"]))
    x_scale = alt.Scale(type="log") if log else alt.Scale(zero=True)
    y = alt.Y("group:N", sort=groups, title=None, axis=alt.Axis(labelLimit=260))
    encodings = {"y": y}
    if series:
        encodings["yOffset"] = alt.YOffset("label:N", sort=list(series))
        color = alt.Color("label:N", sort=list(series), title=None,
                          scale=alt.Scale(domain=list(series), range=["#4c78a8", "#f58518", "#e45756"][:len(series)]))
    else:
        color = alt.value("#4c78a8")
    base = alt.Chart(dist).encode(**encodings)
    x_title = f"{unit}" + (" (log scale)" if log else "")
    tooltip = ["group:N", "label:N", "count:Q", *(alt.Tooltip(f"{q}:Q", format=",.3~f") for q in tr.QUANTILES)]
    whiskers = base.mark_rule(strokeWidth=2).encode(x=alt.X("p5:Q", title=x_title, scale=x_scale), x2="p95:Q",
                                                     color=color)
    boxes = base.mark_bar(size=16 if series else 26).encode(x="p25:Q", x2="p75:Q", color=color, tooltip=tooltip)
    medians = base.mark_tick(color="white", size=16 if series else 26, thickness=3).encode(x="p50:Q")
    step = 22 if series else 40
    return readable(alt.layer(whiskers, boxes, medians).properties(
        height=alt.Step(step), title=_title(title, *textwrap.wrap(subtitle, SUBTITLE_WIDTH),
                                            *textwrap.wrap(BOX_NOTE, SUBTITLE_WIDTH))))


def _chart(dist: pd.DataFrame, groups: list[str], metric: tr.TokenMetric, what: str) -> None:
    rows = dist.loc[dist["metric"] == metric.name]
    if rows.empty:
        return
    st.altair_chart(box_chart(rows, groups, f"{metric.label} per route", f"{metric.definition} {what}",
                              metric.unit), width="stretch")


def summary_table(dist: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """group × metric: the p50 over requests, formatted (p90 and p99 for ITL are their own metrics)."""
    out = []
    for group in groups:
        rows = dist.loc[dist["group"] == group]
        line: dict[str, str] = {"route · cache": group,
                                "streamed requests": format_count(rows["count"].max() if not rows.empty else None)}
        for metric in tr.METRICS + tr.REASONING_METRICS:
            hit = rows.loc[rows["metric"] == metric.name]
            if not hit.empty:
                line[f"{metric.label} p50"] = format_value(hit["p50"].iat[0], metric.unit)
        out.append(line)
    return pd.DataFrame(out).fillna(MISSING)


def definitions(metrics: tuple[tr.TokenMetric, ...]) -> None:
    st.markdown("\n".join(f"- **{m.label}**: {m.definition}" for m in metrics))


def replay_section(dist: pd.DataFrame, rows: pd.DataFrame) -> None:
    gateway_rows = rows.loc[rows["cache"].isin(["HIT", "MISS"])]
    if gateway_rows.empty:
        return
    replay = tr.replay_comparison(dist)
    st.markdown("**How the gateway's cached replay differs** (HIT: replayed from the cache; MISS: forwarded to "
                "Workers AI)")
    if replay.empty:
        st.caption(NO_REPLAY_NOTE)
        return
    table = pd.DataFrame({
        "route": replay["route"], "metric": replay["label"],
        "MISS p50": [format_value(v, u) for v, u in zip(replay["miss_p50"], replay["unit"], strict=True)],
        "HIT p50": [format_value(v, u) for v, u in zip(replay["hit_p50"], replay["unit"], strict=True)],
        "MISS ÷ HIT": [format_ratio(v) for v in replay["ratio"]],
        "requests (MISS / HIT)": [f"{m:,} / {h:,}" for m, h in zip(replay["miss_count"], replay["hit_count"],
                                                                    strict=True)],
    })
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption("MISS ÷ HIT above 1: the replay is that many times faster for a time, or that many times higher "
               "for a rate; a replayed stream's token gaps are the cache's delivery, not the model's decoding.")


def token_timing_section(records: pd.DataFrame) -> None:
    """The token-timing part of a run's report (see the module's docstring). `records` is the run's records
    frame (as stored, warm-ups included: they are left out here)."""
    st.subheader("Token timing (streamed requests)")
    if not tr.has_token_columns(records):
        st.caption(NO_COLUMNS_NOTE)
        return
    rows = tr.streamed_records(records)
    if rows.empty:
        st.caption(NOT_STREAMED_NOTE)
        return
    groups = tr.group_order(rows)
    reasoning = tr.has_reasoning(rows)
    dist = tr.distributions(rows, tr.METRICS + (tr.REASONING_METRICS if reasoning else ()))
    st.caption(f"{len(rows):,} streamed, successful, measured requests (warm-ups and failures excluded), per "
               "route and cache status. Times are from sending the request.")
    definitions(tr.METRICS + (tr.REASONING_METRICS if reasoning else ()))
    st.dataframe(summary_table(dist, groups), hide_index=True, width="stretch")
    what = "One value per request."
    by_name = tr.METRICS_BY_NAME
    left, right = st.columns(2)
    with left:
        _chart(dist, groups, by_name["ttft_ms"], what)
    with right:
        itl = dist.loc[dist["label"].isin(ITL_SERIES)]
        if not itl.empty:
            st.altair_chart(box_chart(itl, groups, "Inter-token latency per route",
                                      "Each request's p50, p90 and p99 gap between consecutive tokens.", "ms",
                                      series=ITL_SERIES), width="stretch")
    left, right = st.columns(2)
    with left:
        _chart(dist, groups, by_name["tpot_ms"], what)
    with right:
        _chart(dist, groups, by_name["output_tps"], what)
    if reasoning:
        split = dist.loc[dist["metric"].isin([m.name for m in tr.REASONING_METRICS])]
        labels = tuple(m.label for m in tr.REASONING_METRICS)
        st.altair_chart(box_chart(split, groups, "First reasoning token vs first answer token",
                                  "Reasoning models think before they answer: the gap is the thinking time.", "ms",
                                  series=labels), width="stretch")
        thinking = tr.reasoning_split(rows)
        if not thinking.empty:
            st.caption("Thinking before the answer (p50 of first answer − first reasoning token): " + "; ".join(
                f"{g} {format_ms(v)}" for g, v in zip(thinking["group"], thinking["thinking_p50_ms"], strict=True)))
    replay_section(dist, rows)

"""Altair charts and metric cards for the comparison and history pages.

Builders take the bounded frames from `cfai.chart_data` (never raw records) and return `alt.Chart`s whose
title says what was measured (total vs first byte, warm-ups excluded, sampling). `show` renders one.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from cfai import chart_data as cd
from cfai import report, stats
from cfai.format import format_ms, format_percent, format_ratio
from cfai.routes import GATEWAY_SKIP
from components import presenter

ROUTE_COLORS = {"direct": "#4c78a8", "gateway": "#f58518", GATEWAY_SKIP: "#72b7b2"}
CACHE_COLORS = {"HIT": "#54a24b", "MISS": "#eeca3b", cd.NO_CACHE_STATUS: "#bab0ac", cd.ERROR_STATUS: "#e45756"}
CACHE_SHAPES = {"HIT": "circle", "MISS": "triangle-up", cd.NO_CACHE_STATUS: "square", cd.ERROR_STATUS: "cross"}
CHART_HEIGHT = 300
# Runs overlaid in History: distinct hues (Tableau 10), never shades of one colour; routes are told apart
# by the line's dash.
RUN_PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#72b7b2", "#eeca3b", "#9d755d",
               "#ff9da6", "#bab0ac"]
# Axis and legend text: normal view, and the presenter view read from across a room.
FONT_SIZES = {False: {"label": 12, "title": 13, "heading": 15, "subtitle": 12},
              True: {"label": 20, "title": 22, "heading": 28, "subtitle": 18}}
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)  # counts are whole requests: no 0.2, 0.4 ... ticks


def _route_scale(routes: Sequence[str]) -> alt.Scale:
    domain = list(routes) or list(ROUTE_COLORS)
    palette = ["#b279a2", "#9d755d", "#ff9da6"]
    colors = [ROUTE_COLORS.get(r, palette[i % len(palette)]) for i, r in enumerate(domain)]
    return alt.Scale(domain=domain, range=colors)


def _run_scale(runs: Sequence[str]) -> alt.Scale:
    # Sorted, not in order of appearance: History's two overlay charts list the runs in different orders,
    # and a run must keep its colour from one chart to the next.
    domain = sorted(dict.fromkeys(runs))
    return alt.Scale(domain=domain, range=[RUN_PALETTE[i % len(RUN_PALETTE)] for i in range(len(domain))])


def _legend(title: str) -> alt.Legend:
    """A legend below the chart whose labels are never cut short (History's run names are long)."""
    return alt.Legend(title=title, orient="bottom", direction="vertical", labelLimit=0, titleLimit=0)


def _side_legend(title: str) -> alt.Legend:
    """A legend beside the plot, for charts with two legends: below the plot they would take the height the
    plot needs (Streamlit fits the whole chart into its height), squashing it flat."""
    return alt.Legend(title=title, orient="right", direction="vertical", labelLimit=260, titleLimit=0)


def _title(text: str, *subtitle: str) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=[s for s in subtitle if s], anchor="start")


def _ms_scale(log_scale: bool) -> alt.Scale:
    return alt.Scale(type="log") if log_scale else alt.Scale(zero=True)


def latency_over_time_chart(sample: cd.PointSample, metric: str, log_scale: bool = False,
                            stream: bool | None = False) -> alt.Chart:
    """Each request at its start time: colour = route, shape = cache status, warm-ups faded. The x axis
    runs from 0 to the last request's end (at least 1 s), so a live chart reads in seconds from the start."""
    frame = sample.frame.copy()
    frame["phase"] = frame["warmup"].map({True: "warm-up", False: "measured"})
    routes = cd.routes_in(frame)
    statuses = [s for s in CACHE_SHAPES if s in set(frame["cache_status"])] or list(CACHE_SHAPES)
    return (
        alt.Chart(frame)
        .mark_point(filled=True, size=40)
        .encode(
            x=alt.X("start_s:Q", title="seconds since the run started",
                    scale=alt.Scale(domain=[0, cd.time_axis_max(frame)], nice=False)),
            y=alt.Y("ms:Q", title=f"{report.METRIC_SHORT.get(metric, metric)} (ms)", scale=_ms_scale(log_scale)),
            color=alt.Color("route:N", scale=_route_scale(routes), title="route"),
            shape=alt.Shape("cache_status:N", title="cache",
                            scale=alt.Scale(domain=statuses, range=[CACHE_SHAPES[s] for s in statuses])),
            opacity=alt.Opacity("phase:N", scale=alt.Scale(domain=["measured", "warm-up"], range=[0.8, 0.3]),
                                legend=None),
            tooltip=[
                alt.Tooltip("seq:Q", title="request #"), "route:N", alt.Tooltip("cache_status:N", title="cache"),
                "phase:N", "status:Q", alt.Tooltip("ms:Q", format=",.1f"),
                alt.Tooltip("start_s:Q", title="start (s)", format=",.3f"),
            ],
        )
        .properties(
            height=CHART_HEIGHT,
            title=_title(
                "Latency per request over time",
                *report.measured_lines(metric, warmups="shown faded", failures_excluded=False, stream=stream),
                sample.note().capitalize(),
            ),
        )
    )


def distribution_chart(df: pd.DataFrame, metric: str, kind: str = "ecdf", log_scale: bool = False,
                       stream: bool | None = False) -> alt.Chart:
    """ECDF (share of requests at or below x ms) or box plot per route, successful measured requests only."""
    routes = cd.routes_in(df)
    color = alt.Color("route:N", scale=_route_scale(routes), title="route")
    x_title = f"{report.METRIC_SHORT.get(metric, metric)} (ms)"
    subtitle = report.measured_lines(metric, stream=stream)
    if kind == "box":
        box = stats.box_stats(df, metric)
        base = alt.Chart(box).encode(y=alt.Y("route:N", sort=routes, title=None), color=color)
        whiskers = base.mark_rule().encode(
            x=alt.X("whisker_low:Q", title=x_title, scale=_ms_scale(log_scale)), x2="whisker_high:Q")
        boxes = base.mark_bar(size=18).encode(x="q1:Q", x2="q3:Q", tooltip=[
            "route:N", "count:Q", alt.Tooltip("min:Q", format=",.1f"), alt.Tooltip("q1:Q", format=",.1f"),
            alt.Tooltip("median:Q", format=",.1f"), alt.Tooltip("q3:Q", format=",.1f"),
            alt.Tooltip("max:Q", format=",.1f")])
        medians = base.mark_tick(color="white", size=18, thickness=2).encode(x="median:Q")
        chart = alt.layer(whiskers, boxes, medians)
        title = _title("Latency distribution per route (box plot)", *subtitle,
                       "Box: quartiles; whiskers: 1.5 × IQR")
    else:
        curve = cd.ecdf(df, metric)
        chart = alt.Chart(curve).mark_line(interpolate="step-after").encode(
            x=alt.X("ms:Q", title=x_title, scale=_ms_scale(log_scale)),
            y=alt.Y("fraction:Q", title="share of requests at or below", axis=alt.Axis(format="%")),
            color=color,
            tooltip=["route:N", alt.Tooltip("ms:Q", format=",.1f"), alt.Tooltip("fraction:Q", format=".0%")],
        )
        title = _title("Latency distribution per route (ECDF)", *subtitle)
    return chart.properties(height=CHART_HEIGHT, title=title)


def cache_chart(counts: pd.DataFrame) -> alt.Chart:
    """Stacked bars: requests per route split by cache status."""
    routes = cd.routes_in(counts)
    statuses = [s for s in CACHE_COLORS if s in set(counts["cache_status"])] or list(CACHE_COLORS)
    statuses += sorted(set(counts["cache_status"]) - set(statuses))
    colors = [CACHE_COLORS.get(s, "#9d755d") for s in statuses]
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=alt.Y("route:N", sort=routes, title=None),
            x=alt.X("count:Q", title="requests", stack="zero", axis=COUNT_AXIS),
            color=alt.Color("cache_status:N", title="cache", scale=alt.Scale(domain=statuses, range=colors)),
            order=alt.Order("cache_status:N"),
            tooltip=["route:N", alt.Tooltip("cache_status:N", title="cache"), "count:Q",
                     alt.Tooltip("share:Q", format=".0%")],
        )
        .properties(
            height=CHART_HEIGHT,
            title=_title("Cache hits vs misses per route",
                         "Counted: cf-aig-cache-status of each request",
                         "gateway routes, warm-ups excluded (direct has no cache)"),
        )
    )


def _value_mark(base: alt.Chart, log_scale: bool) -> alt.Chart:
    """Bars on a linear scale; on a log scale a bar has no zero to start from, so a point marks the value.
    (Both layers share the y scale type: Vega-Lite drops a layered chart whose layers disagree.)"""
    return base.mark_point(filled=True, size=90, opacity=1) if log_scale else base.mark_bar()


def _interval_marks(base: alt.Chart, y_title: str, log_scale: bool) -> list[alt.Chart]:
    """An interval as a thin vertical rule with short caps (a fixed size, not the band's width), drawn only
    where the sample supported one (rows without ci_low/ci_high draw nothing: too few samples)."""
    scale = _ms_scale(log_scale)
    rule = base.mark_rule(color="black", strokeWidth=1.5).encode(
        y=alt.Y("ci_low:Q", title=y_title, scale=scale), y2="ci_high:Q")
    caps = [base.mark_tick(color="black", size=10, thickness=1.5).encode(y=alt.Y(f"{end}:Q", title=y_title,
                                                                               scale=scale))
            for end in ("ci_low", "ci_high")]
    return [rule, *caps]


def percentile_chart(bars: pd.DataFrame, metric: str, log_scale: bool = False,
                     stream: bool | None = False) -> alt.Chart:
    """p50 and p95 per route as bars, with their 95% intervals as error bars where the sample supports one."""
    routes = cd.routes_in(bars)
    base = alt.Chart(bars).encode(
        x=alt.X("route:N", sort=routes, title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("percentile:N", sort=list(cd.CHART_PERCENTILES)),
    )
    y_title = f"{report.METRIC_SHORT.get(metric, metric)} (ms)"
    columns = _value_mark(base, log_scale).encode(
        y=alt.Y("ms:Q", title=y_title, scale=_ms_scale(log_scale)),
        color=alt.Color("percentile:N", sort=list(cd.CHART_PERCENTILES),
                        scale=alt.Scale(range=["#4c78a8", "#9ecae9"])),
        tooltip=["route:N", "percentile:N", alt.Tooltip("ms:Q", format=",.1f"),
                 alt.Tooltip("ci_low:Q", title="95% CI low", format=",.1f"),
                 alt.Tooltip("ci_high:Q", title="95% CI high", format=",.1f"), "count:Q"],
    )
    with_ci = base.transform_filter("isValid(datum.ci_low) && isValid(datum.ci_high)")
    missing = bars["ci_low"].isna().any() if "ci_low" in bars else False
    return alt.layer(columns, *_interval_marks(with_ci, y_title, log_scale)).properties(
        height=CHART_HEIGHT,
        title=_title("p50 and p95 per route, with 95% intervals",
                     *report.measured_lines(metric, stream=stream),
                     "Error bars: distribution-free 95% interval (order statistics)"
                     + (f"; none where a route has under {stats.MIN_CI_SAMPLES} samples" if missing else "")),
    )


# --- history overlays ------------------------------------------------------------------------------------
def overlay_ecdf_chart(curve: pd.DataFrame, metric: str, log_scale: bool = False,
                       stream: bool | None = False) -> alt.Chart:
    """ECDFs of several runs: colour = run, dash = route. `curve` is `chart_data.ecdf(df, by=("run", "route"))`."""
    return (
        alt.Chart(curve)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("ms:Q", title=f"{report.METRIC_SHORT.get(metric, metric)} (ms)", scale=_ms_scale(log_scale)),
            y=alt.Y("fraction:Q", title="share of requests at or below", axis=alt.Axis(format="%")),
            color=alt.Color("run:N", scale=_run_scale(curve["run"].astype(str)), legend=_side_legend("run")),
            strokeDash=alt.StrokeDash("route:N", sort=cd.routes_in(curve), legend=_side_legend("route")),
            tooltip=["run:N", "route:N", alt.Tooltip("ms:Q", format=",.1f"),
                     alt.Tooltip("fraction:Q", format=".0%")],
        )
        .properties(height=CHART_HEIGHT,
                    title=_title("Latency distribution, runs overlaid (ECDF)",
                                 *report.measured_lines(metric, stream=stream)))
    )


def overlay_percentile_chart(bars: pd.DataFrame, metric: str, log_scale: bool = False,
                             stream: bool | None = False) -> alt.Chart:
    """p50/p95 per route and run, side by side, with intervals. `bars` has a `run` column."""
    y_title = f"{report.METRIC_SHORT.get(metric, metric)} (ms)"
    runs = list(dict.fromkeys(bars["run"].astype(str)))
    base = alt.Chart().encode(
        x=alt.X("route:N", sort=cd.routes_in(bars), title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("run:N", sort=runs),
    )
    columns = _value_mark(base, log_scale).encode(
        y=alt.Y("ms:Q", title=y_title, scale=_ms_scale(log_scale)),
        color=alt.Color("run:N", scale=_run_scale(runs), legend=_side_legend("run")),
        tooltip=["run:N", "route:N", "percentile:N", alt.Tooltip("ms:Q", format=",.1f"),
                 alt.Tooltip("ci_low:Q", format=",.1f"), alt.Tooltip("ci_high:Q", format=",.1f")])
    with_ci = base.transform_filter("isValid(datum.ci_low) && isValid(datum.ci_high)")
    return (
        alt.layer(columns, *_interval_marks(with_ci, y_title, log_scale), data=bars)
        .properties(height=CHART_HEIGHT - 60)
        .facet(column=alt.Column("percentile:N", sort=list(cd.CHART_PERCENTILES), title=None))
        .properties(title=_title("p50 and p95 per route, by run, with 95% intervals",
                                 *report.measured_lines(metric, stream=stream)))
    )


# --- rendering -----------------------------------------------------------------------------------------
def styled(chart: alt.TopLevelMixin, presenter: bool = False) -> alt.TopLevelMixin:
    """Axis, legend and title text sizes: readable at a desk, or from across a room (`presenter`)."""
    size = FONT_SIZES[bool(presenter)]
    return (chart.configure_axis(labelFontSize=size["label"], titleFontSize=size["title"], labelLimit=0)
            .configure_legend(labelFontSize=size["label"], titleFontSize=size["title"], symbolSize=120 * (2 if presenter else 1))
            .configure_title(fontSize=size["heading"], subtitleFontSize=size["subtitle"]))


def show(chart: alt.TopLevelMixin, key: str | None = None, presenter: bool = False) -> None:
    st.altair_chart(styled(chart, presenter), width="stretch", key=key)


def metric_cards(head: report.Headline, metric: str | None, live: bool = False) -> None:
    """p50 direct, p50 gateway (hit), speed-up with its interval (or "too few samples"), hit rate, in a row
    that wraps instead of truncating (components.presenter); what was measured underneath. `live`: numbers
    so far, from a run still going."""
    so_far = " so far" if live else ""
    with presenter.cards_row():
        st.metric("p50 direct", format_ms(head.p50_direct), border=True,
                  help=f"Median over {head.n_direct} successful measured direct requests{so_far}.")
        st.metric("p50 gateway hit", format_ms(head.p50_gateway_hit), border=True,
                  help=f"Median over {head.n_gateway_hit} gateway requests answered from the cache (HIT){so_far}.")
        st.metric("Speed-up", format_ratio(head.speedup), border=True, delta=head.interval_note,
                  delta_color="off", delta_arrow="off",
                  help="p50 direct ÷ p50 gateway hit (ratio of medians), with a bootstrap 95% confidence interval "
                       f"when each side has at least {stats.MIN_CI_SAMPLES} successful requests.")
        st.metric("Gateway hit rate", format_percent(head.hit_rate), border=True,
                  help="Share of measured requests on the gateway route answered with cf-aig-cache-status: HIT.")
    if metric is not None:
        st.caption(f"{report.measured_note(metric)}{so_far}.")

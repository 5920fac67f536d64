"""Altair charts of a load sweep: latency and achieved throughput against offered load, errors per step.

Builders take the tidy, aggregated frames of `cfai.sweep` (`latency_curve_frame`, `throughput_frame`,
`step_table`) and `cfai.sweep_report.markers_frame` (one row per step and route, never raw records). The
conventions are components/compare_charts.py's: route colours, titles whose subtitles say what was measured,
a log scale when values differ tenfold. Loads that double (1, 2, 4, ... 32) read best on a log2 axis.
Fonts are a size up from the defaults: these charts are shown on projectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import pandas as pd

from cfai.chart_data import LOG_SCALE_RATIO, routes_in
from components.compare_charts import CHART_HEIGHT, _route_scale, _title

MARKER_COLORS = {"knee": "#222222", "errors start": "#e45756", "429s start": "#b279a2", "withheld": "#9d9d9d"}
SERIES_DASH = {"p50": [1, 0], "p95": [6, 3], "TTFT p50": [2, 2], "TTFB p50": [2, 2]}
LOAD_LOG_RATIO = 4.0  # loads spanning 4x or more (1..4, 1..32) get a log2 axis


def readable(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Fonts large enough for a projector."""
    return (chart.properties(padding={"top": 12, "left": 5, "right": 5, "bottom": 5})
            .configure_axis(labelFontSize=13, titleFontSize=14)
            .configure_legend(labelFontSize=13, titleFontSize=13, symbolSize=120)
            .configure_title(fontSize=17, subtitleFontSize=13))


def wants_log(values: Sequence[float] | pd.Series, ratio: float = LOG_SCALE_RATIO) -> bool:
    """Positive values whose largest is at least `ratio` x the smallest."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x)) and float(x) > 0]
    return bool(v) and max(v) / min(v) >= ratio


def load_scale(loads: Sequence[float]) -> alt.Scale:
    if wants_log(loads, LOAD_LOG_RATIO):
        return alt.Scale(type="log", base=2, nice=False, domain=[min(loads) / 1.2, max(loads) * 1.2])
    return alt.Scale(zero=False, nice=False, domain=[min(loads) - 0.5, max(loads) + 0.5]) if loads else alt.Scale()


def _load_axis(loads: Sequence[float], unit: str) -> alt.X:
    return alt.X("load:Q", title=unit, scale=load_scale(loads), axis=alt.Axis(values=sorted(set(loads)), format="~g"))


def _rules(markers: pd.DataFrame, loads: Sequence[float], unit: str) -> list[alt.Chart]:
    """Vertical rules where errors / 429s start and at withheld steps, labelled at the top."""
    rules = markers.loc[markers["kind"] != "knee"]
    if rules.empty:
        return []
    kinds = [k for k in MARKER_COLORS if k in set(rules["kind"])]
    scale = alt.Scale(domain=kinds, range=[MARKER_COLORS[k] for k in kinds])
    color = alt.Color("kind:N", title="marked", scale=scale)
    base = alt.Chart(rules).encode(x=_load_axis(loads, unit))
    lines = base.mark_rule(strokeDash=[4, 3], strokeWidth=2).encode(
        color=color, tooltip=["label:N", alt.Tooltip("load:Q", title=unit), alt.Tooltip("step:Q", title="step #")])
    text = base.mark_text(align="left", dx=4, dy=0, angle=270, baseline="bottom", fontSize=12).encode(
        text="label:N", color=alt.Color("kind:N", scale=scale, legend=None), y=alt.value(4))
    return [lines, text]


def latency_vs_load_chart(curve: pd.DataFrame, markers: pd.DataFrame, unit: str, *, stream: bool = False,
                          log_scale: bool | None = None) -> alt.TopLevelMixin:
    """p50, p95 and TTFT p50 per step and route (colour = route, dash = series), the knee circled, where
    errors and 429s start ruled. `curve` is `latency_curve_frame`; withheld steps are already left out."""
    frame = curve.copy()
    if not stream:  # not streamed: the first byte, not a token
        frame["series"] = frame["series"].replace({"TTFT p50": "TTFB p50"})
    series = [s for s in SERIES_DASH if s in set(frame["series"])]
    routes = routes_in(frame)
    loads = sorted(set(frame["load"].astype(float)) | set(markers["load"].astype(float)))
    log_y = wants_log(frame["value_ms"]) if log_scale is None else log_scale
    y_scale = alt.Scale(type="log") if log_y else alt.Scale(zero=True)
    y = alt.Y("value_ms:Q", title="latency (ms)", scale=y_scale)
    base = alt.Chart(frame).encode(x=_load_axis(loads, unit), y=y,
                                   color=alt.Color("route:N", scale=_route_scale(routes), title="route"))
    lines = base.mark_line(point=alt.OverlayMarkDef(size=70, filled=True), strokeWidth=2.5).encode(
        strokeDash=alt.StrokeDash("series:N", title="series", sort=series,
                                  scale=alt.Scale(domain=series, range=[SERIES_DASH[s] for s in series]),
                                  legend=None),  # the subtitle names the dashes: legend symbols drew blank
        detail="series:N",
        tooltip=["route:N", "series:N", alt.Tooltip("load:Q", title=unit), alt.Tooltip("step:Q", title="step #"),
                 alt.Tooltip("value_ms:Q", title="ms", format=",.1f")])
    layers: list[alt.Chart] = [lines]
    knees = markers.loc[markers["kind"] == "knee"]
    if not knees.empty:  # routes bending at the same load share one circle and one label
        knees = (knees.groupby("load", as_index=False)
                 .agg(value_ms=("value_ms", "max"), routes=("route", lambda r: ", ".join(r)))
                 .assign(label=lambda f: "knee (" + f["routes"] + ")"))
        knee_base = alt.Chart(knees).encode(x=_load_axis(loads, unit), y=alt.Y("value_ms:Q", scale=y_scale))
        layers.append(knee_base.mark_point(shape="circle", size=600, strokeWidth=3, filled=False,
                                           color=MARKER_COLORS["knee"]).encode(tooltip=["label:N", "value_ms:Q"]))
        layers.append(knee_base.mark_text(dy=-22, fontSize=13, fontWeight="bold", color=MARKER_COLORS["knee"])
                      .encode(text="label:N"))
    layers.extend(_rules(markers, loads, unit))
    measured = "total time and time to first token" if stream else "total time and time to first byte"
    return readable(alt.layer(*layers).resolve_scale(color="independent").properties(
        height=CHART_HEIGHT + 60,
        title=_title("Latency against load, per route",
                     f"Measured: {measured} of successful measured requests per step (warm-ups excluded); "
                     "solid p50, dashed p95, dotted first byte/token p50",
                     "Circled: the knee (first step whose p50 exceeds 1.5× the lowest-load p50); rules: where "
                     "errors / 429s start; steps the client could not generate on schedule are left out"),
    ))


def throughput_chart(frame: pd.DataFrame, markers: pd.DataFrame, unit: str, *, open_loop: bool) -> alt.TopLevelMixin:
    """Achieved throughput per step and route; open loop also draws what each route was offered (dashed)."""
    data = frame.copy()
    data["achieved_rps"] = data["achieved_rps"].astype(float)
    routes = routes_in(data)
    loads = sorted(set(data["load"].astype(float)))
    shown = data.dropna(subset=["achieved_rps"])
    color = alt.Color("route:N", scale=_route_scale(routes), title="route")
    y = alt.Y("achieved_rps:Q", title="requests/s achieved (per route)", scale=alt.Scale(zero=True))
    achieved = alt.Chart(shown).mark_line(point=alt.OverlayMarkDef(size=70, filled=True), strokeWidth=2.5).encode(
        x=_load_axis(loads, unit), y=y, color=color,
        tooltip=["route:N", alt.Tooltip("load:Q", title=unit), alt.Tooltip("achieved_rps:Q", format=",.1f"),
                 alt.Tooltip("errors:Q"), alt.Tooltip("rate_limited:Q", title="429s")])
    layers: list[alt.Chart] = [achieved]
    if open_loop:
        offered = data.dropna(subset=["offered_rps"])
        layers.append(alt.Chart(offered).mark_line(strokeDash=[6, 4], strokeWidth=1.5, opacity=0.8).encode(
            x=_load_axis(loads, unit), y=alt.Y("offered_rps:Q"), color=color,
            tooltip=["route:N", alt.Tooltip("offered_rps:Q", title="offered req/s", format=",.2f")]))
    layers.extend(_rules(markers, loads, unit))
    return readable(alt.layer(*layers).resolve_scale(color="independent").properties(
        height=CHART_HEIGHT,
        title=_title("Achieved throughput against load",
                     "Measured: successful measured requests / the step's wall time (first start to last end)",
                     "Dashed: the rate each route was offered" if open_loop else
                     "Closed loop: each step keeps this many requests in flight"),
    ))


def errors_chart(table: pd.DataFrame, unit: str) -> alt.TopLevelMixin:
    """Failed measured requests per step and route, 429s apart from other errors."""
    rows = []
    for rec in table.to_dict("records"):
        other = int(rec["errors"]) - int(rec["rate_limited"])
        rows.append({"step": rec["step"], "load": rec["load"], "route": rec["route"], "kind": "429 rate limited",
                     "count": int(rec["rate_limited"]), "requests": int(rec["requests"])})
        rows.append({"step": rec["step"], "load": rec["load"], "route": rec["route"], "kind": "other error",
                     "count": other, "requests": int(rec["requests"])})
    data = pd.DataFrame(rows)
    data["load_label"] = [f"{float(v):g}" for v in data["load"]]
    order = [f"{float(v):g}" for v in sorted(set(table["load"].astype(float)))]
    routes = routes_in(table)
    chart = alt.Chart(data).mark_bar().encode(
        x=alt.X("load_label:N", title=unit, sort=order, scale=alt.Scale(paddingInner=0.2)),
        xOffset=alt.XOffset("route:N", sort=routes),
        y=alt.Y("count:Q", title="failed requests", stack="zero"),
        color=alt.Color("kind:N", title="failure",
                        scale=alt.Scale(domain=["429 rate limited", "other error"],
                                        range=[MARKER_COLORS["429s start"], MARKER_COLORS["errors start"]])),
        tooltip=["route:N", alt.Tooltip("load_label:N", title=unit), "kind:N", "count:Q",
                 alt.Tooltip("requests:Q", title="measured requests")],
    ).properties(width=alt.Step(24), height=CHART_HEIGHT,
                 title=_title("Failures per step", "Counted: failed measured requests per route (bars side by "
                              "side: routes in order " + ", ".join(routes) + ")"))
    return readable(chart)

"""Altair charts of cost: monthly cost against the cache hit rate (the measured point marked) and a run's
cost per route with and without the cache.

Builders take small tidy frames (a few dozen rows at most, never raw records): `cfai.cost.cost_vs_hit_rate`
for the curve and `cfai.cost.route_costs` for the routes; `*_data` functions shape them for the chart and are
tested directly.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from cfai.cost import CURVE_COLUMNS
from cfai.format import format_usd

USD_AXIS_FORMAT = "$,.3~g"  # "$297", "$0.000134": tiny per-request costs stay readable (no SI "µ")
CURVE_SERIES = {"monthly_usd": "billed (after the free allocation)", "monthly_list_usd": "at list price"}
CURVE_DATA_COLUMNS = ("hit_rate_pct", "series", "monthly_usd", "point")
ROUTE_COST_DATA_COLUMNS = ("route", "case", "usd")
CASE_ORDER = ("with its cache hits", "if every request had gone to Workers AI")
CHART_HEIGHT = 340
MEASURED_COLOR = "#e45756"


def _title(text: str, *subtitle: str) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=[s for s in subtitle if s], anchor="start")


def curve_data(curve: pd.DataFrame) -> pd.DataFrame:
    """`cost_vs_hit_rate`'s frame in long form: one row per hit rate and series (billed, list price); the
    measured point keeps `point` "measured". Columns: CURVE_DATA_COLUMNS."""
    missing = [c for c in CURVE_COLUMNS if c not in curve]
    if missing:
        raise ValueError(f"cost curve is missing columns {missing}")
    long = curve.melt(id_vars=["hit_rate_pct", "point"], value_vars=list(CURVE_SERIES), var_name="series",
                      value_name="usd").rename(columns={"usd": "monthly_usd"})
    long["series"] = long["series"].map(CURVE_SERIES)
    return long[list(CURVE_DATA_COLUMNS)].sort_values(["point", "series", "hit_rate_pct"]).reset_index(drop=True)


def cost_vs_hit_rate_chart(curve: pd.DataFrame, requests_per_day: float) -> alt.LayerChart:
    """Monthly cost from 0% to 100% cache hits: billed (after the free allocation, solid) and at list price
    (dashed), the run's measured hit rate as a large marked point with its figure."""
    data = curve_data(curve)
    line_data = data.loc[data["point"] == "curve"]
    measured = data.loc[(data["point"] == "measured") & (data["series"] == CURVE_SERIES["monthly_usd"])].copy()
    measured["label"] = [f"measured {pct:.0f}% hits: {format_usd(usd)}/month"
                         for pct, usd in zip(measured["hit_rate_pct"], measured["monthly_usd"], strict=True)]
    # Padding keeps a measured point at 0% or 100% whole instead of cut by the plot's edge.
    x = alt.X("hit_rate_pct:Q", title="cache hit rate (%)", scale=alt.Scale(domain=[0, 100], nice=False, padding=16))
    y = alt.Y("monthly_usd:Q", title="cost per month (USD)", axis=alt.Axis(format=USD_AXIS_FORMAT),
              scale=alt.Scale(zero=True))
    tooltip = [alt.Tooltip("hit_rate_pct:Q", title="hit rate (%)", format=".0f"), "series:N",
               alt.Tooltip("monthly_usd:Q", title="per month", format=USD_AXIS_FORMAT)]
    lines = alt.Chart(line_data).mark_line(strokeWidth=3).encode(
        x=x, y=y, tooltip=tooltip,
        strokeDash=alt.StrokeDash("series:N", title=None, sort=list(CURVE_SERIES.values()),
                                  scale=alt.Scale(domain=list(CURVE_SERIES.values()), range=[[1, 0], [6, 4]]),
                                  legend=alt.Legend(orient="bottom", labelFontSize=14, labelLimit=0)),
    )
    point = alt.Chart(measured).mark_point(filled=True, size=260, color=MEASURED_COLOR).encode(
        x=x, y=y, tooltip=tooltip)
    # The label points inwards: a label past the plot's edge would make Vega shrink the plot to fit it.
    inward = "right" if measured["hit_rate_pct"].max() > 50 else "left"
    # Above the point, clear of the two lines (which meet near it at high hit rates).
    label = alt.Chart(measured).mark_text(align=inward, dx=-14 if inward == "right" else 14, dy=-34, fontSize=15,
                                          baseline="bottom", fontWeight="bold",
                                          color=MEASURED_COLOR).encode(x=x, y=y, text="label:N")
    return alt.layer(lines, point, label).properties(
        height=CHART_HEIGHT,
        title=_title("Monthly cost vs cache hit rate",
                     f"{requests_per_day:,.0f} requests a day at this run's mean cost; red: measured"),
    ).configure_axis(labelFontSize=14, titleFontSize=15)


def route_cost_data(table: pd.DataFrame) -> pd.DataFrame:
    """`route_costs` in long form for a bar chart: per route, the total cost with its cache hits and what it
    would have been without them. Routes that could not be priced are left out. Columns:
    ROUTE_COST_DATA_COLUMNS."""
    priced = table.loc[table["cost_total_usd"].notna()]
    rows = []
    for r in priced.itertuples(index=False):
        rows.append({"route": r.route, "case": CASE_ORDER[0], "usd": float(r.cost_total_usd)})
        rows.append({"route": r.route, "case": CASE_ORDER[1], "usd": float(r.without_cache_usd)})
    return pd.DataFrame(rows, columns=list(ROUTE_COST_DATA_COLUMNS))


def route_cost_chart(data: pd.DataFrame) -> alt.Chart:
    """Horizontal bars: each route's total cost, with its cache hits and without them."""
    routes = list(dict.fromkeys(data["route"]))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("route:N", sort=routes, title=None, axis=alt.Axis(labelFontSize=15, labelLimit=0)),
            yOffset=alt.YOffset("case:N", sort=list(CASE_ORDER)),
            x=alt.X("usd:Q", title="cost of the run's measured requests (USD)",
                    axis=alt.Axis(format=USD_AXIS_FORMAT), scale=alt.Scale(zero=True)),
            color=alt.Color("case:N", sort=list(CASE_ORDER), title=None,
                            scale=alt.Scale(domain=list(CASE_ORDER), range=["#54a24b", "#bab0ac"]),
                            legend=alt.Legend(orient="bottom", labelFontSize=14, labelLimit=0)),
            tooltip=["route:N", "case:N", alt.Tooltip("usd:Q", title="USD", format=USD_AXIS_FORMAT)],
        )
        .properties(height=alt.Step(22),
                    title=_title("Run cost per route", "Successful measured requests at list price; warm-ups "
                                 "and failures left out."))
        .configure_axis(labelFontSize=14, titleFontSize=15)
    )

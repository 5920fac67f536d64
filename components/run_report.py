"""The report of one comparison run: metric cards, the no-hit diagnosis, the four charts and the tables.

Numbers come from `cfai.stats` on the stored records (the same calls the CLI makes), charts from the
bounded frames of `cfai.chart_data`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pandas as pd
import streamlit as st

from cfai import chart_data as cd
from cfai import report, stats
from cfai.diagnose import PlanLike, gateway_never_hit, misses_expected, no_hit_causes, plan_value
from cfai.format import MISSING, format_ms
from cfai.pricing import ModelPrice
from components import compare_charts as charts
from components import presenter as presenter_view
from components.cost_view import cost_headline, no_saving_reason, run_cost_section
from components.token_timing_view import token_timing_section

METRIC_OPTIONS = {"total_ms": "Total (to last byte)", "ttfb_ms": "Time to first byte"}
DISTRIBUTION_KINDS = {"ecdf": "ECDF", "box": "Box plot"}
STAT_COLUMNS = ["group", "count", "errors", "hit_rate", "min", "mean", "p50", "p90", "p95", "p99", "max"]
RECORD_TABLE_COLUMNS = ["seq", "route", "warmup", "status", "ok", "cache_status", "ttfb_ms", "total_ms",
                        "tokens_in", "tokens_out", "bytes", "error_code", "error_message", "log_id"]
LOG_HELP = ("Cache hits and misses differ by orders of magnitude; a log axis shows both. On by default when "
            "route medians differ more than 10×.")


def log_scale_toggle(container: Any, key: str, default: bool, context: Hashable) -> bool:
    """The log-scale toggle, starting at `default` whenever `context` (the runs shown) changes; the user's
    choice then sticks until it changes again."""
    marker = f"{key}__default_for"
    if st.session_state.get(marker) != context or key not in st.session_state:
        st.session_state[marker] = context
        st.session_state[key] = bool(default)
    return bool(container.toggle("Log scale", key=key, help=LOG_HELP))


@st.cache_data(max_entries=32, show_spinner=False)
def _cached_numbers(data_key: Hashable, metric: str, _df: pd.DataFrame) -> tuple[Any, ...]:
    return _numbers(_df, metric)


def _numbers(df: pd.DataFrame, metric: str) -> tuple[Any, ...]:
    """The report's derived data: statistics, speed-up, the JSON summary, and the bounded chart frames."""
    summary = stats.summarize(df, metric)
    return (summary, stats.speedup(df, "direct", ("gateway", "HIT"), metric=metric), stats.route_summary(df, metric),
            cd.latency_points(df, metric), cd.cache_counts(df), cd.percentile_bars(df, summary, metric))


def report_numbers(df: pd.DataFrame, metric: str, data_key: Hashable | None = None) -> tuple[Any, ...]:
    """`_numbers`, cached per `data_key` when the caller has one (a stored run: its id and revision), so a
    rerun of a page with a big run recomputes nothing; computed afresh otherwise (a run still going)."""
    return _numbers(df, metric) if data_key is None else _cached_numbers(data_key, metric, df)


def view_options(key: str, df: pd.DataFrame, data_key: Hashable | None = None
                 ) -> tuple[str, bool, str, pd.DataFrame]:
    """Metric, log scale and distribution kind: display choices that never re-run anything; and the
    statistics for the chosen metric (they set the log scale's default)."""
    row = st.container(horizontal=True, gap="medium", vertical_alignment="bottom")  # wraps, never clips
    c1 = c2 = c3 = row
    metric = c1.segmented_control("Metric", list(METRIC_OPTIONS), format_func=METRIC_OPTIONS.get,
                                  default="total_ms", required=True, key=f"{key}_metric",
                                  help="Total: request written to last byte. TTFB: to the response headers "
                                       "(streams: to the first token).")
    metric = metric or "total_ms"
    summary = report_numbers(df, metric, data_key)[0]
    runs = tuple(sorted(df["run_id"].astype(str).unique())) if "run_id" in df else ()
    log_scale = log_scale_toggle(c2, f"{key}_log", cd.wants_log_scale(summary), runs)
    kind = c3.segmented_control("Distribution", list(DISTRIBUTION_KINDS), format_func=DISTRIBUTION_KINDS.get,
                                default="ecdf", required=True, key=f"{key}_dist")
    return metric, log_scale, kind or "ecdf", summary


def no_hit_notice(plan: PlanLike, df: pd.DataFrame) -> None:
    """When the gateway never hit: in unique cache mode, that this is expected; otherwise only the causes the
    plan and the records show, each with its fix."""
    if not gateway_never_hit(df):
        return
    expected = misses_expected(plan)
    if expected:
        st.info(expected, icon=":material/cached:")
        return
    causes = no_hit_causes(plan, df)
    lines = ["**The gateway never answered from its cache.** What this run shows:"]
    for cause in causes:
        lines.append(f"- **{cause.title}**: {cause.fix}")
    st.warning("\n".join(lines), icon=":material/cached:")


def stats_table(summary: pd.DataFrame) -> None:
    """The statistics per route (and cache status, where it differs from the route's own row)."""
    summary = report.distinct_stat_rows(summary)
    table = summary[[c for c in STAT_COLUMNS if c in summary]]
    st.dataframe(
        table, hide_index=True, width="stretch", placeholder=MISSING,
        column_config={
            "group": "route · cache",
            "hit_rate": st.column_config.NumberColumn("hit rate", format="percent"),
            **{c: st.column_config.NumberColumn(c, format="%.1f") for c in
               ("min", "mean", "p50", "p90", "p95", "p99", "max")},
        },
    )


def records_table(df: pd.DataFrame, key: str) -> None:
    """The raw records, filterable by route, cache status, warm-up and outcome."""
    c1, c2, c3, c4 = st.columns(4)
    routes = cd.routes_in(df)
    labels = cd.cache_label(df["cache_status"], df["ok"]) if not df.empty else pd.Series(dtype=object)
    statuses = sorted(set(labels))
    chosen_routes = c1.multiselect("Routes", routes, default=routes, key=f"{key}_routes")
    chosen_status = c2.multiselect("Cache status", statuses, default=statuses, key=f"{key}_status")
    show_warmups = c3.toggle("Show warm-ups", value=True, key=f"{key}_warm")
    errors_only = c4.toggle("Errors only", key=f"{key}_errors")
    mask = df["route"].isin(chosen_routes) & labels.isin(chosen_status)
    if not show_warmups:
        mask &= ~df["warmup"]
    if errors_only:
        mask &= ~df["ok"]
    shown = df.loc[mask, [c for c in RECORD_TABLE_COLUMNS if c in df]]
    st.caption(f"{len(shown):,} of {len(df):,} records")
    st.dataframe(shown, hide_index=True, width="stretch", height=320, placeholder=MISSING,
                 column_config={"ttfb_ms": st.column_config.NumberColumn("ttfb_ms", format="%.1f"),
                                "total_ms": st.column_config.NumberColumn("total_ms", format="%.1f")})


def live_report(df: pd.DataFrame, plan: PlanLike, presenter: bool = False) -> None:
    """While a run is going: the headline cards so far, p50 per route, and the latency-over-time chart on
    the scale the final report will use (log when route medians differ tenfold), counts below it."""
    if df.empty:
        st.caption("Waiting for the first responses...")
        return
    metric = "total_ms"
    summary = stats.summarize(df, metric)
    speed = stats.speedup(df, "direct", ("gateway", "HIT"), metric=metric, n_boot=400)
    charts.metric_cards(report.headline(summary, speed), None, live=True)
    routes = summary.loc[summary["cache_status"] == "all"]
    if not routes.empty:
        st.caption("p50 so far: " + " · ".join(f"{r.route} {format_ms(r.p50)} ({int(r.ok)} ok)"
                                                for r in routes.itertuples()) + ".")
    log_scale = cd.wants_log_scale(summary)
    stream = bool(plan_value(plan, "stream", False))
    charts.show(charts.latency_over_time_chart(cd.latency_points(df, metric), metric, log_scale, stream),
                presenter=presenter)
    counts = cd.cache_counts(df)
    if not counts.empty and not presenter:
        charts.show(charts.cache_chart(counts))


def start_lag_notes(plan: PlanLike, summary: dict[str, Any], df: pd.DataFrame | None = None) -> None:
    """Open loop only: warn when requests started late against the request interval, naming only causes
    that apply, and say how late per route (README: lag on our side)."""
    rate = plan_value(plan, "rate")
    if rate is None:
        return
    peak = stats.max_in_flight(df) if df is not None else None
    warning = stats.start_lag_warning(summary, open_loop=True, rate=float(rate), in_flight_peak=peak)
    if warning:
        st.warning(warning, icon=":material/schedule:")
    lags = [f"{route} p50 {format_ms(r['start_lag_p50_ms'])}, p99 {format_ms(r['start_lag_p99_ms'])}"
            for route, r in summary["routes"].items() if r.get("start_lag_p99_ms") is not None]
    if lags:
        st.caption("Start lag (open loop: how long after its scheduled time each request was sent): "
                   + "; ".join(lags) + f"; {1000.0 / float(rate):,.0f} ms between requests.")


def run_notes(plan: PlanLike, df: pd.DataFrame) -> None:
    """Throttled requests apart from other errors, and whether session affinity was sent."""
    throttle = report.throttled(df)
    sentence = throttle.sentence()
    if sentence:
        st.warning(sentence, icon=":material/speed:")
    st.caption(report.session_affinity(plan))


def run_report(df: pd.DataFrame, plan: PlanLike, key: str, summary_note: str = "",
               data_key: Hashable | None = None, price: ModelPrice | None = None,
               presenter: bool = False, cost: bool = True) -> None:
    """Everything about one stored run, from its records frame and plan (a Plan or the stored dict).
    `data_key` (e.g. `RunInfo.data_key`) caches the derived numbers across reruns. `price`: the price the
    run used (its cost section and the "cache saved" card). `presenter`: the cards and charts only, large."""
    if presenter:
        metric, log_scale, kind = "total_ms", None, "ecdf"
        summary = report_numbers(df, metric, data_key)[0]
        log_scale = cd.wants_log_scale(summary)
    else:
        metric, log_scale, kind, summary = view_options(key, df, data_key)
    _, speed, json_summary, points, counts, bars = report_numbers(df, metric, data_key)
    stream = bool(plan_value(plan, "stream", False))
    charts.metric_cards(report.headline(summary, speed), None if presenter else metric)
    cost_row = presenter_view.cards_row(key=f"{presenter_view.CARDS_KEY}_{key}_cost")  # filled below
    if not presenter:
        no_hit_notice(plan, df)
        start_lag_notes(plan, json_summary, df)
        run_notes(plan, df)

    charts.show(charts.latency_over_time_chart(points, metric, log_scale, stream), presenter=presenter)
    if presenter:
        charts.show(charts.distribution_chart(df, metric, kind, log_scale, stream), presenter=True)
        if not bars.empty:
            charts.show(charts.percentile_chart(bars, metric, log_scale, stream), presenter=True)
        _cost_card(df, price, cost_row, key, show_section=False)
        return
    left, right = st.columns(2)
    with left:
        charts.show(charts.distribution_chart(df, metric, kind, log_scale, stream))
    with right:
        if counts.empty:
            st.info("No gateway requests measured yet: the cache chart counts the gateway routes.")
        else:
            charts.show(charts.cache_chart(counts))
    if not bars.empty:
        charts.show(charts.percentile_chart(bars, metric, log_scale, stream))
    if stream:  # streamed runs: TTFT, inter-token latency, TPOT and tokens/s per route (its own heading)
        token_timing_section(df)

    st.subheader("Statistics")
    st.caption(f"{report.measured_note(metric)}. Latency statistics use successful requests; `count` includes "
               f"failures. {summary_note}".strip())
    stats_table(summary)
    with st.expander("Summary as JSON (the same numbers `cfai compare --json` prints)"):
        st.json(json_summary, expanded=2)
    if cost:
        _cost_card(df, price, cost_row, key, show_section=True, model=plan_value(plan, "model"))
    st.subheader("Records")
    records_table(df, key=f"{key}_records")


def _cost_card(df: pd.DataFrame, price: ModelPrice | None, row: Any, key: str, *, show_section: bool,
               model: str | None = None) -> None:
    """The cost section (unless `show_section` is off) and the "cache saved" card on the cards' second row,
    so it never squeezes the four headline cards at 1024 px."""
    if show_section:
        saving = run_cost_section(df, price, key=f"{key}_cost", model=model)
    else:
        from cfai.cost import cache_saving

        saving = cache_saving(df, price) if price is not None and price.has_token_price else None
    cost_headline(saving, no_saving_reason(df, price), container=row)

"""History: stored comparison runs. Overlay several, open one (report, gateway logs), rename, delete,
export and import.

Stays fast with big runs: records and derived data are cached per run data key (components.run_store),
only the open tab is drawn, and the user's place (selected runs, open run, tab) survives rename, delete and
import (messages go to a toast, so nothing above the run moves).
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from cfai import chart_data as cd
from cfai import report
from cfai.diagnose import overlay_mismatch
from cfai.format import MISSING
from cfai.run_import import RunImportError
from cfai.run_logs import fetch_run_logs
from cfai.safe_markdown import escape_markdown, safe_markdown
from cfai.store import RunInfo, StoreError
from cfai.sweep import sweep_from_stored_plan
from components import compare_charts as charts
from components.app_shell import require_app_shell
from components.connection import get_client, get_connection
from components.cost_view import cost_columns, cost_stats_table, stored_price
from components.run_report import METRIC_OPTIONS, log_scale_toggle, run_report, stats_table
from components.run_store import history_store, overlay_data, run_records, store_notice
from components.sweep_view import sweep_report

require_app_shell()

LOGS_KEY = "hist_logs"  # run_id -> ServerView, so a rerun does not query the logs API again
FLASH_KEY = "hist_flash"
LOG_TABLE_COLUMNS = ["seq", "route", "id", "created_at", "cached", "client_cache_status", "duration",
                     "client_total_ms", "status_code", "success", "tokens_in", "tokens_out"]
TABS = ("Report", "Server-side view", "Manage")

st.title("History")
store, notice = history_store()
store_notice(notice)
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.toast(flash, icon=":material/check_circle:")
if store is None:
    st.stop()
writable = not store.read_only
try:
    runs = store.list_runs()
except StoreError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
labels = {row.run_id: (f"{row.name} · {row.run_id}" if row.name else row.run_id)
          for row in runs[["run_id", "name"]].itertuples()}


def run_label(run_id: str) -> str:
    return labels.get(run_id, run_id)


def import_panel() -> None:
    with st.expander("Import a run", icon=":material/upload:", expanded=runs.empty):
        upload = st.file_uploader("Run export (JSON or CSV from this app)", type=["json", "csv"],
                                  key="hist_import_file", disabled=not writable)
        if upload is not None and st.button("Import", key="hist_import", icon=":material/upload:",
                                            disabled=not writable):
            fmt = "csv" if upload.name.lower().endswith(".csv") else "json"
            # The problems quote values from the file, which anybody may have written: no image in them may
            # load from its host when the error is shown (cfai.safe_markdown).
            file_name = safe_markdown(upload.name)
            try:
                run_id = store.import_run(upload.getvalue(), fmt)
            except RunImportError as exc:
                lines = "\n".join(f"- {safe_markdown(p)}" for p in exc.problems)
                st.error(f"Could not import {file_name}: nothing was stored.\n\n{lines}", icon=":material/error:")
            except StoreError as exc:
                st.error(f"Could not import {file_name}: {safe_markdown(str(exc))}", icon=":material/error:")
            else:
                st.session_state[FLASH_KEY] = f"Imported {file_name} as run {run_id}."
                st.session_state["hist_open"] = run_id
                st.rerun()


if runs.empty:
    st.info("No stored runs yet. Run a comparison on **Compare routes**, or import an export below.",
            icon=":material/info:")
    import_panel()
    st.stop()

table = runs.assign(created_at=runs["created_at"].dt.tz_convert(None))
st.dataframe(table[["name", "run_id", "created_at", "model", "routes", "n", "records", "status",
                    "connection_label"]],
             hide_index=True, width="stretch", height=min(38 + 35 * len(runs), 260),
             column_config={"created_at": st.column_config.DatetimeColumn("started (UTC)",
                                                                          format="YYYY-MM-DD HH:mm:ss")})
import_panel()
all_ids = list(runs["run_id"])
infos: dict[str, RunInfo] = {}


def info_of(run_id: str) -> RunInfo:
    if run_id not in infos:
        infos[run_id] = store.run_info(run_id)
    return infos[run_id]


# --- overlay ---------------------------------------------------------------------------------------------
st.subheader("Overlay runs")
chosen = [r for r in st.session_state.get("hist_overlay", all_ids[:2]) if r in all_ids]
st.session_state["hist_overlay"] = chosen
selected = st.multiselect("Runs", all_ids, key="hist_overlay", format_func=run_label,
                          help="e.g. this morning vs after a cache TTL change.")
if selected:
    c1, c2 = st.columns([2, 1])
    metric = c1.segmented_control("Metric", list(METRIC_OPTIONS), format_func=METRIC_OPTIONS.get,
                                  default="total_ms", required=True, key="hist_metric") or "total_ms"
    chosen_infos = [info_of(r) for r in selected]
    summary, curve, bars = overlay_data(store, chosen_infos, metric)
    summary = summary.assign(run=summary["run_id"].map(run_label))
    log_scale = log_scale_toggle(c2, "hist_log", cd.wants_log_scale(summary), tuple(selected))
    plans = {run_label(i.run_id): i.plan for i in chosen_infos}
    streams = {plan.stream for plan in plans.values()}
    stream = streams.pop() if len(streams) == 1 else None  # None: TTFB means headers for some, tokens for others
    mismatch = overlay_mismatch(plans)
    if mismatch:
        st.info(mismatch, icon=":material/compare_arrows:")
    if curve.empty:
        st.info("The selected runs have no successful measured requests to plot.")
    else:
        charts.show(charts.overlay_ecdf_chart(curve.assign(run=curve["run_id"].map(run_label)), metric,
                                              log_scale, stream))
        charts.show(charts.overlay_percentile_chart(bars.assign(run=bars["run_id"].map(run_label)), metric,
                                                    log_scale, stream))
    st.caption(f"Statistics per run. {report.measured_note(metric)}.")
    stats_table(summary.assign(group=summary["run"] + " — " + summary["group"]))
    # Cost per run and route, each run at the price stored with it (None: no price listed).
    costed = [cost_columns(summary.loc[summary["run_id"] == i.run_id], run_records(store, i),
                           stored_price(i.plan.price)) for i in chosen_infos]
    cost_summary = report.distinct_stat_rows(pd.concat(costed, ignore_index=True))
    cost_stats_table(cost_summary)

# --- one run ---------------------------------------------------------------------------------------------
st.divider()
st.subheader("Open a run")
if "hist_open_next" in st.session_state:  # set by a delete, before this widget exists in the next run
    st.session_state["hist_open"] = st.session_state.pop("hist_open_next")
if st.session_state.get("hist_open") not in all_ids:
    st.session_state["hist_open"] = all_ids[0]
run_id = st.selectbox("Run", all_ids, key="hist_open", format_func=run_label)
meta = info_of(run_id)
st.caption(f"`{run_id}` · {escape_markdown(meta.model)} · {escape_markdown(meta.connection_label)} · "  # imported text
           f"{meta.record_count:,} records · {meta.status}")
report_tab, logs_tab, manage_tab = st.tabs(TABS, key="hist_tab", on_change="rerun")


def server_side_view() -> None:
    st.caption("The gateway's own log of this run's requests (logs API), matched by the cf-aig-log-id each "
               "response carried. `duration` is measured by the gateway; `client_total_ms` by this app.")
    current = get_connection()
    if (meta.mode, meta.account_id) != (current.mode, current.account_id):
        st.warning("This run was made on another connection than the current one; the logs are read from the "
                   "current connection.", icon=":material/warning:")
    gateway_id = meta.gateway_id
    if not gateway_id:
        st.info("This run did not go through a gateway: there are no gateway logs for it.")
        return
    views = st.session_state.setdefault(LOGS_KEY, {})
    if st.button("Load gateway logs", key="hist_load_logs", icon=":material/receipt_long:"):
        with st.spinner("Reading the gateway logs..."):
            views[run_id] = fetch_run_logs(get_client(), run_records(store, meta), gateway_id=gateway_id,
                                           started_at=meta.created_at, finished_at=meta.finished_at)
    view = views.get(run_id)
    if view is None:
        return
    if view.unavailable:  # Legacy Logs only: not an error of the run, nothing to fix here
        st.info(escape_markdown(view.unavailable), icon=":material/info:")
        return
    if view.error:
        st.error(f"The logs API answered with an error: {escape_markdown(view.error)}", icon=":material/error:")
    st.markdown(f"Found **{view.found}** of **{view.wanted}** logged requests of gateway `{gateway_id}` "
                f"({view.pages} page(s) read).")
    if view.missing:
        st.caption(f"{len(view.missing)} not found: logs expire, and requests sent with "
                   "cf-aig-collect-log: false are not logged.")
    if view.found:
        logs = view.logs
        st.dataframe(logs[[c for c in LOG_TABLE_COLUMNS if c in logs]], hide_index=True, width="stretch",
                     placeholder=MISSING,
                     column_config={"duration": st.column_config.NumberColumn("duration (ms, gateway)"),
                                    "client_total_ms": st.column_config.NumberColumn("total (ms, client)",
                                                                                     format="%.1f")})


def act(action: str, fn: partial, done: str) -> None:
    """A write to the history: a toast when it worked, the store's own message (file, what to do) if not."""
    try:
        fn()
    except StoreError as exc:
        st.error(f"Could not {action}: {exc}", icon=":material/error:")
        return
    st.session_state[FLASH_KEY] = done
    st.rerun()


def next_run_after_delete(deleted: str) -> str | None:
    """The run below the deleted one in the list (or above it when it was the last), not the first."""
    rest = [r for r in all_ids if r != deleted]
    if not rest:
        return None
    return rest[min(all_ids.index(deleted), len(rest) - 1)]


def manage() -> None:
    if not writable:
        st.caption("The history is read-only: rename and delete are off. Exports still work.")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    new_name = c1.text_input("Name", value=meta.name, key=f"hist_name_{run_id}", disabled=not writable)
    if c2.button("Rename", key="hist_rename", icon=":material/edit:", width="stretch", disabled=not writable):
        act("rename the run", partial(store.rename_run, run_id, new_name),
            f"Renamed run {run_id} to {new_name.strip() or '(no name)'}.")
    c1, c2, _ = st.columns([1, 1, 2])
    # Callables: the export is built when the button is pressed, not on every rerun.
    c1.download_button("Export CSV", partial(store.export_run, run_id, "csv"), file_name=f"cfai-run-{run_id}.csv",
                       mime="text/csv", key="hist_export_csv", icon=":material/download:", width="stretch")
    c2.download_button("Export JSON", partial(store.export_run, run_id, "json"), file_name=f"cfai-run-{run_id}.json",
                       mime="application/json", key="hist_export_json", icon=":material/download:",
                       width="stretch")
    st.caption("Exports hold the plan and every record; never the API token.")
    sure = st.checkbox("I want to delete this run", key=f"hist_delete_sure_{run_id}", disabled=not writable)
    if st.button("Delete run", key="hist_delete", icon=":material/delete:", disabled=not (sure and writable),
                 type="primary"):
        following = next_run_after_delete(run_id)
        try:
            store.delete_run(run_id)
        except StoreError as exc:
            st.error(f"Could not delete the run: {exc}", icon=":material/error:")
            return
        st.session_state.get(LOGS_KEY, {}).pop(run_id, None)
        st.session_state[FLASH_KEY] = f"Deleted run {run_id}."
        if following is not None:
            st.session_state["hist_open_next"] = following
        st.rerun()


if report_tab.open:
    with report_tab:
        records = run_records(store, meta)
        if records.empty:
            st.info("This run has no records.")
        else:
            sweep = sweep_from_stored_plan(meta.plan)
            if sweep is not None:  # a load sweep: per-step curves, each step openable as a run
                sweep_report(records, sweep, key="hist_sweep")
            else:
                run_report(records, meta.plan, key="hist_report", data_key=(str(store.path), *meta.data_key),
                           price=stored_price(meta.plan.price))
if logs_tab.open:
    with logs_tab:
        server_side_view()
if manage_tab.open:
    with manage_tab:
        manage()

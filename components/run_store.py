"""The run history store shared by the Compare and History pages, and the cached data derived from it.

One `Store` per database file and server process. When the history cannot be opened the pages still open:
`history_store()` gives None and says why (read-only histories open with a notice). Records and the data
derived from them are cached per run *data key* (run id, revision, record count, status: see
`cfai.store.RunInfo.data_key`), so a rerun of a page with a 100,000-record run reads nothing again, and a
rename (which changes no record) recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from cfai import chart_data as cd
from cfai import stats
from cfai.live_run import LiveRun
from cfai.store import RunInfo, Store, StoredRun, StoreError, StoreUnavailable, default_db_path, open_store


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> Store:
    return open_store(path)  # raises StoreUnavailable: not cached, so the next rerun tries again


def history_store() -> tuple[Store | None, str | None]:
    """The store at $CFAI_DATA_DIR (or the user data dir) and a notice for the user: why history is disabled
    (store None) or read-only; no notice when all is well."""
    path = str(default_db_path())
    try:
        store = _store_at(path)
    except StoreUnavailable as exc:
        return None, f"{exc} Until then, history is off: runs are kept in memory for this session only."
    if store.read_only:
        return store, (f"The history at {store.path} is open read-only: its folder cannot be written. Stored "
                       f"runs can be viewed and exported; new runs, imports, renames and deletions are not "
                       f"stored. Make {store.path.parent} writable (or set CFAI_DATA_DIR) and restart the app.")
    return store, None


def get_store() -> Store | None:
    """The history store, or None when it cannot be opened (see `history_store` for why)."""
    return history_store()[0]


def store_notice(notice: str | None) -> None:
    if notice:
        st.warning(notice, icon=":material/database:")


# --- cached reads ---------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=6, show_spinner=False)
def _records(path: str, data_key: tuple, _store: Store) -> pd.DataFrame:
    return _store.load_records(data_key[0])


def run_records(store: Store, info: RunInfo) -> pd.DataFrame:
    """The run's records, read once per data key. Shared between reruns and sessions: do not modify it
    (derive with .assign / .loc)."""
    return _records(str(store.path), info.data_key, store)


@st.cache_data(max_entries=16, show_spinner=False)
def _overlay(path: str, data_keys: tuple[tuple, ...], metric: str, _frames: pd.DataFrame
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    summaries = [stats.summarize(_frames[_frames["run_id"] == key[0]], metric).assign(run_id=key[0])
                 for key in data_keys]
    summary = pd.concat(summaries, ignore_index=True)
    curve = cd.ecdf(_frames, metric, by=("run_id", "route"))
    bars = cd.percentile_bars(_frames, summary, metric, by=("run_id", "route"))
    return summary, curve, bars


def overlay_data(store: Store, infos: Sequence[RunInfo], metric: str
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Statistics per run (column run_id), ECDF points and percentile bars of several runs, cached on what
    they derive from: the runs' data keys and the metric."""
    keys = tuple(info.data_key for info in infos)
    frames = pd.concat([run_records(store, info) for info in infos], ignore_index=True)
    return _overlay(str(store.path), keys, metric, frames)


# --- a run the store could not take (Compare) -----------------------------------------------------------------
def run_for_display(store: Store | None, live: LiveRun | None, run_id: str) -> StoredRun | None:
    """The run as stored, or, when the store does not have it (history off, writes failed), the live run's
    own copy in memory. None when neither has it."""
    if store is not None:
        try:
            info = store.run_info(run_id)
        except StoreError:
            info = None
        else:
            if live is None or live.run_id != run_id or not live.unsaved:
                return StoredRun(**{k: getattr(info, k) for k in RunInfo.__dataclass_fields__},
                                 records=run_records(store, info))
    if live is not None and live.run_id == run_id:
        return live.as_stored_run()
    return None


def unsaved_run_panel(live: LiveRun | None, store: Store | None, key: str = "unsaved") -> None:
    """When a run's records did not all reach the history: say why, offer the run as a file, and a retry."""
    if live is None or live.running or not live.unsaved:
        return
    st.warning(f"This run is not (fully) stored: {live.store_error} Its {live.done_count():,} records are kept "
               "in memory for this session; export them, or store them once the history works again.",
               icon=":material/save:")
    c1, c2, c3, _ = st.columns([1, 1, 1, 2])
    c1.download_button("Export CSV", lambda: live.export("csv"), file_name=f"cfai-run-{live.run_id}.csv",
                       mime="text/csv", key=f"{key}_csv", icon=":material/download:", width="stretch")
    c2.download_button("Export JSON", lambda: live.export("json"), file_name=f"cfai-run-{live.run_id}.json",
                       mime="application/json", key=f"{key}_json", icon=":material/download:", width="stretch")
    if c3.button("Store it now", key=f"{key}_retry", icon=":material/refresh:", width="stretch",
                 disabled=store is None or store.read_only):
        if store is not None and live.store_now(store):
            st.toast(f"Stored run {live.run_id}.", icon=":material/check_circle:")
            st.rerun()
        st.error(f"Still not stored: {live.store_error}", icon=":material/error:")

"""The run history store shared by the Compare and History pages: one `Store` per database file."""

from __future__ import annotations

import streamlit as st

from cfai.store import Store, default_db_path


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The store at $CFAI_DATA_DIR (or the user data dir), opened once per server process and path."""
    return _store_at(str(default_db_path()))

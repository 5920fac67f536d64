"""A page with the sweep panel against the emulator at CFAI_EMULATOR_URL, history under CFAI_DATA_DIR.

Used by AppTest (tests/test_sweep_view.py) and, under `streamlit run`, by the browser test that takes the
README's screenshot (tests/test_e2e_sweep.py). `sweep_base` in session state overrides the base plan."""

import os
from pathlib import Path

import streamlit as st

from cfai.client import Client
from cfai.config import local_connection
from cfai.plan import Plan
from cfai.store import Store
from components.sweep_view import sweep_panel

st.set_page_config(page_title="Load sweep", layout="wide")


@st.cache_resource
def _client(url: str) -> Client:
    return Client(local_connection(url))


@st.cache_resource
def _store(path: str) -> Store:
    return Store(path)


client = _client(os.environ["CFAI_EMULATOR_URL"])
store = _store(str(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3"))
base = st.session_state.get("sweep_base") or Plan(
    model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "Size this workload.", "max_tokens": 16},
    routes=("direct", "gateway"), warmup=1, cache_mode="unique", name="load sweep")
st.title("Load sweep")
sweep_panel(client, base, store, key="sweep")

"""Classification tester: is a hosted classifier good enough on *your* texts? One text, or a labelled batch
with accuracy, a confusion matrix and the accuracy/coverage trade-off."""

import streamlit as st

from cfai.catalog import DEFAULT_CLASSIFICATION_MODEL, TEXT_CLASSIFICATION
from cfai.classify import BatchJob
from cfai.pricing import ModelPrice
from components.app_shell import require_app_shell
from components.classify_batch import JOB_KEY, batch_progress, batch_settings, start_batch
from components.classify_input import batch_input
from components.classify_results import results_section
from components.classify_single import single_text_panel
from components.classify_state import remember_settings, restore_settings
from components.connection import connection_ready, get_client, get_connection
from components.model_picker import catalogue, model_picker
from components.route_options import route_options

require_app_shell()
restore_settings()  # before any widget: the settings chosen before a visit to another page


def list_price(model: str) -> ModelPrice | None:
    info = catalogue(TEXT_CLASSIFICATION).get(model)
    return info.price if info is not None else None


st.title("Classify")
st.caption("Check a text classifier on your own texts before wiring it into a product: try one text, then "
           "a labelled batch for accuracy, per-label precision/recall and a confusion matrix.")

client = get_client()
ready = connection_ready()
left, right = st.columns([3, 2])
with left:
    model = model_picker(TEXT_CLASSIFICATION, key="classify_model", default=DEFAULT_CLASSIFICATION_MODEL)
with right:
    route, gateway = route_options("classify")

# Tracked tabs: only the open one runs, so typing a single text does not redraw a 100,000-row batch.
single_tab, batch_tab = st.tabs(["Single text", "Batch"], key="classify_tab", on_change="rerun")
if single_tab.open:
    with single_tab:
        single_text_panel(client, model, route, gateway, disabled=not ready)

if batch_tab.open:
    with batch_tab:
        batch = batch_input()
        settings, headers_for = batch_settings(model, route, gateway, get_connection().is_local)
        job: BatchJob | None = st.session_state.get(JOB_KEY)
        running = job is not None and job.running
        label = f"Classify {len(batch):,} rows" if batch is not None and len(batch) else "Classify"
        if st.button(label, key="classify_run", type="primary", icon=":material/play_arrow:",
                     disabled=batch is None or len(batch) == 0 or running or not model or not ready) and batch:
            start_batch(client, batch, settings, headers_for)
        job = st.session_state.get(JOB_KEY)
        if job is not None:
            batch_progress(job)
            if not job.running:
                results_section(client, job, list_price)

remember_settings()

"""The lab pieces where users meet them: a load sweep from the Compare page, stored as one run that History
opens as a sweep, and token timing in the report of a streamed comparison. AppTest against the session
emulator."""

from __future__ import annotations

import os
from pathlib import Path

from cfai.store import Store
from cfai.sweep import sweep_from_stored_plan


def _store() -> Store:
    return Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")


def test_a_sweep_from_the_compare_page_lands_in_history_as_a_sweep(app):
    at = app.switch_page("pages/compare.py").run()
    at.segmented_control(key="cmp_mode").set_value("Load sweep").run()
    assert not at.exception, at.exception
    assert at.button(key="cmp_sweep_run") is not None
    at.multiselect(key="cmp_routes").set_value(["direct", "gateway"]).run()
    at.text_input(key="cmp_sweep_loads_concurrency").set_value("1, 2, 4").run()
    at.number_input(key="cmp_sweep_count").set_value(4).run()
    at.button(key="cmp_sweep_run").click().run()
    assert not at.exception, at.exception
    live = at.session_state["cmp_sweep_live"]
    assert live.wait(60), "the sweep did not finish"
    at.run()
    assert not at.exception, at.exception
    joined = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "Latency against load, per route" in joined

    with _store() as store:
        info = store.run_info(live.run_id)
        sweep = sweep_from_stored_plan(info.plan)
    assert sweep is not None and sweep.concurrencies == (1, 2, 4)

    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    joined = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "Latency against load, per route" in joined  # opened as a sweep, not as one flat run
    assert at.selectbox(key="hist_sweep_step") is not None


def test_a_streamed_comparison_reports_token_timing_per_route(app):
    at = app.switch_page("pages/compare.py").run()
    at.number_input(key="cmp_n").set_value(3)
    at.multiselect(key="cmp_routes").set_value(["direct", "gateway"])
    at.toggle(key="cmp_stream").set_value(True).run()
    at.button(key="cmp_run").click().run()
    live = at.session_state["compare_active"]
    assert live.wait(60), "the comparison did not finish"
    at.run()
    assert not at.exception, at.exception
    assert any(h.value == "Token timing (streamed requests)" for h in at.subheader)
    frame = live.frame()
    measured = frame.loc[~frame["warmup"] & frame["ok"]]
    assert measured["itl_p50_ms"].notna().any() and measured["tpot_ms"].notna().any()
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "inter-token" in text.lower()

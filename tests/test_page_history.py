"""The History page under AppTest: overlay, open, server-side view, rename, delete, export and import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cfai.compare import Plan, Record, Runner, RunResult
from cfai.stats import route_summary
from cfai.store import Store

MODEL = "@cf/huggingface/distilbert-sst-2-int8"  # the fastest emulated model: keeps the runs short


def _store() -> Store:
    return Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")


@pytest.fixture
def two_runs(app, client) -> list[str]:
    """Two small stored runs (the second with cache mode 'unique', so it never hits), newest first."""
    store = _store()
    ids = []
    for name, mode in (("morning", "identical"), ("after the change", "unique")):
        plan = Plan(model=MODEL, body={"text": "A fine day."}, n=3, warmup=1, cache_mode=mode, name=name)
        result = Runner(client, plan).run()
        store.save_run(result)
        ids.append(result.run_id)
    store.close()
    return list(reversed(ids))


def _open_history(app):
    app.switch_page("pages/history.py").run()
    assert not app.exception, app.exception
    return app


def _specs(app) -> str:
    return " ".join(c.proto.spec for c in app.get("vega_lite_chart"))


def test_empty_history_says_how_to_fill_it(app):
    at = _open_history(app)
    assert any("No stored runs yet" in i.value for i in at.info)
    assert at.get("file_uploader")


def test_overlay_and_report_of_stored_runs(app, two_runs):
    at = _open_history(app)
    assert sorted(at.multiselect(key="hist_overlay").value) == sorted(two_runs)
    specs = _specs(at)
    assert "runs overlaid" in specs and "by run" in specs
    # The opened run (newest: the 'unique' one) gets the full report and the never-hit diagnosis.
    assert at.selectbox(key="hist_open").value == two_runs[0]
    assert [m.label for m in at.metric][:4][-1] == "Gateway hit rate"
    assert any("never answered from its cache" in w.value for w in at.warning)
    assert any("Cache mode 'unique'" in w.value for w in at.warning)


def test_report_numbers_equal_the_clis(app, two_runs):
    at = _open_history(app)
    at.selectbox(key="hist_open").set_value(two_runs[1]).run()
    expected = route_summary(_store().load_records(two_runs[1]))
    assert json.loads(at.json[0].value) == json.loads(json.dumps(expected))
    assert expected["routes"]["gateway"]["hit_rate"] == 1.0
    assert not any("never answered" in w.value for w in at.warning)


def test_server_side_view_finds_the_runs_gateway_logs(app, two_runs):
    at = _open_history(app)
    at.button(key="hist_load_logs").click().run()
    assert not at.exception, at.exception
    found = [m.value for m in at.markdown if m.value.startswith("Found")]
    assert found == ["Found **4** of **4** logged requests of gateway `demo` (1 page(s) read)."]
    logs = at.dataframe[-1].value
    assert len(logs) == 4 and set(logs["route"]) == {"gateway"}
    assert not logs["cached"].any()  # 'unique' run: every request went to the model


def test_rename_and_delete(app, two_runs):
    at = _open_history(app)
    at.text_input(key=f"hist_name_{two_runs[0]}").set_value("renamed run").run()
    at.button(key="hist_rename").click().run()
    assert _store().get_run(two_runs[0])["name"] == "renamed run"
    assert any("Renamed" in s.value for s in at.success)
    assert at.button(key="hist_delete").disabled  # not without the confirmation
    at.checkbox(key=f"hist_delete_sure_{two_runs[0]}").check().run()
    at.button(key="hist_delete").click().run()
    assert list(_store().list_runs()["run_id"]) == [two_runs[1]]
    assert at.selectbox(key="hist_open").value == two_runs[1]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips(app, two_runs, fmt):
    store = _store()
    exported = store.export_run(two_runs[1], fmt)
    store.delete_run(two_runs[1])
    at = _open_history(app)
    at.file_uploader(key="hist_import_file").set_value((f"run.{fmt}", exported, "text/plain")).run()
    at.button(key="hist_import").click().run()
    assert not at.exception, at.exception
    assert any("Imported" in s.value for s in at.success)
    assert set(_store().list_runs()["run_id"]) == set(two_runs)
    assert at.selectbox(key="hist_open").value == two_runs[1]


def test_import_rejects_a_foreign_file(app, two_runs):
    at = _open_history(app)
    at.file_uploader(key="hist_import_file").set_value(("x.json", b'{"hello": 1}', "application/json")).run()
    at.button(key="hist_import").click().run()
    assert any("Could not import x.json" in e.value for e in at.error)


def test_a_broken_import_shows_why_and_stores_nothing(app, two_runs):
    store = _store()
    doc = json.loads(store.export_run(two_runs[1], "json"))
    store.close()
    del doc["records"][2]["seq"]
    doc["run"]["run_id"] = "broken-run"
    at = _open_history(app)
    at.file_uploader(key="hist_import_file").set_value(("bad.json", json.dumps(doc).encode(), "text/plain")).run()
    at.button(key="hist_import").click().run()
    assert not at.exception, at.exception
    assert any("Could not import bad.json" in e.value and "Record 3 has no seq" in e.value for e in at.error)
    assert "broken-run" not in set(_store().list_runs()["run_id"])


def _synthetic_run(run_id: str, plan: Plan, started_at: float, lag_s: float = 0.0) -> RunResult:
    """Direct ~4,000 ms and gateway hits ~2 ms (400x apart); open-loop starts `lag_s` late."""
    records = []
    for seq in range(12):
        route = ("direct", "gateway")[seq % 2]
        records.append(Record(
            run_id=run_id, seq=seq, route=route, warmup=False, intended_start_s=seq * 0.2,
            actual_start_s=seq * 0.2 + lag_s, status=200, ok=True,
            cache_status="HIT" if route == "gateway" else None,
            ttfb_ms=1.0 if route == "gateway" else 900.0 + seq, total_ms=2.0 if route == "gateway" else 4000.0 + seq,
        ))
    return RunResult(run_id=run_id, plan=plan, started_at=started_at, finished_at=started_at + 5, records=records,
                     cancelled=False, connection_label="local · account local · gateway demo")


@pytest.fixture
def far_apart_runs(app) -> None:
    """A streamed open-loop text-generation run that fell behind its rate (newest), and a classification run."""
    store = _store()
    late = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"}, n=6, warmup=0, rate=5.0,
                stream=True, name="late open loop")
    other = Plan(model=MODEL, body={"text": "A fine day."}, n=6, warmup=0, name="classifier")
    store.save_run(_synthetic_run("run-other", other, 1_700_000_000.0))
    store.save_run(_synthetic_run("run-late", late, 1_700_000_100.0, lag_s=0.05))
    store.close()


def test_far_apart_medians_start_on_a_log_scale(app, far_apart_runs):
    at = _open_history(app)
    assert at.toggle(key="hist_log").value is True  # overlay: 4,000 ms next to 2 ms
    assert at.toggle(key="hist_report_log").value is True  # the opened run's report
    assert '"log"' in _specs(at)
    at.toggle(key="hist_report_log").set_value(False).run()  # the user's choice sticks for this run
    assert at.toggle(key="hist_report_log").value is False


def test_overlay_of_different_models_says_so(app, far_apart_runs):
    at = _open_history(app)
    notes = " ".join(i.value for i in at.info)
    assert "differ in model" in notes and "request kind" in notes and "text classification" in notes


def test_late_open_loop_warns_and_tables_show_blanks(app, far_apart_runs):
    at = _open_history(app)
    assert at.selectbox(key="hist_open").value == "run-late"
    warnings = " ".join(w.value for w in at.warning)
    assert "started up to 50 ms late" in warnings and "could not keep the rate" in warnings
    assert any("Start lag (open loop" in c.value for c in at.caption)
    assert all(d.proto.placeholder == "–" for d in at.dataframe[1:])  # stats and records: no "None"
    at.segmented_control(key="hist_report_metric").set_value("ttfb_ms").run()
    specs = " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("vega_lite_chart"))
    assert "request sent → first token" in specs and "→ headers" not in specs  # streamed: TTFB = first token

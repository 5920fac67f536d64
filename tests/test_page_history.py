"""The History page under AppTest: overlay, open, server-side view, rename, delete, export and import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cfai.compare import Plan, Record, Runner, RunResult
from cfai.stats import route_summary
from cfai.store import Store
from tests.bad_exports import JSON_CASES, bad_json

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
    # The opened run (newest: the 'unique' one) gets the full report, where no hits is expected.
    assert at.selectbox(key="hist_open").value == two_runs[0]
    assert [m.label for m in at.metric][:4][-1] == "Gateway hit rate"
    assert not any("never answered from its cache" in w.value for w in at.warning)
    assert any("no hits is the expected result" in i.value for i in at.info)
    # Overlays carry cost columns, each run at its own price.
    assert any("p50 / request" in d.value.columns for d in at.dataframe)


def test_report_numbers_equal_the_clis(app, two_runs):
    at = _open_history(app)
    at.selectbox(key="hist_open").set_value(two_runs[1]).run()
    expected = route_summary(_store().load_records(two_runs[1]))
    assert json.loads(at.json[0].value) == json.loads(json.dumps(expected))
    assert expected["routes"]["gateway"]["hit_rate"] == 1.0
    assert not any("never answered" in w.value for w in at.warning)


def _open_tab(at, label: str):
    at.session_state["hist_tab"] = label
    at.run()
    assert not at.exception, at.exception
    return at


def test_server_side_view_finds_the_runs_gateway_logs(app, two_runs):
    at = _open_tab(_open_history(app), "Server-side view")
    at.button(key="hist_load_logs").click().run()
    assert not at.exception, at.exception
    found = [m.value for m in at.markdown if m.value.startswith("Found")]
    assert found == ["Found **4** of **4** logged requests of gateway `demo` (1 page(s) read)."]
    logs = at.dataframe[-1].value
    assert len(logs) == 4 and set(logs["route"]) == {"gateway"}
    assert not logs["cached"].any()  # 'unique' run: every request went to the model


def test_rename_and_delete_keep_the_users_place(app, two_runs):
    at = _open_history(app)
    # Only the open tab is drawn: the report (two overlay charts + its four), not Manage's widgets.
    assert not [t for t in at.text_input if t.key.startswith("hist_name_")]
    assert len(at.get("vega_lite_chart")) == 6
    at.selectbox(key="hist_open").set_value(two_runs[1]).run()
    at = _open_tab(at, "Manage")
    assert len(at.get("vega_lite_chart")) == 2  # the overlay's; the report is not computed at all
    at.text_input(key=f"hist_name_{two_runs[1]}").set_value("renamed run").run()
    at.button(key="hist_rename").click().run()
    assert not at.exception, at.exception
    assert _store().run_info(two_runs[1]).name == "renamed run"
    assert any("Renamed" in t.value for t in at.toast)  # a toast: nothing above the run moves
    # The place is kept: same run, same tab, same overlay.
    assert at.selectbox(key="hist_open").value == two_runs[1]
    assert at.session_state["hist_tab"] == "Manage" and at.button(key="hist_delete")
    assert sorted(at.multiselect(key="hist_overlay").value) == sorted(two_runs)
    assert at.button(key="hist_delete").disabled  # not without the confirmation
    at.checkbox(key=f"hist_delete_sure_{two_runs[1]}").check().run()
    at.button(key="hist_delete").click().run()
    assert not at.exception, at.exception
    assert list(_store().list_runs()["run_id"]) == [two_runs[0]]
    assert at.selectbox(key="hist_open").value == two_runs[0]
    assert at.session_state["hist_tab"] == "Manage"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips(app, two_runs, fmt):
    store = _store()
    exported = store.export_run(two_runs[1], fmt)
    store.delete_run(two_runs[1])
    at = _open_history(app)
    at.file_uploader(key="hist_import_file").set_value((f"run.{fmt}", exported, "text/plain")).run()
    at.button(key="hist_import").click().run()
    assert not at.exception, at.exception
    assert any("Imported" in t.value for t in at.toast)
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
    assert any("Could not import bad.json" in e.value and "record 3, seq: missing" in e.value for e in at.error)
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
    store.save_run(_synthetic_run("run-late", late, 1_700_000_100.0, lag_s=0.15))
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
    # 150 ms late against 200 ms between requests (5/s): over half the interval, so it warns.
    assert "started up to 150 ms late" in warnings and "could not keep the rate" in warnings
    assert "200 ms between requests" in warnings
    assert any("Start lag (open loop" in c.value for c in at.caption)
    numeric = [d for d in at.dataframe[1:] if {"p50", "seq"} & set(d.value.columns)]  # stats and records
    assert len(numeric) >= 3 and all(d.proto.placeholder == "–" for d in numeric)  # no "None"
    at.segmented_control(key="hist_report_metric").set_value("ttfb_ms").run()
    specs = " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("vega_lite_chart"))
    assert "request sent → first token" in specs and "→ headers" not in specs  # streamed: TTFB = first token


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_every_malformed_export_gets_a_message_not_a_traceback(app, two_runs, change, message):
    store = _store()
    doc = json.loads(store.export_run(two_runs[1], "json"))
    store.close()
    doc["run"]["run_id"] = "broken-run"
    at = _open_history(app)
    at.file_uploader(key="hist_import_file").set_value(("bad.json", bad_json(doc, change), "text/plain")).run()
    at.button(key="hist_import").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("Could not import bad.json: nothing was stored." in e and message in e for e in errors), errors
    assert len(_store().list_runs()) == 2


def test_a_corrupt_history_file_leaves_the_pages_open(app):
    path = Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"garbage, not SQLite " * 200)
    at = _open_history(app)
    notes = " ".join(w.value for w in at.warning)
    assert str(path) in notes and "Move it aside" in notes and "history is off" in notes
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert any(str(path) in w.value for w in at.warning)


def test_a_read_only_history_is_shown_with_writes_off(app, two_runs, monkeypatch):
    """The tests run as root (no folder is read-only to root): the store is opened read-only as open_store
    does when SQLite refuses to write."""
    import components.run_store as run_store

    monkeypatch.setattr(run_store, "open_store", lambda path: Store(path, read_only=True))
    run_store._store_at.clear()
    at = _open_history(app)
    assert any("open read-only" in w.value for w in at.warning)
    assert at.file_uploader(key="hist_import_file").proto.disabled
    assert at.selectbox(key="hist_open").value == two_runs[0] and at.get("vega_lite_chart")
    at = _open_tab(at, "Manage")
    assert at.button(key="hist_rename").disabled and at.button(key="hist_delete").disabled
    run_store._store_at.clear()


def test_the_gateway_id_is_a_field_not_read_from_the_label(app):
    """A gateway id the old label regex could not read (it took the label's last word)."""
    store = _store()
    plan = Plan(model=MODEL, body={"text": "x"}, n=1, warmup=0, name="renamed gw")
    store.begin_run("run-gw", plan, connection_label="local · account local · gateway demo · extra")
    store.add_records("run-gw", [Record(run_id="run-gw", seq=0, route="gateway", warmup=False,
                                        intended_start_s=0.0, actual_start_s=0.0, status=200, ok=True,
                                        total_ms=1.0, cache_status="MISS")])
    store.finish_run("run-gw")
    assert store.run_info("run-gw").gateway_id == "demo"
    store.close()
    at = _open_tab(_open_history(app), "Server-side view")
    assert at.button(key="hist_load_logs")


LEAK = "![x](http://127.0.0.1:9/leak.png?q=secret)"


def test_text_from_an_imported_file_never_loads_a_remote_image(app, two_runs):
    """An export anybody may have written: its values are quoted in the import's error messages and its
    connection label in the open run's caption; neither may carry a Markdown image (the browser would fetch it)."""
    store = _store()
    doc = json.loads(store.export_run(two_runs[1], "json"))
    store.close()
    at = _open_history(app)
    bad = json.loads(json.dumps(doc))
    bad["run"]["run_id"] = "refused-run"
    bad["run"]["status"] = LEAK  # refused, and the problem quotes the value found
    at.file_uploader(key="hist_import_file").set_value(("bad.json", json.dumps(bad).encode(), "text/plain")).run()
    at.button(key="hist_import").click().run()
    errors = " ".join(e.value for e in at.error)
    assert "run.status" in errors and "![" not in errors, errors

    good = json.loads(json.dumps(doc))
    good["run"]["run_id"] = "labelled-run"
    good["run"]["connection_label"] = f"local {LEAK}"
    at.file_uploader(key="hist_import_file").set_value(("good.json", json.dumps(good).encode(), "text/plain")).run()
    at.button(key="hist_import").click().run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if "records ·" in c.value]
    assert captions and "leak" in captions[0] and "![" not in captions[0], captions

"""The Compare page under AppTest: a small comparison runs within one script run, against the emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cfai.format import MISSING, format_ms, format_percent
from cfai.stats import route_summary, summarize
from cfai.store import Store


def _open_compare(app):
    app.switch_page("pages/compare.py").run()
    assert not app.exception, app.exception
    return app


def _set_plan(app, n: int = 3, routes=("direct", "gateway"), **toggles):
    app.number_input(key="cmp_n").set_value(n)
    app.multiselect(key="cmp_routes").set_value(list(routes))
    for key, value in toggles.items():
        app.toggle(key=key).set_value(value)
    app.run()
    assert not app.exception, app.exception


def _use_gateway(app, gateway_id: str):
    """Point the local connection at another emulator gateway through the connection's saved settings
    (AppTest runs a switched-to page on its own, without app.py's sidebar)."""
    saved = dict(app.session_state["_cfg_saved"])
    saved["cfg_local_gateway_id"] = gateway_id
    app.session_state["_cfg_saved"] = saved
    app.session_state["cfg_local_gateway_id"] = gateway_id
    app.run()


def _run(app):
    """Press Run, wait for the background run to end (a readiness check, no sleep), then rerun the page as the
    polling fragment would, which draws the report."""
    app.button(key="cmp_run").click().run()
    assert not app.exception, app.exception
    live = app.session_state["compare_active"]
    assert live.wait(60), "the comparison did not finish"
    app.run()
    assert not app.exception, app.exception
    return app


def _stored_run(app) -> tuple[str, Store]:
    store = Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")
    runs = store.list_runs()
    assert len(runs) == 1
    return runs.iloc[0]["run_id"], store


def test_page_shows_the_editor_and_waits_for_a_run(app):
    at = _open_compare(app)
    assert at.title[0].value == "Compare routes"
    assert at.button(key="cmp_run").disabled is False
    assert any("press **Run**" in i.value for i in at.info)
    assert not at.get("vega_lite_chart")


def test_small_comparison_shows_cards_and_charts_with_the_clis_numbers(app):
    at = _open_compare(app)
    _set_plan(at, n=3)
    _run(at)
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["p50 direct", "p50 gateway hit", "Speed-up", "Gateway hit rate"]
    assert any("Measured: total time" in c.value for c in at.caption)
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 4  # over time, distribution, cache counts, percentiles
    specs = " ".join(c.proto.spec for c in charts)
    for title in ("Latency per request over time", "Latency distribution per route",
                  "Cache hits vs misses per route", "p50 and p95 per route"):
        assert title in specs
    assert "warm-ups and errors excluded" in specs and "total time" in specs and "warm-ups shown faded" in specs

    run_id, store = _stored_run(at)
    expected = route_summary(store.load_records(run_id))  # what `python -m cfai compare --json` prints
    shown = json.loads(at.json[0].value)
    assert shown == json.loads(json.dumps(expected))
    # The cards format the unrounded medians (the JSON rounds to 3 decimals, which can tip a sub-ms figure).
    table = summarize(store.load_records(run_id)).set_index("group")
    assert at.metric[0].value == format_ms(table.loc["direct", "p50"])
    assert at.metric[1].value == format_ms(table.loc["gateway · HIT", "p50"])
    assert table.loc["direct", "p50"] == pytest.approx(expected["routes"]["direct"]["p50_ms"], abs=1e-3)
    assert at.metric[3].value == format_percent(expected["routes"]["gateway"]["hit_rate"])
    assert expected["routes"]["gateway"]["hit_rate"] == 1.0  # warm-up filled the cache
    assert not at.warning  # hits happened: no "never hit" diagnosis
    assert len(at.dataframe) == 3  # the statistics, the cost per route and the records
    assert not at.button(key="cmp_run").disabled and at.button(key="cmp_cancel").disabled


def test_ttfb_metric_and_log_scale_redraw_without_rerunning(app):
    at = _open_compare(app)
    _set_plan(at, n=2)
    _run(at)
    at.segmented_control(key="cmp_report_metric").set_value("ttfb_ms").run()
    at.toggle(key="cmp_report_log").set_value(True).run()
    at.segmented_control(key="cmp_report_dist").set_value("box").run()
    assert not at.exception, at.exception
    assert any("Measured: time to first byte" in c.value for c in at.caption)
    specs = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "time to first byte" in specs and '"log"' in specs and "box" in specs.lower()
    _, store = _stored_run(at)
    assert len(store.list_runs()) == 1  # display options never start another run


def test_no_hits_explains_the_usual_causes(app, emulator):
    import requests

    # A gateway with caching off, as `default` is on Cloudflare (which also needs cf-aig-authorization, and
    # only `default` is created on first use): made through the emulator's gateway API.
    gateways = f"{emulator.base_url}/client/v4/accounts/local/ai-gateway/gateways"
    made = requests.post(gateways, json={"id": "no-cache"}, timeout=10)
    assert made.status_code == 200 or "already exists" in made.text, made.text  # the session emulator is shared
    at = _open_compare(app)
    _set_plan(at, n=3, routes=("gateway",), cmp_send_ttl=False)
    _use_gateway(at, "no-cache")
    _run(at)
    warning = " ".join(w.value for w in at.warning)
    assert "never answered from its cache" in warning
    assert "No cf-aig-cache-ttl header was sent" in warning
    # Only what the plan shows: not streamed, identical bodies, so neither is named.
    assert "streamed" not in warning.lower() and "token or the body" not in warning


def test_raw_json_body_is_validated(app):
    at = _open_compare(app)
    at.segmented_control(key="cmp_body_kind").set_value("Raw JSON").run()
    at.text_area(key="cmp_raw_body").set_value("{not json").run()
    assert any("not valid JSON" in w.value for w in at.warning)
    assert at.button(key="cmp_run").disabled


@pytest.mark.parametrize("kind", ["Text classification"])
def test_classification_body_runs(app, kind):
    at = _open_compare(app)
    at.segmented_control(key="cmp_body_kind").set_value(kind).run()
    _set_plan(at, n=2)
    _run(at)
    run_id, store = _stored_run(at)
    assert store.run_info(run_id).model == "@cf/huggingface/distilbert-sst-2-int8"
    assert store.run_info(run_id).status == "complete"


def test_a_run_where_everything_failed_says_why(app):
    at = _open_compare(app)
    at.segmented_control(key="cmp_body_kind").set_value("Raw JSON").run()
    at.text_input(key="cmp_raw_model").set_value("@cf/nobody/no-such-model").run()
    _set_plan(at, n=2, routes=("direct",))
    _run(at)
    errors = " ".join(e.value for e in at.error)
    assert "No measured request succeeded" in errors and "no\\-such\\-model" in errors.lower()
    assert "2 of 2 requests failed; most common" in errors  # cfai.failures.summarize_failures
    run_id, store = _stored_run(at)
    assert store.run_info(run_id).status == "failed"
    assert at.metric[0].value == MISSING


def test_streamed_run_says_ttfb_is_the_first_token_and_tables_show_blanks(app):
    at = _open_compare(app)
    _set_plan(at, n=2, routes=("direct",), cmp_stream=True)
    _run(at)
    at.segmented_control(key="cmp_report_metric").set_value("ttfb_ms").run()
    assert not at.exception, at.exception
    specs = " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("vega_lite_chart"))
    assert "request sent → first token" in specs and "request sent → headers" not in specs
    numeric = [d for d in at.dataframe if {"p50", "seq"} & set(d.value.columns)]  # stats and records
    assert len(numeric) == 2 and all(d.proto.placeholder == "–" for d in numeric)  # no "None"
    # Log-scale default follows the data: one route, nothing to compare, so it starts linear.
    assert at.toggle(key="cmp_report_log").value is False


def _metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_defaults_finish_quickly_and_show_an_estimate(app):
    at = _open_compare(app)
    assert at.number_input(key="cmp_n").value == 10
    assert at.number_input(key="cmp_tg_max_tokens").value == 64
    assert at.number_input(key="cmp_concurrency").value == 1
    text = " ".join(m.value for m in at.markdown)
    assert "Estimated duration: about" in text and "one probe request" in text
    # The estimate follows the plan: ten times the requests, a longer estimate.
    at.number_input(key="cmp_n").set_value(100).run()
    assert "Estimated duration" in " ".join(m.value for m in at.markdown)


def test_cancel_shows_the_cancelled_run_not_the_previous_one(app):
    at = _open_compare(app)
    _set_plan(at, n=2)
    _run(at)
    first = at.session_state["compare_active"].run_id
    at.number_input(key="cmp_n").set_value(1000).run()
    at.button(key="cmp_run").click().run()
    live = at.session_state["compare_active"]
    assert live.run_id != first and live.running
    while live.done_count() < 6 and not live.wait(0.05):  # readiness: a few responses are in
        pass
    at.run()  # what the polling fragment draws
    # While it runs: live headline numbers, elapsed time and ETA.
    assert [m.label for m in at.metric][:4] == ["p50 direct", "p50 gateway hit", "Speed-up", "Gateway hit rate"]
    assert any("elapsed" in p.proto.text and "left" in p.proto.text for p in at.get("progress"))
    at.button(key="cmp_cancel").click().run()
    assert live.wait(60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["compare_shown_run"] == live.run_id
    info = " ".join(i.value for i in at.info)
    assert "**Cancelled** after" in info
    picker = at.selectbox(key=f"cmp_show_run_{live.run_id}")
    assert picker.value == live.run_id and "cancelled" in picker.format_func(picker.value)
    assert live.run_id in " ".join(c.value for c in at.caption)
    shown = _stored_records(live.run_id)
    assert len(shown) < 2002 and _metric(at, "p50 direct").value != MISSING  # what it measured


def _stored_records(run_id):
    store = Store(Path(os.environ["CFAI_DATA_DIR"]) / "history.sqlite3")
    return store.load_records(run_id)


def test_plan_keeps_its_settings_across_pages(app):
    at = _open_compare(app)
    at.number_input(key="cmp_n").set_value(7).run()
    at.toggle(key="cmp_stream").set_value(True).run()
    at.switch_page("pages/playground.py").run()
    assert not at.exception, at.exception
    at.switch_page("pages/compare.py").run()
    assert at.number_input(key="cmp_n").value == 7 and at.toggle(key="cmp_stream").value is True


def test_unique_mode_says_misses_are_expected_and_lists_no_causes(app):
    at = _open_compare(app)
    _set_plan(at, n=3, routes=("gateway",))
    at.radio(key="cmp_cache_mode").set_value("unique").run()
    _run(at)
    assert any("no hits is the expected result" in i.value for i in at.info)
    assert not any("never answered from its cache" in w.value for w in at.warning)


def test_too_few_samples_show_no_interval(app):
    at = _open_compare(app)
    _set_plan(at, n=3)
    _run(at)
    speed = _metric(at, "Speed-up")
    assert speed.delta == "too few samples for a 95% CI"
    assert "(" not in speed.value and speed.value.endswith("×")


def test_session_affinity_and_price_are_stored_with_the_run(app):
    at = _open_compare(app)
    _set_plan(at, n=2)
    at.checkbox(key="cmp_affinity").check().run()
    _run(at)
    run_id, store = _stored_run(at)
    plan = store.run_info(run_id).plan
    assert plan.extra_headers["x-session-affinity"].startswith("cfai-")  # one value per run, both routes
    assert plan.price and plan.price["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert any("Session affinity: on" in c.value for c in at.caption)
    assert _metric(at, "Cache saved").value.startswith("$")  # beside the speed-up, on the second row
    assert any(s.value == "Cost" for s in at.subheader)


def test_presenter_view_shows_only_cards_and_charts(app):
    at = _open_compare(app)
    _set_plan(at, n=2)
    _run(at)
    at.query_params["presenter"] = "1"
    at.run()
    assert not at.exception, at.exception
    assert not at.title  # nothing else on screen: no title, no tables
    assert not at.dataframe and not any(str(s.key).startswith("cmp_show_run") for s in at.selectbox)
    assert any(e.label == "Request and plan" for e in at.expander)  # the editors, folded away
    assert [m.label for m in at.metric][:4] == ["p50 direct", "p50 gateway hit", "Speed-up", "Gateway hit rate"]
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert specs and all(spec["config"]["axis"]["labelFontSize"] >= 20 for spec in specs)

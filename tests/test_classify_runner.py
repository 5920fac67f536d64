"""Classification against the local emulator over loopback: one text, batches, faults, stop, retry, export."""

from __future__ import annotations

import io
import json
import threading
import time

import pandas as pd
import pytest

from cfai.catalog import DEFAULT_CLASSIFICATION_MODEL as DEFAULT_MODEL
from cfai.classify import (
    BatchJob,
    BatchSettings,
    LabelScore,
    OutputShapeError,
    RowResult,
    classify_text,
    export_csv,
    export_json,
    export_meta,
    fault_injector,
    parse_scores,
    row_costs,
    run_batch,
)
from cfai.client import Client
from cfai.config import LOCAL_API_TOKEN
from cfai.faults import DELAY_HEADER
from cfai.ingest import parse_table

DELAY = DELAY_HEADER


def batch_frame(texts: list[str], expected: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"row": range(2, len(texts) + 2), "text": texts,
                         "expected": expected if expected is not None else [None] * len(texts)})


def test_parse_scores_sorts_and_accepts_known_shapes():
    entries = [{"label": "NEGATIVE", "score": 0.2}, {"label": "POSITIVE", "score": 0.8}]
    assert parse_scores(entries) == [LabelScore("POSITIVE", 0.8), LabelScore("NEGATIVE", 0.2)]
    assert parse_scores([entries]) == parse_scores(entries)  # batched [[...]]
    assert parse_scores({"label": "POSITIVE", "score": 1}) == [LabelScore("POSITIVE", 1.0)]
    for bad in (None, [], {"response": "hi"}, [{"label": "x"}], [{"label": "x", "score": "high"}]):
        with pytest.raises(OutputShapeError):
            parse_scores(bad)


def test_classify_one_text_direct(client):
    answer = classify_text(client, DEFAULT_MODEL, "What a wonderful, happy day!")
    assert answer.error is None
    assert answer.top.label == "POSITIVE" and answer.top.score > 0.9
    assert [s.label for s in answer.scores] == ["POSITIVE", "NEGATIVE"]
    assert sum(s.score for s in answer.scores) == pytest.approx(1.0)
    assert answer.latency_ms > 0 and answer.cache_status is None


def test_classify_through_the_gateway_hits_the_cache_the_second_time(client):
    text = f"A gateway cache test, terrible weather {time.time_ns()}"
    first = classify_text(client, DEFAULT_MODEL, text, route="gateway")
    second = classify_text(client, DEFAULT_MODEL, text, route="gateway")
    assert (first.cache_status, second.cache_status) == ("MISS", "HIT")
    assert first.top == second.top and first.top.label == "NEGATIVE"


def test_errors_are_reported_not_raised(client):
    answer = classify_text(client, "@cf/nobody/no-such-model", "hello")
    assert answer.scores == [] and answer.top is None
    assert "model" in answer.error.lower() and answer.error_hint
    wrong_task = classify_text(client, "@cf/baai/bge-small-en-v1.5", "hello")  # embeddings, not labels
    assert wrong_task.error and "label" in wrong_task.error


def test_batch_keeps_faulty_rows_and_retries_only_them(client):
    texts = [f"{'great' if i % 2 else 'awful'} thing number {i}" for i in range(20)]
    job = BatchJob.from_frame(batch_frame(texts), BatchSettings(concurrency=4))
    assert job.start(client, headers_for=fault_injector(every=5, kind="500")) == 20
    assert job.wait(30)
    frame = job.frame()
    assert len(frame) == 20 and frame["row"].tolist() == list(range(2, 22))  # nothing dropped, order kept
    failed = frame[frame["status"] == "error"]
    assert failed.index.tolist() == [4, 9, 14, 19]
    assert failed["error"].str.contains("HTTP 500").all() and failed["predicted"].isna().all()
    assert set(failed["error_kind"]) == {"server_error"}
    ok = frame[frame["status"] == "ok"]
    assert ok["predicted"].notna().all() and (ok["latency_ms"] > 0).all()

    assert job.start(client, headers_for=fault_injector(every=5, kind="500")) == 4  # failed rows only
    assert job.wait(30)
    frame = job.frame()
    assert (frame["status"] == "ok").all()
    assert frame.loc[[4, 9, 14, 19], "attempts"].tolist() == [2, 2, 2, 2]
    assert frame.loc[0, "attempts"] == 1
    assert job.start(client) == 0  # nothing left to do


class CountingClient(Client):
    """The real client, counting how many `run` calls overlap."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock, self.active, self.peak = threading.Lock(), 0, 0

    def run(self, *args, **kwargs):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return super().run(*args, **kwargs)
        finally:
            with self.lock:
                self.active -= 1


def test_concurrency_is_bounded(local_conn):
    with CountingClient(local_conn) as counting:
        rows = [RowResult(index=i, row=i + 1, text=f"fine text {i}") for i in range(24)]
        results: list[RowResult] = []
        ran = run_batch(counting, BatchSettings(concurrency=3), rows, on_result=results.append,
                        headers_for=lambda row: {DELAY: "30"})
    assert ran == 24 and len(results) == 24
    assert counting.peak == 3


def test_requests_per_minute_cap_paces_the_starts(client):
    rows = [RowResult(index=i, row=i + 1, text=f"paced {i}") for i in range(5)]
    start = time.perf_counter()
    run_batch(client, BatchSettings(concurrency=5, max_per_minute=1200), rows, on_result=lambda r: None)
    assert time.perf_counter() - start >= 4 * 0.05 * 0.9  # 1200/min = one start every 50 ms


def test_stop_keeps_finished_rows_and_resume_runs_the_rest(client):
    texts = [f"slow text {i}" for i in range(300)]
    job = BatchJob.from_frame(batch_frame(texts), BatchSettings(concurrency=2))
    job.start(client, headers_for=lambda row: {DELAY: "20"})
    deadline = time.monotonic() + 20
    while job.progress().run_done < 6 and time.monotonic() < deadline:  # readiness: some rows finished
        time.sleep(0.01)
    job.stop()
    assert job.wait(10)
    progress = job.progress()
    assert progress.stopped and not progress.running
    assert 6 <= progress.ok < 300 and progress.pending == 300 - progress.ok and progress.failed == 0
    done_before = job.frame().query("status == 'ok'")["row"].tolist()

    assert job.start(client) == progress.pending
    assert job.wait(60)
    frame = job.frame()
    assert (frame["status"] == "ok").all() and not job.progress().stopped
    assert set(done_before) <= set(frame["row"])


def test_progress_updates_while_a_five_thousand_row_batch_runs(client):
    texts = [f"row {i} is {'lovely' if i % 3 else 'dreadful'}" for i in range(5000)]
    job = BatchJob.from_frame(batch_frame(texts), BatchSettings(concurrency=8))
    started = time.perf_counter()
    assert job.start(client) == 5000
    assert time.perf_counter() - started < 0.5  # start returns at once: the caller is never blocked
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 4 and time.monotonic() < deadline:
        progress = job.progress()
        assert progress.running and progress.total == 5000
        seen.add(progress.run_done)
        frame = job.frame()  # a snapshot can be read while the batch runs
        assert len(frame) == 5000
    job.stop()
    assert job.wait(10)
    assert len(seen) >= 4 and max(seen) > 0
    assert job.progress().ok + job.progress().pending == 5000


@pytest.mark.slow
def test_five_thousand_rows_complete(client):
    texts = [f"row {i} is {'lovely' if i % 3 else 'dreadful'}" for i in range(5000)]
    job = BatchJob.from_frame(batch_frame(texts), BatchSettings(concurrency=8))
    job.start(client)
    assert job.wait(180)
    assert job.progress().ok == 5000


def test_unknown_model_fails_every_row_but_keeps_them(client):
    job = BatchJob.from_frame(batch_frame(["a", "b", "c"]), BatchSettings(model="@cf/nobody/nothing"))
    job.start(client)
    assert job.wait(10)
    frame = job.frame()
    assert len(frame) == 3 and (frame["status"] == "error").all()
    assert set(frame["error_kind"]) == {"model_not_found"}


def test_exports_round_trip_and_never_contain_the_token(client):
    job = BatchJob.from_frame(batch_frame(["so good, \"really\"", "so bad\nreally"], ["pos", "neg"]),
                              BatchSettings(concurrency=2))
    job.start(client, headers_for=fault_injector(every=2))
    assert job.wait(10)
    frame = job.frame()
    csv_bytes = export_csv(frame)
    table = parse_table(csv_bytes)
    assert table.encoding == "utf-8-sig" and not table.issues
    assert table.frame["text"].tolist() == ["so good, \"really\"", "so bad\nreally"]
    assert {"score_POSITIVE", "score_NEGATIVE", "error"} <= set(table.columns)
    assert table.frame.loc[1, "status"] == "error" and "500" in table.frame.loc[1, "error"]

    data = json.loads(export_json(frame, {"model": DEFAULT_MODEL, "route": "direct"}))
    assert data["meta"]["model"] == DEFAULT_MODEL and len(data["rows"]) == 2
    assert set(data["rows"][0]["scores"]) == {"POSITIVE", "NEGATIVE"}
    for blob in (csv_bytes, export_json(frame, {})):
        assert LOCAL_API_TOKEN.encode() not in blob and b"Bearer" not in blob


def test_results_frame_is_built_once_per_version(client):
    job = BatchJob.from_frame(batch_frame(["lovely", "awful"]), BatchSettings(concurrency=2))
    before = job.version
    first = job.frame()
    assert job.frame() is first  # nothing changed: the same frame, not rebuilt
    job.start(client)
    assert job.wait(30)
    assert job.version == before + 2  # one bump per finished row
    after = job.frame()
    assert after is not first and (after["status"] == "ok").all()
    assert job.frame() is after


def test_row_costs_add_up_to_the_batch_cost_and_hits_cost_nothing():
    from cfai.cost import batch_cost
    from cfai.pricing import custom_price

    frame = pd.DataFrame({
        "row": [2, 3, 4, 5], "text": ["a" * 40, "b" * 8, "c" * 12, "d"],
        "status": ["ok", "ok", "error", "ok"], "cache_status": ["MISS", "HIT", None, None],
    })
    price = custom_price("@cf/x/y", 2.0, None)  # $2 per M input tokens
    costs = row_costs(frame, price)
    # 40 chars = 10 tokens; the hit costs 0; the failed row has no cost; 1 char = 1 token.
    assert costs.tolist()[:2] == [10 * 2.0 / 1e6, 0.0] and pd.isna(costs.iloc[2])
    assert costs.iloc[3] == pytest.approx(1 * 2.0 / 1e6)
    assert costs.sum() == pytest.approx(batch_cost(frame, price).usd)
    assert row_costs(frame, None).isna().all()  # no price listed: never $0


def test_exports_carry_the_cost_and_the_price_used():
    from cfai.cost import batch_cost
    from cfai.pricing import custom_price

    job = BatchJob.from_frame(batch_frame(["lovely day", "awful day"]), BatchSettings(), source="r.csv",
                              row_note="Row numbers are your file's.")
    job.replace_rows([RowResult(index=r.index, row=r.row, text=r.text, status="ok", predicted="POSITIVE",
                                score=0.9, scores={"POSITIVE": 0.9, "NEGATIVE": 0.1}) for r in job.rows])
    price = custom_price(DEFAULT_MODEL, 4.0, None, note="contract 7")
    cost = batch_cost(job.frame(), price)
    csv_text = export_csv(job.frame(), price).decode("utf-8-sig")
    table = pd.read_csv(io.StringIO(csv_text))
    assert table["cost_usd"].sum() == pytest.approx(cost.usd)
    meta = export_meta(job, mapping={}, price=price, cost=cost.to_dict(), exported_at="now")
    data = json.loads(export_json(job.frame(), meta))
    assert data["meta"]["cost"]["per_1000_usd"] == pytest.approx(cost.per_1000_usd)
    assert data["meta"]["price"]["source"] == "custom" and data["meta"]["price"]["input_per_m"] == 4.0
    assert data["meta"]["row_numbers"] == "Row numbers are your file's." and data["meta"]["source"] == "r.csv"

"""The background-job primitive (cfai.jobs): start, cancel, wait, progress, errors, and the paced map."""

from __future__ import annotations

import threading
import time

import pytest

from cfai import jobs


def test_a_job_runs_in_the_background_and_returns_its_result():
    release = threading.Event()

    def work(job: jobs.Job[int]) -> int:
        release.wait(5)
        job.advance(3)
        return 42

    job = jobs.start(work, name="test-job", total=3)
    assert job.running and not job.finished
    assert job.progress().done == 0 and job.progress().fraction == 0.0
    release.set()
    assert job.wait(5)
    assert job.result() == 42 and job.error is None
    progress = job.progress()
    assert (progress.done, progress.total, progress.running, progress.fraction) == (3, 3, False, 1.0)


def test_cancel_is_seen_by_the_job_which_returns_what_it_has():
    started = threading.Event()

    def work(job: jobs.Job[str]) -> str:
        started.set()
        job.cancel_event.wait(5)
        return "stopped early" if job.cancelled else "ran out"

    job = jobs.start(work, name="test-cancel")
    assert started.wait(5)
    job.cancel()
    assert job.result(timeout=5) == "stopped early" and job.progress().cancelled


def test_an_error_is_kept_and_raised_by_result():
    def work(job: jobs.Job[None]) -> None:
        raise ValueError("boom")

    job = jobs.start(work, name="test-error")
    assert job.wait(5)
    assert isinstance(job.error, ValueError)
    with pytest.raises(ValueError, match="boom"):
        job.result()


def test_result_of_an_unfinished_job_times_out():
    gate = threading.Event()
    job = jobs.start(lambda _job: gate.wait(5), name="test-slow")
    with pytest.raises(TimeoutError):
        job.result(timeout=0.01)
    gate.set()
    assert job.result(timeout=5) is True


def test_paced_map_never_exceeds_its_concurrency_and_sees_every_item():
    lock, in_flight, peak, seen = threading.Lock(), [0], [0], []

    def work(item: int, _due: float) -> int:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.01)  # the work itself, not a wait for readiness
        with lock:
            in_flight[0] -= 1
        return item * 2

    started = jobs.paced_map(work, range(40), concurrency=4, on_result=seen.append)
    assert started == 40 and sorted(seen) == [i * 2 for i in range(40)]
    assert 2 <= peak[0] <= 4


def test_paced_map_runs_inline_at_concurrency_one():
    threads = set()
    jobs.paced_map(lambda item, _due: threads.add(threading.current_thread().name), range(3), concurrency=1)
    assert threads == {threading.current_thread().name}


def test_a_fixed_schedule_is_kept_and_a_spacing_cap_spaces_starts():
    dues: list[float] = []
    jobs.paced_map(lambda _item, due: dues.append(due), range(5), concurrency=5,
                   pacing=jobs.Pacing.per_second(100.0))  # due every 10 ms from the first
    dues.sort()
    assert [round((d - dues[0]) * 1000) for d in dues] == [0, 10, 20, 30, 40]
    # The release times of a rate cap (a worker thread may start a released call late on a busy machine,
    # which is the scheduler's doing, not the cap's).
    starts: list[float] = []
    jobs.paced_map(lambda _item, due: starts.append(due), range(4), concurrency=4,
                   pacing=jobs.Pacing.per_minute_cap(6000))  # at least 10 ms apart
    starts.sort()
    assert all(b - a >= 0.0095 for a, b in zip(starts, starts[1:], strict=False))
    assert jobs.Pacing.per_minute_cap(None) is None


def test_cancel_stops_new_calls_and_lets_those_in_flight_finish():
    cancel = threading.Event()
    finished: list[int] = []

    def work(item: int, _due: float) -> int:
        if item == 2:
            cancel.set()
        return item

    started = jobs.paced_map(work, range(100), concurrency=1, cancel=cancel, on_result=finished.append)
    assert started == 3 and finished == [0, 1, 2]
    cancel.clear()
    waited = time.monotonic()
    stopper = threading.Timer(0.05, cancel.set)
    stopper.start()
    started = jobs.paced_map(lambda item, _due: item, range(100), concurrency=2, cancel=cancel,
                             pacing=jobs.Pacing(1.0))  # a 1 s spacing: the cancel cuts the wait short
    assert started == 1 and time.monotonic() - waited < 0.9


def test_an_error_in_a_call_stops_the_map_and_is_raised():
    calls: list[int] = []

    def work(item: int, _due: float) -> int:
        calls.append(item)
        if item == 1:
            raise RuntimeError("bad item")
        return item

    with pytest.raises(RuntimeError, match="bad item"):
        jobs.paced_map(work, range(50), concurrency=1)
    assert calls == [0, 1]


def test_gather_returns_results_in_order_while_running_together():
    barrier = threading.Barrier(3, timeout=5)  # fails unless all three calls run at the same time

    def call(value: str):
        return lambda: (barrier.wait(), value)[1]

    assert jobs.gather([call("a"), call("b"), call("c")]) == ["a", "b", "c"]

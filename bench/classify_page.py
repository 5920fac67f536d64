"""classify_rerun_s: the server-side time of a Classify page rerun with a 100,000-row labelled CSV loaded and
its batch finished, measured with Streamlit's AppTest in this process (no browser).

The file is uploaded through the page's own uploader. Classifying 100,000 rows against the emulator would
take minutes and measure the emulator, so the finished batch is built from the page's own parsed batch
with synthetic answers (two labels, scores spread over 0.5-1, a few failures) and put where the page keeps
its job; everything after that is the page's real code. Timed, each the best of the repeats: a plain
rerun, the confidence threshold, the table's "Wrong only" view and back, a label-mapping change, opening the
Evaluation tab, the threshold there, back to the Rows tab; the figure is their median. The first render with the results is reported too.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.history_page import _app_environment
from bench.report import figure, r

RERUN_TARGET_S = 0.3
ROOT = Path(__file__).resolve().parent.parent
WORDS_POS = ["lovely", "great", "wonderful", "friendly", "excellent", "happy"]
WORDS_NEG = ["awful", "rude", "terrible", "dirty", "boring", "broken"]


def synthetic_csv(n: int, seed: int = 7) -> bytes:
    """A labelled review file: `id,text,label` with 0/1 labels, about 60 characters a text."""
    rng = random.Random(seed)
    lines = ["id,text,label"]
    for i in range(n):
        label = rng.random() < 0.5
        words = rng.choices(WORDS_POS if label else WORDS_NEG, k=3)
        lines.append(f'{i},"Review {i}: the room was {words[0]}, the staff {words[1]}, it was {words[2]}.",'
                     f"{int(label)}")
    return ("\n".join(lines) + "\n").encode()


def finished_job(frame: Any, seed: int = 11) -> Any:
    """A BatchJob for the page's batch frame with every row answered (1% failed), as if it had run."""
    from dataclasses import replace

    from cfai.classify import BatchJob, BatchSettings

    rng = random.Random(seed)
    job = BatchJob.from_frame(frame, BatchSettings(), source="bench.csv")
    rows = []
    for row in job.rows:
        if rng.random() < 0.01:
            rows.append(replace(row, status="error", error="HTTP 500 Internal Server Error", error_kind="server_error",
                                attempts=1, latency_ms=3.0))
            continue
        right = rng.random() < 0.85
        truth = "POSITIVE" if row.expected == "1" else "NEGATIVE"
        other = "NEGATIVE" if truth == "POSITIVE" else "POSITIVE"
        label = truth if right else other
        score = 0.5 + rng.random() / 2
        rows.append(replace(row, status="ok", predicted=label, score=score,
                            scores={label: score, (other if label == truth else truth): 1 - score},
                            latency_ms=5 + rng.random() * 20, attempts=1))
    job.replace_rows(rows)
    return job


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(n: int = 100_000, repeats: int = 3) -> dict[str, dict[str, Any]]:
    from streamlit.testing.v1 import AppTest

    data = synthetic_csv(n)
    with tempfile.TemporaryDirectory(prefix="cfai-bench-classify-") as tmp, _app_environment(Path(tmp)):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.run()  # the entry page and the embedded emulator: not part of the figure
        at.session_state["classify_tab"] = "Batch"
        at.switch_page("pages/classify.py").run()
        upload = _timed(lambda: at.file_uploader(key="classify_upload").set_value(
            ("bench.csv", data, "text/csv")).run())
        problems = [str(e.value) for e in at.exception]
        batch_frame = _batch_frame(data)
        at.session_state["classify_job"] = finished_job(batch_frame)
        first_results = _timed(lambda: at.run())
        problems += [str(e.value) for e in at.exception]

        def open_results_tab(label: str) -> None:
            at.session_state["classify_results_tab"] = label
            at.run()

        def toggle_view() -> None:
            current = at.radio(key="classify_show").value
            at.radio(key="classify_show").set_value("Wrong only" if current == "All rows" else "All rows").run()

        def change_mapping() -> None:
            box = next(s for s in at.selectbox if s.key and s.key.startswith("classify_map_")
                       and s.label.startswith("'1'"))
            box.set_value("NEGATIVE" if box.value == "POSITIVE" else "POSITIVE").run()

        interactions: dict[str, Callable[[], Any]] = {
            "plain rerun": lambda: at.run(),
            "threshold": lambda: at.slider(key="classify_threshold").set_value(
                0.8 if at.slider(key="classify_threshold").value != 0.8 else 0.6).run(),
            "table view": toggle_view,
            "label mapping": change_mapping,
            "open Evaluation tab": lambda: open_results_tab("Evaluation"),
            "threshold on Evaluation": lambda: at.slider(key="classify_threshold").set_value(
                0.7 if at.slider(key="classify_threshold").value != 0.7 else 0.9).run(),
            "back to Rows tab": lambda: open_results_tab("Rows"),
        }
        times: dict[str, list[float]] = {name: [] for name in interactions}
        for _ in range(repeats):
            for name, action in interactions.items():
                times[name].append(_timed(action))
        problems += [str(e.value) for e in at.exception]
    best = {name: min(values) for name, values in times.items()}
    rerun = statistics.median(best.values())
    return {"classify_rerun_s": figure(rerun, "s", RERUN_TARGET_S, "<", {
        "rows": n, "repeats": repeats, "exceptions": problems,
        "upload_and_parse_s": r(upload), "first_render_with_results_s": r(first_results),
        "best_per_interaction_s": {k: r(v) for k, v in best.items()},
        "what": "server-side AppTest run of pages/classify.py with this many labelled rows loaded and classified",
        "how": "median over the interactions of the best of the repeats",
    })}


def _batch_frame(data: bytes) -> Any:
    """The batch the page builds from this file with its guessed columns (text, label)."""
    from cfai.ingest import batch_from_table, parse_table

    return batch_from_table(parse_table(data, filename="bench.csv"), "text", "label", source="bench.csv").frame


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))

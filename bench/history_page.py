"""history_first_load_s, history_rerun_s: the server-side time of a History page run with a stored
100,000-record run, measured with Streamlit's AppTest in this process (no browser, no network: the page
reads only the SQLite history).

A temporary history holds the big run (synthetic records shaped like a real one, see `bench.stats_speed`)
and a small second run, so the overlay shows two runs. Timed:
- first load: switching to the History page the first time (nothing cached yet);
- reruns: the interactions a user makes once the page is open (a plain rerun, the overlay metric, the
  report's log scale, opening the Manage tab, a rename, back to the Report tab), best of each over the
  repeats, and their median as the figure.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.report import figure, r
from bench.stats_speed import synthetic_records

FIRST_LOAD_TARGET_S = 3.0
RERUN_TARGET_S = 0.5
ROOT = Path(__file__).resolve().parent.parent
BIG_RUN = "bench-run"


def _seed_history(data_dir: Path, n: int) -> None:
    from cfai.compare import Plan, Record, RunResult
    from cfai.store import Store

    frame = synthetic_records(n)
    records = [Record(**{k: (None if v is None or v != v else v) for k, v in row.items()})
               for row in frame.astype(object).where(frame.notna(), None).to_dict("records")]
    plan = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"},
                routes=("direct", "gateway", "gateway-skip"), n=n // 3, warmup=5, name="big run")
    small_plan = Plan(model="@cf/meta/llama-3.1-8b-instruct", body={"prompt": "hi"},
                      routes=("direct", "gateway", "gateway-skip"), n=100, warmup=5, name="small run")
    small = [Record(**{**rec.__dict__, "run_id": "bench-small"}) for rec in records[:300]]
    with Store(data_dir / "history.sqlite3") as store:
        store.save_run(RunResult(BIG_RUN, plan, 1_700_000_100.0, 1_700_003_100.0, records, False,
                                 "local · account local · gateway demo"))
        store.save_run(RunResult("bench-small", small_plan, 1_700_000_000.0, 1_700_000_050.0, small, False,
                                 "local · account local · gateway demo"))


@contextmanager
def _app_environment(data_dir: Path) -> Iterator[None]:
    """Local mode, history under `data_dir`; AppTest kept in st.navigation mode (tests/conftest.py says why)."""
    from streamlit.runtime.pages_manager import PagesManager

    saved = {k: os.environ.get(k) for k in ("CFAI_DATA_DIR", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN",
                                            "CLOUDFLARE_GATEWAY_ID")}
    original_init = PagesManager.__init__

    def init_without_pages_directory(self: Any, *args: Any, **kwargs: Any) -> None:
        PagesManager.uses_pages_directory = False
        original_init(self, *args, **kwargs)

    for name in saved:
        os.environ.pop(name, None)
    os.environ["CFAI_DATA_DIR"] = str(data_dir)
    PagesManager.__init__ = init_without_pages_directory  # type: ignore[method-assign]
    try:
        yield
    finally:
        PagesManager.__init__ = original_init  # type: ignore[method-assign]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(n: int = 100_000, repeats: int = 3) -> dict[str, dict[str, Any]]:
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory(prefix="cfai-bench-history-") as tmp:
        data_dir = Path(tmp)
        _seed_history(data_dir, n)
        with _app_environment(data_dir):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            at.run()  # the entry page, the embedded emulator: not part of the History figures
            first = _timed(lambda: at.switch_page("pages/history.py").run())
            problems = [str(e.value) for e in at.exception]
            def open_tab(label: str) -> None:
                at.session_state["hist_tab"] = label
                at.run()

            # Interactions a user makes on the open page, in this order, the whole sequence `repeats` times;
            # the best time of each is kept.
            interactions: dict[str, Callable[[], Any]] = {
                "plain rerun": lambda: at.run(),
                "overlay metric": lambda: at.segmented_control(key="hist_metric").set_value(
                    "ttfb_ms" if at.segmented_control(key="hist_metric").value == "total_ms" else "total_ms").run(),
                "report log scale": lambda: at.toggle(key="hist_report_log").set_value(
                    not at.toggle(key="hist_report_log").value).run(),
                "open Manage tab": lambda: open_tab("Manage"),
                "rename (2 reruns)": lambda: (
                    at.text_input(key=f"hist_name_{BIG_RUN}").set_value(f"big {time.time()}").run(),
                    at.button(key="hist_rename").click().run()),
                "back to Report tab": lambda: open_tab("Report"),
            }
            times: dict[str, list[float]] = {name: [] for name in interactions}
            for _ in range(repeats):
                for name, action in interactions.items():
                    times[name].append(_timed(action))
            best = {name: min(values) for name, values in times.items()}
            problems += [str(e.value) for e in at.exception]
    rerun = statistics.median(best.values())
    details_common = {"records": n, "stored_runs": 2, "exceptions": problems,
                      "what": "server-side AppTest run of pages/history.py with a stored run of this many records"}
    return {
        "history_first_load_s": figure(first, "s", FIRST_LOAD_TARGET_S, "<", {**details_common}),
        "history_rerun_s": figure(rerun, "s", RERUN_TARGET_S, "<", {
            **details_common, "repeats": repeats, "best_per_interaction_s": {k: r(v) for k, v in best.items()},
            "how": "median over the interactions of the best of the repeats (rename counts its two reruns)"}),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))

"""A load sweep in headless Chromium: the sweep page (tests/apps/sweep_app.py) under `streamlit run`, against
the session emulator; five steps run, the report draws its curves, and the README's screenshot is taken."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.streamlit_server import streamlit_app

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "sweep.png"


@pytest.fixture
def sweep_url(emulator, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    env = {"CFAI_EMULATOR_URL": emulator.base_url, "CFAI_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    with streamlit_app(env, tmp_path / "log", script=ROOT / "tests" / "apps" / "sweep_app.py") as url:
        yield url


@pytest.mark.e2e
def test_a_sweep_runs_and_draws_its_curves(page: Page, sweep_url: str, tmp_path: Path):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(sweep_url)
    loads = page.get_by_role("textbox", name="Concurrencies")
    expect(loads).to_be_visible(timeout=30_000)
    loads.fill("1, 2, 4, 8, 16")
    count = page.get_by_role("spinbutton", name="Requests per route per step")
    count.fill("12")
    count.press("Enter")
    expect(page.get_by_text("Estimate: 130 requests")).to_be_visible(timeout=10_000)
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Run sweep").click()

    # The report: one line per route, the latency and throughput curves.
    expect(page.get_by_text("in History as one run")).to_be_visible(timeout=60_000)
    charts = page.locator('[data-testid="stVegaLiteChart"] svg')
    expect(charts.nth(1)).to_be_visible(timeout=30_000)
    title = page.get_by_text("Latency against load, per route").first
    expect(title).to_be_attached()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()

    # The route lines and the latency curve at the top of the screenshot.
    page.get_by_test_id("stDataFrame").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.mouse.wheel(0, -60)
    shot = tmp_path / "sweep.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CFAI_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

"""The Compare page in headless Chromium against `streamlit run`: run a small comparison, see the charts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "compare.png"


@pytest.mark.e2e
def test_run_a_comparison_and_see_the_charts(page: Page, streamlit_url: str, tmp_path: Path):
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{streamlit_url}/compare")
    n = page.get_by_label("Requests per route (N)")
    expect(n).to_be_visible(timeout=30_000)
    n.fill("20")
    n.press("Enter")
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Run").click()

    # Live charts while running, then the report: cards and the four charts.
    expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stMetric")).to_have_count(4)
    charts = page.locator('[data-testid="stVegaLiteChart"] svg')
    expect(charts.nth(3)).to_be_visible(timeout=30_000)
    assert charts.count() >= 4
    cards = page.get_by_test_id("stMetric").all_inner_texts()
    assert "p50 direct" in cards[0] and "ms" in cards[0]
    assert "Gateway hit rate" in cards[3] and "100%" in cards[3]
    expect(page.get_by_text("Latency per request over time").first).to_be_attached()

    # Cards at the top of the screenshot, charts below them.
    page.get_by_test_id("stMetric").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    shot = tmp_path / "compare.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CFAI_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


@pytest.mark.e2e
def test_cancel_stops_a_run_and_keeps_what_it_measured(page: Page, streamlit_url: str):
    page.goto(f"{streamlit_url}/compare")
    n = page.get_by_label("Requests per route (N)")
    expect(n).to_be_visible(timeout=30_000)
    n.fill("1000")
    n.press("Enter")
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Run").click()
    # Live progress and charts while it runs.
    expect(page.get_by_text("Running:")).to_be_visible(timeout=30_000)
    expect(page.locator('[data-testid="stVegaLiteChart"] svg').first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Cancelled after")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetric")).to_have_count(4)

"""The Classify page in headless Chromium: upload the sample CSV, run it, see accuracy and cost, open the
evaluation, visit another page and come back to the same settings and results (1440x900 and 1024x768)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"
VIEWPORTS = [(1440, 900), (1024, 768)]


@pytest.mark.e2e
@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def test_upload_sample_run_and_see_accuracy_cost_and_settings_kept(page: Page, streamlit_url: str, width: int,
                                                                    height: int):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{streamlit_url}/classify")
    page.get_by_role("tab", name="Batch").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(SAMPLE))
    expect(page.get_by_text(re.compile(r"40 rows read as utf-8, comma-separated"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("the header is row 1, so the first text is row 2").first).to_be_visible()

    page.get_by_role("button", name="Classify 40 rows").click()
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Accuracy")
    expect(accuracy).to_be_visible(timeout=60_000)
    expect(accuracy.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    expect(page.get_by_text(re.compile(r"per 1,000 texts")).first).to_be_visible()
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()
    # The rows table: no literal "None" for missing cells (the direct route has no cache status).
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()

    page.get_by_role("tab", name="Evaluation").click()
    expect(page.get_by_text("Most confident mistakes")).to_be_visible(timeout=30_000)
    expect(page.locator('[data-testid="stVegaLiteChart"] svg').first).to_be_visible(timeout=30_000)
    slider = page.get_by_role("slider", name="Confidence threshold")
    slider.focus()
    page.keyboard.press("End")  # one change, one rerun: threshold 1.00, everything abstains
    expect(slider).to_have_attribute("aria-valuetext", "1.00", timeout=10_000)
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Coverage")).to_contain_text(
        "0.0%", timeout=10_000)

    # Another page, then back through the app's own navigation (the same browser session).
    page.locator('[data-testid="stSidebarNav"] a', has_text="Compare routes").click()
    expect(page.get_by_role("heading", name="Compare routes").first).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Classify").click()
    expect(page.get_by_text(re.compile(r"sentiment_sample\.csv.*uploaded earlier"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("tab", name="Batch", selected=True)).to_be_visible()
    expect(page.get_by_role("tab", name="Evaluation", selected=True)).to_be_visible()
    expect(page.get_by_role("slider", name="Confidence threshold")).to_have_attribute("aria-valuetext", "1.00")
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Coverage")).to_contain_text("0.0%")
    expect(page.get_by_role("button", name="Classify 40 rows")).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Accuracy")).to_be_visible()

"""The Classify page in headless Chromium: upload the sample CSV, run it, see the accuracy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sentiment_sample.csv"


@pytest.mark.e2e
def test_upload_sample_run_and_see_accuracy(page: Page, streamlit_url: str):
    page.goto(f"{streamlit_url}/classify")
    page.get_by_role("tab", name="Batch").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(SAMPLE))
    expect(page.get_by_text(re.compile(r"40 rows read as utf-8, comma-separated"))).to_be_visible(timeout=30_000)

    page.get_by_role("button", name="Classify 40 rows").click()
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Accuracy")
    expect(accuracy).to_be_visible(timeout=60_000)
    expect(accuracy.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    expect(page.get_by_text("40 rows").first).to_be_visible()
    # The confusion matrix and the coverage chart render as SVG.
    expect(page.locator('[data-testid="stVegaLiteChart"] svg').first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()

"""The playground in headless Chromium against `streamlit run`: type a prompt, see it stream, see the metrics."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parent.parent
# For the README: `CFAI_TEST_SPEED=1 CFAI_UPDATE_SCREENSHOTS=1 pytest tests/test_e2e_playground.py` (realistic
# emulator speed, so the numbers in the picture look like a real model's).
SCREENSHOT = ROOT / "docs" / "playground.png"


@pytest.mark.e2e
def test_type_a_prompt_and_see_the_streamed_answer_with_metrics(page: Page, streamlit_url: str, tmp_path: Path):
    page.set_viewport_size({"width": 1440, "height": 960})
    page.goto(streamlit_url)  # the playground is the default page
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_visible(timeout=30_000)
    page.get_by_test_id("stSidebar").get_by_text("AI Gateway", exact=True).click()
    expect(page.get_by_text("Gateway options: default cache TTL.")).to_be_visible()
    box.fill("Explain AI Gateway caching in two sentences.")
    box.press("Enter")

    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2, timeout=30_000)
    answer = messages.nth(1)
    # "first token" only appears for a streamed answer (a whole one says "first byte").
    expect(answer).to_contain_text(re.compile(r"first token \d"), timeout=30_000)
    expect(answer).to_contain_text("tok/s")
    expect(answer).to_contain_text("HTTP 200")
    expect(answer).to_contain_text("AI Gateway")
    expect(answer).to_contain_text("cache MISS")  # streams are not cached by default
    expect(answer).to_contain_text("Raw request and response")
    assert len(answer.inner_text().split("first token")[0].strip()) > 20, "the answer text is shown"

    page.evaluate("document.querySelector('[data-testid=stSidebarContent]')?.scrollTo(0, 0)")
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CFAI_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

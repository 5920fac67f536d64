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


GLM = "@cf/zai-org/glm-4.7-flash"


def _choose_model(page: Page, model: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    picker = sidebar.get_by_test_id("stSelectbox").filter(has_text="Model").first
    picker.click()
    page.keyboard.type(model)
    page.get_by_role("option", name=model, exact=True).first.click()
    expect(picker.get_by_role("combobox")).to_have_value(model, timeout=15_000)


@pytest.mark.e2e
@pytest.mark.parametrize("size", [(1440, 900), (1024, 768)])
def test_a_reasoning_model_streams_into_a_collapsed_reasoning_block(page: Page, streamlit_url: str, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(streamlit_url)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_visible(timeout=30_000)
    _choose_model(page, GLM)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Parameters", exact=True).click()  # open it, then switch route: it stays open
    effort = sidebar.get_by_text("Reasoning effort")
    expect(effort).to_be_visible(timeout=15_000)
    sidebar.get_by_text("AI Gateway", exact=True).click()
    expect(page.get_by_text("Gateway options: default cache TTL.")).to_be_visible()
    expect(effort).to_be_visible()
    box.fill("Why do caches make gateways faster?")
    box.press("Enter")
    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2, timeout=30_000)
    answer = messages.nth(1)
    expect(answer).to_contain_text(re.compile(r"first reasoning token \d"), timeout=30_000)
    expect(answer).to_contain_text(re.compile(r"first answer token \d"))
    expect(answer).to_contain_text("reasoning included")
    expect(answer).to_contain_text("cost")
    block = answer.get_by_test_id("stExpander").filter(has_text="Reasoning").first
    expect(block).to_be_visible()
    details = block.locator("details")
    assert details.get_attribute("open") is None, "the reasoning block starts collapsed"
    block.get_by_text("Reasoning", exact=True).click()
    expect(block).to_contain_text(re.compile(r"\w+ \w+ \w+"))
    box_top = answer.bounding_box()
    assert box_top is not None and box_top["width"] > 300, "the answer is readable at this size"


@pytest.mark.e2e
def test_the_chat_tool_buttons_show_their_whole_labels_at_1024(page: Page, streamlit_url: str):
    """Three narrow columns cut them to "Cl…", "Regener…" and "E…" at 1024 px with the sidebar open."""
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(streamlit_url)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=30_000)
    for name in ("Clear chat", "Regenerate last answer", "Export"):
        button = page.get_by_role("button", name=name).first
        expect(button).to_be_visible()
        cut = button.evaluate("b => [b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)")
        assert not cut, f"the {name!r} button's label is cut"

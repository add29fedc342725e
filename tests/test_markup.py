"""User text is never markup: `core.markup.plain` shows any text exactly as typed (pages are held to it in test_hostile)."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from core.markup import plain

HOSTILE_NAMES = [
    "![pixel](https://evil.example/p.png)",
    "[click me](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code` ~~strike~~",
    "# Heading",
    "1. not a list",
    "- not a list either",
    "$x^2$ and :red[colour] and :material/home:",
    "a | table | row",
    "back\\slash\\*",
    "Zoë 李小龍 🎉",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_plain_text_renders_as_exactly_the_text_typed(name):
    rendered = MarkdownIt("commonmark").render(plain(name))
    assert "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "<h1>" not in rendered and "<ol>" not in rendered and "<ul>" not in rendered and "<code>" not in rendered
    assert MarkdownIt("commonmark").render(plain(name)) == f"<p>{_html(name)}</p>\n"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def test_line_breaks_in_user_text_stay_line_breaks_not_paragraphs_or_blocks():
    rendered = MarkdownIt("commonmark").render(plain("nothing was imported:\nusers.csv, line 3: # bad\n    code?"))
    assert rendered == "<p>nothing was imported:<br />\nusers.csv, line 3: # bad<br />\ncode?</p>\n"


@pytest.mark.parametrize("text", ["see https://evil.example/x", "www.evil.example", "WWW.Evil.example/path"])
def test_bare_urls_cannot_become_links(text):
    escaped = plain(text)
    assert re.search(r"(?<!\\)://", escaped) is None and "www." not in escaped.lower()

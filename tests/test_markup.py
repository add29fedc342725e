"""User text is never markup: one escaping helper, and every page passes user text through it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from core.markup import plain

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py")

# Streamlit calls that read their text (first argument, `label` or `body`) as Markdown.
MARKDOWN_CALLS = {
    "markdown", "write", "caption", "success", "error", "warning", "info", "toast", "title", "header",
    "subheader", "expander", "popover", "metric", "status", "tabs", "button", "checkbox", "toggle", "radio",
    "selectbox", "multiselect", "text_input", "text_area", "number_input", "slider", "select_slider",
    "date_input", "time_input", "download_button", "link_button", "form_submit_button", "file_uploader",
    "segmented_control", "pills",
}  # fmt: skip
# Page helpers that hand their text to one of those later (flash messages shown after a rerun).
DEFERRED_CALLS = {"_flash"}
# Expressions that carry text a person typed or a file brought: names (segments, campaigns,
# predictions, events, uploads), first names, rendered copy, and error messages, which quote names.
USER_TEXT = re.compile(
    r"(\bname\b|\.name\b|\bnames?\[|['\"]name['\"]|first_name|\berror\b|\bproblem\b|\.message\b|"
    r"\bline\b|\.title\b|\.body\b|segments\.describe\()"
)
# App-made text that the pattern above would mistake for user text: tier names are constants,
# and the phone mock-up escapes every piece of user text itself (tests/test_hostile.py).
APP_TEXT = re.compile(r"^(TIER_BY_NAME\[|', '\.join\(\(TIER_BY_NAME|limits\.phone_mockup_html\()")


def _is_plain(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "plain"


def _unescaped_user_text(node: ast.expr) -> list[ast.expr]:
    """Parts of a text expression that carry user text without going through plain()."""
    if _is_plain(node) or isinstance(node, ast.Constant):
        return []
    if isinstance(node, ast.JoinedStr):
        return [
            part
            for value in node.values
            if isinstance(value, ast.FormattedValue)
            for part in _unescaped_user_text(value.value)
        ]
    if isinstance(node, ast.BinOp):
        return _unescaped_user_text(node.left) + _unescaped_user_text(node.right)
    if isinstance(node, ast.IfExp):
        return _unescaped_user_text(node.body) + _unescaped_user_text(node.orelse)
    source = ast.unparse(node)
    return [node] if USER_TEXT.search(source) and not APP_TEXT.match(source) else []


def _markdown_texts(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in MARKDOWN_CALLS and isinstance(node.func, ast.Attribute) or name in DEFERRED_CALLS:
            yield from node.args[:2] if name in DEFERRED_CALLS else node.args[:1]
            yield from (k.value for k in node.keywords if k.arg in ("label", "body"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_escape_user_text_before_markdown_reads_it(page):
    tree = ast.parse(page.read_text(encoding="utf-8"))
    leaks = [
        f"{page.name}:{part.lineno}: {ast.unparse(part)}"
        for text in _markdown_texts(tree)
        for part in _unescaped_user_text(text)
    ]
    assert leaks == [], "user text reaches Markdown without plain(): " + "; ".join(leaks)


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

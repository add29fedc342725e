"""User text shown inside Markdown: the one escaping helper pages use.

Streamlit reads Markdown in st.markdown, st.write, captions, alerts, toasts and widget labels.
A segment named `![x](https://evil.example/pixel)` would load an image there, `[pay](http://…)`
would become a link and `$x$` a formula. `plain` escapes every Markdown and HTML character, so
names of segments, campaigns and predictions, first names, event names and the messages that
quote them read exactly as typed.
"""

from __future__ import annotations

import re

# Characters that make markup anywhere in a line (emphasis, code, links, images, HTML, strike,
# math, tables, entities); every ASCII punctuation character may be backslash-escaped in CommonMark.
_ANYWHERE = re.compile(r"([\\`*_{}\[\]<>!~$|&])")
# At the start of a line: headings, bullet lists, setext underlines; and ordered lists ("1." or "1)").
_BLOCK_MARK = re.compile(r"^([#+=-])")
_ORDERED_MARK = re.compile(r"^(\d+)([.)])")
# Bare URLs that GitHub-flavoured Markdown turns into links by itself.
_WWW = re.compile(r"(?i)\b(www)\.")
_SCHEME = re.compile(r":(?=//)")


def _line(text: str) -> str:
    text = _ANYWHERE.sub(r"\\\1", " ".join(text.split()))
    text = _SCHEME.sub(r"\\:", _WWW.sub(r"\1\\.", text))
    return _ORDERED_MARK.sub(r"\1\\\2", _BLOCK_MARK.sub(r"\\\1", text))


def plain(text: object) -> str:
    """`text` escaped for Markdown: shown literally; line breaks kept as line breaks."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "  \n".join(_line(line) for line in lines)

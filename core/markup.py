"""User text shown inside Markdown: the one escaping helper pages use.

Streamlit reads Markdown in st.markdown, st.write, captions, alerts, toasts and widget labels.
A segment named `![x](https://evil.example/pixel)` would load an image there, `[pay](http://…)`
would become a link and `$x$` a formula. `plain` escapes every Markdown and HTML character, so
names of segments, campaigns and predictions, first names, event names and the messages that
quote them read exactly as typed.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones
# Markdown, Streamlit's extensions (:color[...], :material/icon:, $math$) or HTML give a meaning.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&\"'])")


def plain(text: object) -> str:
    """`text` escaped for Markdown: shown literally; line breaks kept as line breaks."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "  \n".join(_SPECIAL.sub(r"\\\1", " ".join(line.split())) for line in lines)

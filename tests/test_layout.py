"""The layout's promises: core holds logic and never imports Streamlit; pages are the UI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_FILES = sorted((ROOT / "core").rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit(path):
    assert "streamlit" not in _imported_modules(path)


def test_every_page_is_in_the_navigation():
    """A screen (it calls ensure_frame) is in app.py's navigation; any other module in pages/ is a
    part of a screen (a render function) that a screen imports."""
    app = (ROOT / "app.py").read_text(encoding="utf-8")
    pages = {page: page.read_text(encoding="utf-8") for page in sorted((ROOT / "pages").glob("*.py"))}
    parts = {
        alias.name
        for source in pages.values()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "pages"
        for alias in node.names
    }
    for page, source in pages.items():
        if page.name == "__init__.py":
            continue
        if "ensure_frame(" in source:
            assert f'"pages/{page.name}"' in app, f"{page.name} is not in app.py's navigation"
        else:
            assert page.stem in parts, f"{page.name} is neither a screen in the navigation nor imported by one"

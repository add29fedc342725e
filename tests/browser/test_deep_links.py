"""Deep links: a shared URL opens the screen it names with its selection, even as the very first
request of a freshly started server (when Streamlit first routes pages/ files without the frame,
see pages.ensure_frame), and never flashes Streamlit's "Page not found" dialog on the way."""

from __future__ import annotations

import pytest

from core import predictions as P
from core.db import get_engine
from tests.browser.conftest import open_page, start_app, wait_for_app

# Remember whether the "Page not found" dialog ever appeared, however briefly.
WATCH_NOT_FOUND = """
window.__notFound = false;
new MutationObserver(() => {
    if (document.body && document.body.innerText.includes('Page not found')) window.__notFound = true;
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture(scope="module")
def fresh_app(browser_database):
    """A second server on the same database that no browser has talked to yet."""
    yield from start_app(browser_database, "app-fresh.log")


@pytest.fixture
def new_page(browser, fresh_app, request):
    pages = []

    def make():
        generator = open_page(browser, fresh_app, request)
        page = next(generator)
        page.add_init_script(WATCH_NOT_FOUND)
        pages.append(generator)
        return page

    yield make
    for generator in pages:
        next(generator, None)


def _full_id(database_url: str) -> int:
    return next(p.id for p in P.list_predictions(get_engine(database_url)) if p.kind == "full")


def _score_range(page) -> tuple[str, str]:
    low = page.get_by_role("slider", name="Score range: lowest score")
    high = page.get_by_role("slider", name="Score range: highest score")
    return low.get_attribute("aria-valuenow"), high.get_attribute("aria-valuenow")


def test_a_predictions_link_works_first_on_a_fresh_server_and_after(new_page, browser_database):
    link = f"/predictions?prediction={_full_id(browser_database)}&min=40&max=90"
    for visit in ("first request of a fresh server", "warm server"):
        page = new_page()
        page.goto(link)
        wait_for_app(page)
        page.get_by_role("heading", name="Predictions").wait_for()
        assert _score_range(page) == ("40", "90"), visit
        page.get_by_text("Selection: scores 40–90").wait_for()
        # The Predictions screen is the app's default page, served at /.
        assert page.url.endswith(link.replace("/predictions", "/")), (visit, page.url)
        assert not page.evaluate("window.__notFound"), f"'Page not found' appeared ({visit})"


@pytest.mark.parametrize(
    ("path", "heading", "shows"),
    [
        ("segments", "Segments", "Likelihood category for"),
        ("campaigns", "Campaigns", "Users from the Predictions page: High likelihood of “"),
    ],
)
def test_a_carried_selection_opens_the_segment_builder_and_the_composer(
    new_page, browser_database, path, heading, shows
):
    page = new_page()
    page.goto(f"/{path}?prediction={_full_id(browser_database)}&categories=High")
    wait_for_app(page)
    page.get_by_role("heading", name=heading).wait_for()
    page.get_by_text(shows).first.wait_for()
    assert f"/{path}?" in page.url and "categories=High" in page.url
    assert not page.evaluate("window.__notFound")

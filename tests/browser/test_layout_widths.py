"""Layout: from a small laptop (800 px) to a desktop (1280 px) the four screens keep the whole width
and never cut a figure, a button label, a key label or a heading short ("Create …", "50,00…").

An element is cut when its text needs more room than it has: `scrollWidth > clientWidth`, for the
element itself or anything inside it (Streamlit puts the ellipsis on an inner wrapper).
"""

from __future__ import annotations

import pytest

from core import predictions as P
from core.db import get_engine
from tests.browser import ui
from tests.browser.conftest import screenshot, wait_for_app, wait_for_lazy_elements

WIDTHS = [800, 1280]
# The key texts a marketer reads: figures and their labels, buttons, widget labels and headings.
KEY_TEXT = ", ".join(
    f"[data-testid=stMain] {selector}"
    for selector in (
        "[data-testid=stMetricValue]",
        "[data-testid=stMetricLabel]",
        "button",
        "[data-testid=stWidgetLabel]",
        "[data-testid=stHeading]",
    )
)
CUT_TEXTS = """(selector) => [...document.querySelectorAll(selector)]
    .filter(key => key.offsetParent !== null)
    .flatMap(key => [key, ...key.querySelectorAll('*')]
        .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth)
        .map(el => `${(key.getAttribute('data-testid') || key.tagName)} "${key.innerText.trim().slice(0, 60)}": `
                   + `needs ${el.scrollWidth} px, has ${el.clientWidth} px`))"""
# ... and never pushed past the right edge of the content area (a column too narrow for it).
PAST_THE_EDGE = """(selector) => {
    const area = document.querySelector('[data-testid=stMainBlockContainer]');
    const edge = area.getBoundingClientRect().right - parseFloat(getComputedStyle(area).paddingRight);
    return [...document.querySelectorAll(selector)]
        .filter(key => key.offsetParent !== null && key.getBoundingClientRect().right > edge + 1)
        .map(key => `${(key.getAttribute('data-testid') || key.tagName)} "${key.innerText.trim().slice(0, 60)}": `
                    + `ends at ${Math.round(key.getBoundingClientRect().right)} px, the content ends at ${Math.round(edge)} px`);
}"""
COUNT_KEYS = "(selector) => document.querySelectorAll(selector).length"


@pytest.fixture(scope="module")
def likely_buyers(live_app) -> str:
    """The query string of the demo's full prediction, Medium and High: it fills Segments and Campaigns."""
    full = next(p for p in P.list_predictions(get_engine(live_app.database_url)) if p.kind == "full")
    return f"prediction={full.id}&categories=Medium,High"


SCREENS = {  # name -> (path, query?, a text that says the screen has drawn)
    "predictions": ("/", False, "Users selected"),
    "segments": ("/segments", True, "Audience"),
    "campaigns": ("/campaigns", True, "Campaign name"),
    "data": ("/data", False, "Events by name"),
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_no_key_text_is_cut_off(page, likely_buyers, screen, width):
    path, with_selection, drawn = SCREENS[screen]
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{path}?{likely_buyers}" if with_selection else path)
    wait_for_app(page)
    page.get_by_text(drawn, exact=True).first.wait_for()

    assert page.evaluate(COUNT_KEYS, KEY_TEXT) >= 3, "the screen drew almost nothing to check"
    assert page.evaluate(CUT_TEXTS, KEY_TEXT) == []
    assert page.evaluate(PAST_THE_EDGE, KEY_TEXT) == []
    readme = None
    if (screen, width) == ("segments", 800):  # the README shows the builder on a small laptop, navigation included
        readme = (page.get_by_test_id("stHeader"), page.get_by_test_id("likelyDownload"))
    screenshot(page, f"layout-{screen}-{width}", readme=readme)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_longest_filter_name_shows_whole_where_filters_are_added(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/segments")
    wait_for_app(page)
    ui.choose(page, "Filter", "Event likelihood category")
    chosen = ui.widget(page, "stSelectbox", "Filter").locator("input")
    value, needs, has = chosen.evaluate("input => [input.value, input.scrollWidth, input.clientWidth]")
    assert value == "Event likelihood category" and needs <= has
    assert page.evaluate(PAST_THE_EDGE, KEY_TEXT) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_screens_get_the_whole_width(page, width):
    """The navigation sits at the top: no sidebar takes 300 px of an 800 px screen."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    wait_for_app(page)
    main = page.get_by_test_id("stMain").bounding_box()
    assert main["x"] == 0
    assert main["width"] >= width - 20  # a scrollbar at most
    for title in ("Predictions", "Segments", "Campaigns", "Data"):
        assert page.get_by_role("link", name=title).first.is_visible()


# Tables that may scroll sideways at this width (their first column stays pinned), by first header.
# The Segments sample (nine columns), and Measured in campaigns (ten, with campaign names of any length).
SCROLLING_TABLES = {800: {"User id", "campaign"}, 1280: set()}
# The tables each screen must show, by first header.
TABLES = {"predictions": {"Trait"}, "segments": {"Filter", "Channel", "Tier", "User id"}, "data": {"Event", "Platform"}}
FIRST_HEADERS = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stDataFrame]')]
    .map(frame => frame.querySelector('table[role=grid] thead th')?.textContent.trim())"""
TABLES_CUT = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stDataFrame]')]
    .filter(frame => { const grid = frame.querySelector('.dvn-scroller'); return grid && grid.scrollWidth > grid.clientWidth; })
    .map(frame => frame.querySelector('table[role=grid] thead th').textContent.trim())"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("screen", ["predictions", "segments", "data"])
def test_tables_show_every_column(page, likely_buyers, screen, width):
    """Drivers and the backtest, funnel, reach, breakdown, the sample's nine columns and the Data tables
    fit without scrolling."""
    path, with_selection, drawn = SCREENS[screen]
    page.set_viewport_size({"width": width, "height": 3000})  # every grid in view, so each draws its headers
    page.goto(f"{path}?{likely_buyers}" if with_selection else path)
    wait_for_app(page)
    page.get_by_text(drawn, exact=True).first.wait_for()
    wait_for_lazy_elements(page)  # else a grid still loading is a skeleton, not yet an stDataFrame
    frames = page.get_by_test_id("stDataFrame").all()
    for frame in frames:
        frame.locator("table[role=grid] thead th").first.wait_for(state="attached")
    assert TABLES[screen] <= set(page.evaluate(FIRST_HEADERS))

    cut = set(page.evaluate(TABLES_CUT))
    for _ in range(20):  # a grid sizes its columns once it has mounted: judge the settled layout
        if cut <= SCROLLING_TABLES[width]:
            break
        page.wait_for_timeout(250)
        cut = set(page.evaluate(TABLES_CUT))
    assert cut <= SCROLLING_TABLES[width]

"""Journey 1 (the first source document): from a prediction's score range to a saved, exported segment.

Open the full prediction, move the range slider with the keyboard and watch the panel follow, pick
the High category, carry it to the segment builder, narrow it to iOS, save, export the CSV and check
the file holds as many rows as the page said. A preview prediction cannot be targeted.
"""

from __future__ import annotations

import csv
import uuid

import pytest

from core import predictions as P
from core import segments
from core.db import get_engine
from core.tiers import score_range_of
from pages import users
from tests.browser import ui
from tests.browser.conftest import screenshot, wait_for_app

FULL = "Purchase in next 30 days (full)"


@pytest.fixture(scope="module")
def engine(browser_database):
    return get_engine(browser_database)


def _prediction(engine, kind: str) -> P.PredictionInfo:
    return next(p for p in P.list_predictions(engine) if p.kind == kind)


def _selected_users(engine, prediction_id: int, low: int, high: int, categories=()) -> int:
    return P.score_distribution(engine, prediction_id).summary(low, high, tuple(categories)).selected


def _thumbs(page):
    return (
        page.get_by_role("slider", name="Score range: lowest score"),
        page.get_by_role("slider", name="Score range: highest score"),
    )


def _range(page) -> tuple[int, int]:
    start, end = _thumbs(page)
    return int(start.get_attribute("aria-valuenow")), int(end.get_attribute("aria-valuenow"))


def _users_selected(page) -> int:
    return ui.number(page.get_by_test_id("figure-selected").locator(".figure-value").inner_text())


def test_a_score_range_becomes_a_saved_exported_segment(page, engine):
    full = _prediction(engine, "full")
    page.goto("/")
    wait_for_app(page)
    assert ui.selected(page, "Prediction") == FULL
    # A first visit starts on the High tier.
    high_low, high_high = (int(v) for v in score_range_of(["High"]))
    assert _range(page) == (high_low, high_high)
    high_users = _selected_users(engine, full.id, high_low, high_high, ["High"])
    assert _users_selected(page) == high_users

    # The keyboard moves the thumbs: five steps down on the start, a page down on the end.
    start, end = _thumbs(page)
    ui.press(page, start, *["ArrowLeft"] * 5)
    low, high = _range(page)
    assert (low, high) == (high_low - 5, high_high)
    ui.press(page, end, "PageDown")
    low, high = _range(page)
    assert low == high_low - 5 and high < high_high
    assert page.get_by_test_id("score-slider-label").inner_text() == f"Selection: scores {low}–{high}"
    expected = _selected_users(engine, full.id, low, high)
    assert expected != high_users
    assert _users_selected(page) == expected
    assert f"min={low}" in page.url and f"max={high}" in page.url

    # Picking the High category sets the range to the tier again.
    page.locator(".score-slider button[data-tier=High]").click()
    wait_for_app(page)
    assert _range(page) == (high_low, high_high)
    assert page.get_by_test_id("score-slider-label").inner_text() == "Selection: High likelihood"
    assert _users_selected(page) == high_users
    screenshot(
        page,
        "predictions",
        readme=(page.get_by_role("heading", name="Predictions"), page.get_by_role("button", name="Create segment")),
    )

    # Create segment carries the selection to the builder.
    ui.click(page, "Create segment")
    page.get_by_role("heading", name="Segments").wait_for()
    wait_for_app(page)
    assert "/segments" in page.url and "categories=High" in page.url
    assert ui.selected(page, "Prediction") == full.name
    assert ui.tags(page, "Categories") == ["High"]
    assert ui.number(ui.metric(page, "Audience")) == high_users

    # An extra filter: iOS only.
    ui.choose(page, "Filter", "Platform")
    assert ui.selected(page, "Add to") == "group 1"
    ui.click(page, "Add filter")
    assert ui.tags(page, "Platform") == ["iOS"]
    definition = segments.parse_definition(
        {
            "version": 1,
            "match": "all",
            "groups": [
                {
                    "match": "all",
                    "filters": [
                        {"type": "likelihood_category", "prediction": full.id, "categories": ["High"]},
                        {"type": "platform", "values": ["iOS"]},
                    ],
                }
            ],
            "exclude": [],
        }
    )
    ios_high = segments.count(definition, engine)
    assert 0 < ios_high < high_users
    assert ui.number(ui.metric(page, "Audience")) == ios_high

    # Save under a unique name.
    name = f"High purchase likelihood on iOS {uuid.uuid4().hex[:6]}"
    ui.fill(page, "stTextInput", "Segment name", name)
    ui.click(page, "Save segment")
    page.get_by_text(f"Saved “{name}”: {users(ios_high)}.").wait_for()
    saved = next(s for s in segments.list_segments(engine) if s.name == name)
    assert segments.count(saved.definition, engine) == ios_high
    screenshot(
        page,
        "segment-builder",
        readme=(page.get_by_role("heading", name="Segments"), page.get_by_test_id("likelyDownload")),
    )

    # Export through the download link (streamed by server.py's route): one row per user shown.
    with page.expect_download() as download_info:
        page.get_by_test_id("likelyDownload").click()
    download = download_info.value
    assert download.suggested_filename == f"{name}.csv"
    with open(download.path(), encoding="utf-8", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert len(rows) == ios_high
    assert {row["platform"] for row in rows} == {"iOS"}


def test_a_preview_prediction_cannot_be_targeted(page, engine):
    preview = _prediction(engine, "preview")
    page.goto("/")
    wait_for_app(page)
    ui.choose(page, "Prediction", preview.name if "preview" in preview.name.lower() else f"{preview.name} (preview)")
    page.get_by_text("Preview prediction: a first look on real data.").wait_for()
    assert _users_selected(page) > 0
    assert page.get_by_role("button", name="Create segment").is_disabled()
    assert page.get_by_role("button", name="Create campaign").is_disabled()
    page.get_by_text(preview.not_targetable_reason).wait_for()

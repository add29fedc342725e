"""Journey 2 (the second source document): a recurring push campaign for users who lapsed two weeks ago.

Build "Lapsed users - 2 weeks" (last used more than 2 and less than 3 weeks ago) and save it; compose
the push campaign "Lapsed user message - 2 weeks" for iOS with personalised copy, see it previewed,
schedule it weekly on Thursday at 17:45 in each user's local time next to the sessions chart,
review it, launch it, and find it scheduled in the campaigns list with its next send.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from core import campaigns as cc
from core import segments
from core.campaigns import audience as aud
from core.db import get_engine
from core.timeutil import screen_time, utcnow
from pages import users
from tests.browser import ui
from tests.browser.conftest import screenshot, wait_for_app, wait_for_lazy_elements
from tests.definitions import LAPSED_2_WEEKS as LAPSED

SEGMENT = "Lapsed users - 2 weeks"
CAMPAIGN = "Lapsed user message - 2 weeks"
TITLE = 'We miss you, {{ first_name | default: "there" }}'
BODY = "It has been two weeks: see what is new since your last visit."


@pytest.fixture(scope="module")
def engine(browser_database):
    return get_engine(browser_database)


def _as_of(page) -> datetime:
    """The minute the Segments page evaluated its relative dates at (it says so under the count)."""
    caption = page.get_by_text(re.compile(r"relative dates as of \d{4}-\d\d-\d\d \d\d:\d\d UTC")).inner_text()
    stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC", caption).group(1)
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M")


def _values_between(compute, before: datetime, after: datetime) -> set[int]:
    """Every value `compute(now)` takes while a page ran: relative dates move with the clock, so a
    user can cross the 2- or 3-week line between two pages (sampled every half second)."""
    steps = int((after - before) / timedelta(milliseconds=500)) + 1
    return {compute(before + timedelta(milliseconds=500) * i) for i in range(steps)} | {compute(after)}


def _reach(engine, definition: dict):
    def compute(now: datetime) -> tuple[int, int]:
        audience, reachable = aud.reachable_user_ids(engine, definition, "push", ["iOS"], now)
        return len(audience), len(reachable)

    return compute


def _build_lapsed_segment(page, engine) -> int:
    page.goto("/segments")
    wait_for_app(page)
    ui.choose(page, "Filter", "Last used app")
    assert ui.selected(page, "Add to") == "a new group"
    ui.click(page, "Add filter")
    assert ui.selected(page, "Add to") == "group 1"
    ui.click(page, "Add filter")  # a second "Last used app" in the same group
    ui.choose(page, "When", "less than", nth=1)
    ui.fill(page, "stNumberInput", "Amount", "3", nth=1)
    assert [ui.selected(page, "When", nth=i) for i in (0, 1)] == ["more than", "less than"]
    assert [ui.widget(page, "stNumberInput", "Amount", i).locator("input").input_value() for i in (0, 1)] == ["2", "3"]
    assert [ui.selected(page, "Unit", nth=i) for i in (0, 1)] == ["weeks ago", "weeks ago"]
    page.get_by_text("AND", exact=True).wait_for()  # the group matches all its filters
    lapsed = segments.count(LAPSED, engine, _as_of(page))
    assert 0 < lapsed < 3_000
    assert ui.number(ui.metric(page, "Audience")) == lapsed

    ui.fill(page, "stTextInput", "Segment name", SEGMENT)
    ui.click(page, "Save segment")
    page.get_by_text(f"Saved “{SEGMENT}”: {users(lapsed)}.").wait_for()
    saved = next(s for s in segments.list_segments(engine) if s.name == SEGMENT)
    assert saved.definition.groups == LAPSED.groups
    return lapsed


def test_lapsed_users_get_a_weekly_push_on_thursday_evening(page, engine):
    lapsed = _build_lapsed_segment(page, engine)

    # Step 1, target: the saved segment, push, iOS only.
    page.goto("/campaigns")
    wait_for_app(page)
    page.get_by_text("Step 1 of 4: Target").wait_for()
    ui.fill(page, "stTextInput", "Campaign name", CAMPAIGN)
    ui.choose(page, "Segment", SEGMENT)
    assert ui.selected(page, "Channel") == "Push notification"
    before = screen_time()  # the minute the page evaluates relative dates at
    ui.multi_choose(page, "Platforms", ["iOS"])
    assert ui.tags(page, "Platforms") == ["iOS"]
    shown = ui.number(ui.metric(page, "Users in the audience today"))
    reachable = ui.number(ui.metric(page, "Reachable by push notification"))
    assert (shown, reachable) in _values_between(_reach(engine, LAPSED), before, utcnow())
    assert abs(shown - lapsed) <= 5 and 0 < reachable < shown
    page.get_by_text(re.compile(r"Reachable per platform: iOS [\d,]+ · Android [\d,]+ \(excluded\)")).wait_for()
    ui.click(page, "Next")

    # Step 2, message: personalised copy, previewed as a real user on an iOS lock screen.
    page.get_by_text("Step 2 of 4: Message").wait_for()
    ui.fill(page, "stTextInput", "Title", TITLE)
    ui.fill(page, "stTextArea", "Body", BODY)
    page.get_by_role("heading", name="Preview").wait_for()
    heading = page.get_by_text(re.compile(r"^User u\d+ \(")).first.inner_text()  # as the Segments page names users
    first_name = re.match(r"User u\d+ \(([^,]+), iOS,", heading).group(1)
    greeting = "We miss you, " + ("there" if first_name == "no first name" else first_name)
    mockups = page.get_by_test_id("stMarkdownContainer").filter(has_text="LIKELY · now")
    assert mockups.count() == 2  # the iOS lock screen and banner
    for mockup in mockups.all():
        text = mockup.inner_text()
        assert greeting in text and BODY in text and "{{" not in text
    ui.click(page, "Next")

    # Step 3, schedule: weekly on Thursday at 17:45, each user's local time.
    page.get_by_text("Step 3 of 4: Schedule").wait_for()
    ui.radio(page, "When", "Recurring")
    assert ui.selected(page, "Repeats") == "Weekly"
    assert ui.tags(page, "On days") == ["Thursday"]
    assert page.get_by_role("checkbox", name="Deliver in each user's local time zone").is_checked()
    # The time field answers the keyboard: an hour earlier, then back to 17:45.
    hour = page.get_by_role("spinbutton", name="hour, Time of day")
    assert (hour.inner_text(), page.get_by_role("spinbutton", name="minute, Time of day").inner_text()) == ("17", "45")
    ui.press(page, hour, "ArrowDown", "Tab")
    page.get_by_text("Every week on Thursday at 16:45, in each user's local time zone").first.wait_for()
    ui.press(page, hour, "ArrowUp", "Tab")
    page.get_by_text("Every week on Thursday at 17:45, in each user's local time zone").first.wait_for()
    page.get_by_role("heading", name="When this audience uses the app").wait_for()
    wait_for_lazy_elements(page)
    charts = page.get_by_test_id("stPlotlyChart")
    assert charts.count() >= 2
    page.get_by_text(re.compile(r"Sessions by local hour of day \(Thursday, [\d,]+ sessions\)")).wait_for()
    page.get_by_text("send 17:45").wait_for()
    page.get_by_role("heading", name="Next sends").wait_for()
    page.get_by_text("How the first send rolls across time zones").wait_for()
    screenshot(page, "campaign-schedule")  # test-artifacts only: the next-sends table and the rollout chart
    ui.click(page, "Next")

    # Step 4, review and launch.
    before = screen_time()  # the minute the page evaluates relative dates at
    page.get_by_text("Step 4 of 4: Review & launch").wait_for()
    review = dict(
        zip(
            page.get_by_test_id("stTable").locator("tbody th").all_inner_texts(),
            page.get_by_test_id("stTable").locator("tbody td").all_inner_texts(),
            strict=True,
        )
    )
    assert review["Campaign name"] == CAMPAIGN
    assert review["Audience"] == f"Segment “{SEGMENT}”"
    assert review["Channel"] == "Push notification"
    assert review["Platforms"] == "iOS"
    reach_now = _values_between(_reach(engine, LAPSED), before, utcnow())
    assert (number := ui.number(review["Reachable users today"])) in {r for _, r in reach_now}, number
    assert review["Title"] == TITLE
    assert review["Schedule"].startswith("Every week on Thursday at 17:45, in each user's local time zone")
    page.get_by_text("Ready to launch.").wait_for()
    launch = page.get_by_role("button", name="Launch campaign")
    screenshot(page, "campaign-review", readme=(page.get_by_role("heading", name="Campaigns"), launch))
    ui.click(page, "Launch campaign")

    # The list shows it scheduled, with its next send.
    page.get_by_text(f"Campaign “{CAMPAIGN}” launched.").wait_for()
    rows = {row["Name"]: row for row in ui.table(page.get_by_test_id("stDataFrame").first)}
    row = rows[CAMPAIGN]
    assert row["Status"] == "scheduled"
    assert re.fullmatch(r"Thu \d\d \w{3} \d{4} 17:45 local", row["Next send"]), row["Next send"]
    stored = cc.list_campaigns(engine).set_index("name").loc[CAMPAIGN]
    assert stored["status"] == "scheduled"
    assert row["Next send"] == stored["next_send"]
    screenshot(page, "campaigns-list")

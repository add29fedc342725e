"""The Campaigns page, driven like a marketer: the lapsed-users tutorial and a Predictions selection."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core import segments
from core.campaigns.draft import ComposerDraft
from core.campaigns.spec import parse_schedule
from core.campaigns.store import next_send
from core.db import bulk_insert, session_scope
from core.markup import plain
from core.models import Campaign, Prediction
from core.selection import LikelihoodSelection
from core.tiers import categories_for
from core.timeutil import utcnow
from tests.definitions import LAPSED_2_WEEKS

ROOT = Path(__file__).resolve().parent.parent


def open_campaigns(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if query_params:
        at.query_params.update(query_params)
    at.switch_page("pages/campaigns.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, label: str) -> None:
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]


def stored(engine, name: str) -> Campaign:
    with session_scope(engine) as session:
        return session.scalars(select(Campaign).where(Campaign.name == name)).one()


def test_lapsed_users_tutorial_end_to_end(app_database):
    segment = segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED_2_WEEKS)
    opened_on = utcnow().date()  # the composer's default start date (the test may cross midnight)
    at = open_campaigns()

    # 1. Target: the segment, push, iOS only.
    at.text_input(key="c_name").set_value("Lapsed user message - 2 weeks")
    at.selectbox(key="c_segment").set_value(segment.id)
    at.selectbox(key="c_channel").set_value("push")
    at.multiselect(key="c_platforms").set_value(["iOS"])
    before = segments.count(LAPSED_2_WEEKS, app_database)  # at the current minute, as the page counts
    at.run()
    after = segments.count(LAPSED_2_WEEKS, app_database)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Users in the audience today"].replace(",", "")) in {before, after}
    assert int(metrics["Reachable by push notification"].replace(",", "")) > 0
    click(at, "Next")

    # 2. Message, with a live preview on a phone.
    at.text_input(key="c_title").set_value('We miss you, {{ first_name | default: "there" }}')
    at.text_area(key="c_body").set_value("New arrivals since your last visit {% if x %}").run()
    assert [e.value for e in at.error] == ["Line 1: expected tag endif, found end of expression"]
    at.text_area(key="c_body").set_value("New arrivals since your last visit: come and see them.").run()
    assert not at.error
    assert any("iOS lock screen" in m.value for m in at.markdown)
    click(at, "Next")

    # 3. Weekly on Thursday at 17:45 in each user's local time, with the sessions chart.
    at.radio(key="c_kind").set_value("recurring").run()
    at.selectbox(key="c_frequency").set_value("weekly").run()
    at.multiselect(key="c_weekdays").set_value(["TH"])
    at.time_input(key="c_time").set_value(time(17, 45))
    at.checkbox(key="c_local_time").check().run()
    assert not at.exception
    assert any(i.value.startswith("Sessions peak at") for i in at.info)
    assert any("each lapsed user is messaged exactly once" in s.value for s in at.success)
    next_sends = at.dataframe[0].value
    assert next_sends["Occurrence"].str.endswith("17:45").all()
    assert next_sends["Occurrence"].str.startswith("Thu").all()
    click(at, "Next")

    # 4. Review and launch.
    summary = at.table[0].value["Value"].to_dict()
    assert summary["Audience"] == "Segment “Lapsed users - 2 weeks”"
    assert summary["Platforms"] == "iOS"
    assert summary["Schedule"].startswith("Every week on Thursday at 17:45, in each user's local time zone")
    assert not at.error
    click(at, "Launch campaign")
    assert any("launched" in s.value for s in at.success)

    campaign = stored(app_database, "Lapsed user message - 2 weeks")
    assert (campaign.status, campaign.segment_id, campaign.channel, campaign.platforms) == (
        "scheduled",
        segment.id,
        "push",
        ["iOS"],
    )
    assert campaign.schedule["start"] in {opened_on.isoformat(), utcnow().date().isoformat()}
    assert campaign.schedule == {
        "kind": "recurring",
        "time": "17:45",
        "start": campaign.schedule["start"],
        "local_time": True,
        "frequency": "weekly",
        "interval": 1,
        "end": {"kind": "never"},
        "weekdays": ["TH"],
        "month_day": None,
    }
    assert campaign.launched_at is not None
    upcoming = next_send(parse_schedule(campaign.schedule), campaign.status, campaign.launched_at, utcnow())
    assert upcoming.weekday() == 3 and upcoming.time() == time(17, 45)
    assert timedelta(0) <= upcoming - utcnow() <= timedelta(days=8)
    listing = at.dataframe[0].value.set_index("name")
    assert listing.loc["Lapsed user message - 2 weeks", "status"] == "scheduled"
    assert listing.loc["Lapsed user message - 2 weeks", "next_send"] == f"{upcoming:%a %d %b %Y %H:%M} local"


def test_without_a_saved_segment_the_target_step_links_to_where_audiences_are_made(app_database):
    at = open_campaigns()
    assert any(i.value.startswith("No saved segment yet") for i in at.info)
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert links == {"Build a segment": "segments", "Pick by likelihood": ""}  # "" is the default page


def add_prediction(engine) -> int:
    with session_scope(engine) as session:
        prediction = Prediction(name="Test purchase", event="purchase", window_days=30, kind="full", as_of=utcnow())
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id
    with engine.begin() as connection:
        ids = [r[0] for r in connection.exec_driver_sql("SELECT id FROM users ORDER BY id")]
        scores = np.random.default_rng(3).uniform(0, 100, len(ids)).round(1)
        bulk_insert(
            connection,
            "prediction_scores",
            ("prediction_id", "user_id", "score", "category"),
            zip([prediction_id] * len(ids), ids, scores.tolist(), categories_for(scores).tolist(), strict=True),
        )
    return prediction_id


def test_campaign_from_a_predictions_selection_keeps_it_as_its_audience(app_database):
    prediction_id = add_prediction(app_database)
    selection = LikelihoodSelection(prediction_id, categories=("High",))
    at = open_campaigns(selection.to_query_params())
    assert at.radio(key="c_source").value == "selection"
    at.text_input(key="c_name").set_value("High likelihood: buy now").run()
    click(at, "Next")
    assert at.selectbox(key="c_prediction").value == prediction_id
    at.text_input(key="c_title").set_value("{{ first_name }}, {{ offer }} today")
    at.text_area(key="c_body").set_value("Your score is {{ likelihood_score }} ({{ likelihood_tier }}).").run()
    at.radio(key="c_preview_mode").set_value("One user per tier").run()
    assert not at.exception
    assert any("High tier — user" in m.value for m in at.markdown)
    click(at, "Next")
    click(at, "Next")
    click(at, "Launch campaign")
    campaign = stored(app_database, "High likelihood: buy now")
    assert campaign.segment_id is None
    assert campaign.audience["groups"][0]["filters"] == [selection.to_filter()]
    assert campaign.message["prediction_id"] == prediction_id
    assert campaign.schedule == {"kind": "now"}
    assert isinstance(campaign.launched_at, datetime)


# --- the composer's one draft, and what a marketer reads ------------------------------------------

OFFER_BODY = "Here is {{ offer }} to welcome you back."
MISSING_PREDICTION = (
    "The copy uses {{ offer }}, which comes from a prediction: choose one under “Likelihood from prediction”."
)


def review_rows(at: AppTest) -> dict[str, str]:
    return at.table[0].value["Value"].to_dict()


def test_an_offer_without_a_prediction_is_an_error_under_the_body_and_blocks_launch(app_database):
    segment = segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED_2_WEEKS)
    at = open_campaigns()
    at.text_input(key="c_name").set_value("Welcome back")
    at.selectbox(key="c_segment").set_value(segment.id).run()
    click(at, "Next")
    assert at.selectbox(key="c_prediction").value == 0  # the segment has no prediction of its own
    at.text_input(key="c_title").set_value("Hi")
    at.text_area(key="c_body").set_value(OFFER_BODY).run()
    assert [e.value for e in at.error] == [MISSING_PREDICTION]
    click(at, "Next")
    click(at, "Next")
    rows = review_rows(at)
    assert "Offers" not in rows  # offers that cannot apply are not shown
    assert rows["Likelihood from prediction"] == "None"
    assert plain(MISSING_PREDICTION) in [e.value for e in at.error]
    [launch] = [b for b in at.button if b.label == "Launch campaign"]
    assert launch.disabled


def test_a_segment_on_a_prediction_gives_the_copy_that_prediction_and_the_review_its_name(app_database):
    prediction_id = add_prediction(app_database)
    high = segments.definition_of({"type": "likelihood_category", "prediction": prediction_id, "categories": ["High"]})
    segment = segments.save_segment(app_database, "Likely buyers", high)
    at = open_campaigns()
    assert at.text_input(key="c_name").placeholder == "e.g. Spring sale - weekly push"
    at.selectbox(key="c_segment").set_value(segment.id).run()
    assert at.text_input(key="c_name").placeholder == "Likely buyers - message"
    at.text_input(key="c_name").set_value("Buy now").run()
    click(at, "Next")
    assert at.selectbox(key="c_prediction").value == prediction_id
    at.text_input(key="c_title").set_value("Hi")
    at.text_area(key="c_body").set_value(OFFER_BODY).run()
    assert not at.error
    click(at, "Next")
    click(at, "Next")
    rows = review_rows(at)
    assert rows["Likelihood from prediction"] == "Test purchase"
    assert rows["Offers"] == "High: free delivery · Medium: 10% off · Low: 25% off"
    assert not any("prediction #" in value for value in rows.values())


def test_a_predictions_selection_is_named_by_its_prediction_and_suggests_a_name(app_database):
    prediction_id = add_prediction(app_database)
    at = open_campaigns(LikelihoodSelection(prediction_id, categories=("High",)).to_query_params())
    assert at.text_input(key="c_name").placeholder == "High likelihood - Test purchase"
    assert [i.value for i in at.info] == ["Users from the Predictions page: High likelihood of “Test purchase”."]
    for _ in range(3):
        click(at, "Next")
    assert review_rows(at)["Audience"] == "Predictions selection: High likelihood of “Test purchase”"


def test_the_draft_is_the_state_of_record_across_steps(app_database):
    segment = segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED_2_WEEKS)
    at = open_campaigns()
    at.text_input(key="c_name").set_value("Lapsed user message - 2 weeks")
    at.selectbox(key="c_segment").set_value(segment.id).run()
    click(at, "Next")
    at.text_input(key="c_title").set_value("We miss you").run()
    preview = [m.value for m in at.markdown if m.value.startswith("**User ")]
    assert preview and re.match(r"\*\*User u\d+ \(", preview[0]), preview  # the id the Segments page shows
    click(at, "Back")
    assert "c_title" not in at.session_state  # the step's widgets are gone, their values are not
    draft = at.session_state["composer_draft"]
    assert isinstance(draft, ComposerDraft)
    assert (draft.name, draft.segment_id, draft.message.title) == (
        "Lapsed user message - 2 weeks",
        segment.id,
        "We miss you",
    )
    click(at, "Next")
    assert at.text_input(key="c_title").value == "We miss you"  # seeded again from the draft

    click(at, "Next")
    at.radio(key="c_kind").set_value("once").run()
    click(at, "Next")
    click(at, "Save draft")
    saved = stored(app_database, "Lapsed user message - 2 weeks")
    assert saved.status == "draft"
    assert (saved.schedule["kind"], saved.message["title"]) == ("once", "We miss you")

    click(at, "Start over")
    assert at.text_input(key="c_name").value == ""
    at.radio(key="campaigns_view").set_value("Campaigns").run()
    click(at, "Edit draft")
    assert at.text_input(key="c_name").value == "Lapsed user message - 2 weeks"
    assert at.session_state["composer_draft"].campaign_id == saved.id


def test_the_audience_says_the_minute_it_was_counted_at(app_database):
    """Relative dates move with the clock: the figure names its minute, and is exact at that minute."""
    segment = segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED_2_WEEKS)
    at = open_campaigns()
    at.selectbox(key="c_segment").set_value(segment.id).run()

    [note] = [c.value for c in at.caption if c.value.startswith("Exact counts, relative dates as of ")]
    minute = datetime.strptime(note.removeprefix("Exact counts, relative dates as of ")[:16], "%Y-%m-%d %H:%M")
    [audience] = [m for m in at.metric if m.label == "Users in the audience today"]
    assert int(audience.value.replace(",", "")) == segments.count(LAPSED_2_WEEKS, app_database, minute)
    assert f"Counted exactly at {minute:%H:%M} UTC" in audience.help

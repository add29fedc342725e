"""The Campaigns page's Results view and the composer's measurement and variant editors (AppTest).

Delivery is simulated (tests/results_fixtures.py) until the worker of issue 13 lands.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core import segments
from core.campaigns import CampaignSpec, demo_response, dispatch, launch
from core.campaigns.results import campaign_results
from core.db import session_scope
from core.models import Campaign
from core.timeutil import utcnow
from tests.results_fixtures import ALL_USERS, planted_prediction, simulate_delivery

ROOT = Path(__file__).resolve().parent.parent


def open_view(view: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/campaigns.py")
    at.run()
    at.radio(key="campaigns_view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sent_demo_campaign(engine, name: str = "Discount for the undecided") -> int:
    """A send-now campaign on a planted prediction, launched 5 days ago, delivered, answered by the demo."""
    launched = utcnow().replace(microsecond=0) - timedelta(days=5)
    spec = CampaignSpec(
        name=name,
        audience=ALL_USERS,
        channel="in_app",
        message={"title": "", "body": "Here is {{ offer }}", "prediction_id": planted_prediction(engine)},
        settings={"reeligible": True, "control_percent": 50},
    )
    campaign = launch(spec, engine, now=launched)
    dispatch(engine, until=launched, campaign_ids=[campaign])
    simulate_delivery(engine)
    demo_response.respond(engine, utcnow())
    return campaign


def test_results_view_shows_core_figures(app_database):
    campaign = sent_demo_campaign(app_database)
    at = open_view("Results")
    expected = campaign_results(campaign, app_database).overall
    c = expected.comparison
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Treated"] == f"{c.treated:,}"
    assert metrics["Control"] == f"{c.control:,}"
    assert metrics["Delivered"] == f"{expected.delivered:,}"
    assert metrics["Converted (treated)"] == f"{c.converted_treated:,}"
    assert metrics["Uplift"] == f"{c.uplift * 100:+.2f} pts"
    assert metrics["p-value"] == f"{c.p_value:.3f}"
    assert metrics["Relative uplift"] == f"{c.relative_uplift * 100:+.1f}%"
    assert metrics["Revenue per user (treated)"] == f"{expected.revenue_per_user_treated:,.2f}"
    tiers = at.dataframe[0].value
    assert tiers["tier"].tolist() == ["High", "Medium", "Low"]
    by_tier = campaign_results(campaign, app_database).by_tier
    assert tiers["treated"].tolist() == [by_tier[t].comparison.treated for t in ("High", "Medium", "Low")]
    assert any("Converted = performed 'purchase' within 3 days" in c.value for c in at.caption)


def test_results_view_without_launched_campaigns_says_so(app_database):
    at = open_view("Results")
    assert [i.value for i in at.info] == ["No campaign has been launched yet: results appear here once one sends."]


def test_composer_sets_control_window_and_ab_variants(app_database):
    segment = segments.save_segment(app_database, "Everyone", segments.parse_definition(ALL_USERS))
    at = open_view("Compose")
    at.text_input(key="c_name").set_value("A/B offers")
    at.selectbox(key="c_segment").set_value(segment.id)
    at.selectbox(key="c_channel").set_value("in_app").run()
    at.radio(key="composer_step").set_value("Message").run()
    at.text_area(key="c_body").set_value("Here is what is new")  # no prediction: the copy may not use {{ offer }}
    at.checkbox(key="c_ab").check().run()
    at.number_input(key="c_v0_share").set_value(70)
    at.number_input(key="c_v1_share").set_value(20).run()
    assert [e.value for e in at.error] == ["Variant shares must add up to 100%, not 90%."]
    at.number_input(key="c_v1_share").set_value(30)
    at.number_input(key="c_v1_delay").set_value(120)
    at.text_input(key="c_v1_offer_Medium").set_value("20% off").run()
    assert not at.error
    at.radio(key="composer_step").set_value("Schedule").run()
    at.slider(key="c_control").set_value(20)
    at.number_input(key="c_window").set_value(7).run()
    at.radio(key="composer_step").set_value("Review & launch").run()
    review = at.table[0].value
    assert review.loc["Control group", "Value"] == "20% of the audience, never messaged"
    assert review.loc["A/B variants", "Value"] == "A: 70% · B: 30%, 120 min later"
    [launch_button] = [b for b in at.button if b.label == "Launch campaign"]
    launch_button.click().run()
    assert not at.exception
    with session_scope(app_database) as session:
        stored = session.scalars(select(Campaign).where(Campaign.name == "A/B offers")).one()
        settings, variants = stored.settings, stored.message["ab_variants"]
    assert (settings["control_percent"], settings["conversion_window_days"], settings["conversion_event"]) == (
        20,
        7,
        "session",
    )
    assert [(v["name"], v["share"], v["delay_minutes"], v["offers"]) for v in variants] == [
        ("A", 70, 0, {}),
        ("B", 30, 120, {"Medium": "20% off"}),
    ]

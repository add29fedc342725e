"""Journey: the worker sent a demo campaign five days ago and the demo users answered; the marketer
opens Results and sees exactly core's figures."""

from __future__ import annotations

from datetime import timedelta

from core import worker
from core.campaigns import CampaignSpec, launch
from core.campaigns.results import campaign_results
from core.db import get_engine
from core.predictions import find_prediction
from core.timeutil import utcnow
from tests.browser import ui
from tests.browser.conftest import screenshot, wait_for_app
from tests.results_fixtures import ALL_USERS

CAMPAIGN = "Winback offer - measured"


def _send_demo_campaign(engine) -> int:
    launched = utcnow().replace(microsecond=0) - timedelta(days=5)
    prediction = find_prediction(engine, "Purchase in next 30 days")
    spec = CampaignSpec(
        name=CAMPAIGN,
        audience=ALL_USERS,
        channel="in_app",
        message={"title": "", "body": "Here is {{ offer }}", "prediction_id": prediction.id},
        settings={"reeligible": True, "control_percent": 50},
    )
    campaign = launch(spec, engine, now=launched)
    status = worker.WorkerStatus(last_refresh="9999-12-31")  # no score refresh in this journey
    sent = worker.run_cycle(engine, now=launched + timedelta(seconds=1), status=status)  # dispatch and deliver
    assert sent.delivered.sent > 0 and not sent.errors
    answered = worker.run_cycle(engine, now=utcnow(), status=status)  # the demo's users answer since
    assert answered.demo_conversions > 0 and not answered.errors
    return campaign


def test_results_show_cores_numbers(page, browser_database):
    engine = get_engine(browser_database)
    campaign = _send_demo_campaign(engine)
    page.goto("/campaigns")
    wait_for_app(page)
    page.get_by_test_id("stRadio").first.get_by_text("Results", exact=True).click()
    wait_for_app(page)
    ui.choose(page, "Results of", CAMPAIGN)
    results = campaign_results(campaign, engine)  # the window closed days ago: nothing moves any more
    overall, c = results.overall, results.overall.comparison
    assert ui.metric(page, "Treated") == f"{c.treated:,}"
    assert ui.metric(page, "Control") == f"{c.control:,}"
    assert ui.metric(page, "Delivered") == f"{overall.delivered:,}"
    assert ui.metric(page, "Audience") == f"{overall.audience:,}"
    assert ui.metric(page, "Converted (treated)") == f"{c.converted_treated:,}"
    assert ui.metric(page, "Converted (control)") == f"{c.converted_control:,}"
    assert ui.metric(page, "Uplift") == f"{c.uplift * 100:+.2f} pts"
    assert ui.metric(page, "p-value") == f"{c.p_value:.3f}"
    page.get_by_text(c.verdict(), exact=True).wait_for()
    tiers = ui.table(page.get_by_test_id("stDataFrame").first)
    assert [row["tier"] for row in tiers] == list(results.by_tier)
    assert [int(row["treated"].replace(",", "")) for row in tiers] == [
        r.comparison.treated for r in results.by_tier.values()
    ]
    screenshot(page, "campaign-results")

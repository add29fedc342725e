"""Back to the prediction: campaigns that targeted it, their measured uplift per tier next to the playbook."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.campaigns import CampaignSpec, demo_response, dispatch, launch
from core.campaigns.results import campaign_results, evidence_for_prediction
from core.db import session_scope
from core.markup import plain
from core.models import Campaign
from core.predictions import find_prediction
from core.predictions.playbook import PLAYBOOK
from core.timeutil import utcnow
from tests import prediction_fixtures
from tests.results_fixtures import ALL_USERS, simulate_delivery

trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
trained_app = prediction_fixtures.trained_app
ROOT = Path(__file__).resolve().parent.parent
FULL = "Purchase in next 30 days"


def _sent(engine, name: str, prediction_id: int | None) -> int:
    launched = utcnow().replace(microsecond=0) - timedelta(days=5)
    spec = CampaignSpec(
        name=name,
        audience=ALL_USERS,
        channel="in_app",
        message={
            "title": "",
            "body": "Here is {{ offer }}" if prediction_id else "Here is something new",  # offers need a prediction
            "prediction_id": prediction_id,
            "offers": {"Low": "25% off"},
        },
        settings={"reeligible": True, "control_percent": 30},
    )
    campaign = launch(spec, engine, now=launched)
    dispatch(engine, until=launched, campaign_ids=[campaign])
    simulate_delivery(engine)
    demo_response.respond(engine, utcnow())
    return campaign


def test_evidence_lists_each_campaign_on_the_prediction_per_tier(trained_app):
    full = find_prediction(trained_app, FULL)
    targeted = _sent(trained_app, "On the prediction", full.id)
    _sent(trained_app, "Without a prediction", None)
    evidence = evidence_for_prediction(full.id, trained_app)
    assert set(evidence["campaign"]) == {"On the prediction"}
    by_tier = campaign_results(targeted, trained_app).by_tier
    assert evidence["tier"].tolist() == list(by_tier)
    for row in evidence.itertuples():
        measured = by_tier[row.tier].comparison.uplift  # None (shown empty) when a tier has no control user
        assert row.uplift == pytest.approx(float("nan") if measured is None else measured, nan_ok=True)
        assert row.playbook_discount == PLAYBOOK[row.tier]["discount"]
    assert evidence.set_index("tier").loc["Low", "offer"] == "25% off"


def test_predictions_page_shows_the_measured_uplift_per_tier(trained_app):
    full = find_prediction(trained_app, FULL)
    _sent(trained_app, "On the prediction", full.id)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Measured in campaigns" in [s.value for s in at.subheader]
    [shown] = [d.value for d in at.dataframe if "campaign" in d.value.columns]
    expected = evidence_for_prediction(full.id, trained_app)
    assert shown["tier"].tolist() == expected["tier"].tolist()
    assert shown["uplift"].tolist() == pytest.approx((expected["uplift"].astype(float) * 100).tolist(), nan_ok=True)
    verdicts = [m.value for m in at.markdown if m.value.startswith("- **On the prediction, ")]
    assert verdicts == [f"- **On the prediction, {row.tier}**: {row.verdict}" for row in expected.itertuples()]


def test_predictions_page_without_campaigns_explains_the_section(trained_app):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert any(c.value.startswith("No launched campaign has used this prediction yet.") for c in at.caption)


def test_a_campaign_row_that_no_longer_parses_is_one_line_on_the_predictions_page(trained_app):
    full = find_prediction(trained_app, FULL)
    campaign = _sent(trained_app, "On the prediction", full.id)
    with session_scope(trained_app) as session:
        row = session.get(Campaign, campaign)
        row.message = {**row.message, "ab_variants": [{"name": "A", "share": 100}]}  # edited by hand
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [plain("message: 'ab_variants' must hold no variants or 2 to 5, not 1")]

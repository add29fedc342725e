"""The Outbox view, the Data page's delivery section and the worker warning above every screen (AppTest)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core import worker
from core.campaigns import CampaignSpec, launch
from core.delivery import config as delivery_config
from core.markup import plain
from core.models import OutboxMessage
from core.timeutil import utcnow
from tests.campaign_fixtures import MESSAGE, NO_CONTROL
from tests.definitions import IOS_ONLY
from tests.delivery_servers import SECRET, start_webhook_receiver

ROOT = Path(__file__).resolve().parent.parent
WARNING = "Campaigns are not being sent"


@pytest.fixture(autouse=True)
def demo_channels(monkeypatch):
    for variable in delivery_config.ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def everything_shown(at: AppTest) -> str:
    """Every text the page shows, widget values included (to prove a secret is not among them)."""
    parts = [str(getattr(e, "value", "")) for e in at.main] + [str(getattr(e, "value", "")) for e in at.sidebar]
    for kind in (at.text_input, at.dataframe, at.code, at.caption, at.markdown, at.info, at.error, at.success):
        parts.extend(str(getattr(e, "value", "")) for e in kind)
    return "\n".join(parts)


def a_sent_and_failed_campaign(engine) -> int:
    campaign = launch(
        CampaignSpec(name="Now", audience=IOS_ONLY, platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL), engine
    )
    worker.run_cycle(engine, now=utcnow() + timedelta(minutes=1), status=worker.WorkerStatus(last_refresh="x"))
    with engine.begin() as connection:
        failed = connection.execute(select(OutboxMessage.id).limit(3)).scalars().all()
        connection.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.id.in_(failed))
            .values(status="failed", last_error="HTTP 400: unknown device")
        )
    return campaign


def outbox_statuses(engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(OutboxMessage.status)).scalars().all()
    return {s: rows.count(s) for s in set(rows)}


def test_the_outbox_shows_counts_by_status_failures_with_reasons_and_retries_them(app_database):
    a_sent_and_failed_campaign(app_database)
    before = outbox_statuses(app_database)
    at = open_page("pages/campaigns.py")
    at.radio(key="campaigns_view").set_value("Outbox").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sent"] == f"{before['sent']:,}" and metrics["Failed"] == "3"
    assert "nothing leaves this machine" in at.info[0].value
    (failures,) = [d.value for d in at.dataframe if "reason" in d.value.columns]
    assert failures[["reason", "status", "messages"]].to_dict("records") == [
        {"reason": "HTTP 400: unknown device", "status": "failed", "messages": 3}
    ]
    assert not [b for b in at.button if b.label == "Retry failed"]  # all campaigns: choose one first
    at.selectbox(key="c_outbox_choice").set_value(1).run()
    [retry] = [b for b in at.button if b.label == "Retry failed"]
    retry.click().run()
    assert at.success[0].value == "3 failed messages of “Now” are queued again."
    assert outbox_statuses(app_database) == {"sent": before["sent"], "queued": 3}


def test_the_data_page_saves_a_webhook_never_shows_its_secret_and_sends_a_test_message(app_database):
    receiver, server = start_webhook_receiver()
    try:
        at = open_page("pages/data.py")
        assert any("nothing leaves this machine" in i.value for i in at.info)
        at.selectbox(key="dp_provider_push").set_value("webhook")
        at.text_input(key="dp_webhook_url").set_value(receiver.url)
        at.text_input(key="dp_webhook_secret").set_value(SECRET)
        [save] = [b for b in at.button if b.label == "Save channels"]
        save.click().run()
        assert not at.exception
        assert at.success[0].value == "Channels saved: the worker uses them from its next cycle."
        stored = delivery_config.load_settings(app_database, {})
        assert (stored.providers["push"], stored.webhook_secret) == ("webhook", SECRET)
        assert SECRET not in everything_shown(at)
        at.text_input(key="dp_test_to").set_value("user-42")
        [send] = [b for b in at.button if b.label == "Send a test message"]
        send.click().run()
        answer = at.code[0].value
        assert answer.startswith('sent: HTTP 200 OK: {"results": [{"id": "likely-test-')
        assert receiver.bodies[0]["messages"][0]["user_id"] == "user-42"
        assert receiver.bad_signatures == 0
    finally:
        server.shutdown()


def test_an_incomplete_channel_setup_is_refused_and_changes_nothing(app_database):
    at = open_page("pages/data.py")
    at.selectbox(key="dp_provider_email").set_value("smtp")
    [save] = [b for b in at.button if b.label == "Save channels"]
    save.click().run()
    assert at.error[0].value == plain(
        "email goes by SMTP but no SMTP URL is set (LIKELY_SMTP_URL). Nothing was changed."
    )
    assert delivery_config.load_settings(app_database, {}).providers["email"] == "demo"


def test_every_screen_warns_when_campaigns_are_scheduled_and_no_worker_is_alive(app_database):
    at = open_page("pages/data.py")
    assert not [w for w in at.main.warning if WARNING in w.value]  # nothing scheduled yet
    launch(
        CampaignSpec(name="Now", audience=IOS_ONLY, platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL),
        app_database,
    )
    at = open_page("pages/data.py")  # a fresh session: AppTest reruns do not redraw the frame
    [warning] = [w for w in at.main.warning if WARNING in w.value]
    assert warning.value.startswith("Campaigns are not being sent: no worker has run.")
    now = utcnow()
    worker.write_status(app_database, worker.WorkerStatus(heartbeat=now, next_run=now + timedelta(minutes=1)))
    at = open_page("pages/data.py")
    assert not [w for w in at.main.warning if WARNING in w.value]
    assert {m.label: m.value for m in at.metric}["Worker"] == "running"

"""Journey: campaigns that run themselves. Started like `make run` (`python -m core serve`: the app
and the worker), a campaign launched in the browser for "now" reaches the demo channel within two
minutes with nobody running a command; the Outbox says so; Ctrl-C (SIGINT) stops both processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from core import segments
from core.campaigns.audience import reachable_user_ids
from core.db import make_engine
from core.models import DemoDelivery, OutboxMessage
from tests.browser import ui
from tests.browser.conftest import (
    ARTIFACTS,
    ROOT,
    LiveApp,
    _free_port,
    _run,
    open_page,
    screenshot,
    wait_for_app,
    wait_until_healthy,
)
from tests.definitions import IOS_ONLY

CAMPAIGN = "Welcome back - now"
SEGMENT = "Every iOS user"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`python -m core serve` on its own demo database, the worker cycling every 5 s."""
    database = tmp_path_factory.mktemp("served") / "app.db"
    url = f"sqlite:///{database}"
    env = {**os.environ, "DATABASE_URL": url, "LIKELY_WORKER_INTERVAL": "5"}
    for variable in ("LIKELY_SMTP_URL", "LIKELY_WEBHOOK_URL"):
        env.pop(variable, None)
    _run(["seed", "--users", "2000", "--seed", "5"], env)
    engine = make_engine(url)
    segments.save_segment(engine, SEGMENT, IOS_ONLY)
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "serve.log"
    port = _free_port()
    with open(log_path, "w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://localhost:{port}"
        wait_until_healthy(base, launcher, log_path)
        yield LiveApp(base, url, log_path), engine, launcher
        if launcher.poll() is None:
            launcher.kill()
    engine.dispose()


@pytest.fixture
def served_page(browser, served, request):
    yield from open_page(browser, served[0], request)


def delivered(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(DemoDelivery)
            .join(OutboxMessage, OutboxMessage.id == DemoDelivery.message_id)
            .where(OutboxMessage.status == "sent")
        ).scalar()


def held_out(engine) -> int:
    """The control group (10% by default): recorded at the send, never delivered."""
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "control")
        ).scalar()


def test_a_campaign_launched_for_now_reaches_the_demo_channel_with_nobody_running_a_command(served_page, served):
    page = served_page
    _app, engine, launcher = served
    page.goto("/campaigns")
    wait_for_app(page)
    ui.fill(page, "stTextInput", "Campaign name", CAMPAIGN)
    ui.choose(page, "Segment", SEGMENT)
    ui.multi_choose(page, "Platforms", ["iOS"])
    ui.click(page, "Next")
    ui.fill(page, "stTextInput", "Title", "We miss you")
    ui.fill(page, "stTextArea", "Body", "Come and see what is new.")
    ui.click(page, "Next")
    assert page.get_by_role("radio", name="Send now").is_checked()
    ui.click(page, "Next")
    page.get_by_text("Ready to launch.").wait_for()
    ui.click(page, "Launch campaign")
    launched = time.monotonic()
    page.get_by_text(f"Campaign “{CAMPAIGN}” launched.").wait_for()

    _, reachable = reachable_user_ids(engine, IOS_ONLY, "push", ["iOS"])
    while delivered(engine) + held_out(engine) < len(reachable):
        assert time.monotonic() - launched < 120, f"only {delivered(engine)} of {len(reachable)} delivered"
        time.sleep(1)
    assert delivered(engine) + held_out(engine) == len(reachable)
    assert delivered(engine) > 0 and held_out(engine) > 0

    ui.radio(page, "View", "Outbox")
    page.get_by_text("nothing leaves this machine").wait_for()
    assert ui.number(ui.metric(page, "Sent")) == delivered(engine)
    assert ui.metric(page, "Failed") == "0"
    screenshot(page, "outbox")

    page.goto("/data")  # the worker's health, as the Data page shows it
    wait_for_app(page)
    page.get_by_role("heading", name="Campaign delivery").wait_for()
    assert ui.metric(page, "Worker") == "running"
    page.get_by_text("Every channel uses the demo provider").wait_for()
    screenshot(page, "data-delivery")

    launcher.send_signal(signal.SIGINT)  # Ctrl-C
    assert launcher.wait(30) == 0
    log = served[0].log.read_text()
    assert "worker: stopped" in log

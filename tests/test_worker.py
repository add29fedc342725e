"""The worker: cycles on a fixed clock, one worker at a time, and a SIGKILL in the middle of delivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core import leases, worker
from core.campaigns import CampaignSpec, launch
from core.campaigns import schedule as sch
from core.campaigns.audience import reachable_user_ids, users_frame
from core.models import DemoDelivery, OutboxMessage
from core.timeutil import utcnow
from tests.campaign_fixtures import MESSAGE, NO_CONTROL, make_campaign, thursday_1745
from tests.definitions import IOS_ONLY
from tests.delivery_servers import SECRET, start_smtp_server, start_webhook_receiver
from tests.test_delivery import free_port

ROOT = Path(__file__).resolve().parents[1]
EVERYONE = {
    "version": 1,
    "match": "all",
    "groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS", "Android", "Web"]}]}],
    "exclude": [],
}


@pytest.fixture(autouse=True)
def demo_channels(monkeypatch):
    for variable in ("LIKELY_SMTP_URL", "LIKELY_SMTP_FROM", "LIKELY_WEBHOOK_URL", "LIKELY_WEBHOOK_SECRET"):
        monkeypatch.delenv(variable, raising=False)


def delivered_users(engine, campaign_id: int) -> dict[int, datetime]:
    """user id -> when the demo channel received their message."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(OutboxMessage.user_id, DemoDelivery.delivered_at, OutboxMessage.status, OutboxMessage.sent_at)
            .join(DemoDelivery, DemoDelivery.message_id == OutboxMessage.id)
            .where(OutboxMessage.campaign_id == campaign_id)
        ).all()
    assert {r.status for r in rows} <= {"sent"}
    return {r.user_id: r.sent_at for r in rows}


def test_a_worker_cycle_sends_the_thursday_1745_campaign_to_each_zone_at_its_local_time_and_not_before(
    demo_engine, demo_anchor, monkeypatch
):
    # The demo's answers (new sessions) would move users in and out of "lapsed": tested on their own.
    monkeypatch.setattr(worker.demo_response, "respond", lambda engine, now: 0)
    schedule = thursday_1745(demo_anchor)
    campaign = make_campaign(demo_engine, "Lapsed user message - 2 weeks", IOS_ONLY, schedule, demo_anchor)
    first = datetime.fromisoformat(schedule["start"] + "T17:45")
    _, reachable = reachable_user_ids(demo_engine, IOS_ONLY, "push", ["iOS"], now=first)
    zones = users_frame(demo_engine).loc[reachable, "timezone"].map(lambda z: sch.delivery_zone(z, "UTC"))
    due_at = {zone: sch.to_utc(first, zone) for zone in zones.unique()}
    assert len(set(due_at.values())) >= 5  # the demo spreads users over many offsets
    status = worker.WorkerStatus(last_refresh="9999-12-31")  # the daily refresh is tested on its own
    for instant in sorted(set(due_at.values())):
        worker.run_cycle(demo_engine, now=instant - timedelta(minutes=1), status=status)
        expected_before = {int(u) for u, z in zones.items() if due_at[z] < instant}
        assert set(delivered_users(demo_engine, campaign)) == expected_before, f"before {instant}"
        report = worker.run_cycle(demo_engine, now=instant, status=status)
        got = delivered_users(demo_engine, campaign)
        arrived = {int(u) for u, z in zones.items() if due_at[z] == instant}
        assert set(got) == expected_before | arrived
        assert {got[u] for u in arrived} == {instant}  # sent on the minute: the fixed clock's now
        assert report.delivered.sent == len(arrived) and not report.errors


def test_the_daily_refresh_runs_once_a_day_from_the_set_hour_in_the_company_zone(demo_engine, monkeypatch):
    calls: list[int] = []
    monkeypatch.setenv("LIKELY_REFRESH_HOUR", "4")
    monkeypatch.setattr("core.predictions.refresh_scores", lambda engine, prediction_id: calls.append(prediction_id))
    monkeypatch.setattr(
        "core.predictions.list_predictions",
        lambda engine: (
            [type("P", (), {"id": 7, "name": "Purchase", "kind": "full"})()]
            + [type("P", (), {"id": 8, "name": "Preview", "kind": "preview"})()]
        ),
    )
    status = worker.WorkerStatus()
    day = datetime(2030, 1, 3)
    for hour, minute, expected in [(3, 59, []), (4, 0, [7]), (4, 1, [7]), (23, 0, [7])]:
        worker.run_cycle(demo_engine, now=day.replace(hour=hour, minute=minute), status=status)
        assert calls == expected, (hour, minute)
    worker.run_cycle(demo_engine, now=day + timedelta(days=1, hours=4), status=status)
    assert calls == [7, 7] and status.last_refresh == "2030-01-04"


def test_two_workers_running_exactly_one_acts(demo_engine, demo_anchor, monkeypatch):
    monkeypatch.setenv("LIKELY_WORKER_INTERVAL", "1")
    spec = CampaignSpec(
        name="Now", audience=IOS_ONLY, channel="push", platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL
    )
    launch(spec, demo_engine)
    stop = threading.Event()
    said: dict[int, list[str]] = {0: [], 1: []}
    threads = [
        threading.Thread(target=worker.run_worker, args=(demo_engine,), kwargs={"stop": stop, "say": said[i].append})
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(4)  # several cycles each
    stop.set()
    for thread in threads:
        thread.join()
    acting = [i for i in said if any(line.startswith("worker: acting") for line in said[i])]
    assert len(acting) == 1
    idle = 1 - acting[0]
    assert all(line.startswith("worker: waiting: another worker is running") for line in said[idle])
    cycles = [line for line in said[acting[0]] if " sent" in line]
    assert len(cycles) >= 2
    with demo_engine.connect() as connection:
        statuses = connection.execute(select(OutboxMessage.status)).scalars().all()
    assert statuses and set(statuses) == {"sent"}
    assert leases.holder(demo_engine, "worker") is None  # released on stop


def test_status_heartbeat_and_stale_warning(demo_engine, demo_anchor):
    now = datetime(2030, 1, 3, 12, 0)
    assert worker.stale_warning(demo_engine, now) is None  # nothing scheduled: nothing to warn about
    make_campaign(demo_engine, "Weekly", IOS_ONLY, thursday_1745(demo_anchor), demo_anchor)
    assert worker.stale_warning(demo_engine, now).startswith("Campaigns are not being sent: no worker has run")
    status = worker.WorkerStatus(heartbeat=now, next_run=now + timedelta(minutes=1), interval=60)
    worker.write_status(demo_engine, status)
    assert worker.read_status(demo_engine) == status
    assert worker.stale_warning(demo_engine, now + timedelta(minutes=3)) is None
    assert worker.stale_warning(demo_engine, now + timedelta(minutes=3, seconds=1)) == (
        "Campaigns are not being sent: the worker's last sign of life was 2030-01-03 12:00 UTC. "
        "Start it with `make run` or `python -m core worker`."
    )


# ---------------------------------------------------------------- SIGKILL in the middle of delivery
def _worker_process(engine, extra_env: dict) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "LIKELY_WORKER_INTERVAL": "1",
        "LIKELY_WORKER_LEASE_SECONDS": "3",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "core", "worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _outbox(engine) -> dict[int, tuple[int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.status)).all()
    return {r.id: (r.user_id, r.status) for r in rows}


def _kill_then_restart(engine, env: dict, hanging: threading.Event) -> dict[int, tuple[int, str]]:
    """Start a worker, SIGKILL it while the provider holds a batch, restart one; the outbox after."""
    first = _worker_process(engine, env)
    try:
        assert hanging.wait(120), "the worker never reached the provider"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        at_kill = _outbox(engine)
        assert "sending" in {s for _u, s in at_kill.values()}  # killed between sending and marking
        second = _worker_process(engine, env)  # takes over once the dead worker's lease expires
        try:
            _wait_until(lambda: {s for _u, s in _outbox(engine).values()} == {"sent"}, 120, "every message sent")
        except AssertionError:
            second.send_signal(signal.SIGTERM)
            output = second.communicate(timeout=30)[0].decode()
            statuses = [s for _u, s in _outbox(engine).values()]
            raise AssertionError(f"{ {s: statuses.count(s) for s in set(statuses)} }\n{output[-3000:]}") from None
        finally:
            if second.poll() is None:
                second.send_signal(signal.SIGTERM)
                second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    return _outbox(engine)


def test_sigkill_mid_delivery_then_restart_each_user_has_exactly_one_webhook_message(demo_engine):
    receiver, server = start_webhook_receiver()
    receiver.hang_on_request = 3  # the third batch is accepted, and the worker killed before it hears so
    try:
        launch(
            CampaignSpec(name="Now", audience=IOS_ONLY, platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL),
            demo_engine,
        )
        env = {"LIKELY_WEBHOOK_URL": receiver.url, "LIKELY_WEBHOOK_SECRET": SECRET}
        final = _kill_then_restart(demo_engine, env, receiver.hanging)
    finally:
        server.shutdown()
    expected = {f"likely-{message_id}" for message_id in final}
    assert len(final) > 300 and len({user for user, _s in final.values()}) == len(final)
    # The provider keeps the first message of each idempotency key: each user exactly one.
    assert set(receiver.delivered) == expected
    # Our side sent again only the batch caught in the crash, with the same ids.
    assert sum(count - 1 for count in receiver.delivered.values()) == 100


def test_sigkill_mid_delivery_then_restart_each_user_has_one_email_by_message_id(demo_engine):
    port = free_port()
    inbox, controller = start_smtp_server(port)
    inbox.hang_on_message = 30
    try:
        launch(
            CampaignSpec(name="Mail now", audience=EVERYONE, channel="email", message=MESSAGE, settings=NO_CONTROL),
            demo_engine,
        )
        env = {"LIKELY_SMTP_URL": f"smtp://127.0.0.1:{port}", "LIKELY_SMTP_FROM": "news@example.com"}
        final = _kill_then_restart(demo_engine, env, inbox.hanging)
    finally:
        controller.stop()
    expected = {f"<likely-{message_id}@example.com>" for message_id in final}
    assert len(final) > 300
    assert set(inbox.message_ids) == expected
    by_recipient: dict[str, set[str]] = {}
    for message in inbox.messages:
        by_recipient.setdefault(message["To"], set()).add(message["Message-ID"])
    assert all(len(ids) == 1 for ids in by_recipient.values()) and len(by_recipient) == len(final)
    # A plain SMTP server keeps copies: only the unmarked part of the crashed batch came twice.
    assert 0 < len(inbox.messages) - len(expected) <= 20


def test_a_crash_leftover_is_resent_with_the_same_key_and_counted(demo_engine):
    campaign = launch(
        CampaignSpec(name="Now", audience=IOS_ONLY, platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL),
        demo_engine,
    )
    now = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    worker.run_cycle(demo_engine, now=now, status=worker.WorkerStatus(last_refresh="9999-12-31"))
    with demo_engine.begin() as connection:  # as if killed after the provider took five of them
        stuck = connection.execute(select(OutboxMessage.id).limit(5)).scalars().all()
        connection.execute(update(OutboxMessage).where(OutboxMessage.id.in_(stuck)).values(status="sending"))
    report = worker.run_cycle(demo_engine, now=now, status=worker.WorkerStatus(last_refresh="9999-12-31"))
    assert (report.delivered.resent_after_crash, report.delivered.sent) == (5, 5)
    assert len(delivered_users(demo_engine, campaign)) == len(_outbox(demo_engine))  # the demo channel kept one each


def test_worker_once_while_another_acts_waits_and_does_nothing(app_database, capsys):
    from core.cli import main

    launch(
        CampaignSpec(name="Now", audience=IOS_ONLY, platforms=["iOS"], message=MESSAGE, settings=NO_CONTROL),
        app_database,
    )
    with leases.hold(app_database, "worker", "another worker"):
        assert main(["worker", "--once"]) == 0
    assert capsys.readouterr().out.startswith("worker: waiting: another worker is running (since ")
    with app_database.connect() as connection:
        assert connection.execute(select(OutboxMessage.id)).first() is None
    assert main(["worker", "--once"]) == 0
    out = capsys.readouterr().out
    assert "worker: acting as " in out and " sent" in out and out.rstrip().endswith("worker: stopped")
    with app_database.connect() as connection:
        assert set(connection.execute(select(OutboxMessage.status)).scalars()) == {"sent"}


def test_on_a_demo_database_the_worker_plays_the_demo_responses_so_results_fill_in(demo_engine):
    """Nobody at a terminal: the worker sends, then the demo's users answer, and Results count them."""
    from core.campaigns.results import campaign_results

    campaign = launch(
        CampaignSpec(name="Now", audience=EVERYONE, platforms=[], message=MESSAGE, settings={"control_percent": 20}),
        demo_engine,
    )
    now = utcnow() + timedelta(seconds=1)  # just after the launch: the send is due
    status = worker.WorkerStatus(last_refresh="9999-12-31")
    first = worker.run_cycle(demo_engine, now=now, status=status)
    assert first.delivered.sent > 0 and not first.errors
    later = worker.run_cycle(demo_engine, now=now + timedelta(days=4), status=status)
    assert later.demo_conversions > 0 and not later.errors
    again = worker.run_cycle(demo_engine, now=now + timedelta(days=4), status=status)
    assert again.demo_conversions == 0  # each answer is played once
    overall = campaign_results(campaign, demo_engine, now + timedelta(days=4)).overall.comparison
    assert overall.treated > 0 and overall.control > 0
    assert overall.converted_treated + overall.converted_control == later.demo_conversions

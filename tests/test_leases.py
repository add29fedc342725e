"""Leases: one holder at a time across threads and processes, expiry takeover, and their three users
(dispatch, imports, the worker) on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import time as clock

import pytest
from sqlalchemy import func, select

from core import leases
from core.campaigns import dispatch, set_delivery_rules
from core.db import make_engine
from core.errors import UserError
from core.importer import import_events
from core.models import Event, OutboxMessage
from tests import campaign_fixtures
from tests.campaign_fixtures import daily
from tests.conftest import open_engine
from tests.definitions import IOS_ONLY

T0 = datetime(2030, 1, 1, 12, 0)


def _together(count: int, work):
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_only_one_of_many_threads_takes_a_free_lease(empty_engine):
    owners = [f"owner-{i}" for i in range(8)]
    won = _together(8, lambda i: leases.try_acquire(empty_engine, "job", owners[i], 60, now=T0))
    assert sum(won) == 1
    assert leases.holder(empty_engine, "job", now=T0).owner == owners[won.index(True)]


@pytest.mark.parametrize(
    ("later_seconds", "taken_over"),
    [(59, False), (60, True), (3600, True)],  # the lease ran 60 s: at its expiry it is free
)
def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(empty_engine, later_seconds, taken_over):
    assert leases.try_acquire(empty_engine, "job", "crashed", 60, now=T0)
    now = T0 + timedelta(seconds=later_seconds)
    assert leases.try_acquire(empty_engine, "job", "successor", 60, now=now) is taken_over
    assert leases.holder(empty_engine, "job", now=now).owner == ("successor" if taken_over else "crashed")


def test_the_holder_renews_and_keeps_its_first_acquisition_time(empty_engine):
    assert leases.try_acquire(empty_engine, "job", "me", 60, now=T0)
    assert leases.try_acquire(empty_engine, "job", "me", 60, now=T0 + timedelta(seconds=50))
    current = leases.holder(empty_engine, "job", now=T0 + timedelta(seconds=100))
    assert (current.acquired_at, current.expires_at) == (T0, T0 + timedelta(seconds=110))


def test_a_released_lease_is_free_at_once_and_only_its_owner_can_release_it(empty_engine):
    assert leases.try_acquire(empty_engine, "job", "me", 60, now=T0)
    leases.release(empty_engine, "job", "somebody else")
    assert not leases.try_acquire(empty_engine, "job", "other", 60, now=T0)
    leases.release(empty_engine, "job", "me")
    assert leases.try_acquire(empty_engine, "job", "other", 60, now=T0)


def test_a_second_holder_is_refused_with_who_and_since_when_then_waits_its_turn(empty_engine):
    busy = r"^another dispatch is running \(since \d{4}-\d\d-\d\d"
    with leases.hold(empty_engine, "dispatch", "another dispatch"), pytest.raises(leases.LeaseBusy, match=busy):
        leases.hold(empty_engine, "dispatch", "another dispatch").__enter__()
    order: list[str] = []
    first_in = threading.Event()

    def first():
        with leases.hold(empty_engine, "dispatch", "another dispatch"):
            first_in.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait()
    with leases.hold(empty_engine, "dispatch", "another dispatch", wait=10):
        order.append("second ran")
    thread.join()
    assert order == ["first done", "second ran"]


def test_a_held_lease_outlives_its_time_while_renewed(empty_engine):
    with leases.hold(empty_engine, "long job", "a long job", seconds=0.6) as held:
        time.sleep(1.5)  # more than twice the lease's time
        assert not held.lost.is_set()
        assert not leases.try_acquire(empty_engine, "long job", "intruder", 0.6)


def _take_in_process(url: str, name: str, owner: str, start, results) -> None:
    engine = make_engine(url)
    start.wait()
    results.put((owner, leases.try_acquire(engine, name, owner, 60)))
    engine.dispose()


def test_only_one_of_several_processes_takes_a_free_lease(empty_engine):
    url = empty_engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=_take_in_process, args=(url, "worker", f"p{i}", start, results)) for i in range(4)
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = _reports(processes, results)
    for process in processes:
        process.join(timeout=60)
    assert sum(outcomes.values()) == 1


def _reports(processes, results, patience: float = 120) -> dict:
    """Each child's (owner, won), failing at once, not after `patience`, when a child died without reporting.

    Generous patience: four fresh interpreters import the project on 2 busy cores in CI."""
    outcomes: dict = {}
    deadline = time.monotonic() + patience
    while len(outcomes) < len(processes):
        try:
            owner, won = results.get(timeout=0.5)
            outcomes[owner] = won
        except queue.Empty:
            died = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            assert not died, f"a child died before reporting (exit codes {died}); its traceback is on stderr"
            assert time.monotonic() < deadline, f"only {len(outcomes)} of {len(processes)} children reported"
    return outcomes


# ---------------------------------------------------------------- dispatch: the cap cannot be broken
def _capped_campaigns(engine, anchor) -> datetime:
    set_delivery_rules({"enabled": True, "messages": 2, "days": 7}, {"enabled": False}, engine)
    start = anchor.date() + timedelta(days=1)
    for name, at in (("Morning", "08:00"), ("Noon", "12:00"), ("Evening", "18:00")):
        campaign_fixtures.make_campaign(engine, name, IOS_ONLY, daily(start, at, 5), anchor)
    return datetime.combine(start, clock()) + timedelta(days=6)


def _outbox_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            select(OutboxMessage.campaign_id, OutboxMessage.occurrence, OutboxMessage.user_id).order_by(
                OutboxMessage.campaign_id, OutboxMessage.occurrence, OutboxMessage.user_id
            )
        ).all()


def test_two_dispatches_at_once_run_one_after_the_other_and_write_what_one_writes(
    demo_engine, databases, demo_db_template, demo_anchor
):
    until = _capped_campaigns(demo_engine, demo_anchor)
    reference = open_engine(databases.new("reference", template=demo_db_template))
    try:
        _capped_campaigns(reference, demo_anchor)
        dispatch(reference, until=until)
        expected = _outbox_rows(reference)
    finally:
        reference.dispose()
    reports = _together(2, lambda _i: dispatch(demo_engine, until=until, lease_wait=120))
    assert sorted(r.written for r in reports) == [0, len(expected)]
    assert _outbox_rows(demo_engine) == expected


def test_a_dispatch_while_another_runs_says_so_and_writes_nothing(demo_engine, demo_anchor):
    until = _capped_campaigns(demo_engine, demo_anchor)
    with leases.hold(demo_engine, "dispatch", "another dispatch"), pytest.raises(UserError, match="^another dispatch"):
        dispatch(demo_engine, until=until)
    assert _outbox_rows(demo_engine) == []


# ---------------------------------------------------------------- imports
def test_an_import_while_another_runs_gets_a_clear_message_and_imports_nothing(demo_engine, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\nnew-user,purchase,2025-01-02T10:00:00Z\n")
    with demo_engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(Event)).scalar()
    with leases.hold(demo_engine, "import", "another import"), pytest.raises(UserError, match="^another import is"):
        import_events(demo_engine, path)
    with demo_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == before
    import_events(demo_engine, path)  # and once it is free, it runs
    with demo_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == before + 1


def test_the_dispatch_command_says_another_dispatch_is_running(app_database, capsys):
    from core.cli import main

    with leases.hold(app_database, "dispatch", "another dispatch"):
        assert main(["dispatch"]) == 2
    assert capsys.readouterr().err.startswith("error: another dispatch is running (since ")
    assert main(["dispatch"]) == 0

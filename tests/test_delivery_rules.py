"""Delivery rules: the company frequency cap and quiet hours, their settings, and dispatch under them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from core.campaigns import (
    CampaignSpec,
    DeliveryRules,
    FrequencyCap,
    QuietHours,
    delivery_rules,
    dispatch,
    schedule_verdict,
    set_delivery_rules,
    validate,
)
from core.campaigns import schedule as sch
from core.campaigns.audience import users_frame
from core.campaigns.rules import cap_blocked
from core.campaigns.spec import parse_schedule, parse_settings
from core.errors import UserError
from core.models import OutboxMessage
from tests import campaign_fixtures
from tests.campaign_fixtures import ALWAYS_REELIGIBLE, MESSAGE, daily
from tests.definitions import IOS_ONLY as IOS

CAP_ON = {"enabled": True, "messages": 3, "days": 7}
CAP_OFF = {"enabled": False}
QUIET_OFF = {"enabled": False}
QUIET_NIGHT = {"enabled": True, "start": "22:00", "end": "07:00", "mode": "defer"}


def make_campaign(engine, name, schedule, launched_at, **settings) -> int:
    """An iOS push campaign for every iOS user; `settings` adds the rule opt-outs."""
    return campaign_fixtures.make_campaign(engine, name, IOS, schedule, launched_at, {**ALWAYS_REELIGIBLE, **settings})


def outbox(engine, campaign_ids=None) -> pd.DataFrame:
    query = select(
        OutboxMessage.campaign_id, OutboxMessage.occurrence, OutboxMessage.user_id, OutboxMessage.send_at
    ).order_by(OutboxMessage.campaign_id, OutboxMessage.occurrence, OutboxMessage.user_id)
    if campaign_ids is not None:
        query = query.where(OutboxMessage.campaign_id.in_(campaign_ids))
    with engine.connect() as connection:
        frame = pd.DataFrame(
            connection.execute(query).all(), columns=["campaign_id", "occurrence", "user_id", "send_at"]
        )
    frame["send_at"] = pd.to_datetime(frame["send_at"])
    return frame


def reachable_ios(engine) -> pd.DataFrame:
    users = users_frame(engine)
    return users[(users["platform"] == "iOS") & users["has_push_token"] & users["push_opt_in"]]


def windows_over_cap(sends: pd.DataFrame, limit: int, days: int) -> int:
    """Independently: how many (user, message) start a window of `days` days holding more than `limit`."""
    over = 0
    for _, times in sends.groupby("user_id")["send_at"]:
        values = np.sort(times.to_numpy())
        ends = np.searchsorted(values, values + np.timedelta64(timedelta(days=days)), side="left")
        over += int(((ends - np.arange(len(values))) > limit).sum())
    return over


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("cap", "quiet", "message"),
    [
        (
            {**CAP_ON, "messages": 0},
            QUIET_OFF,
            "Frequency cap: the number of messages must be a whole number from 1 to 100",
        ),
        (
            {**CAP_ON, "messages": 101},
            QUIET_OFF,
            "Frequency cap: the number of messages must be a whole number from 1 to 100",
        ),
        (
            {**CAP_ON, "messages": 2.5},
            QUIET_OFF,
            "Frequency cap: the number of messages must be a whole number from 1 to 100",
        ),
        ({**CAP_ON, "messages": "three"}, QUIET_OFF, "Frequency cap: the number of messages must be a whole number"),
        ({**CAP_ON, "days": 0}, QUIET_OFF, "Frequency cap: the number of days must be a whole number from 1 to 90"),
        ({**CAP_ON, "days": True}, QUIET_OFF, "Frequency cap: the number of days must be a whole number from 1 to 90"),
        (
            CAP_ON,
            {**QUIET_NIGHT, "start": "25:00"},
            "Quiet hours: the start time '25:00' is not a time of day as HH:MM",
        ),
        (CAP_ON, {**QUIET_NIGHT, "end": "soon"}, "Quiet hours: the end time 'soon' is not a time of day as HH:MM"),
        (CAP_ON, {**QUIET_NIGHT, "end": "22:00"}, "Quiet hours: the start and the end are both 22:00"),
        (CAP_ON, {**QUIET_NIGHT, "mode": "later"}, "Quiet hours: unknown choice 'later'"),
    ],
)
def test_bad_settings_say_what_is_wrong_and_change_nothing(empty_engine, cap, quiet, message):
    assert delivery_rules(empty_engine) == DeliveryRules()  # both off by default
    saved = set_delivery_rules({**CAP_ON, "messages": 5}, QUIET_NIGHT, empty_engine)
    with pytest.raises(UserError) as raised:
        set_delivery_rules(cap, quiet, empty_engine)
    assert str(raised.value).startswith(message)
    assert delivery_rules(empty_engine) == saved


def test_settings_round_trip(empty_engine):
    saved = set_delivery_rules(
        {"enabled": True, "messages": "4", "days": 10.0}, {**QUIET_NIGHT, "start": time(21, 30)}, empty_engine
    )
    assert delivery_rules(empty_engine) == saved
    assert saved.cap == FrequencyCap(True, 4, 10)
    assert saved.quiet == QuietHours(True, "21:30", "07:00", "defer")
    assert saved.cap.sentence() == "At most 4 messages per user in any 10 days, across campaigns"


# ---------------------------------------------------------------- the cap, as a pure rule
T0 = datetime(2027, 1, 4, 12)


@pytest.mark.parametrize(
    ("existing_days", "candidate_day", "blocked"),
    [
        ([0, 1], 2, False),  # two in the window, a third fits
        ([0, 1, 2], 3, True),  # a fourth inside 7 days
        ([0, 1, 2], 7, False),  # day 0 is exactly 7 days before: a different window
        ([0, 1, 2], 6.9, True),
        ([4, 5, 6], 0, True),  # looks forwards too: a window [0, 7) would hold four
        ([3, 10, 17], 7, False),  # every 7-day window holds at most 3 with it
        ([1, 2, 8, 9], 5, False),  # [1, 8) holds 1, 2, 5 and [2, 9) holds 2, 5, 8: three each
        ([1, 2, 7.5, 9], 5, True),  # [1, 8) would hold 1, 2, 5, 7.5
        ([0, 0, 0], 0, True),
    ],
)
def test_cap_blocks_when_a_window_around_the_instant_is_full(existing_days, candidate_day, blocked):
    cap = FrequencyCap(True, 3, 7)
    existing = pd.DataFrame(
        {"user_id": [1] * len(existing_days), "send_at": [T0 + timedelta(days=d) for d in existing_days]}
    )
    existing["send_at"] = pd.to_datetime(existing["send_at"])
    users = np.array([1, 2])  # user 2 has no messages: never blocked
    at = np.array([T0 + timedelta(days=candidate_day)] * 2, dtype="datetime64[ns]")
    assert cap_blocked(users, at, existing, cap).tolist() == [blocked, False]
    assert cap_blocked(users, at, existing, FrequencyCap(False, 3, 7)).tolist() == [False, False]


@settings(max_examples=200, deadline=None)
@given(
    existing=st.lists(st.integers(0, 20 * 24), max_size=12),
    candidate=st.integers(0, 20 * 24),
    limit=st.integers(1, 4),
    days=st.integers(1, 5),
)
def test_cap_agrees_with_counting_every_window_that_holds_the_candidate(existing, candidate, limit, days):
    """A different computation: try each window starting at a message (or the candidate) before the candidate."""
    window = timedelta(days=days)
    points = [T0 + timedelta(hours=h) for h in existing]
    at = T0 + timedelta(hours=candidate)
    starts = [p for p in [*points, at] if p <= at < p + window]
    expected = any(sum(start <= p < start + window for p in points) >= limit for start in starts)
    frame = pd.DataFrame({"user_id": np.ones(len(points), dtype=np.int64), "send_at": pd.to_datetime(points)})
    got = cap_blocked(np.array([1]), np.array([at], dtype="datetime64[ns]"), frame, FrequencyCap(True, limit, days))
    assert got.tolist() == [expected]


# ---------------------------------------------------------------- the cap, in dispatch
def test_cap_holds_in_every_window_across_campaigns_and_opted_out_messages_do_not_count(demo_engine, demo_anchor):
    set_delivery_rules(CAP_ON, QUIET_OFF, demo_engine)
    start = demo_anchor.date() + timedelta(days=1)
    # Transactional first (lowest id): it ignores the cap and must not use up anyone's allowance.
    receipts = make_campaign(demo_engine, "Receipts", daily(start, "09:00", 10), demo_anchor, obeys_frequency_cap=False)
    noon = make_campaign(demo_engine, "Noon", daily(start, "12:00", 10), demo_anchor)
    evening = make_campaign(demo_engine, "Evening", daily(start, "18:00", 10), demo_anchor)
    until = datetime.combine(start, time()) + timedelta(days=12)

    report = dispatch(demo_engine, until=until, batch_size=500)
    rows = outbox(demo_engine)
    people = len(reachable_ios(demo_engine))
    per_campaign = rows.groupby("campaign_id").size().to_dict()
    # Receipts: every send. Noon (decided first): days 1-3 and 8-10. Evening: every send would break the cap.
    assert per_campaign == {receipts: 10 * people, noon: 6 * people}
    assert report.capped == {noon: 4 * people, evening: 10 * people}
    noon_days = {
        d - start.toordinal()
        for d in pd.to_datetime(rows.loc[rows.campaign_id == noon, "occurrence"]).map(datetime.toordinal)
    }
    assert noon_days == {0, 1, 2, 7, 8, 9}
    capped = rows[rows.campaign_id != receipts]
    assert windows_over_cap(capped, 3, 7) == 0
    assert windows_over_cap(rows, 3, 7) > 0  # the receipts alone exceed it: they were not counted


def test_cap_holds_when_dispatched_twice_a_day_and_takes_the_earliest_sends(demo_engine, demo_anchor):
    set_delivery_rules({"enabled": True, "messages": 2, "days": 3}, QUIET_OFF, demo_engine)
    start = demo_anchor.date() + timedelta(days=1)
    a = make_campaign(demo_engine, "Morning", daily(start, "08:00", 6), demo_anchor)
    b = make_campaign(demo_engine, "Night", daily(start, "20:00", 6), demo_anchor)
    moment = datetime.combine(start, time())
    held = 0
    while moment <= datetime.combine(start, time()) + timedelta(days=8):
        held += dispatch(demo_engine, until=moment).total_capped
        moment += timedelta(hours=12)
    rows = outbox(demo_engine)
    assert windows_over_cap(rows, 2, 3) == 0
    # Run in send order, the cap takes the earliest sends: per user days 1 08:00, 1 20:00, then 4 08:00...
    assert rows.groupby("user_id").size().unique().tolist() == [4]
    first_user = rows[rows.user_id == rows.user_id.min()].sort_values("send_at")
    assert [(r.campaign_id, r.send_at.hour) for r in first_user.itertuples()][:2] == [(a, 8), (b, 20)]
    assert held > 0


# ---------------------------------------------------------------- quiet hours, as a pure rule
NIGHT = QuietHours(True, "22:00", "07:00", "defer")


def utc(zone: str, *parts) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("zone", "local", "moved_to"),
    [
        ("Europe/Paris", (2027, 3, 10, 21, 59), (2027, 3, 10, 21, 59)),  # before the window: unchanged
        ("Europe/Paris", (2027, 3, 10, 22, 0), (2027, 3, 11, 7, 0)),  # the start is inside
        ("Europe/Paris", (2027, 3, 11, 3, 0), (2027, 3, 11, 7, 0)),  # after midnight: the same morning
        ("Europe/Paris", (2027, 3, 11, 7, 0), (2027, 3, 11, 7, 0)),  # the end is outside
        ("Europe/Paris", (2027, 3, 27, 23, 0), (2027, 3, 28, 7, 0)),  # spring forward: 7 hours, not 8
        ("Europe/Paris", (2027, 10, 30, 23, 0), (2027, 10, 31, 7, 0)),  # fall back: 9 hours
        ("Pacific/Auckland", (2027, 4, 3, 23, 30), (2027, 4, 4, 7, 0)),  # NZDT ends that night
        ("Pacific/Auckland", (2027, 9, 25, 22, 15), (2027, 9, 26, 7, 0)),  # NZDT starts that night
        ("Pacific/Auckland", (2027, 9, 26, 1, 0), (2027, 9, 26, 7, 0)),
    ],
)
def test_quiet_hours_move_a_send_to_the_end_of_the_window_in_its_zone(zone, local, moved_to):
    assert NIGHT.send_instant(utc(zone, *local), zone) == utc(zone, *moved_to)
    dropped = QuietHours(True, "22:00", "07:00", "drop").send_instant(utc(zone, *local), zone)
    assert dropped == (utc(zone, *local) if local == moved_to else None)


def test_a_window_ending_at_a_time_that_does_not_exist_ends_an_hour_later():
    short_night = QuietHours(True, "23:00", "02:30", "defer")
    # 30 March 2025 in Paris: 02:30 does not exist, it is 03:30 CEST (01:30 UTC).
    assert short_night.send_instant(utc("Europe/Paris", 2025, 3, 30, 1, 0), "Europe/Paris") == datetime(
        2025, 3, 30, 1, 30
    )


@pytest.mark.parametrize(
    ("schedule", "quiet", "settings", "fragment"),
    [
        ({"kind": "once", "time": "23:00", "start": "2030-01-01"}, NIGHT, {}, "messages will wait until 07:00"),
        ({"kind": "once", "time": "12:00", "start": "2030-01-01"}, NIGHT, {}, None),
        ({"kind": "once", "time": "23:00", "start": "2030-01-01"}, NIGHT, {"obeys_quiet_hours": False}, None),
        (
            {"kind": "once", "time": "06:45", "start": "2030-01-01"},
            QuietHours(True, "22:00", "07:00", "drop"),
            {},
            "will not be sent",
        ),
        ({"kind": "once", "time": "23:00", "start": "2030-01-01"}, QuietHours(False), {}, None),
        ({"kind": "now"}, NIGHT, {}, "now in the company zone (Europe/Paris, 23:30)"),
    ],
)
def test_schedule_verdict_warns_when_the_send_time_is_in_quiet_hours(schedule, quiet, settings, fragment):
    now = utc("Europe/Paris", 2029, 12, 1, 23, 30)
    schedule, settings = parse_schedule(schedule), parse_settings(settings)
    verdict = schedule_verdict(schedule, DeliveryRules(quiet=quiet), settings, "Europe/Paris", now)
    assert verdict is None if fragment is None else fragment in verdict


def test_validation_warns_about_quiet_hours(demo_engine, demo_anchor):
    set_delivery_rules(CAP_OFF, QUIET_NIGHT, demo_engine)
    spec = CampaignSpec(
        name="Late",
        audience=IOS,
        channel="push",
        platforms=["iOS"],
        message=MESSAGE,
        schedule=daily(demo_anchor.date() + timedelta(days=2), "23:15", 3),
    )
    result = validate(spec, demo_engine, demo_anchor)
    assert result.errors == []
    assert any("23:15 in each user's local time" in w and "quiet hours (22:00–07:00)" in w for w in result.warnings)


# ---------------------------------------------------------------- quiet hours, in dispatch
LAUNCH = datetime(2027, 3, 24, 12)
FIRST_NIGHT = LAUNCH.date() + timedelta(days=1)  # nightly from 25 March, across both DST changes below
NIGHTS = 12  # Paris springs forward on 28 March 2027; Auckland falls back on 4 April 2027


def expected_deferred(engine) -> set[tuple[str, int, datetime]]:
    """Independently: (occurrence, user, send instant) for a 23:00 nightly send deferred to 07:00 local."""
    users = reachable_ios(engine)
    out = set()
    for night in range(NIGHTS):
        day = FIRST_NIGHT + timedelta(days=night)
        for user_id, zone in users["timezone"].items():
            zone = sch.delivery_zone(zone, "UTC", True)
            nxt = day + timedelta(days=1)
            out.add((f"{day.isoformat()}T23:00:00", int(user_id), utc(zone, nxt.year, nxt.month, nxt.day, 7, 0)))
    return out


def test_dispatch_defers_across_midnight_in_each_zone_through_dst_and_stays_idempotent(demo_engine):
    set_delivery_rules({"enabled": True, "messages": 100, "days": 1}, QUIET_NIGHT, demo_engine)
    nightly = make_campaign(demo_engine, "Nightly", daily(FIRST_NIGHT, "23:00", NIGHTS), LAUNCH)
    anytime = make_campaign(demo_engine, "Any hour", daily(FIRST_NIGHT, "23:00", 2), LAUNCH, obeys_quiet_hours=False)
    until = datetime.combine(FIRST_NIGHT, time()) + timedelta(days=NIGHTS + 2)

    report = dispatch(demo_engine, until=until)
    rows = outbox(demo_engine, [nightly])
    got = {(r.occurrence, r.user_id, r.send_at.to_pydatetime()) for r in rows.itertuples()}
    expected = expected_deferred(demo_engine)
    assert got == expected
    zones = reachable_ios(demo_engine)["timezone"]
    assert {"Europe/Paris", "Pacific/Auckland"} <= set(zones)
    paris = next(u for u, z in zones.items() if z == "Europe/Paris")
    paris_sends = sorted(r.send_at for r in rows.itertuples() if r.user_id == paris)
    assert paris_sends[2:4] == [datetime(2027, 3, 28, 5), datetime(2027, 3, 29, 5)]  # 07:00 CEST after the change
    assert report.deferred[nightly] == len(expected)
    # The opted-out campaign goes out at 23:00 local.
    late = outbox(demo_engine, [anytime])
    assert len(late) == 2 * len(zones)
    assert (late.send_at.map(lambda at: at.hour) != 7).any()

    again = dispatch(demo_engine, until=until)
    assert again.written == 0 and len(outbox(demo_engine)) == len(rows) + len(late)


def test_a_deferred_send_waits_until_it_is_due(demo_engine):
    set_delivery_rules(CAP_OFF, QUIET_NIGHT, demo_engine)
    nightly = make_campaign(demo_engine, "Wait", daily(FIRST_NIGHT, "23:00", 1, local_time=False), LAUNCH)
    night = datetime.combine(FIRST_NIGHT, time(23, 30))  # company zone UTC: due at 23:00, quiet until 07:00
    assert dispatch(demo_engine, until=night).written == 0
    report = dispatch(demo_engine, until=night + timedelta(hours=8))
    assert report.written == len(reachable_ios(demo_engine)) == report.deferred[nightly]
    assert set(outbox(demo_engine).send_at) == {datetime.combine(FIRST_NIGHT + timedelta(days=1), time(7))}


def test_dont_send_mode_drops_messages_due_in_quiet_hours(demo_engine):
    set_delivery_rules(CAP_OFF, {**QUIET_NIGHT, "mode": "drop"}, demo_engine)
    late = make_campaign(demo_engine, "Late", daily(FIRST_NIGHT, "23:00", 3), LAUNCH)
    morning = make_campaign(demo_engine, "Morning", daily(FIRST_NIGHT, "07:00", 3), LAUNCH)
    until = datetime.combine(FIRST_NIGHT, time()) + timedelta(days=5)
    people = len(reachable_ios(demo_engine))
    report = dispatch(demo_engine, until=until)
    assert report.by_campaign == {late: 0, morning: 3 * people}
    assert report.quiet_dropped == {late: 3 * people}
    assert dispatch(demo_engine, until=until).written == 0


# ---------------------------------------------------------------- crash and resume with both rules on
def test_crash_and_resume_with_rules_on_writes_exactly_the_uninterrupted_rows(demo_engine):
    set_delivery_rules({"enabled": True, "messages": 3, "days": 4}, QUIET_NIGHT, demo_engine)
    make_campaign(demo_engine, "Nightly", daily(FIRST_NIGHT, "23:00", 6), LAUNCH)
    make_campaign(demo_engine, "Lunch", daily(FIRST_NIGHT, "12:30", 6), LAUNCH)
    make_campaign(demo_engine, "Receipts", daily(FIRST_NIGHT, "06:00", 6), LAUNCH, obeys_frequency_cap=False)
    until = datetime.combine(FIRST_NIGHT, time()) + timedelta(days=8)

    whole = dispatch(demo_engine, until=until, batch_size=400)
    reference = outbox(demo_engine)
    assert whole.total_capped > 0 and whole.total_deferred > 0
    assert dispatch(demo_engine, until=until).written == 0
    with demo_engine.begin() as connection:
        connection.execute(text("DELETE FROM outbox"))

    class Killed(Exception):
        pass

    for stop_at in (400, 2_400):  # crash, resume and crash again, then finish

        def kill(total, stop_at=stop_at):
            if total >= stop_at:
                raise Killed

        with pytest.raises(Killed):
            dispatch(demo_engine, until=until, batch_size=400, on_batch=kill)
    dispatch(demo_engine, until=until, batch_size=400)
    pd.testing.assert_frame_equal(outbox(demo_engine), reference)


# ---------------------------------------------------------------- the CLI and the Data page
def test_cli_prints_what_the_rules_held_back(app_database, demo_anchor, capsys):
    from core.cli import main

    set_delivery_rules({"enabled": True, "messages": 1, "days": 7}, QUIET_OFF, app_database)
    start = demo_anchor.date() + timedelta(days=1)
    first = make_campaign(app_database, "One", daily(start, "12:00", 2), demo_anchor)
    until = (datetime.combine(start, time()) + timedelta(days=3)).isoformat()
    assert main(["dispatch", "--until", until]) == 0
    out = capsys.readouterr().out
    people = len(reachable_ios(app_database))
    assert f"campaign {first}: {people:,} messages written ({people:,} held back by the frequency cap)" in out
    assert f"delivery rules: {people:,} held back by the frequency cap, 0 not sent in quiet hours" in out


def test_data_page_saves_delivery_rules_and_refuses_a_bad_window(app_database):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=60)
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception
    at.checkbox(key="dr_cap_on").check()
    at.number_input(key="dr_cap_messages").set_value(4)
    at.number_input(key="dr_cap_days").set_value(10)
    at.checkbox(key="dr_quiet_on").check()
    at.time_input(key="dr_quiet_start").set_value(time(21, 30))
    at.time_input(key="dr_quiet_end").set_value(time(8, 0))
    at.radio(key="dr_quiet_mode").set_value("drop")
    at.button[[b.label for b in at.button].index("Save delivery rules")].click()
    at.run()
    assert not at.exception and not at.error
    saved = delivery_rules(app_database)
    assert saved == DeliveryRules(FrequencyCap(True, 4, 10), QuietHours(True, "21:30", "08:00", "drop"))
    assert any("Delivery rules saved" in s.value for s in at.success)

    at.number_input(key="dr_cap_messages").set_value(2)
    at.time_input(key="dr_quiet_end").set_value(time(21, 30))
    at.button[[b.label for b in at.button].index("Save delivery rules")].click()
    at.run()
    assert [e.value for e in at.error] == [
        "Quiet hours: the start and the end are both 21:30; choose a window of at least a minute. Nothing was changed."
    ]
    assert delivery_rules(app_database) == saved

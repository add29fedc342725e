"""Schedules: RFC 5545 recurrence on each user's wall clock, daylight saving, coverage verdicts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from core.campaigns import schedule as sch
from core.campaigns.audience import reachable_user_ids, users_frame
from core.campaigns.coverage import audience_coverage, check_coverage, last_used_window, without_last_used_window
from core.campaigns.spec import parse_schedule, parse_settings
from core.errors import UserError
from core.segments import parse_definition
from core.timeutil import utcnow
from tests.definitions import IOS_ONLY

WEEKLY_THURSDAY = {
    "kind": "recurring",
    "frequency": "weekly",
    "interval": 1,
    "weekdays": ["TH"],
    "time": "17:45",
    "start": "2025-03-17",
    "end": {"kind": "after", "count": 4},
    "local_time": True,
}


def test_weekly_thursday_1745_local_across_daylight_saving_changes():
    # US moved to DST on 9 March, Europe on 30 March, New Zealand left it on 6 April 2025.
    walls = sch.wall_occurrences(parse_schedule(WEEKLY_THURSDAY), None, None)
    assert walls == [
        datetime(2025, 3, 20, 17, 45),
        datetime(2025, 3, 27, 17, 45),
        datetime(2025, 4, 3, 17, 45),
        datetime(2025, 4, 10, 17, 45),
    ]
    expected_utc = {
        "Pacific/Auckland": ["2025-03-20 04:45", "2025-03-27 04:45", "2025-04-03 04:45", "2025-04-10 05:45"],
        "America/Los_Angeles": ["2025-03-21 00:45", "2025-03-28 00:45", "2025-04-04 00:45", "2025-04-11 00:45"],
        "Europe/Paris": ["2025-03-20 16:45", "2025-03-27 16:45", "2025-04-03 15:45", "2025-04-10 15:45"],
    }
    for zone, instants in expected_utc.items():
        sent = [sch.to_utc(w, zone) for w in walls]
        assert [f"{s:%Y-%m-%d %H:%M}" for s in sent] == instants, zone
        # Every user reads 17:45 on a Thursday on their own clock, once a week, never skipped or doubled.
        assert all(sch.to_zone(s, zone).strftime("%a %H:%M") == "Thu 17:45" for s in sent)


def test_nonexistent_local_time_shifts_forward_and_ambiguous_time_sends_once():
    daily = {
        **WEEKLY_THURSDAY,
        "frequency": "daily",
        "time": "02:30",
        "start": "2025-03-29",
        "end": {"kind": "after", "count": 3},
    }
    sent = [sch.to_utc(w, "Europe/Paris") for w in sch.wall_occurrences(parse_schedule(daily), None, None)]
    # 30 March 02:30 does not exist in Paris: it goes out at 03:30 CEST (01:30 UTC).
    assert [f"{s:%m-%d %H:%M}" for s in sent] == ["03-29 01:30", "03-30 01:30", "03-31 00:30"]
    autumn = {**daily, "start": "2025-10-25"}
    sent = [sch.to_utc(w, "Europe/Paris") for w in sch.wall_occurrences(parse_schedule(autumn), None, None)]
    # 26 October 02:30 happens twice: sent once, at the first (CEST) occurrence.
    assert [f"{s:%m-%d %H:%M}" for s in sent] == ["10-25 00:30", "10-26 00:30", "10-27 01:30"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {**WEEKLY_THURSDAY, "frequency": "daily", "interval": 2, "end": {"kind": "on", "date": "2025-03-24"}},
            ["03-17", "03-19", "03-21", "03-23"],
        ),
        (
            {**WEEKLY_THURSDAY, "weekdays": ["MO", "TH"], "interval": 2, "end": {"kind": "after", "count": 4}},
            ["03-17", "03-20", "03-31", "04-03"],
        ),
        (
            {**WEEKLY_THURSDAY, "frequency": "monthly", "month_day": 31, "end": {"kind": "after", "count": 3}},
            ["03-31", "05-31", "07-31"],
        ),
        ({"kind": "once", "time": "17:45", "start": "2025-06-01"}, ["06-01"]),
    ],
)
def test_recurrence_rules(rule, expected):
    assert [f"{w:%m-%d}" for w in sch.wall_occurrences(parse_schedule(rule), None, None)] == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # well-formed, but nothing it could send: the launch check says why
        ({"end": {"kind": "on", "date": "2025-03-01"}}, "The end date 2025-03-01 is before the start date 2025-03-17."),
        ({"weekdays": []}, "A weekly schedule needs at least one day of the week."),
        (
            {"start": "2020-01-01", "end": {"kind": "after", "count": 1}},
            "Every send of this schedule is already in the past.",
        ),
        # malformed: refused when parsed, naming the field
        ({"time": "25:99"}, "schedule: 'time' must be a time of day as HH:MM (like 17:45), not '25:99'"),
        ({"interval": 0}, "schedule: 'interval' must be a whole number from 1 to 366, not 0"),
        ({"end": {"kind": "after", "count": 0}}, "schedule: 'count' must be a whole number from 1 to 10000, not 0"),
        ({"frequency": "hourly"}, "schedule: 'frequency' must be daily, weekly or monthly, not 'hourly'"),
        ({"weekdays": ["TH", "XX"]}, "schedule: 'weekdays' must be MO, TU, WE, TH, FR, SA or SU, not 'XX'"),
        ({"start": "2025-02-30"}, "schedule: 'start' must be a date as YYYY-MM-DD, not '2025-02-30'"),
        ({"start": "1850-01-01"}, "schedule: 'start' must be within the supported years 1900-2199, not 1850-01-01"),
        ({"every": 2}, "schedule: unknown field 'every'"),
    ],
)
def test_schedule_validation_blocks_what_cannot_send(changes, message):
    try:
        errors = sch.problems(parse_schedule({**WEEKLY_THURSDAY, **changes}), now=datetime(2025, 3, 10))
    except UserError as error:
        errors = [str(error)]
    assert errors == [message]


def test_unknown_zones_fall_back_to_the_company_zone():
    assert sch.delivery_zone("Mars/Olympus_Mons", "Europe/Paris") == "Europe/Paris"
    assert sch.delivery_zone(None, "Europe/Paris") == "Europe/Paris"
    assert sch.delivery_zone("Asia/Tokyo", "Europe/Paris", local_time=False) == "Europe/Paris"
    assert sch.problems(parse_schedule(WEEKLY_THURSDAY), company_zone="Nowhere/City") == [
        "The company time zone 'Nowhere/City' is not a known IANA zone."
    ]


def test_next_sends_and_rollout_follow_the_sun():
    now = datetime(2025, 3, 19, 12, 0)
    zones = ["Pacific/Auckland", "Europe/Paris", "America/Los_Angeles"]
    table = sch.next_sends(parse_schedule(WEEKLY_THURSDAY), now, zones, "Europe/Paris", count=2)
    assert table["Occurrence"].tolist() == ["Thu 20 Mar 2025 17:45", "Thu 27 Mar 2025 17:45"]
    assert table["Pacific/Auckland"].tolist() == ["Thu 20 Mar 05:45", "Thu 27 Mar 05:45"]
    assert table["America/Los_Angeles"].tolist() == ["Fri 21 Mar 01:45", "Fri 28 Mar 01:45"]
    rollout = sch.first_send_rollout(
        parse_schedule(WEEKLY_THURSDAY),
        {"Europe/Paris": 5, "America/Los_Angeles": 3, "Pacific/Auckland": 2},
        now,
        "UTC",
    )
    assert rollout["zone"].tolist() == ["Pacific/Auckland", "Europe/Paris", "America/Los_Angeles"]
    assert rollout["cumulative_users"].tolist() == [2, 7, 10]


ZONE_USERS = {"Pacific/Auckland": 2, "Europe/Paris": 5, "America/Los_Angeles": 3, "Asia/Tokyo": 0}


@pytest.mark.parametrize(
    ("now", "first", "missed"),
    [
        # Thu 10:00 UTC: 17:45 has passed in Auckland (04:45 UTC) and Tokyo (08:45 UTC, nobody there).
        (datetime(2025, 3, 20, 10), datetime(2025, 3, 20, 17, 45), {"Pacific/Auckland": 2}),
        # Thu 20:00 UTC: Paris (16:45 UTC) too; Los Angeles (00:45 UTC Friday) is still ahead.
        (datetime(2025, 3, 20, 20), datetime(2025, 3, 20, 17, 45), {"Pacific/Auckland": 2, "Europe/Paris": 5}),
        # Fri 02:00 UTC: that Thursday is over everywhere; the next one is ahead everywhere.
        (datetime(2025, 3, 21, 2), datetime(2025, 3, 27, 17, 45), {}),
    ],
)
def test_zones_where_the_first_local_send_has_passed_at_launch(now, first, missed):
    assert sch.passed_at_launch(parse_schedule(WEEKLY_THURSDAY), ZONE_USERS, now, "UTC") == (first, missed)


def test_company_zone_sends_miss_no_zone_at_launch():
    company_time = parse_schedule({**WEEKLY_THURSDAY, "local_time": False})
    assert sch.passed_at_launch(company_time, {"UTC": 10}, datetime(2025, 3, 20, 10), "UTC") == (None, {})


def lapsed(more: float, less: float, unit: str = "days") -> dict:
    return {
        "version": 1,
        "match": "all",
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "last_used", "op": "more_than", "value": more, "unit": unit},
                    {"type": "last_used", "op": "less_than", "value": less, "unit": unit},
                ],
            }
        ],
        "exclude": [],
    }


# Monday 00:00: the next Thursday 17:45 send is 3.74 days ahead.
NOW = datetime(2025, 3, 17)
LAPSES = [8.0, 9.0, 10.0, 10.5, 12.0, 16.0, 20.0, 30.0]
LAST_USED = pd.Series([NOW - timedelta(days=d) for d in LAPSES])
WEEKLY = parse_schedule({**WEEKLY_THURSDAY, "start": "2025-03-01", "end": {"kind": "never"}})


@pytest.mark.parametrize(
    ("definition", "schedule", "settings", "verdict", "concerned"),
    [
        (lapsed(2, 3, "weeks"), WEEKLY, {"reeligible": True}, "exact", 0),
        # 4-day window, weekly sends: lapsed 8-10.26 days today cross it between two sends.
        (lapsed(14, 18), WEEKLY, {"reeligible": True}, "gap", 3),
        # 14-day window, weekly sends: lapsed 10.26-17.26 days today are in it at two sends.
        (lapsed(14, 28), WEEKLY, {"reeligible": True}, "overlap", 3),
        (lapsed(14, 28), WEEKLY, {"reeligible": False}, "overlap_prevented", 3),
        (lapsed(14, 28), WEEKLY, {"reeligible": True, "reeligible_after_days": 14}, "overlap_prevented", 3),
        (lapsed(14, 21), WEEKLY.model_copy(update={"frequency": "daily"}), {"reeligible": True}, "overlap", 1),
        (lapsed(14, 21), {"kind": "once", "time": "17:45", "start": "2025-03-20"}, {}, "not_applicable", 0),
        ({"version": 1, "match": "all", "groups": [], "exclude": []}, WEEKLY, {}, "not_applicable", 0),
    ],
)
def test_coverage_verdicts(definition, schedule, settings, verdict, concerned):
    definition, schedule = parse_definition(definition), parse_schedule(schedule)
    result = check_coverage(definition, schedule, parse_settings(settings), LAST_USED, NOW)
    assert result.verdict == verdict, result.message
    assert result.users_concerned == concerned


def test_last_used_window_reads_only_windows_every_user_must_satisfy():
    assert last_used_window(parse_definition(lapsed(2, 3, "weeks"))) == (14, 21)
    either = lapsed(14, 21)
    either["groups"][0]["match"] = "any"
    assert last_used_window(parse_definition(either)) is None
    assert last_used_window(None) is None


def test_the_population_is_the_definition_without_its_window():
    ios_lapsed = lapsed(14, 18)
    ios_lapsed["groups"][0]["filters"].append({"type": "platform", "values": ["iOS"]})
    assert without_last_used_window(parse_definition(ios_lapsed)).to_json()["groups"] == [
        {"match": "all", "filters": [{"type": "platform", "values": ["iOS"]}]}
    ]
    assert without_last_used_window(parse_definition(lapsed(14, 18))).groups == ()  # everyone, at any lapse
    either = lapsed(14, 21)
    either["groups"][0]["match"] = "any"  # not a window every user must satisfy: kept as it is
    assert without_last_used_window(parse_definition(either)) == parse_definition(either)


def test_coverage_counts_users_who_will_cross_the_window_not_those_inside_it(demo_engine):
    """A 4-day window and weekly sends: the users who will slip through are not in the audience
    today (they have not lapsed long enough yet), but they are iOS users the campaign reaches."""
    now = utcnow()
    ios_lapsed = lapsed(14, 18)
    ios_lapsed["groups"][0]["filters"].append({"type": "platform", "values": ["iOS"]})
    ios_lapsed = parse_definition(ios_lapsed)
    settings = parse_settings({"reeligible": True})
    result = audience_coverage(demo_engine, ios_lapsed, WEEKLY, settings, "push", ["iOS"], now)

    _, ios_reachable = reachable_user_ids(demo_engine, IOS_ONLY, "push", ["iOS"], now)
    _, in_window = reachable_user_ids(demo_engine, ios_lapsed, "push", ["iOS"], now)
    last_used = users_frame(demo_engine)["last_used_at"]
    everyone_ios = check_coverage(ios_lapsed, WEEKLY, settings, last_used.reindex(ios_reachable), now)
    inside_only = check_coverage(ios_lapsed, WEEKLY, settings, last_used.reindex(in_window), now)
    assert result.verdict == "gap"
    assert result.users_concerned == everyone_ios.users_concerned > 0
    assert inside_only.users_concerned == 0  # what counting only today's audience would say


def test_describe_reads_like_the_tutorial():
    assert sch.describe(WEEKLY) == (
        "Every week on Thursday at 17:45, in each user's local time zone, from 2025-03-01, never ending"
    )
    assert WEEKLY.start < date(2025, 3, 20)

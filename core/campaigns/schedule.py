"""When a campaign sends: RFC 5545 recurrence (dateutil's rrule) on a local wall clock.

A schedule is parsed once into a typed value (core/campaigns/spec.py: SendNow, SendOnce or
Recurring); these functions take that value. Its stored JSON form:
    {"kind": "now" | "once" | "recurring",
     "frequency": "daily" | "weekly" | "monthly", "interval": N,   # recurring only
     "weekdays": ["TH", ...],                                      # weekly
     "month_day": 1-31,                                            # monthly
     "time": "17:45", "start": "2025-06-05",                       # once: the date; recurring: the first day
     "end": {"kind": "never" | "on" | "after", "date": "2025-12-31", "count": N},
     "local_time": true}                                           # each user's zone, else the company zone

Occurrences are naive *wall-clock* datetimes. With local-time delivery every user gets an
occurrence at that wall-clock time in their own IANA zone (users without a valid zone use
the company zone), so one occurrence rolls across the world over about a day.

Daylight saving: the rule runs on the wall clock, so a change neither skips nor doubles a
send. A wall time that does not exist that day (02:30 on spring-forward day) is sent at the
same instant as it would have been before the change, i.e. shifted forward by the gap
(03:30); a wall time that happens twice (01:30 on fall-back day) is sent once, at its first
occurrence. Both fall out of `fold=0` in zoneinfo.

A monthly rule on day 29-31 follows RFC 5545: months without that day are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, available_timezones

import pandas as pd
from dateutil import rrule

if TYPE_CHECKING:  # spec imports this module (for WEEKDAYS)
    from core.campaigns.spec import Recurring, SendNow, SendOnce

    Schedule = SendNow | SendOnce | Recurring

WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WEEKDAY_NAMES: dict[str, str] = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
FREQUENCIES = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}
DEFAULT_COMPANY_TIMEZONE = "UTC"
# The widest spread of UTC offsets (UTC-12 to UTC+14) plus slack: how far a wall-clock
# occurrence can sit from the instants it is delivered at.
ZONE_SPREAD = timedelta(hours=27)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_zone(name: str | None) -> bool:
    return bool(name) and name in _known_zones()


def delivery_zone(user_zone: str | None, company_zone: str, local_time: bool = True) -> str:
    """The zone a user's send follows: their own when valid and local-time delivery is on."""
    if local_time and is_valid_zone(user_zone):
        return user_zone  # type: ignore[return-value]
    return company_zone if is_valid_zone(company_zone) else DEFAULT_COMPANY_TIMEZONE


def to_utc(wall: datetime, zone: str) -> datetime:
    """The naive-UTC instant of a wall-clock time in `zone` (nonexistent: shifted forward; ambiguous: first)."""
    aware = wall.replace(tzinfo=ZoneInfo(zone), fold=0)
    return aware.astimezone(UTC).replace(tzinfo=None)


def to_zone(instant_utc: datetime, zone: str) -> datetime:
    """A naive-UTC instant as naive wall-clock time in `zone`."""
    return instant_utc.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def parse_time(value: str) -> time:
    hours, minutes = str(value).split(":")[:2]
    return time(int(hours), int(minutes))


def problems(
    schedule: Schedule, now: datetime | None = None, company_zone: str = DEFAULT_COMPANY_TIMEZONE
) -> list[str]:
    """What stops a well-formed schedule from being launched, as sentences (empty when nothing)."""
    errors: list[str] = []
    if not is_valid_zone(company_zone):
        errors.append(f"The company time zone {company_zone!r} is not a known IANA zone.")
    if schedule.kind == "now":
        return errors
    if schedule.kind == "recurring":
        if schedule.frequency == "weekly" and not schedule.weekdays:
            errors.append("A weekly schedule needs at least one day of the week.")
        if schedule.frequency == "monthly" and schedule.month_day is None:
            errors.append("A monthly schedule needs a day of the month (1 to 31).")
        if schedule.end.kind == "on" and schedule.end.date < schedule.start:
            errors.append(f"The end date {schedule.end.date} is before the start date {schedule.start.isoformat()}.")
    if not errors and now is not None:
        upcoming = wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=1)
        latest = [to_utc(w, "Etc/GMT+12") for w in upcoming]  # the last zone on Earth to reach it
        if not latest or latest[0] < now:
            errors.append("Every send of this schedule is already in the past.")
    return errors


def _rule(schedule: SendOnce | Recurring) -> rrule.rrule:
    start = datetime.combine(schedule.start, parse_time(schedule.time))
    if schedule.kind == "once":
        return rrule.rrule(rrule.DAILY, dtstart=start, count=1)
    kwargs: dict = {"dtstart": start, "interval": schedule.interval}
    if schedule.frequency == "weekly":
        kwargs["byweekday"] = [getattr(rrule, d) for d in schedule.weekdays]
        kwargs["wkst"] = rrule.MO
    elif schedule.frequency == "monthly":
        kwargs["bymonthday"] = schedule.month_day
    if schedule.end.kind == "on":
        kwargs["until"] = datetime.combine(schedule.end.date, time(23, 59, 59))
    elif schedule.end.kind == "after":
        kwargs["count"] = schedule.end.count
    return rrule.rrule(FREQUENCIES[schedule.frequency], **kwargs)


def rrule_text(schedule: Schedule) -> str:
    """The RFC 5545 text of a schedule (DTSTART and RRULE lines), for the record."""
    if schedule.kind == "now":
        return ""
    return str(_rule(schedule))


def wall_occurrences(
    schedule: Schedule,
    after: datetime | None,
    before: datetime | None,
    limit: int | None = None,
    launched_at: datetime | None = None,
) -> list[datetime]:
    """Wall-clock occurrences in [after, before] (either may be None), at most `limit`.

    A send-now schedule has one occurrence: the launch instant (UTC, everyone at once).
    """
    if schedule.kind == "now":
        if launched_at is None:
            return []
        inside = (after is None or launched_at >= after) and (before is None or launched_at <= before)
        return [launched_at] if inside else []
    out: list[datetime] = []
    for wall in _rule(schedule).xafter(after, inc=True) if after is not None else _rule(schedule):
        if before is not None and wall > before:
            break
        out.append(wall)
        if limit is not None and len(out) >= limit:
            break
    return out


def occurrence_key(wall: datetime) -> str:
    """How an occurrence is written in the outbox (the wall-clock time, ISO)."""
    return wall.isoformat(timespec="seconds")


def uses_local_time(schedule: Schedule) -> bool:
    return schedule.kind != "now" and schedule.local_time


def instants(wall: datetime, zones: Iterable[str], schedule: Schedule, company_zone: str) -> dict[str, datetime]:
    """Per delivery zone, the UTC instant of one occurrence."""
    if schedule.kind == "now":
        return dict.fromkeys(zones, wall)
    return {zone: to_utc(wall, zone) for zone in zones}


def next_sends(
    schedule: Schedule,
    now: datetime,
    zones: list[str],
    company_zone: str,
    count: int = 5,
    launched_at: datetime | None = None,
) -> pd.DataFrame:
    """The next `count` occurrences: when each zone receives them, in the company's time.

    `zones` are the delivery zones to show (the audience's main ones); with company-zone
    delivery only the company zone matters.
    """
    if not uses_local_time(schedule):
        zones = [company_zone]
    rows = []
    for wall in wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=count + 3, launched_at=launched_at or now):
        sent = instants(wall, zones, schedule, company_zone)
        if max(sent.values()) < now:
            continue
        row = {"Occurrence": wall.strftime("%a %d %b %Y %H:%M")}
        if schedule.kind == "now":
            row["Occurrence"] = "Now"
        for zone in zones:
            at = sent[zone]
            local = to_zone(at, company_zone)
            row[zone] = ("(passed) " if at < now else "") + local.strftime("%a %d %b %H:%M")
        rows.append(row)
        if len(rows) >= count:
            break
    return pd.DataFrame(rows)


def _first_upcoming(
    schedule: Schedule, zones: Iterable[str], now: datetime, company_zone: str, launched_at: datetime | None = None
) -> tuple[datetime, dict[str, datetime]] | None:
    """The first occurrence that some zone still has ahead of `now`, with each zone's send instant."""
    for wall in wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=4, launched_at=launched_at or now):
        sent = instants(wall, zones, schedule, company_zone)
        if max(sent.values(), default=now) >= now:
            return wall, sent
    return None


def passed_at_launch(
    schedule: Schedule, zone_users: dict[str, int], now: datetime, company_zone: str
) -> tuple[datetime | None, dict[str, int]]:
    """Launching at `now`: the first occurrence, and the zones (with their users) where its
    local time has already passed. Dispatch sends nothing before launch, so those users get
    the next occurrence, or nothing when the campaign sends once."""
    if not uses_local_time(schedule) or schedule.kind == "now":
        return None, {}
    upcoming = _first_upcoming(schedule, zone_users, now, company_zone)
    if upcoming is None:
        return None, {}
    wall, sent = upcoming
    return wall, {zone: zone_users[zone] for zone, at in sent.items() if at < now and zone_users[zone]}


def first_send_rollout(
    schedule: Schedule,
    zone_users: dict[str, int],
    now: datetime,
    company_zone: str,
    launched_at: datetime | None = None,
) -> pd.DataFrame:
    """How the first upcoming occurrence rolls across zones: instant, users, cumulative share."""
    if not uses_local_time(schedule):
        zone_users = {company_zone: sum(zone_users.values())}
    upcoming = _first_upcoming(schedule, zone_users, now, company_zone, launched_at)
    if upcoming is not None:
        wall, sent = upcoming
        frame = pd.DataFrame(
            {
                "zone": list(sent),
                "send_at_utc": list(sent.values()),
                "users": [zone_users[z] for z in sent],
            }
        )
        frame = frame[frame["send_at_utc"] >= now].sort_values(["send_at_utc", "zone"]).reset_index(drop=True)
        frame["send_at_company"] = [to_zone(t, company_zone) for t in frame["send_at_utc"]]
        frame["cumulative_users"] = frame["users"].cumsum()
        frame["occurrence"] = occurrence_key(wall)
        return frame
    return pd.DataFrame(columns=["zone", "send_at_utc", "users", "send_at_company", "cumulative_users", "occurrence"])


def zone_label(zone: str) -> str:
    """A zone as people read it: its city, with spaces ("America/New_York" -> "New York")."""
    return zone.split("/")[-1].replace("_", " ")


def rollout_points(rollout: pd.DataFrame, names_per_point: int = 2) -> pd.DataFrame:
    """The rollout chart's points: one per send instant (zones sent together share a label, so
    Madrid and Berlin never print on top of each other), labels alternating above and below,
    the first to the right of its point so that it stays inside the chart."""
    columns = ["send_at_company", "cumulative_users", "label", "text_position"]
    if rollout.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for at, group in rollout.groupby("send_at_company", sort=True):
        cities = [zone_label(z) for z in group.sort_values("users", ascending=False)["zone"]]
        label = ", ".join(cities[:names_per_point]) + (
            f" +{len(cities) - names_per_point}" if len(cities) > names_per_point else ""
        )
        rows.append({"send_at_company": at, "cumulative_users": int(group["cumulative_users"].max()), "label": label})
    frame = pd.DataFrame(rows)
    positions = ["top left" if i % 2 == 0 else "bottom right" for i in range(len(frame))]
    positions[0] = "top right"  # the first label would run off the chart's left edge
    frame["text_position"] = positions
    return frame[columns]


def occurrence_gaps(schedule: Schedule, sample: int = 60) -> tuple[timedelta, timedelta] | None:
    """Shortest and longest time between consecutive sends (None when it sends at most once)."""
    if schedule.kind != "recurring":
        return None
    from core.campaigns.spec import EndNever

    walls = wall_occurrences(schedule.model_copy(update={"end": EndNever()}), None, None, limit=sample)
    if len(walls) < 2:
        return None
    gaps = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    return min(gaps), max(gaps)


def describe(schedule: Schedule, company_zone: str = DEFAULT_COMPANY_TIMEZONE) -> str:
    """The schedule as a sentence: 'Every week on Thursday at 17:45, each user's local time, ...'."""
    if schedule.kind == "now":
        return "Send now, to everyone at once, when launched"
    where = "in each user's local time zone" if uses_local_time(schedule) else f"in the company zone ({company_zone})"
    if schedule.kind == "once":
        return f"Once on {schedule.start.isoformat()} at {schedule.time}, {where}"
    n = schedule.interval
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}[schedule.frequency]
    every = f"Every {unit}" if n == 1 else f"Every {n} {unit}s"
    if schedule.frequency == "weekly":
        days = [WEEKDAY_NAMES[d] for d in schedule.weekdays]
        every += " on " + (", ".join(days[:-1]) + " and " + days[-1] if len(days) > 1 else "".join(days))
    elif schedule.frequency == "monthly":
        every += f" on day {schedule.month_day}"
    end = schedule.end
    ending = {
        "never": "never ending",
        "on": f"until {getattr(end, 'date', '')}",
        "after": f"for {getattr(end, 'count', '')} sends",
    }[end.kind]
    return f"{every} at {schedule.time}, {where}, from {schedule.start.isoformat()}, {ending}"

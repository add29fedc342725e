"""When a campaign sends: RFC 5545 recurrence (dateutil's rrule) on a local wall clock.

A schedule is a JSON dict:
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
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import pandas as pd
from dateutil import rrule

WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WEEKDAY_NAMES: dict[str, str] = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
KINDS = ("now", "once", "recurring")
FREQUENCIES = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}
END_KINDS = ("never", "on", "after")
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


def _parse_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def validate(schedule: dict, now: datetime | None = None, company_zone: str = DEFAULT_COMPANY_TIMEZONE) -> list[str]:
    """Blocking problems with a schedule, as sentences (empty when it can be launched)."""
    errors: list[str] = []
    kind = schedule.get("kind")
    if kind not in KINDS:
        return [f"Unknown schedule kind {kind!r}; choose send now, once or recurring."]
    if not is_valid_zone(company_zone):
        errors.append(f"The company time zone {company_zone!r} is not a known IANA zone.")
    if kind == "now":
        return errors
    try:
        parse_time(schedule.get("time", ""))
    except (ValueError, TypeError):
        errors.append(f"The time of day {schedule.get('time')!r} is not HH:MM.")
    try:
        start = _parse_date(schedule.get("start"))
    except (ValueError, TypeError):
        errors.append(f"The start date {schedule.get('start')!r} is not a date.")
        return errors
    if kind == "recurring":
        if schedule.get("frequency") not in FREQUENCIES:
            errors.append(f"Unknown frequency {schedule.get('frequency')!r}; choose daily, weekly or monthly.")
        if int(schedule.get("interval") or 0) < 1:
            errors.append("Repeat every N: N must be at least 1.")
        if schedule.get("frequency") == "weekly":
            days = schedule.get("weekdays") or []
            if not days:
                errors.append("A weekly schedule needs at least one day of the week.")
            elif any(d not in WEEKDAYS for d in days):
                errors.append(f"Unknown day(s) of the week: {', '.join(d for d in days if d not in WEEKDAYS)}.")
        if schedule.get("frequency") == "monthly" and not 1 <= int(schedule.get("month_day") or 0) <= 31:
            errors.append("The day of the month must be between 1 and 31.")
        end = schedule.get("end") or {"kind": "never"}
        if end.get("kind") not in END_KINDS:
            errors.append(f"Unknown end {end.get('kind')!r}; choose never, on a date or after N sends.")
        elif end["kind"] == "on":
            try:
                if _parse_date(end.get("date")) < start:
                    errors.append(f"The end date {end['date']} is before the start date {start.isoformat()}.")
            except (ValueError, TypeError):
                errors.append(f"The end date {end.get('date')!r} is not a date.")
        elif end["kind"] == "after" and int(end.get("count") or 0) < 1:
            errors.append("End after N sends: N must be at least 1.")
    if not errors and now is not None:
        upcoming = wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=1)
        latest = [to_utc(w, "Etc/GMT+12") for w in upcoming]  # the last zone on Earth to reach it
        if not latest or latest[0] < now:
            errors.append("Every send of this schedule is already in the past.")
    return errors


def _rule(schedule: dict) -> rrule.rrule:
    start = datetime.combine(_parse_date(schedule["start"]), parse_time(schedule["time"]))
    if schedule["kind"] == "once":
        return rrule.rrule(rrule.DAILY, dtstart=start, count=1)
    frequency = schedule["frequency"]
    kwargs: dict = {"dtstart": start, "interval": int(schedule.get("interval") or 1)}
    if frequency == "weekly":
        kwargs["byweekday"] = [getattr(rrule, d) for d in schedule["weekdays"]]
        kwargs["wkst"] = rrule.MO
    elif frequency == "monthly":
        kwargs["bymonthday"] = int(schedule["month_day"])
    end = schedule.get("end") or {"kind": "never"}
    if end["kind"] == "on":
        kwargs["until"] = datetime.combine(_parse_date(end["date"]), time(23, 59, 59))
    elif end["kind"] == "after":
        kwargs["count"] = int(end["count"])
    return rrule.rrule(FREQUENCIES[frequency], **kwargs)


def rrule_text(schedule: dict) -> str:
    """The RFC 5545 text of a schedule (DTSTART and RRULE lines), for the record."""
    if schedule.get("kind") == "now":
        return ""
    return str(_rule(schedule))


def wall_occurrences(
    schedule: dict,
    after: datetime | None,
    before: datetime | None,
    limit: int | None = None,
    launched_at: datetime | None = None,
) -> list[datetime]:
    """Wall-clock occurrences in [after, before] (either may be None), at most `limit`.

    A send-now schedule has one occurrence: the launch instant (UTC, everyone at once).
    """
    if schedule.get("kind") == "now":
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


def uses_local_time(schedule: dict) -> bool:
    return schedule.get("kind") != "now" and bool(schedule.get("local_time", True))


def instants(wall: datetime, zones: Iterable[str], schedule: dict, company_zone: str) -> dict[str, datetime]:
    """Per delivery zone, the UTC instant of one occurrence."""
    if schedule.get("kind") == "now":
        return dict.fromkeys(zones, wall)
    return {zone: to_utc(wall, zone) for zone in zones}


def next_sends(
    schedule: dict,
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
        if schedule.get("kind") == "now":
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
    schedule: dict, zones: Iterable[str], now: datetime, company_zone: str, launched_at: datetime | None = None
) -> tuple[datetime, dict[str, datetime]] | None:
    """The first occurrence that some zone still has ahead of `now`, with each zone's send instant."""
    for wall in wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=4, launched_at=launched_at or now):
        sent = instants(wall, zones, schedule, company_zone)
        if max(sent.values(), default=now) >= now:
            return wall, sent
    return None


def passed_at_launch(
    schedule: dict, zone_users: dict[str, int], now: datetime, company_zone: str
) -> tuple[datetime | None, dict[str, int]]:
    """Launching at `now`: the first occurrence, and the zones (with their users) where its
    local time has already passed. Dispatch sends nothing before launch, so those users get
    the next occurrence, or nothing when the campaign sends once."""
    if not uses_local_time(schedule) or schedule.get("kind") == "now":
        return None, {}
    upcoming = _first_upcoming(schedule, zone_users, now, company_zone)
    if upcoming is None:
        return None, {}
    wall, sent = upcoming
    return wall, {zone: zone_users[zone] for zone, at in sent.items() if at < now and zone_users[zone]}


def first_send_rollout(
    schedule: dict,
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


def occurrence_gaps(schedule: dict, sample: int = 60) -> tuple[timedelta, timedelta] | None:
    """Shortest and longest time between consecutive sends (None when it sends at most once)."""
    if schedule.get("kind") != "recurring":
        return None
    walls = wall_occurrences({**schedule, "end": {"kind": "never"}}, None, None, limit=sample)
    if len(walls) < 2:
        return None
    gaps = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    return min(gaps), max(gaps)


def describe(schedule: dict, company_zone: str = DEFAULT_COMPANY_TIMEZONE) -> str:
    """The schedule as a sentence: 'Every week on Thursday at 17:45, each user's local time, ...'."""
    kind = schedule.get("kind")
    if kind == "now":
        return "Send now, to everyone at once, when launched"
    where = "in each user's local time zone" if uses_local_time(schedule) else f"in the company zone ({company_zone})"
    at = schedule.get("time", "?")
    if kind == "once":
        return f"Once on {schedule.get('start')} at {at}, {where}"
    n = int(schedule.get("interval") or 1)
    frequency = schedule.get("frequency")
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}.get(frequency, "?")
    every = f"Every {unit}" if n == 1 else f"Every {n} {unit}s"
    if frequency == "weekly":
        days = [WEEKDAY_NAMES.get(d, d) for d in schedule.get("weekdays") or []]
        every += " on " + (", ".join(days[:-1]) + " and " + days[-1] if len(days) > 1 else "".join(days))
    elif frequency == "monthly":
        every += f" on day {schedule.get('month_day')}"
    end = schedule.get("end") or {"kind": "never"}
    ending = {
        "never": "never ending",
        "on": f"until {end.get('date')}",
        "after": f"for {end.get('count')} sends",
    }.get(end.get("kind"), "")
    return f"{every} at {at}, {where}, from {schedule.get('start')}, {ending}"

"""Company-wide delivery rules: a frequency cap and quiet hours (both off by default).

Stored in app_meta next to the company time zone, as JSON under 'frequency_cap' and
'quiet_hours'. Every setter validates first and writes nothing when a value is wrong.

Frequency cap: no user receives more than `messages` messages in any `days` days (any
window of `days` x 24 h, wherever it starts) from the campaigns that obey the cap. A
campaign obeys it unless its setting 'obeys_frequency_cap' is false (e.g. transactional
messages); such a campaign's messages are neither held back nor counted, so an opted-out
message never uses up a user's allowance.

Quiet hours: a local-time window [start, end) in each user's delivery zone (the zone the
send follows: their own with local-time delivery, else the company zone); start > end wraps
midnight (22:00-08:00). A send whose instant falls inside is either moved to the end of
that window in that zone ('defer', the default) or not sent ('drop'). A campaign obeys
quiet hours unless its setting 'obeys_quiet_hours' is false.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, require
from core.campaigns import schedule as schedules
from core.db import get_engine, session_scope
from core.errors import UserError
from core.models import AppMeta

FREQUENCY_CAP_KEY = "frequency_cap"
QUIET_HOURS_KEY = "quiet_hours"
CAP_MESSAGES_RANGE = (1, 100)
CAP_DAYS_RANGE = (1, 90)
QUIET_MODES = {"defer": "Send when quiet hours end", "drop": "Don't send"}
CAMPAIGN_CAP_SETTING = "obeys_frequency_cap"
CAMPAIGN_QUIET_SETTING = "obeys_quiet_hours"


@dataclass(frozen=True)
class FrequencyCap:
    enabled: bool = False
    messages: int = 3
    days: int = 7

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.days)

    def sentence(self) -> str:
        if not self.enabled:
            return "Off"
        plural = "message" if self.messages == 1 else "messages"
        return f"At most {self.messages} {plural} per user in any {self.days} days, across campaigns"


@dataclass(frozen=True)
class QuietHours:
    enabled: bool = False
    start: str = "22:00"
    end: str = "08:00"
    mode: str = "defer"

    def sentence(self) -> str:
        if not self.enabled:
            return "Off"
        then = "sent when they end" if self.mode == "defer" else "not sent"
        return f"{self.start}–{self.end} in each user's delivery zone; messages due then are {then}"

    def contains(self, local: time) -> bool:
        """Whether a local time of day is inside the window [start, end) (which may wrap midnight)."""
        start, end = schedules.parse_time(self.start), schedules.parse_time(self.end)
        if start < end:
            return start <= local < end
        return local >= start or local < end

    def send_instant(self, instant: datetime, zone: str) -> datetime | None:
        """When a send due at `instant` (naive UTC) goes out in `zone`: itself, the window's end, or None (dropped)."""
        if not self.enabled:
            return instant
        local = schedules.to_zone(instant, zone)
        if not self.contains(local.time()):
            return instant
        if self.mode == "drop":
            return None
        end = schedules.parse_time(self.end)
        day: date = local.date() if local.time() < end else local.date() + timedelta(days=1)
        # A window's end that does not exist that day (spring forward) is taken as shifted forward.
        return schedules.to_utc(datetime.combine(day, end), zone)


@dataclass(frozen=True)
class DeliveryRules:
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    quiet: QuietHours = field(default_factory=QuietHours)


def _read(session, key: str) -> dict:
    row = session.get(AppMeta, key)
    if row is None or not row.value:
        return {}
    try:
        value = json.loads(row.value)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UserError(f"the stored delivery rule {key!r} cannot be read (not a JSON object); {_FIX}")
    return value


# A safety rule that cannot be read must stop sends, never switch itself off.
_FIX = "set the delivery rules again on the Data page before sending"


def delivery_rules(engine: Engine | None = None) -> DeliveryRules:
    """The company's delivery rules (defaults: both off); a stored row that cannot be read raises UserError."""
    with session_scope(engine or get_engine()) as session:
        cap, quiet = _read(session, FREQUENCY_CAP_KEY), _read(session, QUIET_HOURS_KEY)
    try:
        return DeliveryRules(frequency_cap(**cap), quiet_hours(**quiet))
    except UserError as error:
        raise UserError(f"the stored delivery rules cannot be used ({error}); {_FIX}") from None
    except TypeError:
        raise UserError(f"the stored delivery rules hold unknown fields; {_FIX}") from None


def _whole_number(value, low: int, high: int, what: str) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int | np.integer) or not low <= value <= high:
        raise UserError(f"Frequency cap: the number of {what} must be a whole number from {low} to {high}")
    return int(value)


def frequency_cap(enabled: bool = False, messages=3, days=7) -> FrequencyCap:
    """A validated cap (UserError saying which value is wrong)."""
    return FrequencyCap(
        bool(enabled),
        _whole_number(messages, *CAP_MESSAGES_RANGE, "messages"),
        _whole_number(days, *CAP_DAYS_RANGE, "days"),
    )


def _clock(value, which: str) -> str:
    if isinstance(value, time):
        value = value.strftime("%H:%M")
    text = str(value or "").strip()
    try:
        parsed = schedules.parse_time(text)
        if len(text.split(":")) != 2:
            raise ValueError
    except (ValueError, TypeError):
        raise UserError(f"Quiet hours: the {which} time {text!r} is not a time of day as HH:MM (e.g. 22:00)") from None
    return parsed.strftime("%H:%M")


def quiet_hours(enabled: bool = False, start="22:00", end="08:00", mode: str = "defer") -> QuietHours:
    """Validated quiet hours (UserError saying which value is wrong)."""
    start, end = _clock(start, "start"), _clock(end, "end")
    if start == end:
        raise UserError(f"Quiet hours: the start and the end are both {start}; choose a window of at least a minute")
    if mode not in QUIET_MODES:
        raise UserError(f"Quiet hours: unknown choice {mode!r} for messages due in quiet hours; use defer or drop")
    return QuietHours(bool(enabled), start, end, mode)


def set_delivery_rules(
    cap: FrequencyCap | dict, quiet: QuietHours | dict, engine: Engine | None = None, *, actor: Actor = LOCAL_ADMIN
) -> DeliveryRules:
    """Validate both rules, then store both in one transaction (nothing changes when either is wrong)."""
    require(actor, Permission.CHANGE_RULES)
    cap = frequency_cap(**(asdict(cap) if isinstance(cap, FrequencyCap) else cap))
    quiet = quiet_hours(**(asdict(quiet) if isinstance(quiet, QuietHours) else quiet))
    with session_scope(engine or get_engine()) as session:
        for key, value in ((FREQUENCY_CAP_KEY, cap), (QUIET_HOURS_KEY, quiet)):
            text = json.dumps(asdict(value), sort_keys=True)
            row = session.get(AppMeta, key)
            if row is None:
                session.add(AppMeta(key=key, value=text))
            else:
                row.value = text
        session.add(audit_entry(actor, "rule change", "delivery rules", {"cap": asdict(cap), "quiet": asdict(quiet)}))
    return DeliveryRules(cap, quiet)


def obeys_cap(settings: dict | None) -> bool:
    return bool((settings or {}).get(CAMPAIGN_CAP_SETTING, True))


def obeys_quiet_hours(settings: dict | None) -> bool:
    return bool((settings or {}).get(CAMPAIGN_QUIET_SETTING, True))


def cap_blocked(user_ids: np.ndarray, send_at: np.ndarray, existing: pd.DataFrame, cap: FrequencyCap) -> np.ndarray:
    """For each candidate (user, instant), whether one more message would break the cap.

    `existing` (columns user_id, send_at) holds the capped messages already written. A
    candidate is blocked when some window of `cap.days` days containing its instant already
    holds `cap.messages` of them, looking backwards *and* forwards, so the cap holds in every
    window whatever order messages are written in.
    """
    blocked = np.zeros(len(user_ids), dtype=bool)
    if not cap.enabled or len(user_ids) == 0 or existing.empty:
        return blocked
    window = np.timedelta64(cap.window)
    candidates = pd.DataFrame(
        {"row": np.arange(len(user_ids)), "user_id": user_ids, "at": pd.to_datetime(send_at).to_numpy()}
    )
    near = candidates.merge(existing.rename(columns={"send_at": "other"}), on="user_id")
    near = near[(near["other"] - near["at"]).abs() < window].sort_values(["row", "other"], kind="stable")
    # Blocked when some N consecutive neighbours (sorted) and the candidate span less than D:
    # with it they would be N + 1 messages inside one D-day window.
    last = near.groupby("row")["other"].shift(-(cap.messages - 1))
    at = near["at"].to_numpy()
    first = near["other"].to_numpy()
    full = last.notna().to_numpy()
    span = np.maximum(last.to_numpy(), at) - np.minimum(first, at)
    rows = near["row"].to_numpy()[full & (span < window)]
    blocked[rows] = True
    return blocked


def schedule_verdict(schedule, rules: DeliveryRules, settings, company_zone: str, now: datetime):
    """A sentence when the chosen send time falls inside quiet hours (None when it does not, or they do not apply).

    `schedule` and `settings` are the parsed values of core/campaigns/spec.py.
    """
    quiet = rules.quiet
    if not quiet.enabled or not settings.obeys_quiet_hours:
        return None
    if schedule.kind == "now":
        local = schedules.to_zone(now, company_zone).time()
        where = f"now in the company zone ({company_zone}, {local:%H:%M})"
    else:
        local = schedules.parse_time(schedule.time)
        zone = "each user's local time" if schedules.uses_local_time(schedule) else f"the company zone ({company_zone})"
        where = f"{local:%H:%M} in {zone}"
    if not quiet.contains(local):
        return None
    outcome = (
        f"messages will wait until {quiet.end} local time"
        if quiet.mode == "defer"
        else "these messages will not be sent"
    )
    return f"The send time ({where}) falls inside quiet hours ({quiet.start}–{quiet.end}): {outcome}."

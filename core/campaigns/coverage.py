"""Coverage check: does a recurring send on a "last used" window message every lapsed user once?

A user who stops using the app ages through the window (lapsed more than `low` and less
than `high` days) in `high - low` days. A campaign sending every `gap` days catches them:
- window narrower than the gap: some users cross the window between two sends, unmessaged;
- window wider than the gap: users still inside at the next send get it twice (unless the
  re-eligibility setting forbids a second message that soon);
- equal: each lapsed user exactly once (the tutorial's one-week window for a weekly send).
"How many today" counts users, by their current lapse, who will fall in the gap (or the
overlap) around the next two sends. They are counted among the users the campaign could ever
reach through that window: everyone its other filters, channel and platforms allow, whatever
their lapse today (`audience_coverage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.campaigns.audience import reachable_user_ids, users_frame
from core.campaigns.schedule import ZONE_SPREAD, occurrence_gaps, wall_occurrences
from core.segments.definition import Group, SegmentDefinition

if TYPE_CHECKING:  # spec imports audience, as this module does
    from core.campaigns.spec import DeliverySettings, Schedule
from core.segments.filter_specs import UNITS

DAY = timedelta(days=1)


def _days_text(n: float) -> str:
    return f"{n:g} day" if n == 1 else f"{n:g} days"


@dataclass(frozen=True)
class Coverage:
    verdict: str  # "not_applicable" | "gap" | "overlap" | "overlap_prevented" | "exact"
    message: str
    window_days: tuple[float, float] | None = None
    gap_days: float | None = None
    users_concerned: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict in ("exact", "overlap_prevented", "not_applicable")


def _binding_groups(definition: SegmentDefinition | None) -> list[Group]:
    """The groups whose filters every matching user must satisfy: all of them when groups are
    combined with "all", except groups of several filters matching "any"."""
    if definition is None:
        return []
    groups = definition.groups
    if len(groups) > 1 and definition.match == "any":
        return []
    return [g for g in groups if not (len(g.filters) > 1 and g.match == "any")]


def last_used_window(definition: SegmentDefinition | None) -> tuple[float, float] | None:
    """(more than, less than) days of a definition's "last used" window, when it has both bounds.

    Only windows every matching user must satisfy count (see `_binding_groups`).
    """
    low, high = 0.0, None
    for group in _binding_groups(definition):
        for f in group.filters:
            if f.type != "last_used":
                continue
            days = float(f.value) * UNITS[f.unit]
            if f.op == "more_than":
                low = max(low, days)
            else:
                high = days if high is None else min(high, days)
    if high is None or low <= 0:
        return None
    return low, high


def without_last_used_window(definition: SegmentDefinition) -> SegmentDefinition:
    """The definition without the "last used" filters its window is read from: the users who,
    as their lapse grows, pass through the window."""
    binding = {id(g) for g in _binding_groups(definition)}
    groups = []
    for group in definition.groups:
        if id(group) in binding:
            group = group.model_copy(update={"filters": tuple(f for f in group.filters if f.type != "last_used")})
            if not group.filters:
                continue
        groups.append(group)
    return definition.model_copy(update={"groups": tuple(groups)})


def _days(users_last_used: pd.Series, now: datetime) -> np.ndarray:
    last = users_last_used.to_numpy(dtype="datetime64[ns]")
    return (np.datetime64(now) - last) / np.timedelta64(1, "D")


def check_coverage(
    definition: SegmentDefinition | None,
    schedule: Schedule,
    settings: DeliverySettings,
    last_used_at: pd.Series,
    now: datetime,
) -> Coverage:
    """The verdict for this audience and cadence; `last_used_at` is the reachable users' last use (naive UTC)."""
    window = last_used_window(definition)
    if window is None:
        return Coverage("not_applicable", 'The audience has no "last used" window with both bounds: nothing to check.')
    gaps = occurrence_gaps(schedule)
    if gaps is None:
        return Coverage(
            "not_applicable", "The campaign sends once: each user in the window gets it once.", window_days=window
        )
    low, high = window
    width = high - low
    shortest, longest = (g / DAY for g in gaps)
    upcoming = wall_occurrences(schedule, now - ZONE_SPREAD, None, limit=1)
    until_next = max(0.0, (upcoming[0] - now) / DAY) if upcoming else 0.0
    lapse = _days(last_used_at, now)
    lapse = lapse[~np.isnan(lapse)]
    described = f"The window is {width:g} days wide ({low:g} to {high:g} days since last use)"
    if width < longest:
        # Lapsed between high-gap and low days at the next send: past the window by the one after.
        lo_band, hi_band = high - longest - until_next, low - until_next
        concerned = int(((lapse >= lo_band) & (lapse <= hi_band)).sum())
        return Coverage(
            "gap",
            f"{described} but sends are up to {_days_text(longest)} apart: users whose lapse crosses the window "
            f"between two sends are never messaged. {concerned:,} users lapsed today will slip through around "
            f"the next send. Widen the window to {_days_text(longest)} or send more often.",
            window,
            longest,
            concerned,
        )
    if width > shortest:
        lo_band, hi_band = low - until_next, high - shortest - until_next
        concerned = int(((lapse > lo_band) & (lapse < hi_band)).sum())
        reeligible, after = settings.reeligible, settings.reeligible_after_days
        if not reeligible or (after is not None and after >= shortest):
            return Coverage(
                "overlap_prevented",
                f"{described}, wider than the {_days_text(shortest)} between sends: {concerned:,} users would be in it "
                f"at two sends, but the re-eligibility setting lets each receive it only once.",
                window,
                shortest,
                concerned,
            )
        return Coverage(
            "overlap",
            f"{described}, wider than the {_days_text(shortest)} between sends: {concerned:,} users will receive it "
            f"twice. Narrow the window to {_days_text(shortest)} or make users re-eligible only after {_days_text(width)}.",
            window,
            shortest,
            concerned,
        )
    return Coverage(
        "exact",
        f"{described}, the same as the time between sends: each lapsed user is messaged exactly once.",
        window,
        shortest,
        0,
    )


def audience_coverage(
    engine: Engine,
    definition: SegmentDefinition | None,
    schedule: Schedule,
    settings: DeliverySettings,
    channel: str,
    platforms: list[str] | None,
    now: datetime,
) -> Coverage:
    """`check_coverage` over everyone the campaign could reach through its window: the users its
    other filters, channel and platforms allow, at any lapse."""
    if last_used_window(definition) is None:
        return check_coverage(definition, schedule, settings, pd.Series([], dtype="datetime64[ns]"), now)
    _, reachable = reachable_user_ids(engine, without_last_used_window(definition), channel, platforms, now)
    last_used = users_frame(engine)["last_used_at"].reindex(reachable)
    return check_coverage(definition, schedule, settings, last_used, now)

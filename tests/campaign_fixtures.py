"""Launched campaigns for the dispatch and delivery-rules tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from core import segments
from core.campaigns import CampaignSpec, launch

MESSAGE = {
    "title": "We miss you, {{ first_name | default: 'there' }}",
    "body": "See what is new since {{ country }}.",
    "offers": {},
}
# No control group: these campaigns test who is sent what, and when (test_campaign_results.py tests control).
# Delivery tests are about who is sent what: nobody is held out as a control group.
NO_CONTROL = {"control_percent": 0}
ALWAYS_REELIGIBLE = {"reeligible": True, "reeligible_after_days": None, "control_percent": 0}


def thursday_1745(anchor: datetime) -> dict:
    """The tutorial's schedule: weekly on Thursday at 17:45 local time, from the Thursday after next."""
    start = anchor.date() + timedelta(days=(3 - anchor.weekday()) % 7 + 7)
    return {
        "kind": "recurring",
        "frequency": "weekly",
        "interval": 1,
        "weekdays": ["TH"],
        "time": "17:45",
        "start": start.isoformat(),
        "end": {"kind": "never"},
        "local_time": True,
    }


def daily(start: date, at: str, count: int | None = None, local_time: bool = True) -> dict:
    """Every day at `at` from `start`, for `count` sends (never ending when None)."""
    return {
        "kind": "recurring",
        "frequency": "daily",
        "interval": 1,
        "time": at,
        "start": start.isoformat(),
        "end": {"kind": "never"} if count is None else {"kind": "after", "count": count},
        "local_time": local_time,
    }


def make_campaign(engine, name: str, definition: dict, schedule: dict, launched_at: datetime, settings=None) -> int:
    """An iOS push campaign on a new segment "<name> audience", launched at `launched_at`."""
    segment = segments.save_segment(engine, f"{name} audience", definition)
    spec = CampaignSpec(
        name=name,
        segment_id=segment.id,
        channel="push",
        platforms=["iOS"],
        message=MESSAGE,
        schedule=schedule,
        settings=settings or ALWAYS_REELIGIBLE,
    )
    return launch(spec, engine, now=launched_at)

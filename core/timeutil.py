"""Time helpers. The database stores naive UTC; these convert at the edges."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as naive UTC (the database's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def screen_time() -> datetime:
    """The instant screens evaluate relative dates at: now, to the minute.

    Every page uses it, so the Segments and Campaigns pages agree on an audience within a minute
    ("last used 2-3 weeks ago" changes as users cross its edges), and reruns within a minute agree.
    """
    return utcnow().replace(second=0, microsecond=0)

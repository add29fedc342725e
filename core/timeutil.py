"""Time helpers. The database stores naive UTC; these convert at the edges."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as naive UTC (the database's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)

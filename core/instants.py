"""One parser for instants, used at every edge: imports, CLI flags and pages.

The database stores naive UTC. Anything a person or a file writes as a time goes through
`parse_instant`, so every surface accepts the same ISO 8601 forms and refuses the same values,
and nothing is stored that cannot be read back.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime

# The supported range, stated in the README. Wide enough for any customer history, narrow
# enough that every backend stores and reads it back, and that arithmetic of a few years
# either side (windows, lookbacks) never leaves the calendar.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2199, 12, 31, 23, 59, 59)

_Z = re.compile(r"[zZ]$")


def parse_instant(value: str | datetime | date) -> datetime:
    """An ISO 8601 instant as naive UTC: `Z`, `±hh:mm` or no offset (taken as UTC), or a date alone.

    Raises ValueError with a sentence a person can act on; callers add where it came from.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("is empty; expected an ISO 8601 time such as 2026-03-01T18:45:00Z")
        if len(text) > 40:
            raise ValueError("is too long to be an ISO 8601 time")
        try:
            moment = datetime.fromisoformat(_Z.sub("+00:00", text))
        except ValueError:
            raise ValueError(
                f"'{text}' is not an ISO 8601 time (e.g. 2026-03-01, 2026-03-01T18:45:00Z or 2026-03-01T19:45+01:00)"
            ) from None
        except OverflowError:
            raise ValueError(f"'{text}' is outside the supported range") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"'{value}' is outside the supported range") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"'{value}' is outside the supported range {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)")
    return moment


def instant_arg(value: str) -> datetime:
    """argparse `type=` for time flags: the same parser, argparse's own one-line error."""
    try:
        return parse_instant(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None

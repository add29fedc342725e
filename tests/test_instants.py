"""One parser for instants: the ISO 8601 forms it takes, and the one-line refusals."""

from datetime import datetime

import pytest

from core.instants import EARLIEST, LATEST, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T18:45:00Z", datetime(2026, 3, 1, 18, 45)),
        ("2026-03-01T18:45:00z", datetime(2026, 3, 1, 18, 45)),
        ("2026-03-01T19:45:00+01:00", datetime(2026, 3, 1, 18, 45)),
        ("2026-03-01T13:45-05:00", datetime(2026, 3, 1, 18, 45)),
        ("2026-03-01 18:45", datetime(2026, 3, 1, 18, 45)),
        ("2026-03-01", datetime(2026, 3, 1)),
        ("1998-05-31T23:59:59Z", datetime(1998, 5, 31, 23, 59, 59)),
        ("  1997-01-01  ", datetime(1997, 1, 1)),
        ("20260301T184500Z", datetime(2026, 3, 1, 18, 45)),
    ],
)
def test_accepted_forms_become_naive_utc(text, expected):
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-13-01", "is not an ISO 8601 time"),
        ("0001-01-01", "outside the supported range"),
        ("0001-01-01T00:00:00+01:00", "outside the supported range"),
        ("9999-12-31T23:59:59-01:00", "outside the supported range"),
        ("1899-12-31T23:59:59Z", "outside the supported range"),
        ("2200-01-01", "outside the supported range"),
        ("2" * 100, "too long"),
    ],
)
def test_refusals_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_instant(text)


def test_range_edges_are_inclusive():
    assert parse_instant(EARLIEST.isoformat()) == EARLIEST
    assert parse_instant(LATEST.isoformat()) == LATEST

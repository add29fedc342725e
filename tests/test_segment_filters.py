"""Each filter at its edges, answered the same by the in-memory mask and by SQL."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from core import segments
from core.errors import UserError
from tests import segment_fixtures
from tests.segment_fixtures import ALL, NOW, external_ids

world = segment_fixtures.world  # the shared six-user fixture

P = "PREDICTION"  # replaced by the world's full prediction id


def _one(*filters, match="all"):
    return segments.definition_of(*filters, match=match)


def _with_prediction(value, prediction):
    if isinstance(value, dict):
        return {k: _with_prediction(v, prediction) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_prediction(v, prediction) for v in value]
    return prediction if value == P else value


def _both(engine, definition, now=NOW) -> set[str]:
    """The matching users by mask and by SQL; the two must agree."""
    definition = segments.parse_definition(definition)
    by_mask = external_ids(engine, segments.matching_user_ids(definition, engine, now))
    by_sql = external_ids(engine, segments.sql_user_ids(definition, engine, now))
    assert by_mask == by_sql
    assert segments.count(definition, engine, now) == segments.sql_count(definition, engine, now) == len(by_mask)
    return by_mask


CASES = [
    # last used / first used: strict bounds; exactly N days ago is neither more nor less
    ({"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"}, {"u2", "u3", "u6"}),
    ({"type": "last_used", "op": "less_than", "value": 3, "unit": "weeks"}, {"u1", "u2", "u3", "u5"}),
    ({"type": "last_used", "op": "less_than", "value": 14, "unit": "days"}, {"u5"}),
    ({"type": "last_used", "op": "more_than", "value": 0, "unit": "days"}, ALL - {"u4"}),
    ({"type": "first_used", "op": "more_than", "value": 60, "unit": "days"}, {"u2"}),
    ({"type": "first_used", "op": "less_than", "value": 1.5, "unit": "weeks"}, {"u5"}),
    # session counts: inclusive; a user without facts has 0
    ({"type": "session_count", "min": 3}, {"u1", "u5"}),
    ({"type": "session_count", "max": 1}, {"u4", "u6"}),
    ({"type": "session_count", "min": 2, "max": 2}, {"u2", "u3"}),
    # X sessions in the last Y days: the window starts exactly Y days ago, inclusive
    ({"type": "recent_sessions", "min": 4, "days": 6}, {"u5"}),
    ({"type": "recent_sessions", "min": 5, "days": 6}, set()),
    ({"type": "recent_sessions", "min": 5, "days": 7}, {"u5"}),
    ({"type": "recent_sessions", "max": 0, "days": 7}, ALL - {"u5"}),
    ({"type": "recent_sessions", "min": 1, "max": 1, "days": 14}, {"u1"}),
    # did event
    ({"type": "event", "event": "purchase"}, {"u1", "u3"}),
    ({"type": "event", "event": "purchase", "max": 0}, {"u2", "u4", "u5", "u6"}),
    ({"type": "event", "event": "purchase", "min": 2}, {"u1"}),
    ({"type": "event", "event": "purchase", "min": 1, "days": 14}, {"u1"}),
    ({"type": "event", "event": "purchase", "min": 1, "days": 13.9}, set()),
    (
        {"type": "event_time", "event": "purchase", "which": "first", "op": "less_than", "value": 3, "unit": "weeks"},
        {"u1", "u3"},
    ),
    (
        {"type": "event_time", "event": "purchase", "which": "last", "op": "more_than", "value": 2, "unit": "weeks"},
        {"u3"},
    ),
    # purchases and money: inclusive, to the cent
    ({"type": "purchase_count", "min": 1, "max": 1}, {"u3"}),
    ({"type": "money_spent", "min": 50}, {"u1"}),
    ({"type": "money_spent", "max": 49.99}, ALL - {"u1"}),
    ({"type": "money_spent", "min": 49.99, "max": 49.99}, {"u3"}),
    # attributes: a missing value matches nothing; codes are normalised
    ({"type": "platform", "values": ["iOS"]}, {"u1", "u5"}),
    ({"type": "platform", "values": ["ios", "WEB"]}, {"u1", "u3", "u5"}),
    ({"type": "country", "values": ["fr"]}, {"u2", "u6"}),
    ({"type": "language", "values": ["de"]}, {"u3"}),
    ({"type": "timezone", "values": ["Europe/Paris", "Europe/London"]}, {"u2", "u5", "u6"}),
    ({"type": "country", "values": ["JP"]}, set()),
    # flags: push needs a token AND the opt-in; a missing flag is "no"
    ({"type": "push_enabled", "value": True}, {"u1", "u5"}),
    ({"type": "push_enabled", "value": False}, {"u2", "u3", "u4", "u6"}),
    ({"type": "email_subscribed", "value": True}, {"u1", "u3", "u6"}),
    ({"type": "email_subscribed", "value": False}, {"u2", "u4", "u5"}),
    # random bucket: inclusive 0-9999
    ({"type": "random_bucket", "min": 0, "max": 0}, {"u1"}),
    ({"type": "random_bucket", "min": 9999, "max": 9999}, {"u2"}),
    ({"type": "random_bucket", "min": 4999, "max": 5000}, {"u3", "u5"}),
    ({"type": "random_bucket", "min": 0, "max": 9999}, ALL),
    # likelihood: inclusive score range; tiers Low [0,50) Medium [50,75) High [75,100]; unscored never match
    ({"type": "likelihood_score", "prediction": P, "min": 75, "max": 100}, {"u1", "u6"}),
    ({"type": "likelihood_score", "prediction": P, "min": 50, "max": 74.99}, {"u2", "u3"}),
    ({"type": "likelihood_score", "prediction": P, "min": 0, "max": 100}, ALL - {"u4"}),
    ({"type": "likelihood_category", "prediction": P, "categories": ["High"]}, {"u1", "u6"}),
    ({"type": "likelihood_category", "prediction": P, "categories": ["low", "Medium"]}, {"u2", "u3", "u5"}),
]


@pytest.mark.parametrize(("spec", "expected"), CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)])
def test_each_filter_at_its_edges(world, spec, expected):
    engine, predictions = world
    assert _both(engine, _one(_with_prediction(spec, predictions["full"]))) == expected


def test_the_tutorials_lapsed_users_segment(world):
    engine, _ = world
    lapsed = _one(
        {"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"},
        {"type": "last_used", "op": "less_than", "value": 3, "unit": "weeks"},
    )
    assert _both(engine, lapsed) == {"u2", "u3"}
    assert segments.describe(lapsed) == ["Last used the app between 2 and 3 weeks ago"]


STRUCTURES = [
    (
        {
            "match": "any",
            "groups": [
                {"filters": [{"type": "platform", "values": ["iOS"]}]},
                {"filters": [{"type": "country", "values": ["FR"]}]},
            ],
        },
        {"u1", "u5", "u2", "u6"},
    ),
    (
        {
            "match": "all",
            "groups": [
                {"filters": [{"type": "platform", "values": ["Android"]}]},
                {"filters": [{"type": "email_subscribed"}]},
            ],
        },
        {"u6"},
    ),
    (
        {
            "groups": [
                {
                    "match": "any",
                    "filters": [{"type": "platform", "values": ["Web"]}, {"type": "session_count", "min": 5}],
                }
            ]
        },
        {"u3", "u5"},
    ),
    # exclusions keep users whose value is missing: NULL is "not in France", not "unknown, drop"
    ({"exclude": [{"filters": [{"type": "country", "values": ["FR"]}]}]}, {"u1", "u3", "u4", "u5"}),
    (
        {
            "exclude": [
                {
                    "filters": [
                        {
                            "type": "event_time",
                            "event": "purchase",
                            "which": "last",
                            "op": "more_than",
                            "value": 0,
                            "unit": "days",
                        }
                    ]
                }
            ]
        },
        {"u2", "u4", "u5", "u6"},
    ),
    ({"exclude": [{"filters": [{"type": "last_used", "op": "less_than", "value": 100, "unit": "days"}]}]}, {"u4"}),
    (
        {
            "groups": [{"filters": [{"type": "platform", "values": ["iOS", "Android"]}]}],
            "exclude": [{"match": "any", "filters": [{"type": "push_enabled"}, {"type": "country", "values": ["FR"]}]}],
        },
        set(),
    ),
    # empty groups are ignored; no groups at all is everyone
    ({"groups": [{"filters": []}, {"filters": [{"type": "platform", "values": ["iOS"]}]}]}, {"u1", "u5"}),
    ({"groups": [], "exclude": [{"filters": []}]}, ALL),
    ({}, ALL),
]


@pytest.mark.parametrize(("definition", "expected"), STRUCTURES)
def test_and_or_and_exclusion(world, definition, expected):
    engine, _ = world
    assert _both(engine, definition) == expected


def test_now_may_carry_a_time_zone(world):
    engine, _ = world
    definition = _one({"type": "last_used", "op": "more_than", "value": 14, "unit": "days"})
    paris = NOW.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert _both(engine, definition, paris) == _both(engine, definition, NOW) == {"u2", "u3", "u6"}
    # one second later, u1 (last used exactly 14 days before NOW) has lapsed too
    assert _both(engine, definition, paris + timedelta(seconds=1)) == {"u1", "u2", "u3", "u6"}


def test_segments_stay_current_as_now_moves(world):
    engine, _ = world
    definition = _one({"type": "recent_sessions", "min": 1, "days": 1})
    assert _both(engine, definition) == {"u5"}
    assert _both(engine, definition, NOW + timedelta(days=2)) == set()


BAD = [
    ({"type": "last_used", "op": "more_than", "value": -2, "unit": "weeks"}, "cannot be negative"),
    ({"type": "last_used", "op": "before", "value": 2, "unit": "weeks"}, "'op' must be more_than or less_than"),
    ({"type": "last_used", "op": "more_than", "value": 2, "unit": "months"}, "'unit' must be days or weeks"),
    ({"type": "session_count", "min": 5, "max": 2}, "minimum 5 is above the maximum 2"),
    ({"type": "session_count"}, "give a minimum, a maximum or both"),
    ({"type": "session_count", "min": 1.5}, "whole number"),
    ({"type": "recent_sessions", "min": 1, "days": 0}, "'days' must be more than 0"),
    ({"type": "platform", "values": ["Windows"]}, "unknown platform 'Windows'"),
    ({"type": "platform", "values": []}, "non-empty list"),
    ({"type": "country", "values": ["France"]}, "two-letter country code"),
    ({"type": "timezone", "values": ["Paris"]}, "not an IANA time zone"),
    ({"type": "random_bucket", "min": 0, "max": 10000}, "between 0 and 9999"),
    ({"type": "likelihood_score", "prediction": 1, "min": 80, "max": 20}, "minimum score 80 is above the maximum 20"),
    ({"type": "likelihood_score", "prediction": 1, "min": 0, "max": 120}, "between 0 and 100"),
    ({"type": "likelihood_category", "prediction": 1, "categories": ["Huge"]}, "unknown likelihood category 'Huge'"),
    ({"type": "likelihood_score", "prediction": "x"}, "'prediction' must be a prediction id"),
    ({"type": "push_enabled", "value": "yes"}, "true or false"),
    ({"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks", "extra": 1}, "unknown field 'extra'"),
    ({"type": "favourite_colour"}, "unknown filter type 'favourite_colour'"),
]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[b[1] for b in BAD])
def test_absurd_filters_are_refused_naming_the_filter(spec, message):
    definition = {"groups": [{"filters": [{"type": "platform", "values": ["iOS"]}]}], "exclude": [{"filters": [spec]}]}
    with pytest.raises(UserError) as error:
        segments.parse_definition(definition)
    assert str(error.value).startswith("exclusion group 1, filter 1")
    assert message in str(error.value)


def test_references_are_checked_against_the_data(world):
    engine, predictions = world
    cases = [
        ({"type": "likelihood_score", "prediction": 999, "min": 0, "max": 100}, "prediction 999 does not exist"),
        (
            {"type": "likelihood_category", "prediction": predictions["preview"], "categories": ["High"]},
            "only full predictions can target users",
        ),
        ({"type": "event", "event": "purchse"}, "no user ever did an event named 'purchse'"),
    ]
    for spec, message in cases:
        definition = segments.parse_definition(
            {"groups": [{"filters": [{"type": "platform", "values": ["iOS"]}, spec]}]}
        )
        for answer in (segments.count, segments.sql_count):
            with pytest.raises(UserError, match=message) as error:
                answer(definition, engine, NOW)
            assert str(error.value).startswith("group 1, filter 2")


def test_definition_versions():
    assert segments.parse_definition({}).version == 1
    with pytest.raises(UserError, match="version 2 is newer"):
        segments.parse_definition({"version": 2})
    with pytest.raises(UserError, match="'match' must be all or any"):
        segments.parse_definition({"match": "some"})


def test_sentences(world):
    engine, predictions = world
    names = {predictions["full"]: "Purchase in 30 days"}
    definition = {
        "match": "any",
        "groups": [
            {
                "filters": [
                    {"type": "likelihood_category", "prediction": predictions["full"], "categories": ["High"]},
                    {"type": "platform", "values": ["iOS", "Android"]},
                ]
            },
            {"filters": [{"type": "recent_sessions", "min": 3, "days": 7}]},
        ],
        "exclude": [{"filters": [{"type": "event", "event": "purchase", "days": 30}]}],
    }
    assert segments.describe(segments.parse_definition(definition), names) == [
        "Likelihood category for “Purchase in 30 days” is High and platform is iOS or Android",
        "Or: Had at least 3 sessions in the last 7 days",
        "Except: Did purchase in the last 30 days",
    ]
    assert segments.describe(segments.empty_definition()) == ["All users"]

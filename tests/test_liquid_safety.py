"""Liquid copy at its boundary: every failure a template error with its line, every size bounded,
edge-case users checked before launch, and one user's failure confined to that user's message."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core.campaigns import dispatch, templating
from core.campaigns.templating import TemplateError
from core.models import OutboxMessage
from tests.campaign_fixtures import daily, make_campaign
from tests.definitions import IOS_ONLY

FILTER_FAILURES = [
    ("{{ 5 | modulo: 0 }}", 1, "modulo: can't divide by 0"),
    ("Hi\n{{ 5 | divided_by: 0 }}", 2, "divided_by: can't divide by 0"),
    ("{{ 'gA==' | base64_decode }}", 1, "base64_decode: the decoded value is not text"),
    ("{{ 'x' | base64_decode }}", 1, "invalid base64-encoded string"),
    ("a\nb\n{{ 99999999999999 | date: '%Y' }}", 3, "date: a number is out of range"),
    ("{{ 'nan' | plus: 0 | floor }}", 1, "plus: a number is not finite"),
    ("{{ '1e308' | times: 10 }}", 1, "times: a number is not finite"),
    ("{{ 99999999999999999999 | times: 99999999999 }}", 1, "times: a number is too large"),
    ("{{ 'abc' | slice: 99999999999999999999999 }}", 1, "slice: a number is too large"),
    ("{{ " + "9" * 5000 + " }}", 1, "integer string conversion limit"),
]


@pytest.mark.parametrize(("source", "line", "message"), FILTER_FAILURES, ids=[c[0][:30] for c in FILTER_FAILURES])
def test_every_filter_failure_is_a_template_error_with_its_line(source, line, message):
    with pytest.raises(TemplateError) as caught:
        templating.render(source, templating.VARIABLES, "Body")
    assert caught.value.problem.line == line
    assert message in caught.value.problem.message
    assert str(caught.value).startswith(f"Body, line {line}: ")
    assert templating.check(source, "Body") == caught.value.problem


EXHAUSTING = [
    ("{{ (1..100000000) | join }}", "a range has 100,000,000 numbers; the limit is 1,000"),
    ("{% for i in (1..100000000) reversed %}{{ i }}{% endfor %}", "a range has 100,000,000 numbers"),
    ("{% tablerow i in (1..100000000) %}{{ i }}{% endtablerow %}", "a range has 100,000,000 numbers"),
    ("{% assign r = (1..5000) %}{{ r | size }}", "a range has 5,000 numbers"),
    ("{% assign n = 1000000 %}{{ (1..n) | join }}", "a range has 1,000,000 numbers"),
    (
        "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}",
        "append: a text is longer than 20,000 characters",
    ),
    ("{{ 'aaaaaaaaaa' | replace: 'a', '" + "b" * 5000 + "' }}", "replace: the result would be longer than 20,000"),
    ("{% assign x = 10 %}{% for i in (1..100) %}{% assign x = x | times: x %}{% endfor %}", "times: a number is too"),
    ("{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}", "a loop runs too many times"),
    ("{% for i in (1..1000) %}" + "x" * 100 + "{% endfor %}", "the message grows too long"),
]


@pytest.mark.parametrize(("source", "message"), EXHAUSTING, ids=[c[1][:30] for c in EXHAUSTING])
def test_ranges_loops_and_values_are_bounded_in_memory(source, message):
    tracemalloc.start()
    try:
        problem = templating.check(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem is not None and message in problem.message
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize(
    ("source", "who"),
    [
        ("{{ total_spent | divided_by: session_count }}", "for a user with every field empty"),
        ("{{ user_id | times: 4 }}", "for a user with extreme figures"),
        ("{{ first_name | size | modulo: 0 }}", ""),
        ("{{ 100 | divided_by: purchase_count | default: 1 }}", "for a user with every field empty"),
        ("{{ first_name | append: first_name | append: first_name | slice: 0, 5 | upcase }}", None),
        ("{{ likelihood_score | plus: 1 }} {{ first_name | default: 'there' }}", None),
    ],
)
def test_the_copy_check_renders_edge_case_users_before_launch(source, who):
    problem = templating.check(source)
    if who is None:
        assert problem is None
    else:
        assert problem is not None and problem.message.endswith(f"({who})" if who else "by 0")


def test_edge_case_users_cover_empty_fields_long_unicode_and_extreme_numbers():
    samples = dict(templating.EDGE_CASE_USERS)
    empty = samples["a user with every field empty"]
    assert empty["first_name"] is None and empty["email"] is None and empty["total_spent"] is None
    assert len(samples["a user with a long non-Latin name"]["first_name"]) == 100
    assert not samples["a user with a long non-Latin name"]["first_name"].isascii()
    assert samples["a user with extreme figures"]["total_spent"] == 1e15
    assert samples["a user with no score and huge counts"]["session_count"] == 2**31


MALLORY = "{% if first_name == 'Mallory' %}{{ 'gA==' | base64_decode }}{% endif %}Hello {{ first_name }}"


def test_a_render_failure_at_dispatch_fails_only_that_users_message(demo_engine, demo_anchor):
    start = demo_anchor.date() + timedelta(days=1)
    schedule = daily(start, "09:00", count=1, local_time=False)
    with demo_engine.begin() as connection:
        mallory = connection.execute(
            text("SELECT id FROM users WHERE platform = 'iOS' AND push_opt_in AND has_push_token ORDER BY id LIMIT 1")
        ).scalar_one()
        connection.execute(text("UPDATE users SET first_name = 'Mallory' WHERE id = :id"), {"id": mallory})
    from tests.campaign_fixtures import MESSAGE

    risky = make_campaign(demo_engine, "Risky", IOS_ONLY, schedule, demo_anchor)
    with demo_engine.begin() as connection:  # the copy passed every check; only Mallory's data breaks it
        connection.execute(
            text("UPDATE campaigns SET message = :m WHERE id = :id"),
            {"m": __import__("json").dumps({**MESSAGE, "body": MALLORY}), "id": risky},
        )
    steady = make_campaign(demo_engine, "Steady", IOS_ONLY, schedule, demo_anchor)
    report = dispatch(demo_engine, until=demo_anchor + timedelta(days=3))
    assert report.problems == {}
    assert report.failed == {risky: 1}
    with demo_engine.connect() as connection:
        rows = connection.execute(
            select(OutboxMessage.campaign_id, OutboxMessage.user_id, OutboxMessage.status, OutboxMessage.last_error)
        ).all()
    failed = [r for r in rows if r.status == "failed"]
    assert [(r.campaign_id, r.user_id) for r in failed] == [(risky, mallory)]
    assert failed[0].last_error == "Body, line 1: base64_decode: the decoded value is not text"
    risky_users = {r.user_id for r in rows if r.campaign_id == risky}
    steady_users = {r.user_id for r in rows if r.campaign_id == steady}
    assert len(risky_users) > 100 and risky_users == steady_users  # everyone else got both campaigns
    assert all(r.status == "queued" for r in rows if r.user_id != mallory or r.campaign_id == steady)

"""Campaign copy: sandboxed Liquid rendering, error reporting, per-tier variants, device truncation."""

from __future__ import annotations

import pytest

from core.campaigns import limits, personalise, templating
from core.campaigns.templating import TemplateError


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ('Hi {{ first_name | default: "there" }}!', {"first_name": "Léa"}, "Hi Léa!"),
        ('Hi {{ first_name | default: "there" }}!', {"first_name": None}, "Hi there!"),
        ('Hi {{ first_name | default: "there" }}!', {}, "Hi there!"),
        (
            "{{ likelihood_tier | downcase }} / {{ likelihood_score }}",
            {"likelihood_tier": "High", "likelihood_score": 81},
            "high / 81",
        ),
        (
            "{% if likelihood_tier == 'Low' %}Take {{ offer }}{% else %}Welcome back{% endif %}",
            {"likelihood_tier": "Low", "offer": "25% off"},
            "Take 25% off",
        ),
        ("{{ first_name.__class__ }}{{ first_name.__init__ }}", {"first_name": "Emma"}, ""),
    ],
)
def test_liquid_renders_user_variables(source, variables, expected):
    assert templating.render(source, variables) == expected


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("Hello\n{% if first_name %}no end", 2, "endif"),
        ("Line one\nline two\n{{ first_name | shout }}", 3, "unknown filter 'shout'"),
        ('{% include "secrets.txt" %}', 1, "cannot include other templates"),
        ('ok\n{% render "/etc/passwd" %}', 2, "cannot include other templates"),
        ("{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}", 1, "too many times"),
        ("{% for i in (1..100000) %}x{% endfor %}", 1, "a range has 100,000 numbers; the limit is 1,000"),
        ("{{ first_name ", 1, "expected '}}'"),
    ],
)
def test_template_errors_name_the_line_and_never_leak_a_traceback(source, line, fragment):
    problem = templating.check(source, "Body")
    assert problem is not None
    assert problem.line == line
    assert fragment in problem.message
    with pytest.raises(TemplateError) as caught:
        templating.render(source, templating.VARIABLES, "Body")
    assert str(caught.value).startswith(f"Body, line {line}: ")
    assert "Traceback" not in str(caught.value)


def test_output_size_is_bounded():
    source = "{% for i in (1..900) %}" + "x" * 60 + "{% endfor %}"
    assert "too long" in templating.check(source).message


def test_tier_variant_and_offer_reach_the_right_users():
    message = {
        "title": "Hi {{ first_name }}",
        "body": "Main copy with {{ offer }}",
        "use_variants": True,
        "variants": {
            "Low": {"title": "", "body": "Low copy: {{ offer }}, {{ likelihood_score }}"},
            "High": {"title": "Buy now", "body": ""},
        },
        "offers": {"High": "free delivery", "Medium": "10% off", "Low": "25% off"},
    }
    compiled = personalise.CompiledMessage(message, "push")
    user = {"id": 7, "first_name": "Noah"}
    assert compiled.render(user, 12.4, "Low") == personalise.Rendered("Hi Noah", "Low copy: 25% off, 12", "Low")
    assert compiled.render(user, 60.0, "Medium") == personalise.Rendered("Hi Noah", "Main copy with 10% off", "Medium")
    assert compiled.render(user, 90.0, "High") == personalise.Rendered(
        "Buy now", "Main copy with free delivery", "High"
    )
    assert compiled.render(user, None, None) == personalise.Rendered("Hi Noah", "Main copy with", None)


def test_template_problems_are_keyed_by_the_field_typed_in():
    message = {
        "title": "ok",
        "body": "{{ x | nope }}",
        "use_variants": True,
        "variants": {"Medium": {"title": "{% if %}", "body": ""}},
    }
    problems = personalise.template_problems(message, "push")
    assert set(problems) == {"body", "Medium.title"}


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("a" * 50, 49, "a" * 48 + "…"),
        ("word " * 40, 80, ("word " * 16).strip() + "…"),
        ("line one\n\nline   two", 40, "line one line two"),
    ],
)
def test_truncate_like_a_device(text, limit, shown):
    assert limits.truncate(text, limit) == shown
    assert len(limits.truncate(text, limit)) <= limit


BODY_200 = "x" * 200


@pytest.mark.parametrize(
    ("surface", "body_len", "cut"),
    [("ios_lock", 160, True), ("ios_banner", 80, True), ("android_lock", 49, True), ("android_drawer", 200, False)],
)
def test_device_views_truncate_per_platform(surface, body_len, cut):
    view = limits.device_view("A title", BODY_200, surface)
    assert len(view.body) == body_len
    assert view.body_cut is cut
    assert view.body.endswith("…") is cut


def test_copy_warnings_and_payload_limits_per_platform():
    assert limits.copy_warnings("push", "Short title", "Short body", ["iOS"]) == []
    warnings = limits.copy_warnings("push", "T", "y" * 100, ["iOS", "Android"])
    assert [w.split(":")[0] for w in warnings] == ["iOS banner", "Android lock screen"]
    assert limits.copy_warnings("push", "T", "y" * 100, ["iOS"]) == [
        "iOS banner: the body is cut after 80 characters (it has 100)."
    ]
    big = "é" * 1500  # 3,000 bytes: over iOS's 2 KB, under Android's 4 KB
    assert [e.split(" push")[0] for e in limits.payload_errors("T", big, ["iOS", "Android"])] == ["The iOS"]
    assert limits.copy_warnings("email", "s" * 90, "body") == [
        "The subject has 90 characters; most inboxes show about 78."
    ]

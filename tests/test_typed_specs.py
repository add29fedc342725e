"""Definitions and campaign specs are parsed once into frozen models: each bad input gets one line
that names the place, and every field has limits."""

from __future__ import annotations

from datetime import date, time

import pandas as pd
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.campaigns import personalise
from core.campaigns import schedule as sch
from core.campaigns.draft import ComposerDraft, selection_sentence, suggested_name
from core.campaigns.spec import Message, parse_campaign_spec, parse_schedule
from core.errors import UserError
from core.segments import definition_of, parse_definition
from core.segments.filter_specs import SPEC_BY_TYPE
from core.segments.schema_doc import DOC, with_schema
from core.settings import DEFAULT_DATABASE_URL, load_settings


def _in_group(spec) -> dict:
    return {"groups": [{"filters": [{"type": "platform", "values": ["iOS"]}, spec]}]}


BAD_FILTERS = [
    (
        {"type": "last_used", "op": "more_than", "value": -2, "unit": "weeks"},
        "(Last used app): 'value' cannot be negative (-2)",
    ),
    (
        {"type": "last_used", "op": "before", "value": 2},
        "(Last used app): 'op' must be more_than or less_than, not 'before'",
    ),
    (
        {"type": "last_used", "op": "more_than", "value": 2, "unit": "months"},
        "(Last used app): 'unit' must be days or weeks, not 'months'",
    ),
    (
        {"type": "last_used", "op": "more_than", "value": 6000, "unit": "weeks"},
        "(Last used app): 'value' must be between 0 and 5228.57, not 6000",
    ),
    ({"type": "last_used", "op": "more_than"}, "(Last used app): 'value' is missing"),
    ({"type": "session_count", "min": 1.5}, "(Session count): 'min' must be a whole number, not 1.5"),
    ({"type": "session_count", "min": True}, "(Session count): 'min' must be a number, not True"),
    ({"type": "session_count", "min": "5"}, "(Session count): 'min' must be a number, not '5'"),
    ({"type": "session_count", "min": float("nan")}, "(Session count): 'min' must be a finite number, not nan"),
    ({"type": "session_count", "min": 10**20}, "(Session count): 'min' must be between 0 and 1e+15, not 1e+20"),
    ({"type": "session_count"}, "(Session count): give a minimum, a maximum or both"),
    ({"type": "money_spent", "min": 9, "max": 2}, "(Money spent): the minimum 9 is above the maximum 2"),
    ({"type": "recent_sessions", "min": 1, "days": 0}, "(Sessions in the last days): 'days' must be more than 0"),
    ({"type": "event", "event": "x" * 201}, "(Did event): 'event' has at most 200 characters (this one has 201)"),
    ({"type": "event", "event": "  "}, "(Did event): 'event' must name an event, not '  '"),
    (
        {"type": "platform", "values": ["iOS"] * 1001},
        "(Platform): 'values' holds at most 1,000 items (this one has 1,001)",
    ),
    ({"type": "platform", "values": []}, "(Platform): 'values' must be a non-empty list"),
    ({"type": "country", "values": ["France"]}, "(Country): 'France' is not a two-letter country code (like US or FR)"),
    ({"type": "timezone", "values": ["Paris"]}, "(Time zone): 'Paris' is not an IANA time zone (like Europe/Paris)"),
    ({"type": "random_bucket", "max": 10000}, "(Random bucket): 'max' must be between 0 and 9999, not 10000"),
    (
        {"type": "likelihood_score", "prediction": 0},
        "(Event likelihood score): 'prediction' must be a prediction id, not 0",
    ),
    (
        {"type": "likelihood_score", "prediction": 1, "max": 120},
        "(Event likelihood score): 'max' must be between 0 and 100, not 120",
    ),
    (
        {"type": "likelihood_category", "prediction": 1, "categories": ["Huge"]},
        "(Event likelihood category): unknown likelihood category 'Huge'; use Low, Medium, High",
    ),
    ({"type": "push_enabled", "value": "yes"}, "(Push enabled): 'value' must be true or false, not 'yes'"),
    ({"type": "platform", "values": ["iOS"], "extra": 1}, "(Platform): unknown field 'extra'"),
    (
        {"type": "favourite_colour"},
        ": unknown filter type 'favourite_colour'; use one of likelihood_score, likelihood_category, last_used, "
        "first_used, session_count, recent_sessions, event, event_time, purchase_count, money_spent, platform, "
        "country, language, timezone, push_enabled, email_subscribed, random_bucket",
    ),
    ({"kind": "platform"}, ": a filter must be an object with a 'type'"),
    ("platform", ": a filter must be an object with a 'type'"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_FILTERS, ids=[m for _, m in BAD_FILTERS])
def test_a_bad_filter_is_one_line_naming_its_group_filter_and_type(spec, message):
    with pytest.raises(UserError) as error:
        parse_definition(_in_group(spec))
    assert str(error.value) == "group 1, filter 2" + (" " if message.startswith("(") else "") + message


BAD_DEFINITIONS = [
    ({"version": 2}, "segment definition: version 2 is newer than this app understands (1)"),
    ({"version": "1"}, "segment definition: version must be a whole number from 1, not '1'"),
    ({"match": "some"}, "segment definition: 'match' must be all or any, not 'some'"),
    ({"groups": "x"}, "segment definition: 'groups' must be a list"),
    ({"groups": [{"filters": []}] * 21}, "segment definition: 'groups' holds at most 20 items (this one has 21)"),
    (
        {"groups": [{"filters": [{"type": "push_enabled"}] * 51}]},
        "group 1: 'filters' holds at most 50 items (this one has 51)",
    ),
    ({"groups": [5]}, "group 1: must be an object with 'match' and 'filters'"),
    ({"exclude": [{"match": "most"}]}, "exclusion group 1: 'match' must be all or any, not 'most'"),
    ({"colour": "red"}, "segment definition: unknown field 'colour'"),
    ([1, 2], "a segment definition must be a JSON object, not list"),
    (
        "{not json",
        "the segment definition is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2)",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD_DEFINITIONS, ids=[m for _, m in BAD_DEFINITIONS])
def test_a_bad_definition_is_one_line_naming_the_place(document, message):
    with pytest.raises(UserError) as error:
        parse_definition(document)
    assert str(error.value) == message


def test_a_huge_value_is_quoted_short():
    with pytest.raises(UserError) as error:
        parse_definition({"groups": [{"filters": [{"type": "last_used", "op": "x" * 10**6, "value": 1}]}]})
    message = str(error.value)
    assert len(message) == 300 and message.endswith("…")
    assert message.startswith("group 1, filter 1 (Last used app): 'op' must be more_than or less_than, not 'xxx")


def test_a_definition_is_normalised_frozen_and_round_trips_through_its_stored_form():
    definition = parse_definition(
        {
            "groups": [
                {
                    "filters": [
                        {"type": "platform", "values": ["ios", "IOS", "web"]},
                        {"type": "event", "event": " buy "},
                    ]
                }
            ]
        }
    )
    platform, event = definition.groups[0].filters
    assert platform.values == ("iOS", "Web")
    assert (event.event, event.min, event.max, event.days) == ("buy", 1, None, None)  # "did it" = at least once
    assert parse_definition(definition.to_json()) == definition
    with pytest.raises(pydantic.ValidationError):
        definition.match = "any"  # frozen: a definition never changes under a caller
    assert parse_definition(definition) is definition  # a model passes the edge untouched


def test_the_docs_show_the_schema_the_models_generate():
    doc = DOC.read_text(encoding="utf-8")
    assert with_schema(doc) == doc, "run: python -m core.segments.schema_doc"


BAD_SPECS = [
    ({"schedule": {"kind": "later"}}, "schedule: 'kind' must be one of 'now', 'once', 'recurring', not 'later'"),
    (
        {"schedule": {"kind": "once", "time": "7pm", "start": "2030-01-01"}},
        "schedule: 'time' must be a time of day as HH:MM (like 17:45), not '7pm'",
    ),
    (
        {"schedule": {"kind": "once", "time": "19:00", "start": "2030-02-30"}},
        "schedule: 'start' must be a date as YYYY-MM-DD, not '2030-02-30'",
    ),
    (
        {
            "schedule": {
                "kind": "recurring",
                "frequency": "weekly",
                "time": "19:00",
                "start": "2030-01-01",
                "interval": 400,
            }
        },
        "schedule: 'interval' must be a whole number from 1 to 366, not 400",
    ),
    (
        {
            "schedule": {
                "kind": "recurring",
                "frequency": "daily",
                "time": "19:00",
                "start": "2030-01-01",
                "end": {"kind": "soon"},
            }
        },
        "schedule: 'end.kind' must be one of 'never', 'on', 'after', not 'soon'",
    ),
    ({"channel": "sms"}, "campaign: 'channel' must be push, email or in_app, not 'sms'"),
    ({"platforms": ["iOS", "Amiga"]}, "campaign: 'platforms' must be iOS, Android or Web, not 'Amiga'"),
    ({"name": "x" * 201}, "campaign: 'name' has at most 200 characters"),
    ({"message": {"body": 5}}, "message: 'body' must be text, not 5"),
    ({"message": {"offers": {"Huge": "50% off"}}}, "message: offers for 'Huge': use High, Medium or Low"),
    ({"message": {"use_variants": "yes"}}, "message: 'use_variants' must be true or false, not 'yes'"),
    (
        {"settings": {"reeligible_after_days": -1}},
        "delivery settings: 'reeligible_after_days' must be a whole number from 0 to 3650, not -1",
    ),
    (
        {"audience": {"groups": [{"filters": [{"type": "x"}]}]}},
        "campaign: audience: group 1, filter 1: unknown filter type 'x'; use one of ",
    ),
    ({"colour": "red"}, "campaign: unknown field 'colour'"),
    (
        {"message": {"ab_variants": [{"name": "A", "share": 50}, {"name": "B", "share": 50, "offers": {"Mid": "x"}}]}},
        "message: variant 2: offers for 'Mid': use High, Medium or Low",
    ),
    (
        {"message": {"ab_variants": [{"name": "A", "share": 60}, {"name": "B", "share": 40, "colour": "red"}]}},
        "message: variant 2: unknown field 'colour'",
    ),
    (
        {"message": {"ab_variants": [{"name": "A", "share": 50}, {"name": "B", "share": float("nan")}]}},
        "message: variant 2: 'share' must be a percent above 0 and at most 100, not nan",
    ),
    ({"settings": {"control_percent": True}}, "delivery settings: 'control_percent' must be a number from 0 to 50"),
    ({"settings": {"conversion_event": "x" * 101}}, "delivery settings: 'conversion_event' has at most 100 characters"),
]


@pytest.mark.parametrize(("document", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_a_bad_campaign_spec_is_one_line_naming_the_place(document, message):
    with pytest.raises(UserError) as error:
        parse_campaign_spec(document)
    assert str(error.value).startswith(message), str(error.value)


def test_a_campaign_spec_round_trips_through_its_row():
    document = {
        "name": "  Lapsed   users ",
        "audience": definition_of({"type": "platform", "values": ["iOS"]}).to_json(),
        "platforms": ["Web", "iOS"],
        "message": {"title": "Hi", "body": "{{ offer }}", "prediction_id": 3},
        "schedule": {
            "kind": "recurring",
            "frequency": "weekly",
            "weekdays": ["TH", "MO"],
            "time": "17:45",
            "start": "2030-01-03",
        },
        "settings": {"reeligible_after_days": 14},
    }
    spec = parse_campaign_spec(document)
    assert (spec.name, spec.platforms, spec.schedule.weekdays) == ("Lapsed users", ("iOS", "Web"), ("MO", "TH"))
    assert parse_campaign_spec(spec.to_row()) == spec


def test_measurement_and_ab_variants_round_trip_through_the_row():
    variants = [
        {"name": " A ", "share": 70, "offers": {"Medium": "10% off"}},
        {"name": "Later", "share": 30, "title": "Hi", "delay_minutes": 120},
    ]
    settings = {"conversion_event": " purchase ", "conversion_window_days": 7.0, "control_percent": 12.5}
    spec = parse_campaign_spec({"message": {"body": "x", "ab_variants": variants}, "settings": settings})
    assert [(v.name, v.share, v.delay_minutes) for v in spec.message.ab_variants] == [("A", 70, 0), ("Later", 30, 120)]
    assert (spec.settings.conversion_event, spec.settings.conversion_window_days) == ("purchase", 7)
    assert spec.settings.control_percent == 12.5
    assert parse_campaign_spec(spec.to_row()) == spec
    untouched = parse_campaign_spec({"settings": {"conversion_event": "  "}}).settings
    assert (untouched.conversion_event, untouched.conversion_window_days, untouched.control_percent) == (None, 3, None)


def test_a_variant_changes_only_its_copy_and_offers():
    base = Message(title="Main", body="Body", offers={"High": "free delivery", "Medium": "10% off"}, prediction_id=2)
    spec = parse_campaign_spec(
        {
            "message": {
                **base.to_json(),
                "ab_variants": [
                    {"name": "A", "share": 50},
                    {"name": "B", "share": 50, "body": "Other", "offers": {"Medium": "20% off"}},
                ],
            }
        }
    )
    first, second = (v.message(spec.message) for v in spec.message.ab_variants)
    assert first == base
    assert second == base.model_copy(update={"body": "Other", "offers": {"High": "free delivery", "Medium": "20% off"}})


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            Message(body="Here is {{ offer }} to welcome you back."),
            "The copy uses {{ offer }}, which comes from a prediction: choose one under “Likelihood from prediction”.",
        ),
        (
            Message(title="{% if likelihood_tier == 'High' %}Hi{% endif %}", body="{{ likelihood_score }}"),
            "The copy uses {{ likelihood_score }} and {{ likelihood_tier }}, which come from a prediction: choose one under “Likelihood from prediction”.",
        ),
        (Message(body="Here is {{ offer }}.", prediction_id=4), None),
        (Message(body="The word offer, in plain text: an offer."), None),  # the engine is asked, not the text searched
        (
            Message(body="Hi", use_variants=True, variants={"High": {"title": "", "body": "{{ offer }}"}}),
            "The copy uses {{ offer }}, which comes from a prediction: choose one under “Likelihood from prediction”.",
        ),
    ],
)
def test_likelihood_in_the_copy_needs_a_prediction(message, expected):
    assert personalise.likelihood_without_prediction(message) == expected


TODAY = date(2030, 1, 1)
HIGH = definition_of({"type": "likelihood_category", "prediction": 7, "categories": ["High"]})


def test_the_draft_round_trips_through_the_spec_it_saves():
    draft = ComposerDraft.new(TODAY).with_(
        name="Weekly",
        segment_id=3,
        kind="recurring",
        frequency="monthly",
        month_day=31,
        send_time=time(9, 30),
        end_kind="after",
        end_count=6,
        reeligibility="after",
        reeligible_days=10,
        obeys_quiet=False,
    )
    spec = draft.to_spec()
    assert sch.describe(spec.schedule) == (
        "Every month on day 31 at 09:30, in each user's local time zone, from 2030-01-01, for 6 sends"
    )
    assert (spec.settings.reeligible_after_days, spec.settings.obeys_quiet_hours) == (10, False)
    assert ComposerDraft.from_spec(spec, 12, 3, TODAY) == draft.with_(campaign_id=12, version=3)


def test_the_drafts_measurement_and_variants_round_trip_through_the_spec():
    draft = (
        ComposerDraft.new(TODAY)
        .with_(name="A/B", segment_id=3, conversion_event="purchase", window_days=7, control_percent=20.0)
        .with_(ab_test=True, variant_count=3)
        .with_slot(0, share=40.0, title="Hey")
        .with_slot(1, share=35.0, delay_minutes=90, offers={"Low": "30% off"})
        .with_slot(2, share=25.0)
    )
    spec = draft.to_spec()
    assert [(v.name, v.share) for v in spec.message.ab_variants] == [("A", 40), ("B", 35), ("C", 25)]
    assert (spec.settings.conversion_window_days, spec.settings.control_percent) == (7, 20.0)
    assert ComposerDraft.from_spec(spec, 12, 3, TODAY) == draft.with_(campaign_id=12, version=3)


@pytest.mark.parametrize(
    ("ab_test", "names", "problems"),
    [
        (False, ("A", "B"), []),
        (True, ("A", "B"), ["Variant shares must add up to 100%, not 90%."]),
        (True, ("A", "A"), ["Variant names must differ: A, A.", "Variant shares must add up to 100%, not 90%."]),
        (
            True,
            (" ", "B"),
            ["Variant 1: a name of 1 to 16 characters is required.", "Variant shares must add up to 100%, not 90%."],
        ),
    ],
)
def test_the_draft_says_what_is_wrong_with_its_variants_and_makes_no_spec(ab_test, names, problems):
    draft = ComposerDraft.new(TODAY).with_(name="A/B", segment_id=3, ab_test=ab_test)
    draft = draft.with_slot(0, name=names[0], share=50.0).with_slot(1, name=names[1], share=40.0)
    assert draft.variant_problems() == problems
    if problems:
        with pytest.raises(UserError, match="^message: "):
            draft.to_spec()
    else:
        assert draft.to_spec().message.ab_variants == ()


def test_a_new_audience_brings_its_own_prediction_to_the_copy():
    draft = ComposerDraft.new(TODAY)
    assert draft.with_audience_prediction(HIGH, {7}).message.prediction_id == 7
    assert draft.with_audience_prediction(HIGH, {8}).message.prediction_id is None  # 7 is not targetable
    chosen = draft.with_message(prediction_id=8)
    assert chosen.with_audience_prediction(definition_of({"type": "platform", "values": ["iOS"]}), {8}) == chosen


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        (ComposerDraft.new(TODAY).with_(source="selection", selection=HIGH), "High likelihood - Purchase in 30 days"),
        (
            ComposerDraft.new(TODAY).with_(
                source="selection",
                selection=definition_of({"type": "likelihood_score", "prediction": 7, "min": 60, "max": 90}),
            ),
            "Likelihood 60-90 - Purchase in 30 days",
        ),
        (ComposerDraft.new(TODAY).with_(segment_id=2), "Lapsed users - 2 weeks - message"),
        (ComposerDraft.new(TODAY), "e.g. Spring sale - weekly push"),
    ],
)
def test_the_name_placeholder_fits_where_the_marketer_started(draft, expected):
    assert suggested_name(draft, {2: "Lapsed users - 2 weeks"}, {7: "Purchase in 30 days"}) == expected


def test_a_selection_names_its_prediction():
    assert selection_sentence(HIGH, {7: "Purchase in 30 days"}) == "High likelihood of “Purchase in 30 days”"


def test_rollout_points_share_one_label_per_instant_without_underscores():
    at = pd.Timestamp("2030-01-02 17:45")
    rollout = pd.DataFrame(
        {
            "zone": ["Europe/Madrid", "Europe/Berlin", "Europe/Rome", "America/New_York"],
            "users": [5, 9, 1, 4],
            "send_at_company": [at, at, at, at + pd.Timedelta(hours=6)],
            "cumulative_users": [5, 14, 15, 19],
        }
    )
    points = sch.rollout_points(rollout)
    assert points["label"].tolist() == ["Berlin, Madrid +1", "New York"]
    assert points["cumulative_users"].tolist() == [15, 19]
    assert points["text_position"].tolist() == ["top right", "bottom right"]
    assert sch.zone_label("America/Argentina/Buenos_Aires") == "Buenos Aires"


def test_parse_schedule_passes_a_typed_schedule_through():
    schedule = parse_schedule({"kind": "now"})
    assert parse_schedule(schedule) is schedule


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (DEFAULT_DATABASE_URL, 5_000_000)),
        ({"DATABASE_URL": "  ", "LIKELY_IN_MEMORY_USERS": ""}, (DEFAULT_DATABASE_URL, 5_000_000)),
        ({"DATABASE_URL": "sqlite://", "LIKELY_IN_MEMORY_USERS": "1_000"}, ("sqlite://", 1_000)),
    ],
)
def test_settings_come_from_the_environment_once_parsed(environ, expected):
    settings = load_settings(environ)
    assert (settings.database_url, settings.in_memory_users) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "lots",
            "the environment variable LIKELY_IN_MEMORY_USERS must be a whole number of users from 0 to 10,000,000,000, not 'lots'",
        ),
        (
            "-5",
            "the environment variable LIKELY_IN_MEMORY_USERS must be a whole number of users from 0 to 10,000,000,000, not '-5'",
        ),
        (
            "1e9",
            "the environment variable LIKELY_IN_MEMORY_USERS must be a whole number of users from 0 to 10,000,000,000, not '1e9'",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(value, message):
    with pytest.raises(UserError) as error:
        load_settings({"LIKELY_IN_MEMORY_USERS": value})
    assert str(error.value) == message


# Any JSON document, and documents that are nearly right, either parse or get one line: never
# another exception, never a message over several lines.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["type", "op", "value", "unit", "min", "max", "days", "event", "which", "values", "prediction", "categories"]
NEARLY_A_FILTER = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(SPEC_BY_TYPE) + ["nope"])},
    optional={field: JSON for field in FIELDS[1:]},
)


@settings(max_examples=300, deadline=None)
@given(
    document=JSON
    | st.fixed_dictionaries(
        {"groups": st.lists(st.fixed_dictionaries({"filters": st.lists(NEARLY_A_FILTER, max_size=3)}), max_size=2)}
    )
)
def test_any_document_parses_or_gets_one_line(document):
    try:
        definition = parse_definition(document)
    except UserError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert parse_definition(definition.to_json()) == definition  # what parses, round-trips


@settings(max_examples=200, deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from(["name", "channel", "platforms", "message", "schedule", "settings", "audience"]),
        JSON,
        max_size=4,
    )
)
def test_any_campaign_document_parses_or_gets_one_line(document):
    _parses_or_gets_one_line(document)


NEARLY_A_VARIANT = st.fixed_dictionaries(
    {"name": st.sampled_from(["A", "B", "", "A very long variant name"]) | JSON},
    optional={field: JSON for field in ("share", "title", "body", "offers", "delay_minutes", "colour")},
)


@settings(max_examples=200, deadline=None)
@given(
    variants=st.lists(NEARLY_A_VARIANT, max_size=6),
    measurement=st.dictionaries(
        st.sampled_from(["conversion_event", "conversion_window_days", "control_percent"]), JSON, max_size=3
    ),
)
def test_any_measurement_or_variants_parse_or_get_one_line(variants, measurement):
    _parses_or_gets_one_line({"message": {"ab_variants": variants}, "settings": measurement})


def _parses_or_gets_one_line(document):
    try:
        spec = parse_campaign_spec(document)
    except UserError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert parse_campaign_spec(spec.to_row()) == spec

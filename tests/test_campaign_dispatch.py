"""Dispatch: every due message written exactly once, across re-runs and crashes; lifecycle and validation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from core import segments
from core.campaigns import CampaignSpec, dispatch, launch, list_campaigns, save_draft, transition, validate
from core.campaigns import schedule as sch
from core.campaigns.audience import reachable_user_ids, users_frame
from core.campaigns.spec import parse_schedule
from core.campaigns.store import duplicate, get_campaign, next_send
from core.errors import UserError
from tests.campaign_fixtures import MESSAGE, daily, make_campaign, thursday_1745
from tests.definitions import IOS_ONLY as IOS
from tests.definitions import LAPSED_2_WEEKS as LAPSED


def outbox(engine, campaign_id):
    from core.models import OutboxMessage

    with engine.connect() as connection:
        return connection.execute(
            select(
                OutboxMessage.occurrence,
                OutboxMessage.user_id,
                OutboxMessage.send_at,
                OutboxMessage.title,
                OutboxMessage.body,
            )
            .where(OutboxMessage.campaign_id == campaign_id)
            .order_by(OutboxMessage.occurrence, OutboxMessage.user_id)
        ).all()


def expected_rows(engine, schedule, launched_at, until):
    """Independently: (occurrence, user) pairs due, from segments + reachability + zones."""
    from core.campaigns.audience import users_frame

    users = users_frame(engine)
    pairs = []
    for wall in sch.wall_occurrences(
        parse_schedule(schedule), launched_at - timedelta(days=2), until + timedelta(days=2)
    ):
        ids = segments.matching_user_ids(LAPSED, engine=engine, now=wall)
        for uid in ids:
            u = users.loc[uid]
            if not (u["platform"] == "iOS" and u["has_push_token"] and u["push_opt_in"]):
                continue
            at = sch.to_utc(wall, u["timezone"])
            if launched_at <= at <= until:
                pairs.append((sch.occurrence_key(wall), int(uid)))
    return sorted(pairs)


def test_dispatch_writes_each_due_message_once_and_resumes_after_a_crash(demo_engine, demo_anchor):
    schedule = thursday_1745(demo_anchor)
    launched = demo_anchor
    first = datetime.fromisoformat(schedule["start"] + "T17:45")
    until = first + timedelta(days=1)  # every zone has had the first Thursday
    whole = make_campaign(demo_engine, "Whole run", LAPSED, schedule, launched)
    crashy = make_campaign(demo_engine, "Crashed run", LAPSED, schedule, launched)

    report = dispatch(demo_engine, until=until, campaign_ids=[whole], batch_size=50)
    expected = expected_rows(demo_engine, schedule, launched, until)
    rows = outbox(demo_engine, whole)
    assert len(expected) > 50
    assert sorted((r.occurrence, r.user_id) for r in rows) == expected
    assert report.written == len(expected)
    assert all(r.title.startswith("We miss you, ") for r in rows)

    assert dispatch(demo_engine, until=until, campaign_ids=[whole]).written == 0
    assert len(outbox(demo_engine, whole)) == len(expected)

    class Killed(Exception):
        pass

    def kill_after_two_batches(total):
        if total >= 40:
            raise Killed

    with pytest.raises(Killed):
        dispatch(demo_engine, until=until, campaign_ids=[crashy], batch_size=20, on_batch=kill_after_two_batches)
    assert len(outbox(demo_engine, crashy)) == 40
    resumed = dispatch(demo_engine, until=until, campaign_ids=[crashy], batch_size=20)
    assert resumed.written == len(expected) - 40
    strip = lambda rows: [(r.occurrence, r.user_id, r.send_at, r.title, r.body) for r in rows]  # noqa: E731
    assert strip(outbox(demo_engine, crashy)) == strip(outbox(demo_engine, whole))


def test_nothing_is_sent_before_its_local_time(demo_engine, demo_anchor):
    schedule = thursday_1745(demo_anchor)
    first = datetime.fromisoformat(schedule["start"] + "T17:45")
    campaign = make_campaign(demo_engine, "Rolling", LAPSED, schedule, demo_anchor)
    # Paris users are due at 16:45 or 15:45 UTC; Los Angeles users only the next morning UTC.
    dispatch(demo_engine, until=first - timedelta(hours=3), campaign_ids=[campaign])
    rows = outbox(demo_engine, campaign)
    zones = {
        z
        for (z,) in demo_engine.connect().execute(
            text("SELECT DISTINCT u.timezone FROM outbox o JOIN users u ON u.id = o.user_id WHERE o.campaign_id = :c"),
            {"c": campaign},
        )
    }
    assert rows and all(r.send_at <= first - timedelta(hours=3) for r in rows)
    assert "America/Los_Angeles" not in zones and "Pacific/Auckland" in zones


@pytest.mark.parametrize(
    ("settings", "per_user"), [({"reeligible": False}, {1}), ({"reeligible": True, "reeligible_after_days": 2}, {3})]
)
def test_reeligibility_limits_repeat_messages(demo_engine, demo_anchor, settings, per_user):
    schedule = daily(demo_anchor.date() + timedelta(days=1), "12:00", 5)
    campaign = make_campaign(demo_engine, f"Daily {settings}", IOS, schedule, demo_anchor, settings)
    dispatch(demo_engine, until=demo_anchor + timedelta(days=8), campaign_ids=[campaign])
    rows = outbox(demo_engine, campaign)
    counts = {}
    for r in rows:
        counts.setdefault(r.user_id, []).append(r.send_at)
    assert {len(v) for v in counts.values()} == per_user
    gaps = [b - a for v in counts.values() for a, b in zip(v, v[1:], strict=False)]
    assert all(g >= timedelta(days=2) for g in gaps)


def test_lifecycle_pause_resume_stop_duplicate_and_edit_only_drafts(demo_engine, demo_anchor):
    schedule = thursday_1745(demo_anchor)
    spec = CampaignSpec(
        name="Draft one", audience=IOS, channel="push", platforms=["iOS"], message=MESSAGE, schedule=schedule
    )
    draft = save_draft(spec, demo_engine)
    spec = spec.model_copy(update={"name": "Draft one, renamed"})
    save_draft(spec, demo_engine, draft, expected_version=1)
    with pytest.raises(UserError, match="changed elsewhere"):
        save_draft(spec, demo_engine, draft, expected_version=1)
    launch(spec, demo_engine, draft, expected_version=2, now=demo_anchor)
    assert get_campaign(draft, demo_engine)[1]["status"] == "scheduled"
    with pytest.raises(UserError, match="only drafts"):
        save_draft(spec, demo_engine, draft)
    assert transition(draft, "pause", demo_engine) == "paused"
    with pytest.raises(UserError, match="cannot pause"):
        transition(draft, "pause", demo_engine)
    assert transition(draft, "resume", demo_engine) == "scheduled"
    assert transition(draft, "stop", demo_engine) == "stopped"
    with pytest.raises(UserError, match="cannot resume"):
        transition(draft, "resume", demo_engine)
    copy = duplicate(draft, demo_engine)
    copy_spec, record = get_campaign(copy, demo_engine)
    assert (copy_spec.name, record["status"], copy_spec.schedule) == (
        "Copy of Draft one, renamed",
        "draft",
        parse_schedule(schedule),
    )
    listing = list_campaigns(demo_engine, now=demo_anchor).set_index("name")
    assert listing.loc["Copy of Draft one, renamed", "status"] == "draft"
    assert listing.loc["Draft one, renamed", "next_send"] == "—"
    with pytest.raises(UserError, match="already exists"):
        save_draft(CampaignSpec(name="Draft one, renamed"), demo_engine)


def test_paused_campaigns_send_nothing_and_resume_does_not_catch_up(demo_engine, demo_anchor):
    schedule = daily(demo_anchor.date() + timedelta(days=1), "12:00", local_time=False)
    campaign = make_campaign(demo_engine, "Paused", IOS, schedule, demo_anchor)
    transition(campaign, "pause", demo_engine, now=demo_anchor)
    assert dispatch(demo_engine, until=demo_anchor + timedelta(days=3), campaign_ids=[campaign]).by_campaign == {}
    transition(campaign, "resume", demo_engine, now=demo_anchor + timedelta(days=3))
    dispatch(demo_engine, until=demo_anchor + timedelta(days=4, hours=13), campaign_ids=[campaign])
    # Days 1 and 2 fell due while paused: skipped. Days 3 and 4 came after the resume.
    assert {r.occurrence for r in outbox(demo_engine, campaign)} == {
        f"{(demo_anchor + timedelta(days=d)).date()}T12:00:00" for d in (3, 4)
    }


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"segment_id": None, "audience": None}, "No audience"),
        ({"message": {"title": "x", "body": "   "}}, "body is empty"),
        ({"message": {"title": "x", "body": "{% if %}"}}, "Template error in Body, line 1"),
        ({"name": ""}, "no name"),
        (
            {"schedule": {**thursday_1745(datetime(2030, 1, 1)), "end": {"kind": "on", "date": "2000-01-01"}}},
            "before the start date",
        ),
    ],
)
def test_validation_blocks_launch(demo_engine, demo_anchor, changes, fragment):
    spec = CampaignSpec(
        name="Valid",
        audience=IOS,
        channel="push",
        platforms=["iOS"],
        message=MESSAGE,
        schedule=thursday_1745(demo_anchor),
    )
    assert validate(spec, demo_engine, demo_anchor).errors == []
    spec = CampaignSpec.model_validate({**spec.to_json(), **changes})
    result = validate(spec, demo_engine, demo_anchor)
    assert any(fragment in e for e in result.errors), result.errors
    with pytest.raises(UserError, match="cannot launch"):
        launch(spec, demo_engine, now=demo_anchor)


def test_validation_warns_on_long_copy_and_tiny_audience(demo_engine, demo_anchor):
    tiny = {
        "version": 1,
        "match": "all",
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "platform", "values": ["iOS"]},
                    {"type": "last_used", "op": "less_than", "value": 1, "unit": "days"},
                ],
            }
        ],
        "exclude": [],
    }
    spec = CampaignSpec(
        name="Long",
        audience=tiny,
        channel="push",
        platforms=["iOS"],
        message={"title": "Hi", "body": "{{ first_name }} " + "word " * 40},
        schedule=thursday_1745(demo_anchor),
    )
    result = validate(spec, demo_engine, demo_anchor)
    assert result.errors == []
    assert any("tiny" in w for w in result.warnings)
    assert any(w.startswith("iOS banner: the body is cut") for w in result.warnings)


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [("once", "they will not receive it"), ("recurring", "they get their first message at the next send")],
)
def test_validation_warns_when_the_first_local_send_has_passed_in_some_zones(demo_engine, demo_anchor, kind, outcome):
    day = demo_anchor.date() + timedelta(days=2)
    schedule = {**thursday_1745(demo_anchor), "start": day.isoformat(), "time": "12:00"}
    schedule["weekdays"] = [sch.WEEKDAYS[day.weekday()]]
    if kind == "once":
        schedule = {"kind": "once", "start": day.isoformat(), "time": "12:00"}
    now = datetime.combine(day, datetime.min.time()) + timedelta(hours=12)  # noon UTC: east of UTC has passed
    spec = CampaignSpec(
        name="Noon", audience=IOS, channel="push", platforms=["iOS"], message=MESSAGE, schedule=schedule
    )
    # Independently: reachable iOS users whose own zone's noon that day is before `now`.
    _, reachable = reachable_user_ids(demo_engine, IOS, "push", ["iOS"], now)
    zones = users_frame(demo_engine).loc[reachable, "timezone"].fillna("UTC")
    noon_utc = {
        z: datetime.combine(day, datetime.min.time(), ZoneInfo(z)).replace(hour=12).astimezone(UTC).replace(tzinfo=None)
        for z in zones.unique()
    }
    passed = int(sum(noon_utc[z] < now for z in zones))
    assert 0 < passed < len(reachable)

    result = validate(spec, demo_engine, now)
    assert result.errors == []
    [warning] = [w for w in result.warnings if w.startswith("Launched now")]
    assert f"({passed:,} reachable users): {outcome}" in warning


def test_next_send_is_the_next_local_occurrence(demo_anchor):
    schedule = parse_schedule(thursday_1745(demo_anchor))
    first = datetime.combine(schedule.start, time(17, 45))
    assert next_send(schedule, "scheduled", demo_anchor, demo_anchor) == first
    assert next_send(schedule, "scheduled", demo_anchor, first + timedelta(days=2)) == first + timedelta(days=7)
    assert next_send(schedule, "stopped", demo_anchor, demo_anchor) is None


def test_cli_dispatch_and_list(app_database, demo_anchor, capsys):
    from core.cli import main

    schedule = thursday_1745(demo_anchor)
    first = datetime.fromisoformat(schedule["start"] + "T17:45")
    make_campaign(app_database, "From the CLI", LAPSED, schedule, demo_anchor)
    until = (first + timedelta(days=1)).isoformat()
    assert main(["dispatch", "--until", until]) == 0
    written = capsys.readouterr().out
    assert main(["dispatch", "--until", until]) == 0
    assert capsys.readouterr().out.strip().endswith("0 messages written to the outbox")
    assert "messages written to the outbox" in written and not written.strip().endswith(
        " 0 messages written to the outbox"
    )
    assert main(["campaign", "list"]) == 0
    assert "From the CLI" in capsys.readouterr().out
    assert main(["dispatch", "--until", "next thursday"]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err

"""Roles checked in core: every role against every action that changes data or lets data leave.

Allowed: the action works and leaves exactly the audit rows it should. Refused: a one-line
message naming the person, their role and the role needed, and nothing in the database changes.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import access, models
from core.access import ROLES, Actor, Permission
from core.campaigns import CampaignSpec, launch, save_draft, set_company_timezone, set_delivery_rules, transition
from core.campaigns.store import duplicate
from core.demo import regenerate_demo_data
from core.errors import UserError
from core.importer import import_events, import_users
from core.predictions import find_prediction, retrain_prediction
from core.predictions.store import export_scores
from core.segments import delete_segment, duplicate_segment, rename_segment, save_segment, update_segment
from core.segments.export import export_csv
from tests.campaign_fixtures import MESSAGE, daily, make_campaign
from tests.definitions import IOS_ONLY, LAPSED_2_WEEKS
from tests.prediction_fixtures import trained_db_template, trained_engine  # noqa: F401 (fixtures)


class World:
    """What the actions act on, made by the local admin before the actor under test arrives."""

    def __init__(self, engine, anchor, tmp_path):
        self.engine, self.anchor, self.tmp_path = engine, anchor, tmp_path
        self.segment = save_segment(engine, "Everyone on iOS", IOS_ONLY).id
        self.spare_segment = save_segment(engine, "Spare", LAPSED_2_WEEKS).id
        self.schedule = daily(anchor.date() + timedelta(days=1), "12:00", 3)
        self.campaign = make_campaign(engine, "Running", IOS_ONLY, self.schedule, anchor)
        self.prediction = find_prediction(engine, "Purchase in next 30 days").id
        access.sign_in("boss@example.com", engine)  # the first member: admin
        access.sign_in("newcomer@example.com", engine)  # a viewer

    def launchable(self) -> CampaignSpec:
        return CampaignSpec(
            name="Fresh launch",
            segment_id=self.segment,
            platforms=["iOS"],
            message=MESSAGE,
            schedule=self.schedule,
            settings={"reeligible": True, "reeligible_after_days": None},
        )

    def csv_file(self, name: str, text: str):
        path = self.tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path


# action -> (permission, the call, the audit action it records, or None)
ACTIONS = {
    "save a segment": (
        Permission.SAVE_SEGMENT,
        lambda w, a: save_segment(w.engine, "New one", IOS_ONLY, actor=a),
        None,
    ),
    "update a segment": (
        Permission.SAVE_SEGMENT,
        lambda w, a: update_segment(w.engine, w.segment, LAPSED_2_WEEKS, actor=a),
        None,
    ),
    "rename a segment": (
        Permission.SAVE_SEGMENT,
        lambda w, a: rename_segment(w.engine, w.segment, "Renamed", actor=a),
        None,
    ),
    "duplicate a segment": (
        Permission.SAVE_SEGMENT,
        lambda w, a: duplicate_segment(w.engine, w.segment, actor=a),
        None,
    ),
    "delete a segment": (
        Permission.SAVE_SEGMENT,
        lambda w, a: delete_segment(w.engine, w.spare_segment, actor=a),
        None,
    ),
    "export a segment": (
        Permission.EXPORT,
        lambda w, a: export_csv(IOS_ONLY, io.StringIO(), w.engine, actor=a, subject="Everyone on iOS"),
        "export",
    ),
    "export scores": (
        Permission.EXPORT,
        lambda w, a: export_scores(w.engine, w.prediction, w.tmp_path / "scores.csv", actor=a),
        "export",
    ),
    "save a campaign draft": (
        Permission.COMPOSE_CAMPAIGN,
        lambda w, a: save_draft(CampaignSpec(name="A draft"), w.engine, actor=a),
        None,
    ),
    "duplicate a campaign": (
        Permission.COMPOSE_CAMPAIGN,
        lambda w, a: duplicate(w.campaign, w.engine, actor=a),
        None,
    ),
    "launch a campaign": (
        Permission.LAUNCH_CAMPAIGN,
        lambda w, a: launch(w.launchable(), w.engine, now=w.anchor, actor=a),
        "launch",
    ),
    "pause a campaign": (
        Permission.LAUNCH_CAMPAIGN,
        lambda w, a: transition(w.campaign, "pause", w.engine, actor=a),
        "pause",
    ),
    "stop a campaign": (
        Permission.LAUNCH_CAMPAIGN,
        lambda w, a: transition(w.campaign, "stop", w.engine, actor=a),
        "stop",
    ),
    "import users": (
        Permission.IMPORT_DATA,
        lambda w, a: import_users(w.engine, w.csv_file("users.csv", "user_id,first_name\nnew-1,Ann\n"), actor=a),
        "import",
    ),
    "import events": (
        Permission.IMPORT_DATA,
        lambda w, a: import_events(
            w.engine, w.csv_file("events.csv", "user_id,event,timestamp\nnew-2,session,2025-01-02T03:04:05Z\n"), actor=a
        ),
        "import",
    ),
    "change delivery rules": (
        Permission.CHANGE_RULES,
        lambda w, a: set_delivery_rules({"enabled": True, "messages": 2, "days": 7}, {}, w.engine, actor=a),
        "rule change",
    ),
    "change the company time zone": (
        Permission.CHANGE_RULES,
        lambda w, a: set_company_timezone("Europe/Paris", w.engine, actor=a),
        "rule change",
    ),
    "change a member's role": (
        Permission.MANAGE_MEMBERS,
        lambda w, a: access.set_role("newcomer@example.com", "analyst", w.engine, actor=a),
        "role change",
    ),
    "retrain a prediction": (
        Permission.TRAIN_PREDICTIONS,
        lambda w, a: retrain_prediction(w.engine, w.prediction, actor=a),
        "retrain",
    ),
    "regenerate demo data": (
        Permission.REPLACE_DATA,
        lambda w, a: regenerate_demo_data(w.engine, 300, 5, lambda _m: None, actor=a, confirmation="REPLACE"),
        "replace data",
    ),
    "view the audit log": (
        Permission.VIEW_AUDIT,
        lambda w, a: access.audit_log(w.engine, actor=a),
        None,
    ),
    "export the audit log": (
        Permission.VIEW_AUDIT,
        lambda w, a: access.audit_csv_bytes(w.engine, actor=a),
        "export",
    ),
}


def snapshot(engine) -> dict:
    """Everything an action could change, compared before and after a refusal."""
    queries = {
        "segments": "SELECT id, name, version FROM segments ORDER BY id",
        "campaigns": "SELECT id, name, status, version FROM campaigns ORDER BY id",
        "meta": "SELECT key, value FROM app_meta ORDER BY key",
        "users": "SELECT COUNT(*), MAX(id) FROM users",
        "events": "SELECT COUNT(*), MAX(id) FROM events",
        "predictions": "SELECT id, updated_at, quality FROM predictions ORDER BY id",
        "members": "SELECT email, role FROM members ORDER BY email",
        "audit": "SELECT COUNT(*) FROM audit_log",
        "outbox": "SELECT COUNT(*) FROM outbox",
    }
    with engine.connect() as connection:
        return {name: connection.execute(sa.text(sql)).all() for name, sql in queries.items()}


def audit_actions_after(engine, last_id: int) -> list[tuple[str, str]]:
    table = models.AuditEntry.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.actor, table.c.action).where(table.c.id > last_id).order_by(table.c.id)
        ).all()
    return [tuple(row) for row in rows]


def last_audit_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.coalesce(sa.func.max(models.AuditEntry.id), 0))).scalar()


CASES = [(role, action) for action in ACTIONS for role in ROLES]


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{role}-{action}" for role, action in CASES])
def test_each_role_against_each_action(trained_engine, demo_anchor, tmp_path, role, action):  # noqa: F811
    world = World(trained_engine, demo_anchor, tmp_path)
    permission, call, audited = ACTIONS[action]
    actor = Actor(f"{role}@example.com", role)
    before, last = snapshot(trained_engine), last_audit_id(trained_engine)
    if ROLES.index(role) >= ROLES.index(access.MINIMUM_ROLE[permission]):
        call(world, actor)
        assert audit_actions_after(trained_engine, last) == ([(actor.email, audited)] if audited else [])
    else:
        with pytest.raises(UserError) as refusal:
            call(world, actor)
        message = str(refusal.value)
        assert message.startswith(f"{role}@example.com is a {role}: only ")
        assert permission.value in message and "\n" not in message
        assert snapshot(trained_engine) == before


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", "viewer@x.io is a viewer: only an analyst or above may export CSVs"),
        ("analyst", None),
    ],
)
def test_the_refusal_names_who_their_role_and_the_role_needed(role, expected):
    actor = Actor("viewer@x.io" if role == "viewer" else "ana@x.io", role)
    if expected is None:
        access.require(actor, Permission.EXPORT)
    else:
        with pytest.raises(UserError, match=f"^{expected}$"):
            access.require(actor, Permission.EXPORT)


def test_the_roles_are_ordered_each_allowing_what_the_one_before_may():
    for lower, higher in zip(ROLES, ROLES[1:], strict=False):
        assert set(access.allowed(Actor("a@x.io", lower))) < set(access.allowed(Actor("a@x.io", higher)))
    assert access.allowed(Actor("a@x.io", "admin"))[1:] == [p.value for p in Permission]


def test_an_unknown_role_is_refused():
    with pytest.raises(UserError, match="unknown role 'owner'"):
        Actor("a@x.io", "owner")

"""Roles checked in core: every role against every action that changes data or lets data leave.

Allowed: the action works and leaves exactly the audit rows it should. Refused: a one-line
message naming the person, their role and the role needed, and nothing in the database changes.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import access, models
from core.access import ROLES, Actor, Permission
from core.campaigns import CampaignSpec, launch, save_draft, set_company_timezone, set_delivery_rules, transition
from core.campaigns.dispatch import dispatch
from core.campaigns.outbox_export import outbox_csv_stream
from core.campaigns.store import duplicate
from core.delivery.config import DeliverySettings, save_settings, send_test_message
from core.delivery.outbox import retry_failed
from core.demo import regenerate_demo_data
from core.errors import UserError
from core.importer import import_events, import_users
from core.predictions import backtest_prediction, find_prediction, refresh_scores, retrain_prediction
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
        self.paused_campaign = make_campaign(engine, "Paused", IOS_ONLY, self.schedule, anchor)
        transition(self.paused_campaign, "pause", engine)
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


SECRET = "s3cret-signing-key"
WEBHOOK_SETTINGS = DeliverySettings(
    providers={"push": "webhook", "email": "demo", "in_app": "demo"},
    webhook_url="https://hooks.example.com/likely?token=abc123",
    webhook_secret=SECRET,
)

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
    "export the outbox": (
        Permission.EXPORT,
        lambda w, a: b"".join(outbox_csv_stream(w.engine, w.campaign, actor=a)),
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
    "resume a campaign": (
        Permission.LAUNCH_CAMPAIGN,
        lambda w, a: transition(w.paused_campaign, "resume", w.engine, actor=a),
        "resume",
    ),
    "retry failed messages": (
        Permission.LAUNCH_CAMPAIGN,
        lambda w, a: retry_failed(w.engine, w.campaign, actor=a),
        "retry",
    ),
    "change delivery channels": (
        Permission.CHANGE_RULES,
        lambda w, a: save_settings(w.engine, WEBHOOK_SETTINGS, actor=a),
        "rule change",
    ),
    "send a test message": (
        Permission.CHANGE_RULES,
        lambda w, a: send_test_message(w.engine, DeliverySettings(), "push", "u-1", actor=a),
        "test message",
    ),
    "backtest a prediction": (
        Permission.TRAIN_PREDICTIONS,
        lambda w, a: backtest_prediction(w.engine, w.prediction, actor=a),
        "backtest",
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
    "remove a member": (
        Permission.MANAGE_MEMBERS,
        lambda w, a: access.remove_member("newcomer@example.com", w.engine, actor=a),
        "remove member",
    ),
    "retrain a prediction": (
        Permission.TRAIN_PREDICTIONS,
        lambda w, a: retrain_prediction(w.engine, w.prediction, actor=a),
        "retrain",
    ),
    "refresh prediction scores": (
        Permission.TRAIN_PREDICTIONS,
        lambda w, a: refresh_scores(w.engine, w.prediction, actor=a),
        None,
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
        lambda w, a: b"".join(access.audit_csv_stream(w.engine, actor=a)),
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
        article = "an" if role == "analyst" else "a"
        assert message.startswith(f"{role}@example.com is {article} {role}: only ")
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


def test_every_export_launch_and_import_leaves_exactly_one_audit_row(demo_engine, demo_anchor, tmp_path):
    world = World.__new__(World)  # the campaign and segment only; no prediction needed here
    world.engine, world.anchor, world.tmp_path = demo_engine, demo_anchor, tmp_path
    world.segment = save_segment(demo_engine, "Everyone on iOS", IOS_ONLY).id
    world.schedule = daily(demo_anchor.date() + timedelta(days=1), "12:00", 3)
    last = last_audit_id(demo_engine)
    ana, mark, boss = Actor("ana@x.io", "analyst"), Actor("mark@x.io", "marketer"), Actor("boss@x.io", "admin")
    rows_out = [export_csv(IOS_ONLY, io.StringIO(), demo_engine, actor=ana) for _ in range(2)]
    launch(world.launchable(), demo_engine, now=demo_anchor, actor=mark)
    import_users(demo_engine, world.csv_file("users.csv", "user_id\nr-1\nr-2\n"), actor=boss)
    import_events(
        demo_engine, world.csv_file("events.csv", "user_id,event,timestamp\nr-1,session,2025-01-01\n"), actor=boss
    )
    table = models.AuditEntry.__table__
    with demo_engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.actor, table.c.action, table.c.details).where(table.c.id > last).order_by(table.c.id)
        ).all()
    assert [(who, what) for who, what, _ in rows] == [
        ("ana@x.io", "export"),
        ("ana@x.io", "export"),
        ("mark@x.io", "launch"),
        ("boss@x.io", "import"),
        ("boss@x.io", "import"),
    ]
    assert [details["rows"] for _, what, details in rows if what != "launch"] == [*rows_out, 2, 1]
    assert rows_out[0] > 0


def test_an_import_ends_demo_data_and_nothing_may_regenerate_over_it(demo_engine, tmp_path):
    boss = Actor("boss@x.io", "admin")
    assert access.holds_demo_data(demo_engine)
    path = tmp_path / "users.csv"
    path.write_text("user_id\nreal-1\n", encoding="utf-8")
    import_users(demo_engine, path, actor=boss)
    assert not access.holds_demo_data(demo_engine)
    before = snapshot(demo_engine)
    with pytest.raises(UserError, match="^this database holds imported data: demo data can no longer replace it$"):
        regenerate_demo_data(demo_engine, 300, 1, lambda _m: None, actor=boss, confirmation="REPLACE")
    assert snapshot(demo_engine) == before


@pytest.mark.parametrize("typed", ["", "replace", "yes", "REPLACE ALL"])
def test_replacing_data_needs_the_typed_confirmation(demo_engine, typed):
    before = snapshot(demo_engine)
    with pytest.raises(UserError, match="^type REPLACE to confirm that every user and event is replaced$"):
        regenerate_demo_data(demo_engine, 300, 1, lambda _m: None, actor=Actor("b@x.io", "admin"), confirmation=typed)
    assert snapshot(demo_engine) == before


def test_the_last_admin_cannot_step_down(empty_engine):
    boss = access.sign_in("boss@x.io", empty_engine)
    assert boss == Actor("boss@x.io", "admin")
    with pytest.raises(UserError, match="^boss@x.io is the only admin: make someone else admin first$"):
        access.set_role("boss@x.io", "viewer", empty_engine, actor=boss)
    assert access.sign_in("BOSS@x.io ", empty_engine) == boss


def test_the_cli_acts_as_the_local_admin_under_the_operating_system_user_name(app_database, tmp_path):
    import getpass

    from core.cli import main

    path = tmp_path / "users.csv"
    path.write_text("user_id\ncli-1\n", encoding="utf-8")
    last = last_audit_id(app_database)
    assert main(["import", "users", str(path)]) == 0
    save_segment(app_database, "Everyone on iOS", IOS_ONLY)
    assert main(["segment", "export", "Everyone on iOS", "-o", str(tmp_path / "ios.csv")]) == 0
    assert audit_actions_after(app_database, last) == [(getpass.getuser(), "import"), (getpass.getuser(), "export")]
    log = access.audit_log(app_database, actor=access.local_admin(), action="export")
    assert log["target"].tolist() == ["Everyone on iOS"]
    assert main(["seed", "--users", "200"]) == 2  # imported data: the CLI will not replace it either
    assert snapshot(app_database)["users"][0][0] == 3_001


def test_the_outbox_export_is_formula_safe(demo_engine, demo_anchor):
    schedule = daily(demo_anchor.date(), "00:00", 1, local_time=False)
    campaign = make_campaign(demo_engine, "=Evil", IOS_ONLY, schedule, demo_anchor - timedelta(days=1))
    dispatch(demo_engine, until=demo_anchor + timedelta(days=1))
    text = b"".join(outbox_csv_stream(demo_engine, campaign, actor=Actor("ana@x.io", "analyst"))).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {row["campaign"] for row in rows} == {"'=Evil"}


def test_the_audit_log_filters_and_exports_formula_safe(empty_engine):
    boss = Actor("boss@x.io", "admin")
    access.audit(empty_engine, Actor("=cmd()@x.io", "analyst"), "export", "=HYPERLINK(1)", rows=3)
    access.audit(empty_engine, boss, "launch", "campaign 'A'")
    assert access.audit_log(empty_engine, actor=boss, action="launch")["target"].tolist() == ["campaign 'A'"]
    assert access.audit_log(empty_engine, actor=boss, who="CMD")["action"].tolist() == ["export"]
    text = b"".join(access.audit_csv_stream(empty_engine, actor=boss, action="export")).decode()
    lines = text.splitlines()
    assert lines[0] == "at,actor,action,target,details"
    assert lines[1].split(",")[1:] == ["'=cmd()@x.io", "export", "'=HYPERLINK(1)", "rows: 3"]
    assert access.audit_log(empty_engine, actor=boss)["action"].tolist() == ["export", "launch", "export"]


def _acting_functions() -> set[str]:
    """Every core function that takes an `actor` (so checks permissions and writes the audit log)."""
    import importlib
    import inspect
    import pkgutil

    import core

    names = set()
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if "actor" in inspect.signature(function).parameters and name not in {"require", "can", "allowed"}:
                names.add(name)
    return names


def test_pages_always_pass_the_signed_in_actor():
    """Core defaults `actor` to the local admin for the CLI; a page that forgot it would act as admin."""
    import ast
    from pathlib import Path

    acting = _acting_functions()
    assert {"export_csv_stream", "launch", "transition", "import_users", "set_delivery_rules"} <= acting
    missing = []
    for path in sorted((Path(__file__).resolve().parent.parent / "pages").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            target = node.args[0] if getattr(node.func, "id", None) == "partial" and node.args else node.func
            name = getattr(target, "attr", None) or getattr(target, "id", None)
            if name in acting and not any(keyword.arg == "actor" for keyword in node.keywords):
                missing.append(f"{path.name}:{node.lineno} {name}")
    assert missing == []


def test_saving_delivery_channels_audits_the_providers_and_never_a_secret_or_url(empty_engine):
    save_settings(empty_engine, WEBHOOK_SETTINGS, actor=Actor("boss@x.io", "admin"))
    log = access.audit_log(empty_engine, actor=Actor("boss@x.io", "admin"))
    assert log[["actor", "action", "target"]].values.tolist() == [["boss@x.io", "rule change", "delivery channels"]]
    details = log["details"].iloc[0]
    assert details == {
        "providers": {"push": "webhook", "email": "demo", "in_app": "demo"},
        "set": ["webhook_secret", "webhook_url"],
    }
    assert SECRET not in str(details) and "abc123" not in str(details)


def test_campaign_commands_are_audited_under_the_operating_system_user_name(app_database, demo_anchor):
    import getpass

    from core.cli import main

    make_campaign(
        app_database, "Running", IOS_ONLY, daily(demo_anchor.date() + timedelta(days=1), "12:00"), demo_anchor
    )
    last = last_audit_id(app_database)
    for command in (["pause", "Running"], ["resume", "Running"], ["retry-failed", "Running"], ["stop", "Running"]):
        assert main(["campaign", *command]) == 0
    me = getpass.getuser()
    assert audit_actions_after(app_database, last) == [(me, "pause"), (me, "resume"), (me, "retry"), (me, "stop")]

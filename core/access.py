"""Team access: who may enter, what each role may do, and the audit log of who did what.

Every core function that changes data or lets data leave takes an `Actor` and calls
`require(actor, permission)` before it touches anything, so a refused action changes nothing
whatever the UI shows. The CLI and a local (no [auth]) app act as `local_admin()`.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from core import summary
from core.db import get_engine, session_scope, streamed_rows
from core.errors import UserError
from core.models import AppMeta, AuditEntry, Member
from core.timeutil import utcnow

ROLES = ("viewer", "analyst", "marketer", "admin")  # each role may do everything the ones before it may
NEW_MEMBER_ROLE = "viewer"
DEMO_DATA_KEY = "demo_anchor"  # written by core.seed.generate; an import removes it
REPLACE_CONFIRMATION = "REPLACE"


class Permission(Enum):
    """What an actor may do; the value says it in words, `MINIMUM_ROLE` who may."""

    SAVE_SEGMENT = "save, rename and delete segments"
    EXPORT = "export CSVs"
    COMPOSE_CAMPAIGN = "compose campaigns"
    LAUNCH_CAMPAIGN = "launch, pause, resume and stop campaigns"
    IMPORT_DATA = "import data"
    REPLACE_DATA = "replace or delete data"
    CHANGE_RULES = "change delivery channels and rules"
    MANAGE_MEMBERS = "manage members"
    TRAIN_PREDICTIONS = "train, retrain and delete predictions"
    VIEW_AUDIT = "view and export the audit log"


MINIMUM_ROLE = {
    Permission.SAVE_SEGMENT: "analyst",
    Permission.EXPORT: "analyst",
    Permission.COMPOSE_CAMPAIGN: "marketer",
    Permission.LAUNCH_CAMPAIGN: "marketer",
    Permission.IMPORT_DATA: "admin",
    Permission.REPLACE_DATA: "admin",
    Permission.CHANGE_RULES: "admin",
    Permission.MANAGE_MEMBERS: "admin",
    Permission.TRAIN_PREDICTIONS: "admin",
    Permission.VIEW_AUDIT: "admin",
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in email (or the operating-system user at the CLI) and their role."""

    email: str
    role: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise UserError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")


def local_admin() -> Actor:
    """The single local user: the CLI, or the app without an [auth] section (localhost only)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        name = "local user"
    return Actor(name, "admin")


LOCAL_ADMIN = local_admin()


def can(actor: Actor, permission: Permission) -> bool:
    return ROLES.index(actor.role) >= ROLES.index(MINIMUM_ROLE[permission])


def require(actor: Actor, permission: Permission) -> None:
    """Refuse, in one line, an action the actor's role does not allow."""
    if not can(actor, permission):
        needed = MINIMUM_ROLE[permission]
        who = _a(needed) if needed == "admin" else f"{_a(needed)} or above"
        raise UserError(f"{actor.email} is {_a(actor.role)}: only {who} may {permission.value}")


def _a(role: str) -> str:
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


def allowed(actor: Actor) -> list[str]:
    """What the actor may do, in words, for the page to show."""
    return ["view predictions, segments and campaigns"] + [p.value for p in Permission if can(actor, p)]


# --- who may enter -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """The email domains and addresses allowed in (settings: [access] allowed_domains, allowed_emails)."""

    domains: frozenset[str]
    addresses: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Mapping | None) -> AllowList:
        settings = settings or {}

        def entries(key: str) -> frozenset[str]:
            value = settings.get(key, [])
            if isinstance(value, str):
                value = [value]
            return frozenset(str(item).strip().lower().lstrip("@") for item in value if str(item).strip())

        return cls(entries("allowed_domains"), entries("allowed_emails"))

    def admits(self, email: str | None) -> bool:
        email = (email or "").strip().lower()
        if "@" not in email:
            return False
        return email in self.addresses or email.rsplit("@", 1)[1] in self.domains


def sign_in(email: str, engine: Engine | None = None) -> Actor:
    """The member behind an admitted email; the first one into an empty workspace becomes admin."""
    email = email.strip().lower()
    engine = engine or get_engine()
    with session_scope(engine) as session:
        member = session.get(Member, email)
        if member is not None:
            return Actor(email, member.role)
    try:
        with session_scope(engine) as session:
            role = _add_member(session, email)
    except sa.exc.IntegrityError:  # the same person's other tab added them a moment ago
        with session_scope(engine) as session:
            return Actor(email, session.get(Member, email).role)
    return Actor(email, role)


def _add_member(session, email: str) -> str:
    """Add a new member and return their role: admin when nobody is a member yet, else a viewer."""
    _hold_members(session)
    first = session.scalar(sa.select(sa.func.count()).select_from(Member)) == 0
    role = "admin" if first else NEW_MEMBER_ROLE
    session.add(Member(email=email, role=role, added_by=email if first else "sign-in"))
    session.add(audit_entry(Actor(email, role), "role change", email, {"role": role, "reason": "first sign-in"}))
    return role


def _hold_members(session) -> None:
    """Hold the members table until this transaction ends, so what it reads stays true until it
    writes: two first sign-ins at the same instant cannot both find it empty, two admins demoting
    or removing each other cannot both find another admin. PostgreSQL queues the other changes
    behind a table lock (readers go on); SQLite takes its single write lock with a write that
    changes nothing."""
    if session.bind.dialect.name == "postgresql":
        session.execute(sa.text("LOCK TABLE members IN SHARE ROW EXCLUSIVE MODE"))
    else:
        table = Member.__table__
        session.execute(sa.update(table).where(sa.false()).values(role=table.c.role))


def members(engine: Engine | None = None) -> pd.DataFrame:
    with (engine or get_engine()).connect() as connection:
        table = Member.__table__
        return pd.read_sql(sa.select(table.c.email, table.c.role, table.c.added_at).order_by(table.c.email), connection)


def set_role(email: str, role: str, engine: Engine | None = None, *, actor: Actor) -> None:
    """Change a member's role; the last admin cannot step down (someone must manage members)."""
    require(actor, Permission.MANAGE_MEMBERS)
    email = email.strip().lower()
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    with session_scope(engine or get_engine()) as session:
        member = _member_to_change(session, email, leaves_admins=role != "admin")
        before, member.role = member.role, role
        session.add(audit_entry(actor, "role change", email, {"from": before, "to": role}))


def remove_member(email: str, engine: Engine | None = None, *, actor: Actor) -> None:
    """Remove a member; the last admin cannot be removed. Signing in again makes them a new
    member (a viewer), if the allow list still lets them in."""
    require(actor, Permission.MANAGE_MEMBERS)
    email = email.strip().lower()
    with session_scope(engine or get_engine()) as session:
        member = _member_to_change(session, email, leaves_admins=True)
        session.delete(member)
        session.add(audit_entry(actor, "remove member", email, {"role": member.role}))


def _member_to_change(session, email: str, *, leaves_admins: bool) -> Member:
    """The member row, held until the change commits; refused when the change would leave no admin."""
    _hold_members(session)
    member = session.get(Member, email)
    if member is None:
        raise UserError(f"{email} is not a member: members appear here after their first sign-in")
    if leaves_admins and member.role == "admin":
        admins = session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.role == "admin"))
        if admins == 1:
            raise UserError(f"{email} is the only admin: make someone else admin first")
    return member


# --- demo data -----------------------------------------------------------------------------------


def holds_demo_data(engine: Engine | None = None) -> bool:
    """True while the users and events are generated demo data (no import since); an empty database is not."""
    with session_scope(engine or get_engine()) as session:
        return session.get(AppMeta, DEMO_DATA_KEY) is not None


def forget_demo_data(session) -> None:
    """Imported data is real: from now on nothing may regenerate over it."""
    session.execute(sa.delete(AppMeta).where(AppMeta.key == DEMO_DATA_KEY))


def require_replace(actor: Actor, confirmation: str, engine: Engine | None = None) -> None:
    """Replacing every user and event needs an admin, demo data, and the typed confirmation."""
    require(actor, Permission.REPLACE_DATA)
    if not holds_demo_data(engine) and summary.user_count(engine or get_engine()) > 0:
        raise UserError("this database holds imported data: demo data can no longer replace it")
    if confirmation.strip() != REPLACE_CONFIRMATION:
        raise UserError(f"type {REPLACE_CONFIRMATION} to confirm that every user and event is replaced")


# --- the audit log -------------------------------------------------------------------------------

AUDIT_COLUMNS = ["at", "actor", "action", "target", "details"]
AUDIT_ACTIONS = (
    "export",
    "import",
    "launch",
    "pause",
    "resume",
    "stop",
    "retry",
    "rule change",
    "test message",
    "role change",
    "remove member",
    "train",
    "backtest",
    "retrain",
    "replace data",
)


def audit_entry(actor: Actor, action: str, target: str, details: dict | None) -> AuditEntry:
    return AuditEntry(at=utcnow(), actor=actor.email, action=action, target=str(target)[:300], details=details)


def audit(engine: Engine | None, actor: Actor, action: str, target: str, **details) -> None:
    """Record that `actor` did `action` on `target` (details: row counts, statuses...)."""
    with session_scope(engine or get_engine()) as session:
        session.add(audit_entry(actor, action, target, details or None))


def audit_log(
    engine: Engine | None = None,
    *,
    actor: Actor,
    action: str | None = None,
    who: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The audit log, newest first, filtered by action, by who (a part of the email) and by time."""
    require(actor, Permission.VIEW_AUDIT)
    query = _audit_query(action, who, since)
    if limit:
        query = query.limit(limit)
    with (engine or get_engine()).connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def _audit_query(action: str | None, who: str | None, since: datetime | None) -> sa.Select:
    table = AuditEntry.__table__
    query = sa.select(*(table.c[name] for name in AUDIT_COLUMNS)).order_by(table.c.at.desc(), table.c.id.desc())
    if action:
        query = query.where(table.c.action == action)
    if who:
        query = query.where(sa.func.lower(table.c.actor).contains(who.strip().lower(), autoescape=True))
    if since:
        query = query.where(table.c.at >= since)
    return query


def details_text(details: dict | None) -> str:
    """An entry's details for people: "rows: 4, new_users: 4"."""
    return ", ".join(f"{key}: {value}" for key, value in (details or {}).items())


def audit_csv_stream(
    engine: Engine | None = None,
    *,
    actor: Actor,
    action: str | None = None,
    who: str | None = None,
    since: datetime | None = None,
) -> Iterator[bytes]:
    """The filtered audit log as CSV chunks through the one formula-safe writer, read from the
    database a batch at a time as the chunks are read; the export itself is audited at the end."""
    from core.csvout import csv_chunks, text_columns

    require(actor, Permission.VIEW_AUDIT)
    engine = engine or get_engine()
    query = _audit_query(action, who, since)
    return csv_chunks(
        AUDIT_COLUMNS,
        (text_columns([_audit_row(r) for r in rows]) for rows in streamed_rows(engine, query, 50_000)),
        done=lambda rows: audit(engine, actor, "export", "audit log", rows=rows),
    )


def _audit_row(entry) -> tuple:
    """An entry as the CSV shows it: the time to the second, the details as text."""
    return f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.actor, entry.action, entry.target, details_text(entry.details)

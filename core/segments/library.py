"""Saved segments: create, read, rename, duplicate, update and delete named definitions.

Names are unique, compared without regard to case or surrounding spaces ("Lapsed users"
and "lapsed users " are the same name). A segment a campaign uses cannot be deleted: the
error names the campaigns. Updates can carry the version the editor started from, so two
people editing the same segment cannot silently overwrite each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core import models
from core.access import LOCAL_ADMIN, Actor, Permission, require
from core.arguments import row_id
from core.db import get_engine, session_scope
from core.errors import UserError
from core.segments.definition import SegmentDefinition, parse_definition
from core.segments.sql import check_references
from core.timeutil import utcnow

MAX_NAME = 200


@dataclass(frozen=True)
class SavedSegment:
    id: int
    name: str
    definition: SegmentDefinition
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


def _saved(row: models.Segment) -> SavedSegment:
    definition = parse_definition(row.definition)  # the database-row edge
    return SavedSegment(row.id, row.name, definition, row.description, row.version, row.created_at, row.updated_at)


def clean_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UserError("give the segment a name")
    if any(ord(char) < 32 and not char.isspace() for char in name):  # PostgreSQL cannot store NUL
        raise UserError("a segment name cannot contain control characters such as NUL")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise UserError(f"a segment name has at most {MAX_NAME} characters (this one has {len(name)})")
    return name


def checked_definition(definition: SegmentDefinition, engine: Engine) -> SegmentDefinition:
    """The definition, valid and naming only predictions and events that exist: checked before anything is stored."""
    definition = parse_definition(definition)
    check_references(definition, engine)
    return definition


def _check_unique(session: Session, name: str, except_id: int | None = None) -> None:
    query = sa.select(models.Segment.id, models.Segment.name).where(sa.func.lower(models.Segment.name) == name.lower())
    for row in session.execute(query):
        if row.id != except_id:
            raise UserError(f"a segment named “{row.name}” already exists; choose another name")


def _find(session: Session, name_or_id: int | str) -> models.Segment:
    row = None
    if (number := row_id(name_or_id)) is not None:
        row = session.get(models.Segment, number)
    if row is None and isinstance(name_or_id, str):
        wanted = " ".join(name_or_id.split()).lower()
        row = session.scalar(sa.select(models.Segment).where(sa.func.lower(models.Segment.name) == wanted))
    if row is None:
        raise UserError(f"no saved segment named or numbered {name_or_id!r}")
    return row


def save_segment(
    engine: Engine | None,
    name: str,
    definition: SegmentDefinition,
    description: str | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> SavedSegment:
    """Save a new segment; a duplicate name is refused."""
    require(actor, Permission.SAVE_SEGMENT)
    name = clean_name(name)
    engine = engine or get_engine()
    definition = checked_definition(definition, engine)
    with session_scope(engine) as session:
        _check_unique(session, name)
        row = models.Segment(name=name, definition=definition.to_json(), description=description or None)
        session.add(row)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise UserError(f"a segment named “{name}” already exists; choose another name") from None
        return _saved(row)


def get_segment(engine: Engine | None, name_or_id: int | str) -> SavedSegment:
    with session_scope(engine or get_engine()) as session:
        return _saved(_find(session, name_or_id))


def list_segments(engine: Engine | None = None) -> list[SavedSegment]:
    """Every saved segment, by name."""
    with session_scope(engine or get_engine()) as session:
        rows = session.scalars(sa.select(models.Segment).order_by(sa.func.lower(models.Segment.name)))
        return [_saved(row) for row in rows]


def update_segment(
    engine: Engine | None,
    name_or_id: int | str,
    definition: SegmentDefinition,
    *,
    description: str | None = None,
    expected_version: int | None = None,
    actor: Actor = LOCAL_ADMIN,
) -> SavedSegment:
    """Replace a segment's definition (refused if someone else saved it since `expected_version`)."""
    require(actor, Permission.SAVE_SEGMENT)
    engine = engine or get_engine()
    definition = checked_definition(definition, engine)
    with session_scope(engine) as session:
        row = _find(session, name_or_id)
        if expected_version is not None and row.version != expected_version:
            raise UserError(
                f"“{row.name}” was changed by someone else since you opened it (version {row.version}, "
                f"you had {expected_version}); reopen it to see their changes"
            )
        row.definition = definition.to_json()
        if description is not None:
            row.description = description or None
        row.version += 1
        row.updated_at = utcnow()
        session.flush()
        return _saved(row)


def rename_segment(
    engine: Engine | None, name_or_id: int | str, new_name: str, *, actor: Actor = LOCAL_ADMIN
) -> SavedSegment:
    require(actor, Permission.SAVE_SEGMENT)
    new_name = clean_name(new_name)
    with session_scope(engine or get_engine()) as session:
        row = _find(session, name_or_id)
        _check_unique(session, new_name, except_id=row.id)
        row.name = new_name
        row.version += 1
        row.updated_at = utcnow()
        session.flush()
        return _saved(row)


def duplicate_segment(
    engine: Engine | None, name_or_id: int | str, new_name: str | None = None, *, actor: Actor = LOCAL_ADMIN
) -> SavedSegment:
    """A copy under `new_name` (default: "<name> (copy)", "<name> (copy 2)", ...)."""
    require(actor, Permission.SAVE_SEGMENT)
    engine = engine or get_engine()
    with session_scope(engine) as session:
        row = _find(session, name_or_id)
        source_name, description = row.name, row.description
        definition = parse_definition(row.definition)
        if new_name is None:
            taken = {n.lower() for n in session.scalars(sa.select(models.Segment.name))}
            new_name, k = f"{source_name} (copy)", 2
            while new_name.lower() in taken:
                new_name, k = f"{source_name} (copy {k})", k + 1
    return save_segment(engine, new_name, definition, description, actor=actor)


def campaigns_using(engine: Engine | None, segment_id: int) -> list[str]:
    with session_scope(engine or get_engine()) as session:
        query = sa.select(models.Campaign.name).where(models.Campaign.segment_id == segment_id)
        return sorted(session.scalars(query))


def delete_segment(engine: Engine | None, name_or_id: int | str, *, actor: Actor = LOCAL_ADMIN) -> None:
    """Delete a segment no campaign uses; otherwise say which campaigns use it."""
    require(actor, Permission.SAVE_SEGMENT)
    with session_scope(engine or get_engine()) as session:
        row = _find(session, name_or_id)
        users = sorted(session.scalars(sa.select(models.Campaign.name).where(models.Campaign.segment_id == row.id)))
        if users:
            listed = ", ".join(f"“{name}”" for name in users)
            used = "the campaign {} uses it" if len(users) == 1 else "the campaigns {} use it"
            raise UserError(f"“{row.name}” cannot be deleted: {used.format(listed)}")
        session.delete(row)

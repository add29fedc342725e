"""The SQL rendering of a definition: one parameterised WHERE clause over users ⟕ user_facts.

Used by exports that stream straight from the database and for databases too big to hold
in memory; `sql_count` is also the naive peer the benchmark compares live counts with.
Missing values follow the mask's rule (they match no positive filter): a positive AND/OR
formula already treats SQL NULL as false, and exclusions wrap their clause in
COALESCE(..., false) before NOT, so a NULL never turns into "not excluded" by accident.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from core.db import get_engine
from core.errors import UserError
from core.segments.definition import Group, Located, SegmentDefinition, located_filters
from core.segments.filters import EVENT_FACTS, USER_FACTS, USERS, FilterError
from core.segments.store import TARGETABLE_KINDS
from core.timeutil import screen_time


def as_naive_utc(now: datetime | None) -> datetime:
    """`now` as naive UTC (the database's convention).

    None means the current minute (`screen_time`), the instant every surface evaluates relative
    dates at: the pages, the CLI and exports agree on an audience within a minute.
    """
    if now is None:
        return screen_time()
    if now.tzinfo is not None:
        from datetime import UTC

        now = now.astimezone(UTC).replace(tzinfo=None)
    return now


def base_from() -> sa.FromClause:
    return USERS.outerjoin(USER_FACTS, USER_FACTS.c.user_id == USERS.c.id)


def _group_clause(group: Group, now: datetime) -> sa.ColumnElement[bool] | None:
    from core.segments.filters import FILTERS

    clauses = [FILTERS[spec.type].clause(spec, now) for spec in group.filters]
    if not clauses:
        return None
    return sa.and_(*clauses) if group.match == "all" else sa.or_(*clauses)


def where_clause(definition: SegmentDefinition, now: datetime | None = None) -> sa.ColumnElement[bool]:
    """The definition as a WHERE clause (relative dates against `now`)."""
    now = as_naive_utc(now)
    groups = [c for g in definition.groups if (c := _group_clause(g, now)) is not None]
    clause = sa.true()
    if groups:
        clause = sa.and_(*groups) if definition.match == "all" else sa.or_(*groups)
    exclusions = [c for g in definition.exclude if (c := _group_clause(g, now)) is not None]
    if exclusions:
        clause = sa.and_(clause, sa.not_(sa.func.coalesce(sa.or_(*exclusions), sa.false())))
    return clause


def check_references(definition: SegmentDefinition, engine: Engine) -> None:
    """Refuse, as the in-memory path does, unknown or untargetable predictions and unknown events."""
    with engine.connect() as connection:
        for item in located_filters(definition):
            try:
                _check(item, connection)
            except FilterError as error:
                raise UserError(f"{item.where}: {error}") from None


def _check(item: Located, connection) -> None:
    from core import models

    for prediction in item.kind.predictions(item.spec):
        row = connection.execute(
            sa.select(models.Prediction.name, models.Prediction.kind).where(models.Prediction.id == prediction)
        ).first()
        if row is None:
            raise FilterError(f"prediction {prediction} does not exist")
        if (row.kind or "full") not in TARGETABLE_KINDS:
            raise FilterError(f"“{row.name}” is a {row.kind} prediction: only full predictions can target users")
    event = getattr(item.spec, "event", None)
    if event is not None:
        found = connection.execute(sa.select(EVENT_FACTS.c.user_id).where(EVENT_FACTS.c.event == event).limit(1))
        if found.first() is None:
            raise FilterError(f"no user ever did an event named {event!r}")


def sql_count(definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None) -> int:
    """The audience size as one SQL COUNT (slower than `count`; the two always agree)."""
    engine = engine or get_engine()
    check_references(definition, engine)
    query = sa.select(sa.func.count()).select_from(base_from()).where(where_clause(definition, now))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def sql_user_ids(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None
) -> np.ndarray:
    engine = engine or get_engine()
    check_references(definition, engine)
    query = sa.select(USERS.c.id).select_from(base_from()).where(where_clause(definition, now)).order_by(USERS.c.id)
    with engine.connect() as connection:
        return np.fromiter((row[0] for row in connection.execute(query)), dtype=np.int64)

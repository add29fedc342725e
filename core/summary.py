"""What the database holds, for the Data page and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from core import models
from core.db import session_scope


@dataclass(frozen=True)
class DatabaseSummary:
    users: int
    events: int
    first_event: datetime | None
    last_event: datetime | None
    events_by_name: dict[str, int]
    users_by_platform: dict[str, int]


def user_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(models.User)) or 0


def database_summary(engine: Engine) -> DatabaseSummary:
    with session_scope(engine) as session:
        by_name = dict(
            session.execute(
                select(models.UserEventFacts.event, func.sum(models.UserEventFacts.count))
                .group_by(models.UserEventFacts.event)
                .order_by(func.sum(models.UserEventFacts.count).desc())
            ).all()
        )
        first, last = session.execute(
            select(func.min(models.UserEventFacts.first_at), func.max(models.UserEventFacts.last_at))
        ).one()
        platforms = dict(
            session.execute(
                select(func.coalesce(models.User.platform, "unknown"), func.count()).group_by(models.User.platform)
            ).all()
        )
        return DatabaseSummary(
            users=session.scalar(select(func.count()).select_from(models.User)) or 0,
            events=int(sum(by_name.values())),
            first_event=first,
            last_event=last,
            events_by_name={name: int(count) for name, count in by_name.items()},
            users_by_platform=platforms,
        )

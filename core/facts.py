"""Per-user facts derived from events, so segment filters never scan the raw events table.

`refresh` recomputes every user's facts (after a reseed); `refresh_users` only those of the
users an import touched, so importing one event costs that user's events, not everyone's.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.db import bulk_insert

SESSION_EVENT = "session"
PURCHASE_EVENT = "purchase"
_TOUCHED = "touched_users"  # a temporary table of the users to refresh

_EVENT_FACTS = """
    INSERT INTO user_event_facts (user_id, event, count, first_at, last_at, value_sum)
    SELECT user_id, name, COUNT(*), MIN(ts), MAX(ts), COALESCE(SUM(value), 0)
    FROM events {where} GROUP BY user_id, name
"""
_USER_FACTS = """
    INSERT INTO user_facts (user_id, first_used_at, last_used_at, session_count,
                            purchase_count, total_spent, first_purchase_at, last_purchase_at)
    SELECT u.id, s.first_at, s.last_at, COALESCE(s.count, 0),
           COALESCE(p.count, 0), COALESCE(p.value_sum, 0), p.first_at, p.last_at
    FROM users u
    LEFT JOIN user_event_facts s ON s.user_id = u.id AND s.event = :session
    LEFT JOIN user_event_facts p ON p.user_id = u.id AND p.event = :purchase
    {where}
"""
_PARAMS = {"session": SESSION_EVENT, "purchase": PURCHASE_EVENT}


def refresh(session: Session) -> None:
    """Recompute every user's facts from the events table, inside the caller's transaction."""
    session.execute(text("DELETE FROM user_event_facts"))
    session.execute(text(_EVENT_FACTS.format(where="")))
    session.execute(text("DELETE FROM user_facts"))
    session.execute(text(_USER_FACTS.format(where="")), _PARAMS)


def refresh_users(session: Session, user_ids: Iterable[int]) -> None:
    """Recompute the facts of `user_ids` only (users.id), inside the caller's transaction.

    The ids go through a temporary table, so a million touched users is one join, not a
    million-item IN list; every statement then reads only those users' events (through the
    (user_id, name, ts) index).
    """
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_TOUCHED} (id BIGINT PRIMARY KEY)")
    else:
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_TOUCHED} (id INTEGER PRIMARY KEY)")
    connection.exec_driver_sql(f"DELETE FROM {_TOUCHED}")
    bulk_insert(connection, _TOUCHED, ("id",), [(i,) for i in ids])
    touched = f"(SELECT id FROM {_TOUCHED})"
    session.execute(text(f"DELETE FROM user_event_facts WHERE user_id IN {touched}"))
    session.execute(text(_EVENT_FACTS.format(where=f"WHERE user_id IN {touched}")))
    session.execute(text(f"DELETE FROM user_facts WHERE user_id IN {touched}"))
    session.execute(text(_USER_FACTS.format(where=f"WHERE u.id IN {touched}")), _PARAMS)
    connection.exec_driver_sql(f"DROP TABLE {_TOUCHED}")

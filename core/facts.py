"""Per-user facts derived from events, so segment filters never scan the raw events table."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

SESSION_EVENT = "session"
PURCHASE_EVENT = "purchase"

_REFRESH = [
    "DELETE FROM user_event_facts",
    """
    INSERT INTO user_event_facts (user_id, event, count, first_at, last_at, value_sum)
    SELECT user_id, name, COUNT(*), MIN(ts), MAX(ts), COALESCE(SUM(value), 0)
    FROM events GROUP BY user_id, name
    """,
    "DELETE FROM user_facts",
    """
    INSERT INTO user_facts (user_id, first_used_at, last_used_at, session_count,
                            purchase_count, total_spent, first_purchase_at, last_purchase_at)
    SELECT u.id, s.first_at, s.last_at, COALESCE(s.count, 0),
           COALESCE(p.count, 0), COALESCE(p.value_sum, 0), p.first_at, p.last_at
    FROM users u
    LEFT JOIN user_event_facts s ON s.user_id = u.id AND s.event = :session
    LEFT JOIN user_event_facts p ON p.user_id = u.id AND p.event = :purchase
    """,
]


def refresh(session: Session) -> None:
    """Recompute every user's facts from the events table, inside the caller's transaction."""
    params = {"session": SESSION_EVENT, "purchase": PURCHASE_EVENT}
    for statement in _REFRESH:
        session.execute(text(statement), params)

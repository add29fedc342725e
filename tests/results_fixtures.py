"""Helpers for the results tests: a prediction with planted tiers, delivery simulated until the worker lands."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import text

from core.db import bulk_insert, bump_data_version, session_scope
from core.models import Prediction
from core.tiers import TIER_NAMES

ALL_USERS = {"version": 1, "match": "all", "groups": [], "exclude": []}


def simulate_delivery(engine) -> int:
    """What the worker (issue 13) will do: every queued message is sent at its send instant.

    Control rows are left alone: the worker only ever picks 'queued'."""
    with engine.begin() as connection:
        return connection.execute(
            text("UPDATE outbox SET status = 'sent', sent_at = send_at WHERE status = 'queued'")
        ).rowcount


def planted_prediction(engine, event: str = "purchase", as_of: datetime | None = None) -> int:
    """A full prediction on `event` whose scores put every third user in each tier (by user id)."""
    with session_scope(engine) as session:
        prediction = Prediction(
            name=f"Planted {event}", event=event, window_days=14, kind="full", as_of=as_of or datetime(2026, 1, 1)
        )
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id
        user_ids = [row[0] for row in session.execute(text("SELECT id FROM users ORDER BY id"))]
        scores = {"Low": 20.0, "Medium": 60.0, "High": 90.0}
        rows = [(prediction_id, uid, scores[TIER_NAMES[uid % 3]], TIER_NAMES[uid % 3]) for uid in user_ids]
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        bump_data_version(session)
    return prediction_id


def tier_of(user_ids) -> np.ndarray:
    return np.array([TIER_NAMES[int(u) % 3] for u in user_ids], dtype=object)

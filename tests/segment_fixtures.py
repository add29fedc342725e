"""A tiny hand-made world for segment filter edge cases, and helpers shared by segment tests.

Six users, times relative to NOW (naive UTC). Facts are derived from the events with
core.facts.refresh, except u4, who has no facts row and no attributes at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, delete, select

from core import facts, models
from core.db import bump_data_version, session_scope

NOW = datetime(2026, 1, 15, 12, 0, 0)
D = timedelta(days=1)
S = timedelta(seconds=1)

# external id: (platform, country, language, timezone, push_opt_in, has_push_token, email, email_opt_in, bucket)
USERS = {
    "u1": ("iOS", "US", "en", "America/New_York", True, True, "a@example.com", True, 0),
    "u2": ("Android", "FR", "fr", "Europe/Paris", True, False, None, False, 9999),
    "u3": ("Web", "DE", "de", "Europe/Berlin", False, True, "c@example.com", True, 5000),
    "u4": (None, None, None, None, None, None, None, None, 42),
    "u5": ("iOS", "GB", "en", "Europe/London", True, True, "=HYPERLINK(1)", False, 4999),
    "u6": ("Android", "FR", "fr", "Europe/Paris", False, False, None, True, 5001),
}
FIRST_NAMES = {"u1": "Ann", "u2": "-5", "u3": "@bob", "u4": None, "u5": "+Eve", "u6": "Zoé"}
SESSIONS = {
    "u1": [-30 * D, -20 * D, -14 * D],
    "u2": [-100 * D, -14 * D - S],
    "u3": [-50 * D, -21 * D + S],
    "u5": [-7 * D, -6 * D, -5 * D, -1 * D, -timedelta(hours=1)],
    "u6": [-21 * D],
}
PURCHASES = {"u1": [(-20 * D, 30.0), (-14 * D, 20.0)], "u3": [(-21 * D + S, 49.99)]}
SCORES = {"u1": 75.0, "u2": 74.99, "u3": 50.0, "u5": 0.0, "u6": 100.0}  # u4 unscored
ALL = set(USERS)


def build_world(engine: Engine) -> dict[str, int]:
    """Fill an empty database with the six users; returns {"full": id, "preview": id} predictions."""
    from core.tiers import category_for

    with session_scope(engine) as session:
        for number, (external, row) in enumerate(USERS.items(), start=1):
            platform, country, language, zone, push, token, email, email_opt, bucket = row
            session.add(
                models.User(
                    id=number,
                    external_id=external,
                    first_name=FIRST_NAMES[external],
                    platform=platform,
                    country=country,
                    language=language,
                    timezone=zone,
                    push_opt_in=push,
                    has_push_token=token,
                    email=email,
                    email_opt_in=email_opt,
                    random_bucket=bucket,
                )
            )
        session.flush()
        ids = {external: number for number, external in enumerate(USERS, start=1)}
        for external, offsets in SESSIONS.items():
            for offset in offsets:
                session.add(models.Event(user_id=ids[external], name="session", ts=NOW + offset))
        for external, purchases in PURCHASES.items():
            for offset, value in purchases:
                session.add(models.Event(user_id=ids[external], name="purchase", ts=NOW + offset, value=value))
        session.flush()
        facts.refresh(session)
        session.execute(delete(models.UserFacts).where(models.UserFacts.user_id == ids["u4"]))
        for name, kind in (("Purchase in 30 days", "full"), ("Preview purchase", "preview")):
            session.add(models.Prediction(name=name, event="purchase", window_days=30, kind=kind, as_of=NOW))
        session.flush()
        predictions = {p.kind: p.id for p in session.scalars(select(models.Prediction)).all()}
        for external, score in SCORES.items():
            for prediction in predictions.values():
                session.add(
                    models.PredictionScore(
                        prediction_id=prediction, user_id=ids[external], score=score, category=category_for(score)
                    )
                )
        bump_data_version(session)
    return predictions


@pytest.fixture(scope="module")
def world(databases) -> tuple[Engine, dict[str, int]]:
    """The six-user world, built once per test module (tests must not write to it)."""
    from tests.conftest import open_engine

    engine = open_engine(databases.new("segment_world"))
    yield engine, build_world(engine)
    engine.dispose()


def external_ids(engine: Engine, ids: np.ndarray) -> set[str]:
    with session_scope(engine) as session:
        rows = session.execute(select(models.User.id, models.User.external_id)).all()
    lookup = dict(rows)
    return {lookup[int(i)] for i in ids}

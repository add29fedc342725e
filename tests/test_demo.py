"""The demo database's life cycle: first start, regeneration."""

from __future__ import annotations

from sqlalchemy import func, select

from core import models
from core.access import local_admin
from core.db import session_scope
from core.demo import ensure_demo_database, regenerate_demo_data
from core.predictions import list_predictions
from tests.prediction_fixtures import trained_db_template, trained_engine  # noqa: F401 - fixtures


def _scored_users(engine) -> dict[int, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(models.PredictionScore.prediction_id, func.count()).group_by(models.PredictionScore.prediction_id)
        ).all()
    return dict(rows)


def test_first_start_seeds_and_trains_the_demo_predictions(empty_engine):
    messages: list[str] = []
    ensure_demo_database(empty_engine, 1_500, messages.append)
    kinds = sorted(p.kind for p in list_predictions(empty_engine))
    assert kinds == ["full", "preview"]
    assert any("generating the demo database (1,500 users)" in m for m in messages)
    ensure_demo_database(empty_engine, 1_500, messages.append)  # a second start changes nothing
    assert messages[-2:] == [
        "the database already holds data: nothing to generate",
        "predictions exist: nothing to train",
    ]


def test_a_deleted_demo_prediction_stays_deleted(trained_engine):  # noqa: F811
    from core.predictions.store import delete_prediction

    preview = next(p for p in list_predictions(trained_engine) if p.kind == "preview")
    delete_prediction(trained_engine, preview.id)
    ensure_demo_database(trained_engine, 1_500, lambda _m: None)
    assert [p.kind for p in list_predictions(trained_engine)] == ["full"]


def test_regenerating_keeps_predictions_and_rescores_every_user(trained_engine):  # noqa: F811
    before = {p.id: p.name for p in list_predictions(trained_engine)}
    regenerate_demo_data(
        trained_engine, users=1_200, seed=99, progress=lambda _m: None, actor=local_admin(), confirmation="REPLACE"
    )
    assert {p.id: p.name for p in list_predictions(trained_engine)} == before
    assert _scored_users(trained_engine) == {prediction_id: 1_200 for prediction_id in before}

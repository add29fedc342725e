"""Reading and writing predictions and their scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import defer

from core import models
from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.arguments import row_id
from core.csvout import fixed_decimals, write_csv
from core.db import bulk_insert, bump_data_version, session_scope
from core.errors import UserError
from core.predictions.model import TrainedModel
from core.predictions.quality import quality_band
from core.tiers import categories_for
from core.timeutil import utcnow

KINDS: dict[str, str] = {
    "full": "Full: scores refresh and can be targeted",
    "preview": "Preview: a first look on real data; no score updates, not targetable",
    "demo": "Demo: for trying the product; not targetable",
}
TARGETABLE_KINDS = ("full",)
INSERT_CHUNK = 200_000


@dataclass(frozen=True)
class PredictionInfo:
    id: int
    name: str
    event: str
    window_days: int
    audience: dict | None
    kind: str
    as_of: datetime
    quality: float | None
    auc: float | None
    details: dict
    created_at: datetime
    updated_at: datetime

    @property
    def quality_band(self) -> str:
        return quality_band(self.quality)

    @property
    def trained_as_of(self) -> datetime:
        """The data time the model was trained at (its as-of when the details do not say)."""
        trained = self.details.get("trained_as_of")
        return datetime.fromisoformat(trained) if trained else self.as_of

    @property
    def targetable(self) -> bool:
        return self.kind in TARGETABLE_KINDS

    @property
    def not_targetable_reason(self) -> str | None:
        if self.targetable:
            return None
        return (
            f"This is a {self.kind} prediction: {KINDS[self.kind].split(': ', 1)[1]}. Train a full one to target users."
        )

    @property
    def audience_size(self) -> int:
        return int(self.details.get("audience_size", 0))


def _info(row: models.Prediction) -> PredictionInfo:
    return PredictionInfo(
        id=row.id,
        name=row.name,
        event=row.event,
        window_days=row.window_days,
        audience=row.audience,
        kind=row.kind,
        as_of=row.as_of,
        quality=row.quality,
        auc=row.auc,
        details=dict(row.details or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_predictions(engine: Engine) -> list[PredictionInfo]:
    """Every prediction, newest first."""
    with session_scope(engine) as session:
        query = select(models.Prediction).options(defer(models.Prediction.model))  # the pickle is only for scoring
        rows = session.scalars(query.order_by(models.Prediction.id.desc())).all()
        return [_info(row) for row in rows]


def get_prediction(engine: Engine, prediction_id: int) -> PredictionInfo:
    with session_scope(engine) as session:
        row = session.get(models.Prediction, int(prediction_id), options=[defer(models.Prediction.model)])
        if row is None:
            raise UserError(f"no prediction with id {prediction_id}")
        return _info(row)


def find_prediction(engine: Engine, name_or_id: str | int) -> PredictionInfo:
    """A prediction by its name, or by its id (as a number or a string of digits)."""
    with session_scope(engine) as session:
        row = session.scalar(
            select(models.Prediction)
            .options(defer(models.Prediction.model))
            .where(models.Prediction.name == str(name_or_id))
        )
        if row is None and (number := row_id(name_or_id)) is not None:
            row = session.get(models.Prediction, number)
        if row is None:
            raise UserError(f"no prediction named or numbered '{name_or_id}'")
        return _info(row)


def prediction_version(engine: Engine, prediction_id: int) -> tuple:
    """Changes whenever the prediction's scores may have changed: a cache key."""
    with engine.connect() as connection:
        updated = connection.execute(
            text("SELECT updated_at FROM predictions WHERE id = :id"), {"id": int(prediction_id)}
        ).scalar()
        version = connection.execute(text("SELECT value FROM app_meta WHERE key = 'data_version'")).scalar()
    return (str(engine.url), int(prediction_id), str(updated), version)


def write_scores(session, prediction_id: int, user_ids: np.ndarray, probabilities: np.ndarray) -> None:
    """Replace a prediction's scores: score = probability x 100 (2 decimals), category from core.tiers."""
    scores = np.round(np.asarray(probabilities, dtype=float) * 100, 2)
    categories = categories_for(scores)
    session.execute(delete(models.PredictionScore).where(models.PredictionScore.prediction_id == prediction_id))
    connection = session.connection()
    ids = np.asarray(user_ids, dtype=np.int64)
    for start in range(0, len(ids), INSERT_CHUNK):
        stop = start + INSERT_CHUNK
        rows = zip(
            [prediction_id] * len(ids[start:stop]),
            ids[start:stop].tolist(),
            scores[start:stop].tolist(),
            categories[start:stop].tolist(),
            strict=True,
        )
        bulk_insert(connection, "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
    bump_data_version(session, users_changed=False)


def load_scores(engine: Engine, prediction_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, scores) of a prediction, in user id order."""
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        cursor.execute(
            f"SELECT user_id, score FROM prediction_scores WHERE prediction_id = {marker} ORDER BY user_id",
            (int(prediction_id),),
        )
        rows = cursor.fetchall()
        cursor.close()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    array = np.array(rows, dtype=float)
    return array[:, 0].astype(np.int64), array[:, 1]


def user_score(engine: Engine, prediction_id: int, user_id: int) -> tuple[float, str] | None:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT score, category FROM prediction_scores WHERE prediction_id = :p AND user_id = :u"),
            {"p": int(prediction_id), "u": int(user_id)},
        ).first()
    return None if row is None else (float(row[0]), str(row[1]))


def export_scores(engine: Engine, name_or_id: str | int, path: str | Path, *, actor: Actor = LOCAL_ADMIN) -> int:
    """Write `user_id,score,category` for every scored user to a CSV file; returns the row count.

    Through the product's one CSV writer (core.csvout): user ids are neutralised as user text.
    Needs the EXPORT permission; the export is recorded in the audit log.
    """
    require(actor, Permission.EXPORT)
    prediction = find_prediction(engine, name_or_id)

    def batches():
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(
                text(
                    "SELECT u.external_id, s.score, s.category FROM prediction_scores s "
                    "JOIN users u ON u.id = s.user_id WHERE s.prediction_id = :p ORDER BY s.user_id"
                ),
                {"p": prediction.id},
            )
            for batch in result.partitions(100_000):
                external, score, category = zip(*batch, strict=True)
                yield [external, fixed_decimals(np.array(score, dtype=float)), category]

    written = write_csv(path, ["user_id", "score", "category"], batches(), text=[True, False, True])
    audit(engine, actor, "export", f"scores of {prediction.name!r}", rows=written)
    return written


def save_prediction(session, **fields) -> int:
    """Insert or update (when `id` is given) a prediction row; returns its id."""
    prediction_id = fields.pop("id", None)
    row = session.get(models.Prediction, prediction_id) if prediction_id else models.Prediction()
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row.id


def name_taken(engine: Engine, name: str) -> bool:
    with session_scope(engine) as session:
        return session.scalar(select(models.Prediction.id).where(models.Prediction.name == name)) is not None


def delete_prediction(engine: Engine, prediction_id: int) -> None:
    with session_scope(engine) as session:
        session.execute(delete(models.PredictionScore).where(models.PredictionScore.prediction_id == prediction_id))
        session.execute(delete(models.Prediction).where(models.Prediction.id == prediction_id))
        bump_data_version(session, users_changed=False)


def stored_model(engine: Engine, prediction: PredictionInfo) -> TrainedModel:
    """The prediction's fitted model (for rescoring and per-user reasons); a clear error when none was stored."""
    with session_scope(engine) as session:
        blob = session.get(models.Prediction, prediction.id).model
    if not blob:
        raise UserError(f"'{prediction.name}' has no stored model; train it again")
    return TrainedModel.from_bytes(blob)

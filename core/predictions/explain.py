"""Per-user reasons: why one user scores what they score."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from core.arguments import row_id
from core.errors import UserError
from core.predictions import store
from core.predictions.features import CATEGORICAL, compute_features


def _user_id(engine: Engine, user: str | int) -> int:
    """A user by external id (as in imports and exports) or internal id."""
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT id FROM users WHERE external_id = :e"), {"e": str(user).strip()}
        ).scalar()
        if found is None and (number := row_id(user)) is not None:
            found = connection.execute(text("SELECT id FROM users WHERE id = :i"), {"i": number}).scalar()
    if found is None:
        raise UserError(f"no user '{user}' (give the user id as in your imports, e.g. u0000042)")
    return int(found)


def user_reasons(engine: Engine, prediction_id: int, user: str | int, as_of: datetime | None = None) -> dict:
    """The user's score and category and the traits that pull it up or down most."""
    prediction = store.get_prediction(engine, prediction_id)
    user_id = _user_id(engine, user)
    scored = store.user_score(engine, prediction.id, user_id)
    if scored is None:
        raise UserError(f"user '{user}' is not in the audience of '{prediction.name}'")
    model = store.stored_model(engine, prediction)
    features = compute_features(engine, model.spec, as_of or prediction.as_of, user_ids=[user_id]).reindex([user_id])
    for column in CATEGORICAL:
        features[column] = pd.Categorical(features[column].astype(str), categories=model.spec.categories[column])
    return {"user_id": user_id, "score": scored[0], "category": scored[1], "reasons": model.reasons(features)}

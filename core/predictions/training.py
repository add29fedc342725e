"""Train a prediction, score its audience, and refresh the scores later.

Training looks back from the prediction's as-of time: features as they stood at
`as_of - window`, label = performed the event in `(as_of - window, as_of]`. A quarter of the
training users is held out to measure quality and calibration. Scoring then computes every
audience user's features at `as_of` and applies the calibrated model.

Refreshing (`refresh_scores`) re-scores with the stored model and features up to the newest
event. Like the leader's, the model itself is retrained every two weeks: a refresh whose data
reaches `RETRAIN_AFTER_DAYS` past the model's training date retrains it in place
(`retrain_prediction`, also callable on its own). In place means the same prediction (id, name,
event, window, audience), so segments and campaigns that target it keep working; the new
model, quality and scores replace the old ones in one transaction, or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sqlalchemy import Engine, text

from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.db import session_scope
from core.errors import UserError
from core.instants import parse_instant
from core.predictions import store
from core.predictions.drivers import audience_drivers
from core.predictions.features import (
    CATEGORICAL,
    FeatureSpec,
    compute_features,
    event_names,
    existed,
    iter_feature_chunks,
    latest_event_time,
    other_event_names,
    performers,
)
from core.predictions.model import TrainedModel, fit
from core.predictions.quality import accuracy_ratio, auc, calibration_table

MAX_WINDOW_DAYS = 60
TRAIN_SAMPLE = 200_000  # larger audiences train on a random sample and score everyone
PREVIEW_SAMPLE = 20_000
HOLDOUT_SHARE = 0.25
SCORE_CHUNK = 200_000
DRIVER_SAMPLE = 200_000
SEED = 20240611
RETRAIN_AFTER_DAYS = 14
MIN_TRAINING_USERS = 40
MIN_CLASS_USERS = 5  # performers (and non-performers) the training window needs at least

Progress = Callable[[str], None] | None


def _say(progress: Progress) -> Callable[[str], None]:
    return progress or (lambda _m: None)


def default_name(event: str, window_days: int, kind: str) -> str:
    name = f"{event.replace('_', ' ').capitalize()} in next {window_days} days"
    return name if kind == "full" else f"{name} ({kind})"


def validate(engine: Engine, event: str, window_days: int, kind: str, name: str) -> None:
    """Raise UserError, changing nothing, when the request cannot be trained."""
    if kind not in store.KINDS:
        raise UserError(f"kind '{kind}' is not one of {', '.join(store.KINDS)}")
    if not 1 <= int(window_days) <= MAX_WINDOW_DAYS:
        raise UserError(f"window of {window_days} days: choose 1 to {MAX_WINDOW_DAYS} days")
    known = event_names(engine)
    if event not in known:
        hint = f"; known events: {', '.join(known[:12])}" if known else "; the database holds no events yet"
        raise UserError(f"event '{event}' does not occur in the data{hint}")
    if not name.strip():
        raise UserError("a prediction needs a name")
    if store.name_taken(engine, name):
        raise UserError(f"a prediction named '{name}' already exists; pick another name")


def _audience_ids(engine: Engine, audience: dict | None, now: datetime) -> np.ndarray:
    if audience:
        from core.segments import matching_user_ids, parse_definition  # segments import predictions: here

        definition = parse_definition(audience)  # the stored audience (a JSON row or --audience)
        return np.asarray(matching_user_ids(definition, engine, now=now), dtype=np.int64)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id FROM users ORDER BY id")).all()
    return np.array([row[0] for row in rows], dtype=np.int64)


def _categories(frame: pd.DataFrame) -> dict[str, list[str]]:
    return {column: sorted({*frame[column].astype(str).unique(), "unknown"}) for column in CATEGORICAL}


def train_prediction(
    engine: Engine,
    event: str,
    window_days: int,
    kind: str = "full",
    name: str | None = None,
    audience: dict | None = None,
    as_of: datetime | None = None,
    progress: Progress = None,
    backtest: bool = False,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> int:
    """Train, evaluate and score a prediction; returns the new prediction's id.

    With `backtest`, the standard backtest (core.predictions.backtest) runs first on all
    users, so a request it cannot answer is refused before anything is trained, and its
    result is kept in the prediction's details for the page's quality section.
    """
    require(actor, Permission.TRAIN_PREDICTIONS)
    say = _say(progress)
    started = time.monotonic()
    window_days = int(window_days)
    name = (name or default_name(event, window_days, kind)).strip()
    validate(engine, event, window_days, kind, name)
    as_of = as_of_instant(engine, as_of)
    checked = {}
    if backtest:
        from core.predictions.backtest import run_backtest  # the backtest trains through this module

        say("backtesting first")
        checked = {"backtest": run_backtest(engine, event, window_days, as_of, say).to_dict()}
    learned = _learn(engine, event, window_days, kind, audience, as_of, say)
    learned = replace(learned, details={**learned.details, **checked})
    with session_scope(engine) as session:
        prediction_id = store.save_prediction(
            session,
            name=name,
            event=event,
            window_days=window_days,
            audience=audience,
            kind=kind,
            as_of=as_of,
            status="scoring",
            quality=learned.quality,
            auc=learned.auc,
            details=learned.details,
            model=learned.model.to_bytes(),
        )
    try:
        _score(engine, prediction_id, learned.model, learned.audience_ids, as_of, learned.details, say, learned.current)
    except BaseException:
        store.delete_prediction(engine, prediction_id)  # never leave a half-scored prediction behind
        raise
    audit(engine, actor, "train", f"prediction {name!r}", kind=kind, prediction_id=prediction_id)
    say(f"done in {time.monotonic() - started:.1f}s")
    return prediction_id


def retrain_prediction(
    engine: Engine, name_or_id: str | int, progress: Progress = None, *, actor: Actor = LOCAL_ADMIN
) -> int:
    """Retrain a full prediction in place on the newest data, then rescore its audience; returns its id.

    The prediction keeps its id, name, event, window and audience. Its model, quality, details
    and scores are replaced together, in one transaction: a failure leaves it as it was.
    """
    require(actor, Permission.TRAIN_PREDICTIONS)
    say = _say(progress)
    started = time.monotonic()
    prediction = store.find_prediction(engine, name_or_id)
    if prediction.kind != "full":
        raise UserError(f"'{prediction.name}' is a {prediction.kind} prediction: only full predictions are retrained")
    as_of = latest_event_time(engine) or prediction.as_of
    say(f"retraining '{prediction.name}' on data up to {as_of:%Y-%m-%d %H:%M}")
    learned = _learn(engine, prediction.event, prediction.window_days, prediction.kind, prediction.audience, as_of, say)
    _score(
        engine,
        prediction.id,
        learned.model,
        learned.audience_ids,
        as_of,
        learned.details,
        say,
        learned.current,
        replacing={"model": learned.model.to_bytes(), "quality": learned.quality, "auc": learned.auc},
    )
    audit(engine, actor, "retrain", f"prediction {prediction.name!r}", prediction_id=prediction.id)
    say(f"done in {time.monotonic() - started:.1f}s")
    return prediction.id


def as_of_instant(engine: Engine, as_of: datetime | str | None) -> datetime:
    """The prediction's 'now' as naive UTC (any ISO 8601 form or datetime); default the newest event."""
    if as_of is None:
        newest = latest_event_time(engine)
        if newest is None:
            raise UserError("the database holds no events yet: import events first")
        return newest
    try:
        return parse_instant(as_of)
    except ValueError as error:
        raise UserError(f"as of: {error}") from None


@dataclass(frozen=True)
class Learned:
    """A fitted model and what it was measured at, before anything is stored."""

    model: TrainedModel
    quality: float
    auc: float
    details: dict
    audience_ids: np.ndarray
    current: pd.DataFrame  # every audience user's features at as-of, from the same scan


def features_at_two_cutoffs(
    engine: Engine, spec: FeatureSpec, earlier: datetime, later: datetime, ids: np.ndarray, sample: np.ndarray, say
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One scan: the `sample` users' features at `earlier` (those who existed then), every user's at `later`."""
    history, current = [], []
    for chunk, (at_earlier, at_later) in iter_feature_chunks(engine, spec, [earlier, later], ids, say):
        history.append(at_earlier[np.isin(chunk, sample)])
        current.append(at_later)
    history_frame, current_frame = pd.concat(history), pd.concat(current)
    return history_frame[existed(history_frame)], current_frame


def _learn(
    engine: Engine, event: str, window_days: int, kind: str, audience: dict | None, as_of: datetime, say
) -> Learned:
    """Fit the model on history up to `as_of - window` with labels in the window; measure it on held-out users."""
    train_cut = as_of - timedelta(days=window_days)
    check_window_has_data(engine, event, train_cut, as_of)
    rng = np.random.default_rng(SEED)

    say("choosing the audience")
    audience_ids = _audience_ids(engine, audience, as_of)
    if len(audience_ids) == 0:
        raise UserError("the audience is empty: no user matches it")
    cap = PREVIEW_SAMPLE if kind == "preview" else TRAIN_SAMPLE
    train_ids = np.sort(rng.choice(audience_ids, cap, replace=False)) if len(audience_ids) > cap else audience_ids
    spec = FeatureSpec(event, window_days, other_event_names(engine, event))

    say(f"computing history up to {train_cut:%Y-%m-%d} and {as_of:%Y-%m-%d} for {len(audience_ids):,} users")
    history, current = features_at_two_cutoffs(engine, spec, train_cut, as_of, audience_ids, train_ids, say)
    labels = np.isin(history.index.to_numpy(), performers(engine, event, train_cut, as_of))
    spec = FeatureSpec(event, window_days, spec.other_events, _categories(history))
    for column in CATEGORICAL:
        history[column] = pd.Categorical(history[column].astype(str), categories=spec.categories[column])

    say(f"learning from {len(history):,} users ({int(labels.sum()):,} performed '{event}' in the window)")
    stratify = labels if 2 <= labels.sum() <= len(labels) - 2 else None
    if len(history) < MIN_TRAINING_USERS or stratify is None or min(labels.sum(), (~labels).sum()) < MIN_CLASS_USERS:
        raise UserError(not_enough_history(event, window_days, train_cut, as_of, int(labels.sum()), len(history)))
    fit_rows, held_rows = train_test_split(
        np.arange(len(history)), test_size=HOLDOUT_SHARE, random_state=SEED, stratify=stratify
    )
    model = fit(history.iloc[fit_rows], labels[fit_rows], spec, seed=SEED)
    held_p = model.probabilities(history.iloc[held_rows])
    held_y = labels[held_rows]
    quality, area = accuracy_ratio(held_y, held_p), auc(held_y, held_p)
    say(f"quality on {len(held_rows):,} held-out users: accuracy ratio {quality:.1f}%, AUC {area:.3f}")

    for column in CATEGORICAL:
        current[column] = pd.Categorical(current[column].astype(str), categories=spec.categories[column])
    model = model.anchored(current)
    spec = model.spec
    details = {
        "trained_as_of": as_of.isoformat(),
        "training_cutoff": train_cut.isoformat(),
        "training_users": int(len(history)),
        "holdout_users": int(len(held_rows)),
        "training_positive_rate": float(labels.mean()),
        "holdout_observed_rate": float(held_y.mean()),
        "holdout_expected_rate": float(held_p.mean()),
        "calibration": calibration_table(held_y, held_p),
        "features": [spec.labels()[c] for c in spec.columns()],
        "average_value": _average_value(engine, event),
        "level_offset": model.level_offset,
        "repeat_model_bias": model.repeat_bias if model.repeat_model is not None else None,
    }
    return Learned(model, quality, area, details, audience_ids, current)


def check_window_has_data(engine: Engine, event: str, after: datetime, until: datetime) -> None:
    """Refuse a label window that starts after the data ends: nobody can have done anything in it."""
    newest = latest_event_time(engine)
    if newest is not None and after >= newest:
        raise UserError(
            f"cannot learn '{event}': the data ends on {newest:%Y-%m-%d}, before the window "
            f"{after:%Y-%m-%d} to {until:%Y-%m-%d}; pick an --as-of up to {newest:%Y-%m-%d} plus the window"
        )


def not_enough_history(event: str, window_days: int, after: datetime, until: datetime, done: int, users: int) -> str:
    """Why a prediction cannot be learned, in one line a person can act on."""
    window = f"{after:%Y-%m-%d} to {until:%Y-%m-%d}"
    if users < MIN_TRAINING_USERS:
        return (
            f"cannot learn '{event}' over {window_days} days: only {users:,} users had any history by "
            f"{after:%Y-%m-%d} (at least {MIN_TRAINING_USERS} are needed); pick a later --as-of or import more users"
        )
    if done < MIN_CLASS_USERS:
        return (
            f"cannot learn '{event}' over {window_days} days: only {done:,} of {users:,} users did it in the "
            f"training window {window} (at least {MIN_CLASS_USERS} are needed); pick a longer window, "
            "a more common event or a later --as-of"
        )
    return (
        f"cannot learn '{event}' over {window_days} days: {done:,} of {users:,} users did it in the training "
        f"window {window}, nearly everyone, so there is nobody to tell apart; pick a shorter window or a rarer event"
    )


def _average_value(engine: Engine, event: str) -> float | None:
    """Mean value of the event (e.g. order value of a purchase), when it carries values."""
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT AVG(value) FROM events WHERE name = :event AND value IS NOT NULL"), {"event": event}
        ).scalar()
    return None if value is None else float(value)


def _score(
    engine,
    prediction_id,
    model: TrainedModel,
    audience_ids,
    as_of,
    details,
    say,
    current: pd.DataFrame | None = None,
    replacing: dict | None = None,
) -> None:
    """Score the audience and store the scores with the prediction's details (and the `replacing`
    columns, e.g. a retrained model and its quality) in one transaction. `current` holds the
    audience's features at `as_of` when training already computed them."""
    rng = np.random.default_rng(SEED + 1)
    audience_ids = np.sort(np.asarray(audience_ids, dtype=np.int64))
    probabilities = np.zeros(len(audience_ids))
    driver_take = min(1.0, DRIVER_SAMPLE / max(len(audience_ids), 1))
    driver_frames, driver_scores = [], []
    for start in range(0, len(audience_ids), SCORE_CHUNK):
        chunk = audience_ids[start : start + SCORE_CHUNK]
        if current is not None:
            features = current.reindex(chunk)
        else:
            features = compute_features(engine, model.spec, as_of, user_ids=chunk).reindex(chunk)
        for column in CATEGORICAL:
            features[column] = pd.Categorical(
                features[column].astype(str).fillna("unknown"), categories=model.spec.categories[column]
            )
        p = model.probabilities(features)
        probabilities[start : start + len(chunk)] = p
        keep = rng.random(len(chunk)) < driver_take
        driver_frames.append(model.inputs(features[keep]))
        driver_scores.append(p[keep] * 100)
        say(f"scored {min(start + SCORE_CHUNK, len(audience_ids)):,} / {len(audience_ids):,} users")
    drivers = audience_drivers(pd.concat(driver_frames), np.concatenate(driver_scores), model.spec)
    details = {
        **details,
        "audience_size": int(len(audience_ids)),
        "expected_performers": float(probabilities.sum()),
        "scored_as_of": as_of.isoformat(),
        "drivers": drivers,
    }
    with session_scope(engine) as session:
        store.write_scores(session, prediction_id, audience_ids, probabilities)
        store.save_prediction(
            session, id=prediction_id, as_of=as_of, status="ready", details=details, **(replacing or {})
        )


def refresh_scores(
    engine: Engine,
    name_or_id: str | int,
    progress: Progress = None,
    data_replaced: bool = False,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> int:
    """Re-score a prediction's audience with its stored model and the newest data; returns its id.

    Features are recomputed up to the latest event, so scores follow what users did since.
    When that data reaches `RETRAIN_AFTER_DAYS` past the model's training date, a full
    prediction's model is retrained first (`retrain_prediction`). Preview predictions do not
    update (like the leader's), except when the whole data set was replaced (`data_replaced`,
    e.g. regenerated demo data).
    """
    require(actor, Permission.TRAIN_PREDICTIONS)
    say = _say(progress)
    prediction = store.find_prediction(engine, name_or_id)
    if prediction.kind == "preview" and not data_replaced:
        raise UserError(f"'{prediction.name}' is a preview prediction: its scores do not update")
    as_of = latest_event_time(engine) or prediction.as_of
    if prediction.kind == "full" and model_age_days(prediction, as_of) >= RETRAIN_AFTER_DAYS:
        say(f"the model is {model_age_days(prediction, as_of):.0f} days older than the data: retraining it")
        return retrain_prediction(engine, prediction.id, progress, actor=actor)
    model = store.stored_model(engine, prediction)
    say(f"refreshing '{prediction.name}' with data up to {as_of:%Y-%m-%d %H:%M}")
    audience_ids = _audience_ids(engine, prediction.audience, as_of)
    _score(engine, prediction.id, model, audience_ids, as_of, prediction.details, say)
    return prediction.id


def model_age_days(prediction: store.PredictionInfo, as_of: datetime) -> float:
    """Days from the data the model was trained on to `as_of` (the newest data)."""
    return (as_of - prediction.trained_as_of) / timedelta(days=1)

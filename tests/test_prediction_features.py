"""Repeat-behaviour features on a hand-made log, and one scan agreeing with one cut-off at a time."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from core import models
from core.importer import import_events
from core.predictions.features import NEVER_DAYS, FeatureSpec, compute_features, compute_features_at
from tests import purchase_logs as logs

CUT = datetime(1997, 3, 1)  # day 59 of 1997
# u1 buys on days 0, 10, 30 (twice, with values 5 and 7) and 50; u2 once on day 58; u3 only after the cut.
LOG = [
    ("u1", "purchase", "1997-01-01", "10"),
    ("u1", "purchase", "1997-01-11", "20"),
    ("u1", "purchase", "1997-01-31T08:00:00Z", "5"),
    ("u1", "purchase", "1997-01-31T20:00:00Z", "7"),
    ("u1", "purchase", "1997-02-20", ""),
    ("u2", "purchase", "1997-02-28", "3"),
    ("u3", "purchase", "1997-03-05", "1"),
]


@pytest.fixture
def features(empty_engine, tmp_path) -> pd.DataFrame:
    import_events(empty_engine, logs.write_csv(LOG, tmp_path / "events.csv"))
    with empty_engine.connect() as connection:
        ids = dict(connection.execute(select(models.User.external_id, models.User.id)).all())
    frame = compute_features(empty_engine, FeatureSpec("purchase", 30), CUT, user_ids=sorted(ids.values()))
    return frame.rename(index={v: k for k, v in ids.items()})


@pytest.mark.parametrize(
    ("user", "column", "expected"),
    [
        ("u1", "event_total", 5),
        ("u1", "event_days", 4),  # two purchases on day 30 are one purchase day
        ("u1", "days_since_first_target", 59),
        ("u1", "days_since_last_event", 9),
        ("u1", "gap_mean", 50 / 3),  # day gaps 10, 20, 20
        ("u1", "gap_spread", np.std([10, 20, 20])),
        ("u1", "gap_last", 20),
        ("u1", "recency_per_gap", 9 / (50 / 3)),
        ("u1", "event_30d", 3),  # days 30, 30, 50 (day 29 is 30 days back: not inside)
        ("u1", "event_60d", 5),
        ("u1", "event_value", 42),
        ("u1", "event_value_mean", 10.5),  # the purchase without a value is not a zero
        ("u2", "event_days", 1),
        ("u2", "days_since_last_event", 1),
        ("u2", "gap_mean", np.nan),  # one purchase day: no gap yet
        ("u2", "gap_last", np.nan),
        ("u3", "event_total", 0),
        ("u3", "days_since_last_event", NEVER_DAYS),
        ("u3", "event_value_mean", np.nan),
    ],
)
def test_repeat_features_on_a_hand_made_log(features, user, column, expected):
    value = features.loc[user, column]
    if np.isnan(expected):
        assert np.isnan(value)
    else:
        assert value == pytest.approx(expected)


def test_one_scan_for_two_cutoffs_equals_one_cutoff_at_a_time(empty_engine, tmp_path):
    import_events(empty_engine, logs.write_csv(logs.planted_signal(users=200, seed=5), tmp_path / "events.csv"))
    spec = FeatureSpec("purchase", 30, ("session",))
    with empty_engine.connect() as connection:
        ids = np.array(connection.execute(select(models.User.id).order_by(models.User.id)).scalars().all())
    cutoffs = [datetime(1997, 9, 1), datetime(1997, 10, 1)]
    together = compute_features_at(empty_engine, spec, cutoffs, ids)
    for cutoff, frame in zip(cutoffs, together, strict=True):
        (alone,) = compute_features_at(empty_engine, spec, [cutoff], ids)
        pd.testing.assert_frame_equal(frame, alone)


def test_a_model_saved_before_the_repeat_features_still_scores(empty_engine, tmp_path):
    """Stored predictions keep refreshing: an old model reads the columns it was trained on."""
    import pickle

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    from core.predictions.features import LEGACY_COLUMNS
    from core.predictions.model import TrainedModel

    import_events(empty_engine, logs.write_csv(logs.planted_signal(users=300, seed=6), tmp_path / "events.csv"))
    with empty_engine.connect() as connection:
        ids = np.array(connection.execute(select(models.User.id).order_by(models.User.id)).scalars().all())
    known = ["Android", "iOS", "unknown"]
    spec = FeatureSpec("purchase", 30, categories={"platform": known, "country": known})
    frame = compute_features(empty_engine, spec, datetime(1997, 12, 1), user_ids=ids)
    for column in ("platform", "country"):  # old models were trained on data with profiles
        frame[column] = pd.Categorical(np.where(ids % 2 == 0, "iOS", "Android"), categories=known)
    frame["tenure_days"] = (ids % 90).astype(np.float32)
    assert spec.columns() == list(LEGACY_COLUMNS)
    labels = frame["sessions_30d"].to_numpy() > frame["sessions_30d"].median()
    estimator = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=5), cv=3).fit(
        frame[spec.columns()], labels
    )
    old = TrainedModel(spec=spec, estimator=estimator, reference={})
    for added in ("repeat_model", "repeat_bias", "level_offset"):  # what an old pickle lacks
        del old.__dict__[added]
    restored = pickle.loads(pickle.dumps(old))
    scores = restored.probabilities(compute_features(empty_engine, spec, datetime(1998, 1, 1), user_ids=ids))
    assert len(scores) == len(ids) and np.all((scores >= 0) & (scores <= 1))

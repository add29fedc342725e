"""The learner: calibrated gradient-boosted trees over the per-user features.

Scores must be honest probabilities, because the Predictions page adds them up ("expected
to perform"), so the trees are wrapped in isotonic calibration fitted on cross-validation
folds.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from core.predictions.features import CATEGORICAL, NEVER_DAYS, FeatureSpec

CALIBRATION_FOLDS = 3
# OpenMP threads spin badly when the machine is busy (a web server, other jobs); one thread
# is fast enough for the sizes we train on, and predictable.
THREADS = 1
REASONS_SHOWN = 4


def _trees(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.08,
        max_iter=150,
        max_leaf_nodes=24,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        random_state=seed,
    )


@dataclass
class TrainedModel:
    """What a prediction keeps to rescore users later without retraining."""

    spec: FeatureSpec
    estimator: CalibratedClassifierCV
    reference: dict  # a typical user's value of every feature, for per-user reasons

    def probabilities(self, features: pd.DataFrame) -> np.ndarray:
        if features.empty:
            return np.zeros(0)
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            return self.estimator.predict_proba(features[self.spec.columns()])[:, 1]

    def reasons(self, row: pd.DataFrame, top: int = REASONS_SHOWN) -> list[dict]:
        """Why one user scores what they score: each trait's pull against a typical user.

        For every feature, the user's value is swapped for the typical one and the score
        recomputed; the difference (in score points) is that trait's contribution.
        """
        columns = self.spec.columns()
        row = row[columns].iloc[[0]]
        variants = pd.concat([row] * (len(columns) + 1), ignore_index=True)
        for position, column in enumerate(columns, start=1):
            variants.loc[position, column] = self.reference[column]
        for column in CATEGORICAL:
            variants[column] = pd.Categorical(variants[column], categories=self.spec.categories[column])
        scores = self.probabilities(variants) * 100
        labels = self.spec.labels()
        rows = []
        for position, column in enumerate(columns, start=1):
            effect = float(scores[0] - scores[position])
            if abs(effect) < 0.05:
                continue
            rows.append(
                {
                    "trait": labels[column],
                    "value": describe_value(column, row[column].iloc[0]),
                    "typical": describe_value(column, self.reference[column]),
                    "effect": effect,
                }
            )
        rows.sort(key=lambda r: abs(r["effect"]), reverse=True)
        return rows[:top]

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(blob: bytes) -> TrainedModel:
        return pickle.loads(blob)  # noqa: S301 - our own model, written by train_prediction


def describe_value(column: str, value) -> str:
    """A feature value as a person reads it."""
    if column in CATEGORICAL:
        return str(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown"
    if column in ("push_opt_in", "email_opt_in", "has_email", "has_push_token"):
        return "yes" if value >= 0.5 else "no"
    if "days_since" in column:
        return "never" if value >= NEVER_DAYS else f"{value:.0f} days"
    if column == "tenure_days":
        return f"{value:.0f} days"
    if column == "event_value":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def fit(features: pd.DataFrame, labels: np.ndarray, spec: FeatureSpec, seed: int = 0) -> TrainedModel:
    """Calibrated trees on `features` -> `labels` (bool per row)."""
    labels = np.asarray(labels, dtype=int)
    if labels.sum() < CALIBRATION_FOLDS or (len(labels) - labels.sum()) < CALIBRATION_FOLDS:
        from core.errors import UserError

        raise UserError(
            f"not enough history to learn '{spec.event}': {int(labels.sum()):,} of {len(labels):,} users "
            "performed it in the training window; pick a more common event or a longer window"
        )
    estimator = CalibratedClassifierCV(_trees(seed), method="isotonic", cv=CALIBRATION_FOLDS, ensemble=True)
    with threadpool_limits(limits=THREADS, user_api="openmp"):
        estimator.fit(features[spec.columns()], labels)
    reference = {}
    for column in spec.columns():
        values = features[column]
        reference[column] = values.mode().iloc[0] if column in CATEGORICAL else float(values.median())
    return TrainedModel(spec=spec, estimator=estimator, reference=reference)

"""The learner: gradient-boosted trees blended with a logistic regression, calibrated.

Trees find interactions; on a plain purchase log (a few repeat-behaviour features that act
smoothly) a linear model on log-scaled features ranks as well or better, and the average of
the two (in log-odds) beats either. BG/NBD, the classic repeat-purchase model, is fitted on
the training history and its outputs become two more features.

Scores must be honest probabilities, because the Predictions page adds them up ("expected to
perform"), so the blend is wrapped in isotonic calibration fitted on cross-validation folds.
That calibration holds at the training cut-off; by the scoring time everyone is a window
older and the data may drift, which trees cannot extrapolate. BG/NBD models exactly that
ageing, so when it fits, the scores' level is anchored to its (bias-corrected) expected
total with one log-odds offset for everyone: the ranking is untouched, the sum adds up.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from core.errors import UserError
from core.predictions.bgnbd import BgNbd, fit_bgnbd
from core.predictions.features import CATEGORICAL, NEVER_DAYS, FeatureSpec, informative_columns

CALIBRATION_FOLDS = 3
# OpenMP threads spin badly when the machine is busy (a web server, other jobs); one thread
# is fast enough for the sizes we train on, and predictable.
THREADS = 1
REASONS_SHOWN = 4


MAX_LEVEL_OFFSET = 2.0  # log-odds; a larger correction means the anchor itself is not to be trusted
TRUSTED_BIAS = (0.8, 1.25)  # observed / BG/NBD-expected on the training window, to anchor on BG/NBD
EDGE = 1e-6  # isotonic calibration returns exact 0 and 1; keep log-odds finite


def _trees(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.04,
        max_iter=200,
        max_leaf_nodes=12,
        min_samples_leaf=100,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        random_state=seed,
    )


def _linear_inputs(frame: pd.DataFrame, columns: list[str], flagged: list[str]) -> np.ndarray:
    """Numeric columns, sign-log-scaled (counts and days are skewed), missing as 0 plus a flag for `flagged`."""
    values = frame[columns].to_numpy(dtype=float)
    flags = frame[flagged].isna().to_numpy(dtype=float)
    values = np.nan_to_num(values, nan=0.0)
    return np.column_stack([np.sign(values) * np.log1p(np.abs(values)), flags])


class BlendClassifier(ClassifierMixin, BaseEstimator):
    """Trees and a logistic regression on the same rows; probabilities averaged in log-odds."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X: pd.DataFrame, y):
        self.classes_ = np.unique(y)
        self.trees_ = _trees(self.seed).fit(X, y)
        self.numeric_ = [c for c in X.columns if not isinstance(X[c].dtype, pd.CategoricalDtype)]
        self.flagged_ = [c for c in self.numeric_ if X[c].isna().any()]
        self.linear_ = None
        if self.numeric_:
            self.linear_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
            self.linear_.fit(_linear_inputs(X, self.numeric_, self.flagged_), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        odds = logit(np.clip(self.trees_.predict_proba(X)[:, 1], EDGE, 1 - EDGE))
        if self.linear_ is not None:
            linear = self.linear_.predict_proba(_linear_inputs(X, self.numeric_, self.flagged_))[:, 1]
            odds = (odds + logit(np.clip(linear, EDGE, 1 - EDGE))) / 2
        p = expit(odds)
        return np.column_stack([1 - p, p])


@dataclass
class TrainedModel:
    """What a prediction keeps to rescore users later without retraining."""

    spec: FeatureSpec
    estimator: CalibratedClassifierCV
    reference: dict  # a typical user's value of every feature, for per-user reasons
    repeat_model: BgNbd | None = None  # fitted on the training history; its outputs are features
    repeat_bias: float = 1.0  # observed / BG/NBD-expected performers among training customers: trust test
    level_offset: float = 0.0  # log-odds added to every score (see `anchored`)

    def inputs(self, features: pd.DataFrame) -> pd.DataFrame:
        """The features plus the repeat-purchase model's outputs (what the trees read)."""
        return with_repeat_model(features, getattr(self, "repeat_model", None), self.spec.window_days)

    def probabilities(self, features: pd.DataFrame) -> np.ndarray:
        if features.empty:
            return np.zeros(0)
        return self._shifted(self._calibrated(self.inputs(features)))

    def _calibrated(self, frame: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            return self.estimator.predict_proba(frame[self.spec.columns()])[:, 1]

    def _shifted(self, p: np.ndarray) -> np.ndarray:
        offset = getattr(self, "level_offset", 0.0)
        return p if offset == 0 else expit(logit(np.clip(p, EDGE, 1 - EDGE)) + offset)

    def anchored(self, audience: pd.DataFrame) -> TrainedModel:
        """This model with its level set for scoring `audience` (features at the scoring time).

        The expected performers among users who did the event before are BG/NBD's; the others
        keep the calibrated scores. One log-odds offset for everyone makes the sum match, so
        the ranking does not change. BG/NBD's level comes from the likelihood of the whole
        history, not from one label window, so one season's rate does not carry over; it is
        only trusted when it matched the training window's performers within `TRUSTED_BIAS`
        (on data it does not describe, e.g. app events, the calibrated level stands).
        """
        low, high = TRUSTED_BIAS
        if self.repeat_model is None or audience.empty or not low <= self.repeat_bias <= high:
            return self
        frame = self.inputs(audience)
        p = self._calibrated(frame)
        customers = frame["event_days"].to_numpy(dtype=float) > 0
        target = float(np.nansum(frame["btyd_p_active"].to_numpy(dtype=float)[customers]))
        target += float(p[~customers].sum())
        odds = logit(np.clip(p, EDGE, 1 - EDGE))

        def gap(offset: float) -> float:
            return float(expit(odds + offset).sum()) - target

        if gap(-MAX_LEVEL_OFFSET) > 0 or gap(MAX_LEVEL_OFFSET) < 0:
            return self  # the anchor is too far off to trust
        return replace(self, level_offset=float(brentq(gap, -MAX_LEVEL_OFFSET, MAX_LEVEL_OFFSET, xtol=1e-6)))

    def reasons(self, row: pd.DataFrame, top: int = REASONS_SHOWN) -> list[dict]:
        """Why one user scores what they score: each trait's pull against a typical user.

        For every feature, the user's value is swapped for the typical one and the score
        recomputed; the difference (in score points) is that trait's contribution.
        """
        columns = self.spec.columns()
        row = self.inputs(row)[columns].iloc[[0]]
        variants = pd.concat([row] * (len(columns) + 1), ignore_index=True)
        for position, column in enumerate(columns, start=1):
            variants.loc[position, column] = self.reference[column]
        for column in CATEGORICAL:
            variants[column] = pd.Categorical(variants[column], categories=self.spec.categories[column])
        scores = self._shifted(self._calibrated(variants)) * 100
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
    if column == "tenure_days" or column.startswith("gap_"):
        return f"{value:.0f} days"
    if column.startswith("btyd_"):
        return f"{value:.0%}"
    if column == "recency_per_gap":
        return f"{value:.1f} gaps"
    if column in ("event_value", "event_value_mean"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"


WEEK_DAYS = 7.0
MIN_REPEAT_CUSTOMERS = 20  # fewer customers with a repeat teach BG/NBD nothing
REPEAT_FIT_SAMPLE = 50_000


def repeat_inputs(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (x, t_x, T) in weeks from the features, and who has done the event at all."""
    done = features["event_days"].to_numpy(dtype=float) > 0
    since_first = features["days_since_first_target"].to_numpy(dtype=float)
    since_last = features["days_since_last_event"].to_numpy(dtype=float)
    x = np.where(done, features["event_days"].to_numpy(dtype=float) - 1, 0.0)
    age = np.where(done, since_first / WEEK_DAYS, 0.0)
    t_x = np.where(done, np.maximum(since_first - since_last, 0) / WEEK_DAYS, 0.0)
    return x, t_x, np.maximum(age, t_x), done


def fit_repeat_model(features: pd.DataFrame) -> BgNbd | None:
    """BG/NBD on the users who did the event, or None when too few repeat it to fit."""
    x, t_x, age, done = repeat_inputs(features)
    if (x[done] > 0).sum() < MIN_REPEAT_CUSTOMERS:
        return None
    # To the day, like the classic models: identical customers then pool, and the fit stays fast.
    t_x, age = np.round(t_x * WEEK_DAYS) / WEEK_DAYS, np.round(age * WEEK_DAYS) / WEEK_DAYS
    rows = np.flatnonzero(done)
    if len(rows) > REPEAT_FIT_SAMPLE:  # four population parameters: a large sample pins them down
        rows = np.sort(np.random.default_rng(0).choice(rows, REPEAT_FIT_SAMPLE, replace=False))
    try:
        return fit_bgnbd(x[rows], t_x[rows], age[rows])
    except (ValueError, FloatingPointError):
        return None


def with_repeat_model(features: pd.DataFrame, model: BgNbd | None, window_days: int) -> pd.DataFrame:
    """`features` plus BG/NBD's chance the user is still a customer and buys within the window."""
    if model is None:
        return features
    x, t_x, age, done = repeat_inputs(features)
    with np.errstate(all="ignore"):
        alive = model.p_alive(x, t_x, age)
        active = model.p_purchase_within(window_days / WEEK_DAYS, x, t_x, age)
    out = features.copy()
    out["btyd_p_alive"] = np.where(done, alive, np.nan)
    out["btyd_p_active"] = np.where(done, active, np.nan)
    return out


def fit(features: pd.DataFrame, labels: np.ndarray, spec: FeatureSpec, seed: int = 0) -> TrainedModel:
    """Calibrated trees on `features` -> `labels` (bool per row), reading only informative columns."""
    labels = np.asarray(labels, dtype=int)
    if labels.sum() < CALIBRATION_FOLDS or (len(labels) - labels.sum()) < CALIBRATION_FOLDS:
        raise UserError(
            f"not enough history to learn '{spec.event}': {int(labels.sum()):,} of {len(labels):,} users "
            "performed it in the training window; pick a more common event or a longer window"
        )
    repeat_model = fit_repeat_model(features)
    frame = with_repeat_model(features, repeat_model, spec.window_days)
    kept = informative_columns(frame, [c for c in spec.labels() if c in frame.columns])
    if not kept:
        raise UserError(
            f"nothing in the data tells users apart before the training window of '{spec.event}': "
            "every feature is missing or the same for everyone; import more history"
        )
    spec = replace(spec, kept=kept)
    estimator = CalibratedClassifierCV(BlendClassifier(seed), method="isotonic", cv=CALIBRATION_FOLDS, ensemble=True)
    with threadpool_limits(limits=THREADS, user_api="openmp"):
        estimator.fit(frame[spec.columns()], labels)
    reference = {}
    for column in spec.columns():
        values = frame[column]
        reference[column] = values.mode().iloc[0] if column in CATEGORICAL else float(values.median())
    return TrainedModel(
        spec=spec,
        estimator=estimator,
        reference=reference,
        repeat_model=repeat_model,
        repeat_bias=_repeat_bias(frame, labels) if repeat_model is not None else 1.0,
    )


def _repeat_bias(frame: pd.DataFrame, labels: np.ndarray) -> float:
    """Observed / BG/NBD-expected performers among the training customers (1 when either is 0)."""
    customers = frame["event_days"].to_numpy(dtype=float) > 0
    expected = float(np.nansum(frame["btyd_p_active"].to_numpy(dtype=float)[customers]))
    observed = float(np.asarray(labels)[customers].sum())
    return observed / expected if expected > 0 and observed > 0 else 1.0

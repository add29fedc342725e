"""Backtest: replay the standard protocol on the customer's own data, next to the classic models.

With T the as-of time and N the window:
- train on features at T-2N, labels = did the event in (T-2N, T-N];
- evaluate on features at T-N, labels = did the event in (T-N, T].

Both cut-offs' features come from one scan of the events. Every model is scored on the same
evaluation users: the product's model (the one `predict` trains) and four references, the
base rate, recency only, a logistic regression on recency/frequency/monetary value, and
BG/NBD. Each gets AUC with a bootstrap 95% interval, average precision, lift and recall in
the High tier (and in the top tenth, which exists for every model), and expected versus
observed performers.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, require
from core.errors import UserError
from core.predictions.features import (
    CATEGORICAL,
    NEVER_DAYS,
    FeatureSpec,
    all_user_ids,
    event_names,
    existed,
    other_event_names,
    performers,
)
from core.predictions.model import WEEK_DAYS, fit, fit_repeat_model, repeat_inputs
from core.predictions.quality import auc
from core.predictions.training import (
    MIN_CLASS_USERS,
    MIN_TRAINING_USERS,
    SEED,
    TRAIN_SAMPLE,
    _categories,
    as_of_instant,
    check_window_has_data,
    features_at_two_cutoffs,
    not_enough_history,
)
from core.tiers import TIER_BY_NAME

MAX_BACKTEST_WINDOW_DAYS = 180
EVALUATION_SAMPLE = 200_000  # more evaluation users than this are sampled (the interval says how precise)
BOOTSTRAP_ROUNDS = 200
TOP_SHARE = 0.10
HIGH_TIER_PROBABILITY = TIER_BY_NAME["High"].low / 100

# (key, what a marketer calls it); the product first, the references after.
MODELS: tuple[tuple[str, str], ...] = (
    ("product", "Likely"),
    ("base_rate", "everyone alike (base rate)"),
    ("recency", "most recent first"),
    ("rfm_logistic", "recency, frequency and spend (logistic regression)"),
    ("bgnbd", "buy-till-you-die model (BG/NBD)"),
)

BACKTEST_LABELS = tuple(label for _key, label in MODELS)


@dataclass(frozen=True)
class ModelScore:
    """How one model did on the evaluation users."""

    model: str
    label: str
    auc: float
    auc_low: float
    auc_high: float
    average_precision: float
    high_tier_users: int
    high_tier_lift: float | None  # None when the model puts nobody in the High tier
    high_tier_recall: float
    top_tenth_lift: float
    top_tenth_recall: float
    expected_performers: float
    observed_performers: int


@dataclass(frozen=True)
class Backtest:
    event: str
    window_days: int
    as_of: datetime
    training_cutoff: datetime
    evaluation_cutoff: datetime
    training_users: int
    training_performers: int
    evaluation_users: int
    evaluation_performers: int
    scores: tuple[ModelScore, ...]
    seconds: float
    peak_memory_mb: float

    def score(self, model: str) -> ModelScore:
        return next(s for s in self.scores if s.model == model)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("as_of", "training_cutoff", "evaluation_cutoff"):
            out[key] = getattr(self, key).isoformat()
        out["scores"] = [asdict(s) for s in self.scores]
        return out

    @staticmethod
    def from_dict(data: dict) -> Backtest:
        fields = dict(data)
        for key in ("as_of", "training_cutoff", "evaluation_cutoff"):
            fields[key] = datetime.fromisoformat(fields[key])
        fields["scores"] = tuple(ModelScore(**s) for s in fields["scores"])
        return Backtest(**fields)


def run_backtest(
    engine,
    event: str,
    window_days: int,
    as_of: datetime | str | None = None,
    progress: Callable[[str], None] | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> Backtest:
    """Train at T-2N, evaluate at T-N, for the product and every reference model."""
    say = progress or (lambda _m: None)
    started = time.monotonic()
    window_days = int(window_days)
    if not 1 <= window_days <= MAX_BACKTEST_WINDOW_DAYS:
        raise UserError(f"window of {window_days} days: choose 1 to {MAX_BACKTEST_WINDOW_DAYS} days")
    known = event_names(engine)
    if event not in known:
        hint = f"; known events: {', '.join(known[:12])}" if known else "; the database holds no events yet"
        raise UserError(f"event '{event}' does not occur in the data{hint}")
    as_of = as_of_instant(engine, as_of)
    window = timedelta(days=window_days)
    train_cut, eval_cut = as_of - 2 * window, as_of - window
    check_window_has_data(engine, event, eval_cut, as_of)
    rng = np.random.default_rng(SEED)

    ids = all_user_ids(engine)
    train_ids = np.sort(rng.choice(ids, TRAIN_SAMPLE, replace=False)) if len(ids) > TRAIN_SAMPLE else ids
    spec = FeatureSpec(event, window_days, other_event_names(engine, event))
    say(f"computing history up to {train_cut:%Y-%m-%d} and {eval_cut:%Y-%m-%d} for {len(ids):,} users")
    history, evaluation = features_at_two_cutoffs(engine, spec, train_cut, eval_cut, ids, train_ids, say)
    evaluation = evaluation[existed(evaluation)]
    if len(evaluation) > EVALUATION_SAMPLE:
        evaluation = evaluation.iloc[np.sort(rng.choice(len(evaluation), EVALUATION_SAMPLE, replace=False))]
    train_y = np.isin(history.index.to_numpy(), performers(engine, event, train_cut, eval_cut))
    eval_y = np.isin(evaluation.index.to_numpy(), performers(engine, event, eval_cut, as_of))
    done = int(train_y.sum())
    if len(history) < MIN_TRAINING_USERS or min(done, len(train_y) - done) < MIN_CLASS_USERS:
        raise UserError(not_enough_history(event, window_days, train_cut, eval_cut, done, len(history)))
    if not eval_y.any() or eval_y.all():
        raise UserError(
            f"cannot evaluate '{event}' over {window_days} days: {int(eval_y.sum()):,} of {len(eval_y):,} users "
            f"did it in {eval_cut:%Y-%m-%d} to {as_of:%Y-%m-%d}, so there is nothing to rank; pick another --as-of"
        )
    spec = FeatureSpec(event, window_days, spec.other_events, _categories(history))
    for frame in (history, evaluation):
        for column in CATEGORICAL:
            frame[column] = pd.Categorical(frame[column].astype(str), categories=spec.categories[column])

    say(f"training on {len(history):,} users ({done:,} did '{event}'), evaluating on {len(evaluation):,}")
    probabilities = {
        "product": fit(history, train_y, spec, seed=SEED).anchored(evaluation).probabilities(evaluation),
        "base_rate": np.full(len(evaluation), train_y.mean()),
        "recency": _recency(history, train_y, evaluation),
        "rfm_logistic": _rfm_logistic(history, train_y, evaluation),
        "bgnbd": _bgnbd(history, train_y, evaluation, window_days),
    }
    scores = tuple(
        _measure(key, label, eval_y, probabilities[key], rounds, seed=SEED + n)
        for n, (key, label) in enumerate(MODELS)
        if probabilities[key] is not None
    )
    for score in scores:
        say(f"{score.label}: AUC {score.auc:.3f}")
    return Backtest(
        event=event,
        window_days=window_days,
        as_of=as_of,
        training_cutoff=train_cut,
        evaluation_cutoff=eval_cut,
        training_users=int(len(history)),
        training_performers=done,
        evaluation_users=int(len(evaluation)),
        evaluation_performers=int(eval_y.sum()),
        scores=scores,
        seconds=round(time.monotonic() - started, 1),
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def backtest_prediction(
    engine, name_or_id: str | int, progress: Callable[[str], None] | None = None, *, actor: Actor = LOCAL_ADMIN
) -> Backtest:
    """Backtest a stored prediction's event and window as of its scores, and keep the result with it.

    Keeping it changes the prediction's quality section, so it needs the TRAIN permission and is audited.
    """
    from core.db import session_scope
    from core.predictions import store

    require(actor, Permission.TRAIN_PREDICTIONS)
    prediction = store.find_prediction(engine, name_or_id)
    result = run_backtest(engine, prediction.event, prediction.window_days, prediction.as_of, progress)
    with session_scope(engine) as session:
        store.save_prediction(session, id=prediction.id, details={**prediction.details, "backtest": result.to_dict()})
        session.add(audit_entry(actor, "backtest", f"prediction {prediction.name!r}", {"prediction_id": prediction.id}))
    return result


def stored_backtest(details: dict) -> Backtest | None:
    """The backtest kept with a prediction, if one was run."""
    data = details.get("backtest")
    return Backtest.from_dict(data) if data else None


def _recency(history: pd.DataFrame, y: np.ndarray, evaluation: pd.DataFrame) -> np.ndarray:
    """'Most recent first': days since the last event, mapped to a rate by isotonic regression on training."""
    recency = IsotonicRegression(increasing=False, out_of_bounds="clip")
    recency.fit(history["days_since_last_event"].to_numpy(dtype=float), y.astype(float))
    return recency.predict(evaluation["days_since_last_event"].to_numpy(dtype=float))


def _rfm(frame: pd.DataFrame) -> np.ndarray:
    """Recency, frequency and monetary value, log-scaled (a never-doer has recency NEVER_DAYS)."""
    recency = np.minimum(frame["days_since_last_event"].to_numpy(dtype=float), NEVER_DAYS)
    frequency = frame["event_days"].to_numpy(dtype=float)
    monetary = np.nan_to_num(frame["event_value_mean"].to_numpy(dtype=float), nan=0.0)
    return np.column_stack([np.log1p(recency), np.log1p(frequency), np.log1p(np.maximum(monetary, 0))])


def _rfm_logistic(history: pd.DataFrame, y: np.ndarray, evaluation: pd.DataFrame) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_rfm(history), y)
    return model.predict_proba(_rfm(evaluation))[:, 1]


def _bgnbd(history: pd.DataFrame, y: np.ndarray, evaluation: pd.DataFrame, window_days: int) -> np.ndarray | None:
    """BG/NBD's chance of a purchase in the window for customers; never-buyers get their training rate."""
    model = fit_repeat_model(history)
    if model is None:
        return None
    _x, _t, _age, bought_before = repeat_inputs(history)
    newcomer_rate = float(y[~bought_before].mean()) if (~bought_before).any() else 0.0
    x, t_x, age, done = repeat_inputs(evaluation)
    with np.errstate(all="ignore"):
        chance = model.p_purchase_within(window_days / WEEK_DAYS, x, t_x, age)
    return np.where(done, chance, newcomer_rate)


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """AUC with a weight per row (ties count half): one pass over the rows in score order."""
    labels = np.asarray(labels, dtype=float)
    _values, group = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
    return _grouped_auc(group, labels, np.ones_like(labels) if weights is None else np.asarray(weights, dtype=float))


def _grouped_auc(group: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    positive = np.bincount(group, weights=weights * labels)
    negative = np.bincount(group, weights=weights * (1 - labels))
    below = np.cumsum(negative) - negative
    total = positive.sum() * negative.sum()
    return float(np.sum(positive * (below + 0.5 * negative)) / total) if total > 0 else float("nan")


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, rounds: int, seed: int) -> tuple[float, float]:
    """95% interval of the AUC over `rounds` bootstrap resamples (as weights: one sort in all)."""
    labels = np.asarray(labels, dtype=float)
    _values, group = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
    rng = np.random.default_rng(seed)
    n = len(labels)
    areas = [_grouped_auc(group, labels, rng.multinomial(n, np.full(n, 1 / n)).astype(float)) for _ in range(rounds)]
    areas = [a for a in areas if not np.isnan(a)]
    if not areas:
        return 0.5, 0.5
    low, high = np.percentile(areas, [2.5, 97.5])
    return float(low), float(high)


def _measure(key: str, label: str, y: np.ndarray, p: np.ndarray, rounds: int, seed: int) -> ModelScore:
    y = np.asarray(y, dtype=bool)
    rate = y.mean()
    high = p >= HIGH_TIER_PROBABILITY
    top = np.argsort(-p, kind="stable")[: max(1, int(round(TOP_SHARE * len(p))))]
    low, high_bound = bootstrap_auc(y, p, rounds, seed)
    return ModelScore(
        model=key,
        label=label,
        auc=round(auc(y, p), 4),
        auc_low=round(low, 4),
        auc_high=round(high_bound, 4),
        average_precision=round(float(average_precision_score(y, p)), 4),
        high_tier_users=int(high.sum()),
        high_tier_lift=round(float(y[high].mean() / rate), 2) if high.any() else None,
        high_tier_recall=round(float(y[high].sum() / y.sum()), 4),
        top_tenth_lift=round(float(y[top].mean() / rate), 2),
        top_tenth_recall=round(float(y[top].sum() / y.sum()), 4),
        expected_performers=round(float(p.sum()), 1),
        observed_performers=int(y.sum()),
    )


def summary_sentences(backtest: Backtest) -> list[str]:
    """The backtest in a marketer's words: how much better the product ranks than each reference."""
    ours = backtest.score("product")
    doers = _doers(backtest.event)
    lines = []
    for score in backtest.scores:
        if score.model in ("product", "base_rate"):
            continue
        gap = (ours.auc - score.auc) * 100
        verb = "better" if gap >= 0 else "worse"
        lines.append(
            f"Ranks {doers} {verb} than '{score.label}' by {abs(gap):.1f} AUC points "
            f"({ours.auc:.3f} vs {score.auc:.3f}); its top tenth holds {ours.top_tenth_recall:.0%} of them, "
            f"against {score.top_tenth_recall:.0%}."
        )
    lines.append(
        f"Expected {ours.expected_performers:,.0f} {doers} in the last {backtest.window_days} days; "
        f"{ours.observed_performers:,} did ({_gap_percent(ours):+.1%})."
    )
    return lines


def _gap_percent(score: ModelScore) -> float:
    return score.expected_performers / max(score.observed_performers, 1) - 1


def _doers(event: str) -> str:
    return "buyers" if event == "purchase" else f"users who do '{event}'"


def format_table(backtest: Backtest) -> str:
    """The backtest as a fixed-width table for the terminal."""
    header = (
        f"backtest of '{backtest.event}' in {backtest.window_days} days as of {backtest.as_of:%Y-%m-%d %H:%M} UTC: "
        f"trained on {backtest.training_users:,} users at {backtest.training_cutoff:%Y-%m-%d}, "
        f"evaluated on {backtest.evaluation_users:,} at {backtest.evaluation_cutoff:%Y-%m-%d} "
        f"({backtest.evaluation_performers:,} did it)"
    )
    rows = [
        f"{'model':<52} {'AUC':>6} {'95% interval':>15} {'AP':>6} {'High n':>7} {'lift':>5} {'recall':>6} "
        f"{'top10% lift':>11} {'expected':>9} {'observed':>8}"
    ]
    for s in backtest.scores:
        lift = "-" if s.high_tier_lift is None else f"{s.high_tier_lift:.2f}"
        rows.append(
            f"{s.label:<52} {s.auc:>6.3f} {f'{s.auc_low:.3f}-{s.auc_high:.3f}':>15} {s.average_precision:>6.3f} "
            f"{s.high_tier_users:>7,} {lift:>5} {s.high_tier_recall:>6.1%} {s.top_tenth_lift:>11.2f} "
            f"{s.expected_performers:>9,.0f} {s.observed_performers:>8,}"
        )
    footer = f"{backtest.seconds:.1f}s, peak memory {backtest.peak_memory_mb:,.0f} MB"
    return "\n".join([header, *rows, footer])

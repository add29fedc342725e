"""Event predictions: who is likely to perform an event within a window, and what to do about it.

Public API (no Streamlit here; pages/predictions.py draws what these return):
- train_prediction / refresh_scores / retrain_prediction / ensure_demo_predictions: training and scoring
- list_predictions / get_prediction / find_prediction / export_scores: reading them back
- score_distribution(...).summary / .histogram / .score_steps: the live slider figures
- tier_playbook, user_reasons, quality_band: what the page explains
- run_backtest / backtest_prediction / stored_backtest / summary_sentences: the product against the classic models
"""

from core.predictions.backtest import (
    BACKTEST_LABELS,
    Backtest,
    backtest_prediction,
    run_backtest,
    stored_backtest,
    summary_sentences,
)
from core.predictions.demo import DEMO_PREDICTIONS, ensure_demo_predictions
from core.predictions.distribution import (
    BUCKETS,
    ScoreDistribution,
    ScoreSteps,
    SelectionSummary,
    score_distribution,
    whole_score_counts,
)
from core.predictions.explain import user_reasons
from core.predictions.features import event_names, latest_event_time
from core.predictions.playbook import DEFAULT_AVERAGE_ORDER_VALUE, TierPlan, default_discounts, tier_playbook
from core.predictions.quality import QUALITY_BANDS, accuracy_ratio, auc, calibration_table, quality_band
from core.predictions.store import (
    KINDS,
    PredictionInfo,
    delete_prediction,
    export_scores,
    find_prediction,
    get_prediction,
    list_predictions,
)
from core.predictions.training import (
    MAX_WINDOW_DAYS,
    RETRAIN_AFTER_DAYS,
    default_name,
    model_age_days,
    refresh_scores,
    retrain_prediction,
    train_prediction,
)

__all__ = [
    "BACKTEST_LABELS",
    "BUCKETS",
    "Backtest",
    "DEFAULT_AVERAGE_ORDER_VALUE",
    "DEMO_PREDICTIONS",
    "KINDS",
    "MAX_WINDOW_DAYS",
    "QUALITY_BANDS",
    "RETRAIN_AFTER_DAYS",
    "PredictionInfo",
    "ScoreDistribution",
    "ScoreSteps",
    "SelectionSummary",
    "TierPlan",
    "accuracy_ratio",
    "auc",
    "backtest_prediction",
    "calibration_table",
    "default_discounts",
    "default_name",
    "delete_prediction",
    "ensure_demo_predictions",
    "event_names",
    "export_scores",
    "find_prediction",
    "get_prediction",
    "latest_event_time",
    "list_predictions",
    "model_age_days",
    "quality_band",
    "refresh_scores",
    "retrain_prediction",
    "run_backtest",
    "score_distribution",
    "stored_backtest",
    "summary_sentences",
    "tier_playbook",
    "train_prediction",
    "user_reasons",
    "whole_score_counts",
]

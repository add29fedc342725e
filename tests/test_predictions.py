"""Predictions core: tiers, quality, live selection figures, training, refresh, explanations."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from core import models, segments
from core.db import session_scope
from core.errors import UserError
from core.importer import import_events
from core.predictions import (
    BUCKETS,
    RETRAIN_AFTER_DAYS,
    ScoreDistribution,
    accuracy_ratio,
    auc,
    calibration_table,
    ensure_demo_predictions,
    find_prediction,
    get_prediction,
    latest_event_time,
    list_predictions,
    quality_band,
    refresh_scores,
    retrain_prediction,
    tier_playbook,
    train_prediction,
    user_reasons,
)
from core.predictions.store import load_scores, write_scores
from tests import prediction_fixtures

# the shared fixtures: the demo database with its demo predictions trained once
trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
FULL = "Purchase in next 30 days"
PREVIEW = "Add to cart in next 14 days (preview)"


# --- tiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probability", "score", "category"),
    [
        (0.0, 0.0, "Low"),
        (0.4999, 49.99, "Low"),
        (0.5, 50.0, "Medium"),
        (0.7499, 74.99, "Medium"),
        (0.75, 75.0, "High"),
        (1.0, 100.0, "High"),
    ],
)
def test_stored_scores_are_percent_with_the_tier_boundaries(trained_engine, probability, score, category):
    prediction = find_prediction(trained_engine, FULL)
    with session_scope(trained_engine) as session:
        write_scores(session, prediction.id, np.array([1]), np.array([probability]))
    with trained_engine.connect() as connection:
        row = connection.execute(
            text("SELECT score, category FROM prediction_scores WHERE prediction_id = :p"), {"p": prediction.id}
        ).one()
    assert (row[0], row[1]) == (score, category)


@pytest.mark.parametrize(
    ("categories", "selected"),
    [(("Low",), 2), (("Medium",), 2), (("High",), 2), (("Low", "High"), 4), (("Low", "Medium", "High"), 6)],
)
def test_category_selection_uses_half_open_tiers(categories, selected):
    distribution = ScoreDistribution(np.array([0.0, 49.99, 50.0, 74.99, 75.0, 100.0]))
    assert distribution.summary(categories=categories).selected == selected


def test_score_range_selection_is_inclusive_at_both_ends():
    distribution = ScoreDistribution(np.array([10.0, 50.0, 60.0, 75.0, 80.0]))
    assert distribution.summary(50, 75).selected == 3


# --- quality -----------------------------------------------------------------------------------


def test_accuracy_ratio_against_a_hand_computed_case():
    # Positives score 0.9 and 0.3, negatives 0.8 and 0.1: 3 of the 4 positive/negative pairs
    # are ordered right, so AUC = 0.75 and the accuracy ratio = 2 * 0.75 - 1 = 50%.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    assert auc(labels, scores) == pytest.approx(0.75)
    assert accuracy_ratio(labels, scores) == pytest.approx(50.0)
    assert accuracy_ratio(labels, 1 - scores) == 0.0  # worse than random is reported as 0
    assert accuracy_ratio(np.array([1, 1, 0, 0]), scores) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("ratio", "band"),
    [
        (100, "Excellent"),
        (60, "Excellent"),
        (59.9, "Good"),
        (40, "Good"),
        (39.9, "Fair"),
        (20, "Fair"),
        (19.9, "Poor"),
        (0, "Poor"),
    ],
)
def test_quality_bands(ratio, band):
    assert quality_band(ratio) == band


def test_calibration_table_has_ten_deciles_of_expected_and_observed():
    probabilities = np.linspace(0, 1, 100)
    labels = (np.arange(100) % 2).astype(bool)
    table = calibration_table(labels, probabilities)
    assert [row["decile"] for row in table] == list(range(1, 11))
    assert sum(row["users"] for row in table) == 100
    assert table[0]["expected_rate"] == pytest.approx(probabilities[:10].mean())
    assert table[0]["observed_rate"] == pytest.approx(0.5)


# --- live selection figures --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 2)), min_size=1, max_size=300),
    low=st.integers(0, 100),
    width=st.integers(0, 100),
)
def test_expected_performer_figures_equal_the_sums_they_claim(scores, low, width):
    high = min(100, low + width)
    values = np.array(scores)
    probabilities = values / 100
    inside = (values >= low) & (values <= high)
    figures = ScoreDistribution(values).summary(low, high)
    assert figures.selected == inside.sum()
    assert figures.audience == len(values)
    assert figures.expected_total == pytest.approx(probabilities.sum())
    assert figures.expected_captured == pytest.approx(probabilities[inside].sum())
    assert figures.not_expected_targeted == pytest.approx((1 - probabilities[inside]).sum())
    if probabilities.sum() > 0:
        assert figures.expected_captured_share == pytest.approx(probabilities[inside].sum() / probabilities.sum())
    if inside.any() and probabilities.sum() > 0:
        assert figures.conversion_rate == pytest.approx(probabilities[inside].mean())
        assert figures.lift == pytest.approx(probabilities[inside].mean() / probabilities.mean())


def test_histogram_has_twenty_buckets_that_add_up_to_the_audience():
    values = np.array([0.0, 4.99, 5.0, 49.99, 50.0, 74.99, 75.0, 99.99, 100.0])
    bars = ScoreDistribution(values).histogram(50, 100)
    assert len(bars) == BUCKETS == 20
    assert sum(bar["users"] for bar in bars) == len(values)
    assert [bars[0]["users"], bars[1]["users"], bars[-1]["users"]] == [2, 1, 2]
    assert [bar["tier"] for bar in bars[9:16:5]] == ["Low", "Medium"]
    # highlighted when, and only when, the selection counts some of its users: empty bars never are
    assert [bar["selected"] for bar in bars] == [bar["low"] >= 50 and bar["users"] > 0 for bar in bars]
    assert [number for number, bar in enumerate(bars) if bar["selected"]] == [10, 14, 15, 19]


# --- training on the demo data -----------------------------------------------------------------


def test_demo_predictions_reach_good_quality_and_fill_every_tier(trained_engine):
    full = find_prediction(trained_engine, FULL)
    assert full.kind == "full" and full.targetable
    assert full.quality >= 40, f"quality {full.quality:.1f}% is below Good"
    assert full.auc >= 0.7
    _, scores = load_scores(trained_engine, full.id)
    assert len(scores) == full.audience_size == 3_000
    tiers = {row["tier"]: row["users"] for row in ScoreDistribution(scores).tier_figures()}
    assert all(count > 0 for count in tiers.values()), tiers
    preview = find_prediction(trained_engine, PREVIEW)
    assert preview.kind == "preview" and not preview.targetable and preview.not_targetable_reason


def test_calibration_holds_on_held_out_users(trained_engine):
    """Expected (mean probability) vs observed rate on the held-out quarter: within 3 points
    overall, and within 15 points in every decile (~75 users each, so ±2 standard errors)."""
    details = find_prediction(trained_engine, FULL).details
    assert abs(details["holdout_expected_rate"] - details["holdout_observed_rate"]) <= 0.03
    for row in details["calibration"]:
        assert abs(row["expected_rate"] - row["observed_rate"]) <= 0.15, row


def test_label_window_ends_at_the_latest_event_by_default(trained_engine):
    full = find_prediction(trained_engine, FULL)
    latest = latest_event_time(trained_engine)
    assert full.as_of == latest
    assert full.details["training_cutoff"] == (latest - timedelta(days=30)).isoformat()


def test_training_with_an_earlier_as_of_only_sees_the_past(trained_engine):
    as_of = latest_event_time(trained_engine) - timedelta(days=20)
    prediction = get_prediction(
        trained_engine, train_prediction(trained_engine, "purchase", 14, name="Earlier", as_of=as_of)
    )
    assert prediction.as_of == as_of
    assert prediction.details["training_cutoff"] == (as_of - timedelta(days=14)).isoformat()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"event": "levitated", "window_days": 30}, "does not occur"),
        ({"event": "purchase", "window_days": 0}, "1 to 60"),
        ({"event": "purchase", "window_days": 61}, "1 to 60"),
        ({"event": "purchase", "window_days": 30, "kind": "beta"}, "kind"),
        ({"event": "purchase", "window_days": 30, "name": FULL}, "already exists"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(trained_engine, arguments, message):
    before = [p.id for p in list_predictions(trained_engine)]
    with pytest.raises(UserError, match=message):
        train_prediction(trained_engine, **arguments)
    assert [p.id for p in list_predictions(trained_engine)] == before


def test_audience_limits_who_is_scored(trained_engine):
    audience = {
        "version": 1,
        "match": "all",
        "groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS"]}]}],
        "exclude": [],
    }
    prediction = get_prediction(
        trained_engine, train_prediction(trained_engine, "purchase", 30, name="iOS buyers", audience=audience)
    )
    with trained_engine.connect() as connection:
        ios = connection.execute(text("SELECT COUNT(*) FROM users WHERE platform = 'iOS'")).scalar()
        outside = connection.execute(
            text(
                "SELECT COUNT(*) FROM prediction_scores s JOIN users u ON u.id = s.user_id "
                "WHERE s.prediction_id = :p AND u.platform != 'iOS'"
            ),
            {"p": prediction.id},
        ).scalar()
    assert prediction.audience_size == ios
    assert outside == 0


def test_refresh_rescores_without_retraining(trained_engine):
    full = find_prediction(trained_engine, FULL)
    _, before = load_scores(trained_engine, full.id)
    refresh_scores(trained_engine, FULL)
    after_info = find_prediction(trained_engine, FULL)
    _, after = load_scores(trained_engine, full.id)
    assert after_info.quality == full.quality  # the same model
    assert after_info.updated_at > full.updated_at
    np.testing.assert_allclose(after, before)  # no new data: the same scores


def _sessions_after(engine, tmp_path, days: int) -> None:
    """New data: a session for a few hundred users `days` days after the newest event."""
    newest = latest_event_time(engine)
    with engine.connect() as connection:
        users = [r[0] for r in connection.execute(text("SELECT external_id FROM users ORDER BY id LIMIT 300"))]
    path = tmp_path / "later.csv"
    when = (newest + timedelta(days=days)).isoformat()
    path.write_text("user_id,event,timestamp\n" + "".join(f"{u},session,{when}\n" for u in users), encoding="utf-8")
    import_events(engine, path)


def _model_blob(engine, prediction_id: int) -> bytes:
    with session_scope(engine) as session:
        return session.get(models.Prediction, prediction_id).model


def test_retrain_replaces_model_quality_and_scores_in_place(trained_engine, tmp_path):
    full = find_prediction(trained_engine, FULL)
    segment = segments.save_segment(
        trained_engine,
        "High buyers",
        segments.definition_of({"type": "likelihood_category", "prediction": full.id, "categories": ["High"]}),
    )
    _sessions_after(trained_engine, tmp_path, days=3)
    old_model = _model_blob(trained_engine, full.id)

    assert retrain_prediction(trained_engine, FULL) == full.id
    after = find_prediction(trained_engine, FULL)
    assert (after.id, after.name, after.event, after.window_days) == (full.id, full.name, full.event, full.window_days)
    assert (
        after.details["trained_as_of"] == latest_event_time(trained_engine).isoformat() != full.details["trained_as_of"]
    )
    assert after.as_of == latest_event_time(trained_engine)
    assert _model_blob(trained_engine, full.id) != old_model
    assert 0 < after.quality <= 100 and 0.5 < after.auc <= 1
    ids, scores = load_scores(trained_engine, full.id)
    assert len(ids) == after.audience_size == full.audience_size
    assert segments.count(segments.get_segment(trained_engine, segment.id).definition, trained_engine) == int(
        np.count_nonzero(scores >= 75)
    )


def test_a_failed_retrain_leaves_the_prediction_as_it_was(trained_engine, tmp_path, monkeypatch):
    full = find_prediction(trained_engine, FULL)
    _, before = load_scores(trained_engine, full.id)
    old_model = _model_blob(trained_engine, full.id)
    _sessions_after(trained_engine, tmp_path, days=3)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("core.predictions.store.write_scores", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        retrain_prediction(trained_engine, FULL)
    after = find_prediction(trained_engine, FULL)
    assert (after.quality, after.auc, after.details, after.as_of) == (full.quality, full.auc, full.details, full.as_of)
    assert _model_blob(trained_engine, full.id) == old_model
    np.testing.assert_array_equal(load_scores(trained_engine, full.id)[1], before)


@pytest.mark.parametrize(("days_later", "retrained"), [(RETRAIN_AFTER_DAYS - 1, False), (RETRAIN_AFTER_DAYS, True)])
def test_refresh_retrains_once_the_model_is_two_weeks_behind_the_data(trained_engine, tmp_path, days_later, retrained):
    full = find_prediction(trained_engine, FULL)
    old_model = _model_blob(trained_engine, full.id)
    _sessions_after(trained_engine, tmp_path, days=days_later)
    refresh_scores(trained_engine, FULL)
    after = find_prediction(trained_engine, FULL)
    assert after.as_of == latest_event_time(trained_engine)  # scores follow the newest data either way
    assert (_model_blob(trained_engine, full.id) != old_model) is retrained
    assert (after.details["trained_as_of"] != full.details["trained_as_of"]) is retrained


def test_only_full_predictions_are_retrained(trained_engine):
    with pytest.raises(UserError, match="is a preview prediction: only full predictions are retrained"):
        retrain_prediction(trained_engine, PREVIEW)


def test_preview_scores_do_not_update(trained_engine):
    with pytest.raises(UserError, match="preview"):
        refresh_scores(trained_engine, PREVIEW)


def test_ensure_demo_predictions_trains_only_what_is_missing(trained_engine):
    assert ensure_demo_predictions(trained_engine) == []
    with session_scope(trained_engine) as session:
        assert session.scalar(select(func.count()).select_from(models.Prediction)) == 2


# --- explanations and the playbook -------------------------------------------------------------


def test_drivers_name_traits_that_raise_and_lower_the_likelihood(trained_engine):
    drivers = find_prediction(trained_engine, FULL).details["drivers"]
    assert {d["direction"] for d in drivers} == {"raises", "lowers"}
    assert all(d["ratio"] > 1 for d in drivers if d["direction"] == "raises")
    assert all(d["ratio"] < 1 for d in drivers if d["direction"] == "lowers")


def test_user_reasons_explain_a_score(trained_engine):
    full = find_prediction(trained_engine, FULL)
    answer = user_reasons(trained_engine, full.id, "u0000042")
    assert answer["user_id"] == 42
    assert 0 <= answer["score"] <= 100
    assert answer["reasons"], "a demo user should have at least one notable trait"
    assert all({"trait", "value", "typical", "effect"} <= set(r) for r in answer["reasons"])
    with pytest.raises(UserError, match="no user"):
        user_reasons(trained_engine, full.id, "nobody")


def test_playbook_prices_each_tier_from_its_expected_conversions():
    distribution = ScoreDistribution(np.array([10.0, 20.0, 60.0, 80.0, 90.0]))
    plans = tier_playbook(distribution, {"High": 0, "Medium": 10, "Low": 30}, average_order_value=50)
    assert [p.tier for p in plans] == ["High", "Medium", "Low"]
    high, medium, low = plans
    assert (high.users, medium.users, low.users) == (2, 1, 2)
    assert low.expected_conversions == pytest.approx(0.3)
    assert low.discount_cost == pytest.approx(0.3 * 50 * 0.30)
    assert low.revenue == pytest.approx(0.3 * 50 * 0.70)
    assert high.discount_cost == 0
    with pytest.raises(UserError, match="discount"):
        tier_playbook(distribution, {"Low": 120})

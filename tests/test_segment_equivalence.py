"""Property: on random definitions, the in-memory mask and the SQL clause keep the same users."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import models, segments
from core.db import bulk_insert, bump_data_version, session_scope
from core.tiers import categories_for
from tests.conftest import open_engine


@pytest.fixture(scope="module")
def scored_demo(databases, demo_db_template):
    """The 3,000-user demo copy plus: a full prediction scoring 80% of users, and NULL-only users."""
    engine = open_engine(databases.new("segment_equivalence", template=demo_db_template))
    with session_scope(engine) as session:
        anchor = session.get(models.AppMeta, "demo_anchor").value
        prediction = models.Prediction(
            name="Random purchase", event="purchase", window_days=30, kind="full", as_of=np.datetime64(anchor).item()
        )
        session.add(prediction)
        session.flush()
        ids = np.array(session.scalars(models.User.__table__.select().with_only_columns(models.User.id)).all())
        rng = np.random.default_rng(3)
        scored = ids[rng.random(len(ids)) < 0.8]
        scores = np.round(rng.random(len(scored)) * 100, 1)  # one decimal: ties on the bounds happen
        rows = zip(
            [prediction.id] * len(scored),
            scored.tolist(),
            scores.tolist(),
            categories_for(scores).tolist(),
            strict=True,
        )
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        for k in range(3):  # users with nothing but an id: every attribute NULL, no facts, no events
            session.add(models.User(external_id=f"blank{k}", push_opt_in=None, has_push_token=None, email_opt_in=None))
        bump_data_version(session)
    yield engine, prediction.id, np.datetime64(anchor).item()
    engine.dispose()


def _filters(prediction: int):
    numbers = st.integers(0, 40)
    opt = st.one_of(st.none(), numbers)
    days = st.sampled_from([1, 3, 7, 14, 21, 30, 60, 1.5])
    time_filter = st.fixed_dictionaries(
        {
            "op": st.sampled_from(["more_than", "less_than"]),
            "value": st.integers(0, 20),
            "unit": st.sampled_from(["days", "weeks"]),
        }
    )
    ranged = (
        st.tuples(opt, opt)
        .filter(lambda r: r != (None, None))
        .map(
            lambda r: {
                "min": min(x for x in r if x is not None) if r[0] is not None else None,
                "max": max(x for x in r if x is not None) if r[1] is not None else None,
            }
        )
    )
    events = st.sampled_from(["session", "viewed_item", "added_to_cart", "purchase"])
    score_range = st.tuples(
        st.floats(0, 100).map(lambda v: round(v, 1)), st.floats(0, 100).map(lambda v: round(v, 1))
    ).map(sorted)
    return st.one_of(
        time_filter.map(lambda f: {"type": "last_used", **f}),
        time_filter.map(lambda f: {"type": "first_used", **f}),
        st.tuples(events, st.sampled_from(["first", "last"]), time_filter).map(
            lambda t: {"type": "event_time", "event": t[0], "which": t[1], **t[2]}
        ),
        ranged.map(lambda r: {"type": "session_count", **r}),
        st.tuples(ranged, days).map(lambda t: {"type": "recent_sessions", **t[0], "days": t[1]}),
        st.tuples(events, ranged, st.one_of(st.none(), days)).map(
            lambda t: {"type": "event", "event": t[0], **t[1], "days": t[2]}
        ),
        ranged.map(lambda r: {"type": "purchase_count", **r}),
        st.tuples(st.sampled_from([None, 0, 20.0, 38.5, 100, 250]), st.sampled_from([None, 50, 120.25, 400]))
        .filter(lambda r: r != (None, None) and (None in r or r[0] <= r[1]))
        .map(lambda r: {"type": "money_spent", "min": r[0], "max": r[1]}),
        st.lists(st.sampled_from(["iOS", "Android", "Web"]), min_size=1, max_size=2).map(
            lambda v: {"type": "platform", "values": v}
        ),
        st.lists(st.sampled_from(["US", "FR", "DE", "JP", "ZZ"]), min_size=1, max_size=3).map(
            lambda v: {"type": "country", "values": v}
        ),
        st.lists(st.sampled_from(["en", "fr", "pt"]), min_size=1, max_size=2).map(
            lambda v: {"type": "language", "values": v}
        ),
        st.lists(st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo"]), min_size=1, max_size=2).map(
            lambda v: {"type": "timezone", "values": v}
        ),
        st.booleans().map(lambda v: {"type": "push_enabled", "value": v}),
        st.booleans().map(lambda v: {"type": "email_subscribed", "value": v}),
        st.tuples(st.integers(0, 9999), st.integers(0, 9999))
        .map(sorted)
        .map(lambda r: {"type": "random_bucket", "min": r[0], "max": r[1]}),
        score_range.map(lambda r: {"type": "likelihood_score", "prediction": prediction, "min": r[0], "max": r[1]}),
        st.lists(st.sampled_from(["Low", "Medium", "High"]), min_size=1, max_size=2, unique=True).map(
            lambda c: {"type": "likelihood_category", "prediction": prediction, "categories": c}
        ),
    )


def _definitions(prediction: int):
    group = st.fixed_dictionaries(
        {"match": st.sampled_from(["all", "any"]), "filters": st.lists(_filters(prediction), min_size=0, max_size=3)}
    )
    return st.fixed_dictionaries(
        {
            "match": st.sampled_from(["all", "any"]),
            "groups": st.lists(group, min_size=0, max_size=3),
            "exclude": st.lists(group, min_size=0, max_size=2),
        }
    ).map(segments.parse_definition)


def test_mask_and_sql_keep_the_same_users(scored_demo):
    engine, prediction, anchor = scored_demo

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(definition=_definitions(prediction), hours=st.integers(-24 * 40, 48))
    def check(definition, hours):
        now = anchor + timedelta(hours=hours)
        by_mask = segments.matching_user_ids(definition, engine, now)
        by_sql = segments.sql_user_ids(definition, engine, now)
        assert np.array_equal(by_mask, by_sql), segments.describe(definition)
        assert segments.count(definition, engine, now) == len(by_sql)

    check()

"""The in-memory user store: loaded once per data version, shared, and exact about time windows."""

from __future__ import annotations

import numpy as np

from core import models, segments
from core.db import bump_data_version, session_scope
from core.segments.store import EventTimes, user_store
from tests import segment_fixtures

world = segment_fixtures.world


def test_one_store_per_data_version_shared_by_every_caller(demo_engine):
    first = user_store(demo_engine)
    assert user_store(demo_engine) is first  # no reload, no copy
    before = segments.count(segments.definition_of({"type": "platform", "values": ["iOS"]}), demo_engine)
    with session_scope(demo_engine) as session:
        session.query(models.User).filter(models.User.platform == "iOS").update({"platform": "Web"})
        bump_data_version(session)
    second = user_store(demo_engine)
    assert second is not first and second.version == first.version + 1
    assert before > 0
    assert segments.count(segments.definition_of({"type": "platform", "values": ["iOS"]}), demo_engine) == 0


def test_at_least_k_events_since_reads_the_kth_latest_time():
    # user 0: times 1, 5, 9; user 1: none; user 2: time 7
    times = EventTimes(np.array([0, 3, 3, 4]), np.array([1, 5, 9, 7]))
    assert times.at_least(0, 100).tolist() == [True, True, True]
    assert times.at_least(1, 8).tolist() == [True, False, False]
    assert times.at_least(2, 5).tolist() == [True, False, False]
    assert times.at_least(2, 6).tolist() == [False, False, False]
    assert times.at_least(1, 7).tolist() == [True, False, True]  # inclusive
    assert times.at_least(4, 0).tolist() == [False, False, False]
    assert EventTimes(np.zeros(3, dtype=np.int64), np.array([], dtype=np.int64)).at_least(1, 0).tolist() == [
        False,
        False,
    ]


def test_pickers_know_the_values_present(world):
    engine, _ = world
    store = user_store(engine)
    assert store.values_of("country") == ["DE", "FR", "GB", "US"]
    assert store.most_common("country") == ["FR"]
    assert store.size == 6 and store.ids.tolist() == [1, 2, 3, 4, 5, 6]


def test_pending_event_loads_names_the_event_histories_a_count_will_read_first(demo_engine):
    recent = segments.definition_of({"type": "recent_sessions", "min": 3, "days": 7})
    bought_lately = segments.definition_of({"type": "event", "event": "purchase", "min": 1, "days": 30})
    bought_ever = segments.definition_of({"type": "event", "event": "purchase", "min": 1})
    both = recent.model_copy(update={"groups": recent.groups + bought_lately.groups})
    assert segments.pending_event_loads(both, demo_engine) == ["purchase", "session"]
    assert segments.pending_event_loads(bought_ever, demo_engine) == []  # per-user totals, no timestamps

    segments.count(recent, demo_engine)
    assert segments.pending_event_loads(both, demo_engine) == ["purchase"]
    segments.count(bought_lately, demo_engine)
    assert segments.pending_event_loads(both, demo_engine) == []

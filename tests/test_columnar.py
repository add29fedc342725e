"""Incremental data changes: an import refreshes only the users it touches and carries the columnar cache forward."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from core import facts, models, segments
from core.db import bump_data_version, session_scope, users_version
from core.importer import import_events, import_users
from core.segments import columnar, store
from core.segments.evaluator import MemoryEvaluator, SqlEvaluator

WINDOWED = segments.definition_of({"type": "recent_sessions", "min": 2, "max": 4, "days": 3})
BOUGHT_RECENTLY = segments.definition_of({"type": "event", "event": "purchase", "min": 1, "max": None, "days": 2})


def _anchor(engine) -> datetime:
    with session_scope(engine) as session:
        return datetime.fromisoformat(session.get(models.AppMeta, "demo_anchor").value)


def _facts(engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    with engine.connect() as connection:
        users = pd.read_sql_query(text("SELECT * FROM user_facts ORDER BY user_id"), connection)
        events = pd.read_sql_query(text("SELECT * FROM user_event_facts ORDER BY user_id, event"), connection)
    return users, events


def _events_file(tmp_path, anchor: datetime) -> str:
    """Sessions and purchases for three demo users and one new user, in the last days."""
    rows = ["user_id,event,timestamp,value"]
    for k, user in enumerate(["u0000001", "u0000002", "u0000003", "brand-new"]):
        for hours in (3, 20, 30 + k):
            rows.append(f"{user},session,{(anchor - timedelta(hours=hours)).isoformat()}Z,")
        rows.append(f"{user},purchase,{(anchor - timedelta(hours=5)).isoformat()}Z,12.5")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_an_events_import_refreshes_the_touched_users_exactly_as_a_full_refresh(demo_engine, tmp_path):
    anchor = _anchor(demo_engine)
    before_users, _ = _facts(demo_engine)
    import_events(demo_engine, _events_file(tmp_path, anchor))
    incremental = _facts(demo_engine)
    with session_scope(demo_engine) as session:
        facts.refresh(session)
    full = _facts(demo_engine)
    for mine, everyone in zip(incremental, full, strict=True):
        pd.testing.assert_frame_equal(mine, everyone)
    assert len(incremental[0]) == len(before_users) + 1  # the new user has facts too
    touched = incremental[0].set_index("user_id").loc[[1, 2, 3]]
    untouched = before_users.set_index("user_id").loc[[1, 2, 3]]
    assert (touched["session_count"] == untouched["session_count"] + 3).all()


def _fresh_store(engine, monkeypatch) -> store.UserStore:
    """The store built straight from the database, bypassing any cache."""
    monkeypatch.setenv("LIKELY_COLUMNAR_CACHE", "0")
    try:
        return store.UserStore(engine, -1)
    finally:
        monkeypatch.delenv("LIKELY_COLUMNAR_CACHE")


def _assert_same_store(cached: store.UserStore, fresh: store.UserStore, events: list[str]) -> None:
    assert cached.table.equals(fresh.table)
    for event in events:
        mine, theirs = cached.event_times(event), fresh.event_times(event)
        assert np.array_equal(mine.offsets, theirs.offsets)
        assert np.array_equal(mine.times, theirs.times)


@pytest.fixture
def cached(demo_engine):
    if columnar.cache_dir(demo_engine) is None:
        pytest.skip("the columnar cache lives beside SQLite files")
    store.clear_cache()
    warm = store.user_store(demo_engine)
    warm.event_times("session")  # cached now: the import must carry it forward
    warm.event_times("purchase")
    return demo_engine


def test_an_events_import_carries_the_cache_forward_instead_of_rebuilding_it(cached, tmp_path, monkeypatch):
    anchor = _anchor(cached)
    now = anchor - timedelta(hours=1)
    import_events(cached, _events_file(tmp_path, anchor))
    with cached.connect() as connection:
        version = users_version(connection)
    folder = columnar.cache_dir(cached)
    names = sorted(path.name for path in folder.iterdir())
    assert names and all(version in name for name in names)  # the old version's files are gone
    assert len([n for n in names if n.endswith(".times.npy")]) == 2  # both cached events carried
    carried = store.user_store(cached)
    assert carried.users_version == version and carried.has_event_times("session") is False
    _assert_same_store(carried, _fresh_store(cached, monkeypatch), ["session", "purchase"])
    for definition in (WINDOWED, BOUGHT_RECENTLY):
        assert MemoryEvaluator(cached).count(definition, now) == SqlEvaluator(cached).count(definition, now) > 0


def test_a_users_import_carries_new_and_changed_users_forward(cached, tmp_path, monkeypatch):
    path = tmp_path / "users.csv"
    path.write_text(
        "user_id,first_name,platform,country\nu0000002,=Changed,Web,FR\nnewcomer,Nia,iOS,JP\n", encoding="utf-8"
    )
    import_users(cached, str(path))
    carried = store.user_store(cached)
    _assert_same_store(carried, _fresh_store(cached, monkeypatch), ["session"])
    rows = carried.table.to_pandas().set_index("external_id")
    assert rows.loc["u0000002", "first_name"] == "=Changed" and rows.loc["newcomer", "country"] == "JP"


def test_a_change_outside_imports_gets_a_new_version_and_a_full_build(cached, monkeypatch):
    with session_scope(cached) as session:
        session.add(models.User(external_id="added-directly", platform="iOS"))
        bump_data_version(session)
    rebuilt = store.user_store(cached)
    assert "added-directly" in rebuilt.table.column("external_id").to_pylist()
    _assert_same_store(rebuilt, _fresh_store(cached, monkeypatch), ["session"])


def test_an_unwritable_cache_folder_only_costs_speed(demo_engine, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setattr(columnar, "cache_dir", lambda _engine: blocker / "cache")
    store.clear_cache()
    now = _anchor(demo_engine) - timedelta(hours=1)
    assert MemoryEvaluator(demo_engine).count(WINDOWED, now) == SqlEvaluator(demo_engine).count(WINDOWED, now) > 0
    import_events(demo_engine, _events_file(tmp_path, _anchor(demo_engine)))
    assert MemoryEvaluator(demo_engine).count(WINDOWED, now) == SqlEvaluator(demo_engine).count(WINDOWED, now)


def test_a_rescore_is_seen_although_the_scores_were_cached(cached):
    from core.predictions.store import write_scores

    with session_scope(cached) as session:
        prediction = models.Prediction(
            name="Cached", event="purchase", window_days=30, kind="full", as_of=datetime(2026, 1, 1)
        )
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id
        write_scores(session, prediction_id, np.arange(1, 101), np.full(100, 0.8))
    high = segments.definition_of({"type": "likelihood_score", "prediction": prediction_id, "min": 75, "max": 100})
    assert segments.count(high, cached) == 100
    assert any(name.startswith("scores-") for name in (p.name for p in columnar.cache_dir(cached).iterdir()))
    with session_scope(cached) as session:
        write_scores(session, prediction_id, np.arange(1, 101), np.r_[np.full(40, 0.8), np.full(60, 0.2)])
    assert segments.count(high, cached) == 40 == SqlEvaluator(cached).count(high)


def test_an_import_carries_cached_scores_forward_and_leaves_new_users_unscored(cached, tmp_path, monkeypatch):
    from core.predictions.store import write_scores

    with session_scope(cached) as session:
        prediction = models.Prediction(
            name="Carried", event="purchase", window_days=30, kind="full", as_of=datetime(2026, 1, 1)
        )
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id
        write_scores(session, prediction_id, np.arange(1, 301), np.linspace(0, 1, 300))
    store.user_store(cached).scores(prediction_id)  # cached at this data version
    import_events(cached, _events_file(tmp_path, _anchor(cached)))
    folder = columnar.cache_dir(cached)
    with cached.connect() as connection:
        version = users_version(connection)
    assert any(p.name.startswith(f"scores-{version}-") for p in folder.iterdir())
    carried = store.user_store(cached).scores(prediction_id)
    fresh = _fresh_store(cached, monkeypatch)._read_scores(prediction_id)
    assert np.array_equal(carried.score, fresh.score, equal_nan=True)
    assert np.array_equal(carried.category, fresh.category)
    assert np.isnan(carried.score[-1])  # the import's new user


def _table(ids, names, counts):
    import pyarrow as pa

    return pa.table({"id": pa.array(ids, pa.int64()), "name": pa.array(names, pa.string()), "n": pa.array(counts)})


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        (_table([2], ["b"], [20]), _table([1, 2, 3], ["a", "b", "c"], [1, 20, 3])),  # numbers change only
        (_table([3], ["C"], [3]), _table([1, 2, 3], ["a", "b", "C"], [1, 2, 3])),  # text changes only
        (_table([2, 9], ["b", "z"], [2, 9]), _table([1, 2, 3, 9], ["a", "b", "c", "z"], [1, 2, 3, 9])),  # a new id
        (_table([0, 3], ["y", None], [0, 30]), _table([0, 1, 2, 3], ["y", "a", "b", None], [0, 1, 2, 30])),  # below
    ],
)
def test_carrying_users_replaces_touched_rows_and_keeps_id_order(fresh, expected):
    old = _table([1, 2, 3], ["a", "b", "c"], [1, 2, 3])
    assert columnar._carry_users(old, fresh).equals(expected)


def test_carrying_event_times_replaces_touched_users_slices():
    old_ids = np.array([1, 2, 3, 5])
    old_offsets = np.array([0, 2, 3, 3, 6])
    old_times = np.array([10, 11, 20, 50, 51, 52])
    new_ids = np.array([1, 2, 3, 5, 8])
    touched = np.array([2, 8])
    offsets, times = columnar._carry_times(
        old_offsets, old_times, old_ids, new_ids, touched, np.array([2, 2, 8]), np.array([19, 21, 80])
    )
    assert offsets.tolist() == [0, 2, 4, 4, 7, 8]
    assert times.tolist() == [10, 11, 19, 21, 50, 51, 52, 80]

"""One evaluator seam: memory and SQL give the same answers, and above the memory limit nothing loads the store."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import models
from core.cli import main as cli_main
from core.db import bulk_insert, bump_data_version, session_scope
from core.segments import parse_definition, store
from core.segments.evaluator import MemoryEvaluator, SqlEvaluator, evaluator_for

ROOT = Path(__file__).resolve().parent.parent
RICH = parse_definition(
    {
        "version": 1,
        "match": "any",
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "platform", "values": ["iOS", "Android"]},
                    {"type": "recent_sessions", "min": 2, "max": None, "days": 14},
                ],
            },
            {
                "match": "any",
                "filters": [
                    {"type": "event", "event": "purchase", "min": 1, "max": None, "days": None},
                    {"type": "last_used", "op": "more_than", "value": 3, "unit": "weeks"},
                ],
            },
        ],
        "exclude": [{"match": "all", "filters": [{"type": "email_subscribed", "value": True}]}],
    }
)


def _anchor(engine) -> datetime:
    """A few hours before the demo data's end: windows and "days ago" cut through real activity."""
    with session_scope(engine) as session:
        return datetime.fromisoformat(session.get(models.AppMeta, "demo_anchor").value) - timedelta(hours=5)


def test_the_seam_picks_sql_above_the_memory_limit(demo_engine, monkeypatch):
    assert isinstance(evaluator_for(demo_engine), MemoryEvaluator)
    monkeypatch.setattr(store, "IN_MEMORY_USER_LIMIT", 100)
    assert isinstance(evaluator_for(demo_engine), SqlEvaluator)


def test_memory_and_sql_give_the_same_overview_and_picker_facts(demo_engine):
    now = _anchor(demo_engine)
    memory, sql = MemoryEvaluator(demo_engine), SqlEvaluator(demo_engine)
    by_memory, by_sql = memory.overview(RICH, now), sql.overview(RICH, now)
    assert 0 < by_sql.count < by_sql.total
    assert by_sql == by_memory
    assert sql.count(RICH, now) == memory.count(RICH, now) == by_sql.count
    assert sql.user_ids(RICH, now).tolist() == memory.user_ids(RICH, now).tolist()
    assert sql.reachable_counts(RICH, now) == memory.reachable_counts(RICH, now)
    assert sql.total_users() == memory.total_users()
    assert sql.event_names() == memory.event_names()
    assert sql.predictions() == memory.predictions()
    for column in ("country", "language", "timezone", "platform"):
        assert sql.values_of(column) == memory.values_of(column)
        assert sql.most_common(column, 3) == memory.most_common(column, 3)


def test_memory_and_sql_explain_a_user_the_same_way(demo_engine):
    now = _anchor(demo_engine)
    memory, sql = MemoryEvaluator(demo_engine), SqlEvaluator(demo_engine)
    matching = set(memory.user_ids(RICH, now).tolist())
    with demo_engine.connect() as connection:
        users = connection.execute(models.User.__table__.select().limit(40)).fetchall()
    assert {u.id in matching for u in users} == {True, False}  # both verdicts are compared
    for user in users:
        assert sql.explain_user(RICH, user.external_id, now) == memory.explain_user(RICH, user.external_id, now)
    assert sql.explain_user(RICH, "nobody", now) == memory.explain_user(RICH, "nobody", now)


def test_memory_and_sql_give_the_same_likelihood_breakdown(demo_engine):
    with session_scope(demo_engine) as session:
        prediction = models.Prediction(
            name="Half", event="purchase", window_days=30, kind="full", as_of=datetime(2026, 1, 1)
        )
        session.add(prediction)
        session.flush()
        rows = [(prediction.id, user_id, float(user_id % 100), "Low") for user_id in range(1, 600, 3)]
        rows = [(p, u, s, "High" if s >= 75 else "Medium" if s >= 50 else "Low") for p, u, s, _ in rows]
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        bump_data_version(session, users_changed=False)
        prediction_id = prediction.id
    now = _anchor(demo_engine)
    memory, sql = MemoryEvaluator(demo_engine), SqlEvaluator(demo_engine)
    assert sql.likelihood_breakdown(RICH, prediction_id, now) == memory.likelihood_breakdown(RICH, prediction_id, now)


@pytest.fixture
def no_store(app_database, monkeypatch):
    """The database is over the memory limit, and loading the store fails the test."""
    monkeypatch.setattr(store, "IN_MEMORY_USER_LIMIT", 100)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the in-memory store was loaded")

    monkeypatch.setattr(store.UserStore, "__init__", refuse)
    store.clear_cache()
    return app_database


@pytest.mark.parametrize("page", ["pages/segments.py", "pages/predictions.py", "pages/campaigns.py", "pages/data.py"])
def test_no_page_loads_the_store_above_the_memory_limit(no_store, page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_segment_builder_counts_in_sql_above_the_memory_limit(no_store):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/segments.py")
    at.run()
    for kind in ("recent_sessions", "country", "event"):
        at.selectbox(key="seg_new_type").set_value(kind)
        at.button(key="seg_add_filter").click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert at.metric[0].value.endswith(" users")


def test_no_cli_command_loads_the_store_above_the_memory_limit(no_store, tmp_path, capsys):
    definition = tmp_path / "ios.json"
    definition.write_text(json.dumps({"name": "iOS lapsed", "definition": RICH.to_json()}), encoding="utf-8")
    assert cli_main(["segment", "save", str(definition)]) == 0
    capsys.readouterr()
    assert cli_main(["segment", "count", "iOS lapsed"]) == 0
    size = int(capsys.readouterr().out.strip())
    assert size == SqlEvaluator(no_store).count(RICH)
    for command in (["segment", "list"], ["segment", "show", "iOS lapsed"]):
        assert cli_main(command) == 0
    target = tmp_path / "out.csv"
    assert cli_main(["segment", "export", "iOS lapsed", "-o", str(target)]) == 0
    with open(target, newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) - 1 == size

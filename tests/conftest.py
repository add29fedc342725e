"""Shared fixtures: a small seeded demo database, copied fresh for every test that writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core import db
from core.seed import default_anchor, generate

DEMO_USERS = 3_000
DEMO_SEED = 11


def _engine_at(path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{path}")
    db.init_db(engine)
    return engine


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture(scope="session")
def demo_anchor():
    return default_anchor()


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory, demo_anchor) -> Path:
    """A seeded demo database built once per test run; never written to by tests."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = _engine_at(path)
    generate(engine, users=DEMO_USERS, seed=DEMO_SEED, anchor=demo_anchor)
    _checkpoint(engine)
    return path


@pytest.fixture
def demo_engine(demo_db_template, tmp_path) -> Engine:
    """A private, writable copy of the demo database."""
    path = tmp_path / "demo.db"
    shutil.copy(demo_db_template, path)
    engine = _engine_at(path)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_engine(tmp_path) -> Engine:
    engine = _engine_at(tmp_path / "empty.db")
    yield engine
    engine.dispose()


@pytest.fixture
def app_database(demo_engine, monkeypatch) -> Engine:
    """Points DATABASE_URL (what pages and the CLI use) at a private demo database copy."""
    monkeypatch.setenv("DATABASE_URL", str(demo_engine.url))
    db._engines.clear()
    yield demo_engine
    for engine in db._engines.values():
        engine.dispose()
    db._engines.clear()

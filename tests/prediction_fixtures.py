"""Fixtures for the prediction tests: the demo database with its demo predictions trained once."""

from __future__ import annotations

import pytest

from core import db
from core.predictions import ensure_demo_predictions
from tests.conftest import close_engine, open_engine


@pytest.fixture(scope="session")
def trained_db_template(databases, demo_db_template) -> str:
    """URL of a copy of the 3,000-user demo database with both demo predictions trained."""
    url = databases.new("trained", template=demo_db_template)
    engine = open_engine(url)
    ensure_demo_predictions(engine)
    close_engine(engine)
    return url


@pytest.fixture
def trained_engine(databases, trained_db_template):
    """A private, writable copy of the trained demo database."""
    engine = open_engine(databases.new("trained_copy", template=trained_db_template))
    yield engine
    engine.dispose()


@pytest.fixture
def trained_app(trained_engine, monkeypatch):
    """DATABASE_URL pointed at a private trained demo copy (for AppTest and the CLI)."""
    monkeypatch.setenv("DATABASE_URL", trained_engine.url.render_as_string(hide_password=False))
    db._engines.clear()
    yield trained_engine
    for engine in db._engines.values():
        engine.dispose()
    db._engines.clear()

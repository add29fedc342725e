"""Fixtures for the prediction tests: the demo database with its demo predictions trained once."""

from __future__ import annotations

import pytest

from core.predictions import ensure_demo_predictions
from tests.conftest import app_pointed_at, close_engine, open_engine


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
    """The app and CLI pointed at a private trained demo copy."""
    with app_pointed_at(trained_engine, monkeypatch):
        yield trained_engine

"""Shared fixtures: a small seeded demo database, copied fresh for every test that writes.

The suite runs on SQLite files by default. With LIKELY_TEST_POSTGRES set to a server URL
(e.g. postgresql+psycopg://likely:likely@localhost/likely, as .ci/run does) every database a
test gets is a throwaway PostgreSQL database on that server instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, make_url

from core import db
from core.seed import default_anchor, generate

DEMO_USERS = 3_000
DEMO_SEED = 11
POSTGRES_URL = os.environ.get("LIKELY_TEST_POSTGRES")


class ThrowawayDatabases:
    """Creates, copies and drops test databases on the backend under test."""

    def __init__(self, folder):
        self.folder = folder
        self.created: list[str] = []

    def new(self, prefix: str = "t", template: str | None = None) -> str:
        if POSTGRES_URL:
            name = f"likely_{prefix}_{uuid.uuid4().hex[:10]}"
            clause = f" TEMPLATE {make_url(template).database}" if template else ""
            self._admin(f'CREATE DATABASE "{name}"{clause}')
            url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        else:
            path = self.folder / f"{prefix}_{uuid.uuid4().hex[:10]}.db"
            if template:
                shutil.copy(make_url(template).database, path)
            url = f"sqlite:///{path}"
        self.created.append(url)
        return url

    def drop_all(self) -> None:
        if POSTGRES_URL:
            for url in reversed(self.created):
                self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    @staticmethod
    def _admin(statement: str) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(statement))
        admin.dispose()


def open_engine(url: str) -> Engine:
    engine = db.make_engine(url)
    db.init_db(engine)
    return engine


def close_engine(engine: Engine) -> None:
    """Dispose an engine, first folding SQLite's WAL into the file so a plain copy is complete."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Put `__main__` back after each test.

    Streamlit's script runner (AppTest included) installs the page it runs as `sys.modules["__main__"]`
    and leaves it there. A multiprocessing 'spawn' child re-runs the parent's `__main__` file before
    anything else, so a later test that spawns would run app.py in every child, where it opens
    DATABASE_URL: slow at best, and a child that dies before doing its work at worst."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    manager = ThrowawayDatabases(tmp_path_factory.mktemp("databases"))
    yield manager
    manager.drop_all()


@pytest.fixture(scope="session")
def demo_anchor():
    return default_anchor()


@pytest.fixture(scope="session")
def demo_db_template(databases, demo_anchor) -> str:
    """URL of a seeded demo database built once per test run; never written to by tests."""
    url = databases.new("demo")
    engine = open_engine(url)
    generate(engine, users=DEMO_USERS, seed=DEMO_SEED, anchor=demo_anchor)
    close_engine(engine)
    return url


@pytest.fixture
def demo_engine(databases, demo_db_template) -> Engine:
    """A private, writable copy of the demo database."""
    engine = open_engine(databases.new("demo_copy", template=demo_db_template))
    yield engine
    engine.dispose()


@pytest.fixture
def empty_engine(databases) -> Engine:
    engine = open_engine(databases.new("empty"))
    yield engine
    engine.dispose()


@contextmanager
def app_pointed_at(engine: Engine, monkeypatch):
    """DATABASE_URL (what pages and the CLI use) set to `engine`'s database for the block."""
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    db._engines.clear()
    try:
        yield engine
    finally:
        for shared in db._engines.values():
            shared.dispose()
        db._engines.clear()


@pytest.fixture
def app_database(demo_engine, monkeypatch) -> Engine:
    """The app and CLI pointed at a private demo database copy."""
    with app_pointed_at(demo_engine, monkeypatch):
        yield demo_engine


@pytest.fixture
def empty_app(empty_engine, monkeypatch) -> Engine:
    """The app and CLI pointed at an empty database."""
    with app_pointed_at(empty_engine, monkeypatch):
        yield empty_engine

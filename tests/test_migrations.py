"""Migrations: the chain builds exactly the models' schema, and upgrading loses nothing."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from core import models
from core.migrations import FIRST_REVISION, alembic_config, current_revision, ensure_schema, head_revision
from core.seed import generate
from tests.conftest import close_engine


def _raw_engine(databases):
    from core.db import make_engine

    return make_engine(databases.new("migrate"))


def test_the_migration_chain_builds_the_models_schema(databases):
    engine = _raw_engine(databases)
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrading_from_the_first_schema_keeps_every_row(databases, demo_anchor):
    engine = _raw_engine(databases)
    command.upgrade(alembic_config(engine), FIRST_REVISION)
    generate(engine, users=300, seed=2, anchor=demo_anchor)

    def snapshot():
        with engine.connect() as connection:
            return {
                "users": connection.execute(text("SELECT * FROM users ORDER BY id")).all(),
                "events": connection.execute(text("SELECT COUNT(*), SUM(value) FROM events")).one(),
                "facts": connection.execute(text("SELECT * FROM user_facts ORDER BY user_id")).all(),
            }

    before = snapshot()
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    assert snapshot() == before
    close_engine(engine)


def test_a_database_made_before_migrations_is_adopted(databases):
    engine = _raw_engine(databases)
    command.upgrade(alembic_config(engine), FIRST_REVISION)  # the schema such databases have
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(models.AppMeta.__table__.insert(), {"key": "kept", "value": "yes"})
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(models.AppMeta)).scalar() == 1
    engine.dispose()


def test_an_empty_database_gets_every_table_at_head(databases):
    engine = _raw_engine(databases)
    ensure_schema(engine)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {
        "users",
        "events",
        "user_facts",
        "predictions",
        "prediction_scores",
        "segments",
        "campaigns",
        "outbox",
    } <= tables

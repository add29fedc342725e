"""Schema migrations (Alembic). `core.migrations.upgrade(engine)` brings any database to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

HERE = Path(__file__).resolve().parent
FIRST_REVISION = "0001"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Bring any database to the current schema, losing nothing.

    An empty database gets every table at once and is stamped at head; a database made before
    migrations existed (tables, no alembic_version) is adopted as the first schema; then any
    pending migration runs.
    """
    from core.models import Base

    tables = set(inspect(engine).get_table_names())
    config = alembic_config(engine)
    if not tables:
        Base.metadata.create_all(engine)
        command.stamp(config, "head")
        return
    if "alembic_version" not in tables:
        command.stamp(config, FIRST_REVISION)
    if current_revision(engine) != head_revision():
        command.upgrade(config, "head")

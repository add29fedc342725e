"""Schema migrations (Alembic). `core.migrations.upgrade(engine)` brings any database to head."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError

from core.errors import UserError

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
    """Bring any database to the current schema, losing nothing, or refuse it untouched.

    An empty database gets every table at once and is stamped at head; a database made before
    migrations existed (our first schema's tables, no alembic_version) is adopted as the first
    schema; then any pending migration runs. A database that is not ours (another
    application's tables, a file that is not SQLite, a damaged or read-only file) or whose
    schema this version does not know (made by a newer Likely) raises UserError and is left
    byte for byte as it was: a SQLite file is inspected read-only before the engine, whose
    connections switch on WAL, ever opens it.
    """
    from core.models import Base

    if engine.dialect.name == "sqlite":
        _inspect_sqlite_file(engine)
    where = _where(engine)
    try:
        tables = set(inspect(engine).get_table_names())
        revision = current_revision(engine) if "alembic_version" in tables else None
    except DBAPIError as error:
        raise UserError(f"{where} cannot be read: {_first_line(error)}") from None
    _refuse_unknown(where, tables, revision)
    config = alembic_config(engine)
    if not tables:
        Base.metadata.create_all(engine)
        command.stamp(config, "head")
        return
    if "alembic_version" not in tables:
        command.stamp(config, FIRST_REVISION)
    if current_revision(engine) != head_revision():
        command.upgrade(config, "head")


# The first schema's tables: a database holding them all (and no alembic_version) was made by
# Likely before migrations existed; one missing any of them belongs to someone else.
FIRST_SCHEMA_TABLES = frozenset(
    {"app_meta", "users", "events", "user_facts", "predictions", "prediction_scores", "segments", "campaigns", "outbox"}
)
SQLITE_HEADER = b"SQLite format 3\x00"


def _where(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"the database file {engine.url.database}" if _sqlite_path(engine) else "the in-memory database"
    return f"the database {engine.url.database!r} on {engine.url.host or 'localhost'}"


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


def _known_revision(revision: str) -> bool:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def _refuse_unknown(where: str, tables: set[str], revision: str | None) -> None:
    """UserError unless the tables are empty, our first schema, or a schema revision we know."""
    if not tables:
        return
    if "alembic_version" in tables:
        if revision is not None and not _known_revision(revision):
            raise UserError(
                f"{where} has schema version {revision!r}, which this version of Likely does not know "
                "(it was made by a newer or different version); upgrade Likely, nothing was changed"
            )
        if revision is not None:
            return
    missing = FIRST_SCHEMA_TABLES - tables
    if missing:
        shown = ", ".join(sorted(tables - {"alembic_version"})[:5]) + (", …" if len(tables) > 6 else "")
        raise UserError(
            f"{where} belongs to another application (its tables: {shown}); Likely left it unchanged. "
            "Point DATABASE_URL at a new file or a Likely database"
        )


def _sqlite_path(engine: Engine) -> str | None:
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _inspect_sqlite_file(engine: Engine) -> None:
    """Refuse a SQLite file that is not ours, is damaged or read-only, reading it with a read-only connection."""
    path = _sqlite_path(engine)
    if path is None or not os.path.exists(path) or os.path.getsize(path) == 0:
        return  # a new or empty file becomes a Likely database
    where = f"the database file {path}"
    if os.path.isdir(path):
        raise UserError(f"{where} is a folder; give the path of a file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise UserError(f"{where} cannot be read: {error.strerror}") from None
    if header != SQLITE_HEADER:
        kind = "a text file" if _looks_like_text(header) else "a binary file"
        raise UserError(f"{where} is not a SQLite database (it is {kind}); Likely left it unchanged")
    try:
        # immutable: no locks and no -wal/-shm files beside someone else's file. It may miss a
        # write still in our own WAL; ensure_schema checks again through the engine.
        connection = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro&immutable=1", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise UserError(f"{where} is damaged or unreadable ({error}); Likely left it unchanged") from None
    _refuse_unknown(where, tables, revision)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        raise UserError(f"{where} is read-only (Likely writes to its database); nothing was changed")


def _looks_like_text(data: bytes) -> bool:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in "\t\r\n" for char in decoded)

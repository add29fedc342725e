"""The one place that owns the database engine.

`DATABASE_URL` selects the database; the default is an embedded SQLite file in
`data/app.db`, tuned for an interactive app (WAL, foreign keys, busy timeout).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, select
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import StaticPool

from core.errors import UserError
from core.settings import DEFAULT_DATABASE_URL, ROOT, load_settings  # noqa: F401 - re-exported

_engines: dict[str, Engine] = {}


def database_url() -> str:
    """Read on each call: `--database-url` changes it for one command."""
    return load_settings().database_url


def make_engine(url: str | None = None) -> Engine:
    """A new engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    url = url or database_url()
    try:
        make_url(url)
    except ArgumentError:
        raise UserError(f"DATABASE_URL {url!r} is not a database URL (e.g. sqlite:///data/app.db)") from None
    try:
        return _make_engine(url)
    except (ArgumentError, ImportError) as error:  # an unknown database kind or a driver that is not installed
        raise UserError(f"DATABASE_URL {make_url(url)!r} cannot be used: {error}") from None


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        if not in_memory:
            path = url.split("sqlite:///", 1)[1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for `url` (default: `DATABASE_URL`), created once per process."""
    url = url or database_url()
    if url not in _engines:
        engine = make_engine(url)
        try:
            init_db(engine)
        except BaseException:
            engine.dispose()  # refused (or failed): never handed out, so the next call checks again
            raise
        _engines[url] = engine
    return _engines[url]


def init_db(engine: Engine) -> None:
    """Bring the database to the current schema (creating it when empty; see core.migrations)."""
    from core import migrations

    migrations.ensure_schema(engine)


def streamed_rows(engine: Engine, query, rows_per_batch: int) -> Iterator[Sequence]:
    """A query's rows, a batch at a time from one streamed cursor: memory stays flat whatever the size."""
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=rows_per_batch).execute(query)
        yield from result.partitions()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except StaleDataError:
        session.rollback()
        raise UserError(
            "this was changed by someone else while you were editing it; reload it to see their changes"
        ) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(connection, table_name: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert plain tuples through the DBAPI: the fast path for millions of rows.

    SQLite gets executemany; PostgreSQL gets COPY, an order of magnitude faster than
    row-by-row inserts there.
    """
    cursor = connection.connection.driver_connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            sql = f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


def sync_id_sequence(connection, table_name: str) -> None:
    """After inserting explicit ids, move PostgreSQL's id sequence past them (SQLite needs nothing)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table_name}"
        )


def data_version(engine: Engine | None = None) -> int:
    """A number that changes whenever users, events, facts or scores change."""
    from core.models import AppMeta

    # A plain connection, not an ORM session: every live count asks this first.
    with (engine or get_engine()).connect() as connection:
        value = connection.execute(select(AppMeta.value).where(AppMeta.key == "data_version")).scalar()
    return int(value) if value is not None else 0


def bump_data_version(session: Session, *, users_changed: bool = True) -> None:
    """Mark the data as changed, so in-memory caches reload.

    `users_changed` (the safe default) also gives users, events and their facts a new
    `users_version`, the key of the columnar cache (core.segments.columnar); only a change
    that leaves them alone (prediction scores) passes False and keeps that cache.
    """
    from core.models import AppMeta

    row = session.get(AppMeta, "data_version")
    if row is None:
        session.add(AppMeta(key="data_version", value="1"))
    else:
        row.value = str(int(row.value) + 1)
    if users_changed:
        session.merge(AppMeta(key=USERS_VERSION_KEY, value=uuid.uuid4().hex))


USERS_VERSION_KEY = "users_version"


def users_version(connection) -> str:
    """The token of the current users, events and facts (random, so a recreated file never reuses one)."""
    from core.models import AppMeta

    value = connection.execute(select(AppMeta.value).where(AppMeta.key == USERS_VERSION_KEY)).scalar()
    return value or "none"

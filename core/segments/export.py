"""CSV export of a segment: one row per user, streamed in chunks, safe to open in a spreadsheet.

Columns: EXPORT_COLUMNS, then "<prediction> score" and "<prediction> category" for every
prediction the definition uses. Rows come in users.id order.

Two ways to pick the rows, same output:
  * default: the in-memory store picks the ids (the same exact set the live count shows),
    then each chunk of ids reads its columns with one SQL query (an id range, or an id list
    when the chunk is sparse) and scores come from the store's arrays;
  * `via_sql=True`: one streamed SQL query with the definition's WHERE clause, for databases
    too big to hold in memory.
Only one chunk of rows is ever held, so memory stays flat whatever the segment size.

Formula neutralisation: a text cell starting with =, +, -, @, tab or CR gets a leading
apostrophe, so a spreadsheet shows it instead of running it. Numbers we write ourselves
(counts, scores) are numbers, not text, and stay as they are: "-3" in a numeric column is a
number. Every text column is user-supplied data and is always neutralised, even when it
looks like a number ("-5" as a first name becomes "'-5").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from core import models
from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.db import get_engine
from core.segments.definition import predictions_used, validate
from core.segments.evaluate import segment_mask
from core.segments.sql import as_naive_utc, base_from, check_references, where_clause
from core.segments.store import fits_in_memory, user_store
from core.tiers import TIER_NAMES

# (CSV header, SQL column, kind): kind "text" is neutralised, "time" is trimmed to seconds,
# "flag" becomes true/false, "number" is written as is.
_U, _F = models.User.__table__.c, models.UserFacts.__table__.c
EXPORT_COLUMNS: tuple[tuple[str, sa.ColumnElement, str], ...] = (
    ("user_id", _U.external_id, "text"),
    ("first_name", _U.first_name, "text"),
    ("email", _U.email, "text"),
    ("platform", _U.platform, "text"),
    ("country", _U.country, "text"),
    ("language", _U.language, "text"),
    ("time_zone", _U.timezone, "text"),
    ("created_at", _U.created_at, "time"),
    ("first_used_at", _F.first_used_at, "time"),
    ("last_used_at", _F.last_used_at, "time"),
    ("session_count", sa.func.coalesce(_F.session_count, 0), "number"),
    ("push_opt_in", _U.push_opt_in, "flag"),
    ("email_opt_in", _U.email_opt_in, "flag"),
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset("=+-@\t\r")
_FLAGS = {True: "true", False: "false"}  # SQLite answers 1 / 0, which hash the same
CHUNK_USERS = 20_000


def neutralise(value: str | None) -> str | None:
    """A text cell a spreadsheet will show, not run."""
    if value and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _convert_column(kind: str, column: tuple) -> list | tuple:
    """One column of a chunk, converted with inline comprehensions (the export's hot loop)."""
    if kind == "text":
        first = _FORMULA_FIRST
        return [("'" + v) if v and v[0] in first else v for v in column]
    if kind == "time":
        return [v if v is None else v[:19] if isinstance(v, str) else v.strftime("%Y-%m-%d %H:%M:%S") for v in column]
    if kind == "flag":
        flags = _FLAGS
        return [flags.get(v) for v in column]
    return column


def _prediction_names(engine: Engine, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    table = models.Prediction.__table__
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
        return {row.id: row.name for row in rows}


def export_header(definition, engine: Engine | None = None) -> list[str]:
    engine = engine or get_engine()
    used = predictions_used(definition)
    names = _prediction_names(engine, used)
    header = [name for name, _, _ in EXPORT_COLUMNS]
    for prediction in used:
        label = names.get(prediction, f"prediction {prediction}")
        header += [f"{label} score", f"{label} category"]
    return header


def _convert_chunk(rows: list[tuple], extra: list[list] | None = None, skip: int = 0) -> list[tuple]:
    """Convert a chunk of raw rows column-wise (fewer Python calls); `skip` leading columns are dropped."""
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))[skip:]
    out = [_convert_column(kind, column) for (_, _, kind), column in zip(EXPORT_COLUMNS, columns, strict=True)]
    out += extra or []
    return list(zip(*out, strict=True))


_TIER_OR_NONE = np.array([*TIER_NAMES, None], dtype=object)  # category code -1 picks the trailing None


def _score_cells(score: np.ndarray) -> list:
    """Scores rounded to 2 decimals, None (an empty cell) when unscored."""
    cells = np.round(score, 2).tolist()
    for i in np.flatnonzero(np.isnan(score)).tolist():
        cells[i] = None
    return cells


def _score_columns(store, positions: np.ndarray, used: list[int]) -> list[list]:
    columns = []
    for prediction in used:
        scores = store.scores(prediction)
        columns.append(_score_cells(scores.score[positions]))
        columns.append(_TIER_OR_NONE[scores.category[positions]].tolist())
    return columns


def _select():
    return sa.select(*(column for _, column, _ in EXPORT_COLUMNS)).select_from(base_from())


def export_chunks(
    definition, engine: Engine | None = None, now: datetime | None = None, via_sql: bool = False
) -> Iterator[list[tuple]]:
    """The export's rows (after the header), a chunk of at most CHUNK_USERS rows at a time."""
    definition = validate(definition)
    engine = engine or get_engine()
    used = predictions_used(definition)
    if via_sql or not fits_in_memory(engine):
        yield from _chunks_via_sql(definition, engine, now, used)
        return
    store = user_store(engine)
    positions = np.flatnonzero(segment_mask(definition, store, now))
    with engine.connect() as connection:
        marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        cursor = connection.connection.driver_connection.cursor()  # plain tuples: the fast path
        try:
            for start in range(0, len(positions), CHUNK_USERS):
                ids = store.ids[positions[start : start + CHUNK_USERS]]
                low, high = int(ids[0]), int(ids[-1])
                if high - low + 1 <= 2 * len(ids):  # dense: one id range, then drop the few between
                    cursor.execute(_RAW_SELECT.format(where=f"u.id BETWEEN {marker} AND {marker}"), (low, high))
                else:
                    markers = ", ".join([marker] * len(ids))
                    cursor.execute(_RAW_SELECT.format(where=f"u.id IN ({markers})"), ids.tolist())
                rows = cursor.fetchall()
                found = np.fromiter((r[0] for r in rows), np.int64, len(rows))
                keep = np.isin(found, ids)
                if not keep.all():
                    rows = [r for r, k in zip(rows, keep.tolist(), strict=True) if k]
                yield _convert_chunk(rows, _score_columns(store, store.positions_of(found[keep]), used), skip=1)
        finally:
            cursor.close()


_RAW_SELECT = (
    "SELECT u.id, u.external_id, u.first_name, u.email, u.platform, u.country, u.language, u.timezone,"
    " u.created_at, f.first_used_at, f.last_used_at, COALESCE(f.session_count, 0), u.push_opt_in,"
    " u.email_opt_in FROM users u LEFT JOIN user_facts f ON f.user_id = u.id WHERE {where} ORDER BY u.id"
)


def _chunks_via_sql(definition, engine, now, used) -> Iterator[list[tuple]]:
    check_references(definition, engine)
    query = _select()
    scores = models.PredictionScore.__table__
    for prediction in used:
        alias = scores.alias(f"p{prediction}")
        query = query.outerjoin(
            alias, sa.and_(alias.c.user_id == models.User.__table__.c.id, alias.c.prediction_id == prediction)
        ).add_columns(alias.c.score, alias.c.category)
    query = query.where(where_clause(definition, as_naive_utc(now))).order_by(models.User.__table__.c.id)
    width = len(EXPORT_COLUMNS)
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK_USERS).execute(query)
        for rows in result.partitions():
            rows = [tuple(r) for r in rows]
            extra = []
            for k in range(len(used)):
                score = np.array([np.nan if r[width + 2 * k] is None else r[width + 2 * k] for r in rows], dtype=float)
                extra += [_score_cells(score), [r[width + 2 * k + 1] for r in rows]]
            yield _convert_chunk([r[:width] for r in rows], extra)


def export_csv(
    definition,
    out: IO[str] | str | Path,
    engine: Engine | None = None,
    now: datetime | None = None,
    via_sql: bool = False,
    *,
    actor: Actor = LOCAL_ADMIN,
    subject: str = "a segment",
) -> int:
    """Write the segment as CSV to a text stream or a path; returns the number of user rows.

    `subject` names what is exported (a saved segment's name) for the audit log.
    """
    require(actor, Permission.EXPORT)
    if isinstance(out, (str, Path)):
        with open(out, "w", newline="", encoding="utf-8") as handle:
            return export_csv(definition, handle, engine, now, via_sql, actor=actor, subject=subject)
    engine = engine or get_engine()
    writer = csv.writer(out)
    writer.writerow(export_header(definition, engine))
    written = 0
    for chunk in export_chunks(definition, engine, now, via_sql):
        writer.writerows(chunk)
        written += len(chunk)
    audit(engine, actor, "export", subject, rows=written)
    return written


def export_csv_bytes(
    definition,
    engine: Engine | None = None,
    now: datetime | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
    subject: str = "a segment",
) -> bytes:
    """The whole CSV as UTF-8 bytes (what a browser download needs), encoded as it is written."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    export_csv(definition, text, engine, now, actor=actor, subject=subject)
    text.flush()
    text.detach()  # keep the bytes when the wrapper goes
    return buffer.getvalue()

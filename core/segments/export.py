"""CSV export of a segment: one row per user, in batches, safe to open in a spreadsheet.

Columns: EXPORT_COLUMNS, then "<prediction> score" and "<prediction> category" for every
prediction the definition uses. Rows come in users.id order. Bytes go through the product's
one CSV writer (core.csvout: vectorised, formula-safe).

The evaluator (core.segments.evaluator_for) picks the rows, same output either way:
  * in memory: the store's mask picks the positions, and every column comes from the store's
    columnar table (memory-mapped) and score arrays, a batch of CHUNK_USERS rows at a time;
  * SQL (`via_sql=True`, or data too big for memory): one streamed query with the
    definition's WHERE clause.
Only one batch of rows is ever formatted at a time, so memory stays flat whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import Engine

from core import models
from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.csvout import FORMULA_STARTS, CsvWriter, csv_chunks, neutralise, open_output
from core.db import get_engine, streamed_rows
from core.segments.columnar import NAT, to_us
from core.segments.definition import SegmentDefinition, predictions_used
from core.segments.evaluator import evaluator_for
from core.segments.sql import as_naive_utc, base_from, check_references, where_clause
from core.tiers import TIER_NAMES

__all__ = ["EXPORT_COLUMNS", "FORMULA_STARTS", "export_chunks", "export_csv", "export_csv_stream", "neutralise"]

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
CHUNK_USERS = 100_000
_TEXT = [kind == "text" for _, _, kind in EXPORT_COLUMNS]
_FLAG_TEXT = pa.array(["false", "true"])
_TIER_TEXT = pa.array(list(TIER_NAMES))


def _prediction_names(engine: Engine, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    table = models.Prediction.__table__
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
        return {row.id: row.name for row in rows}


def export_header(definition: SegmentDefinition, engine: Engine | None = None) -> list[str]:
    engine = engine or get_engine()
    used = predictions_used(definition)
    names = _prediction_names(engine, used)
    header = [name for name, _, _ in EXPORT_COLUMNS]
    for prediction in used:
        label = names.get(prediction, f"prediction {prediction}")
        header += [f"{label} score", f"{label} category"]
    return header


def _times(us: np.ndarray) -> pa.Array:
    """Times trimmed to seconds ("YYYY-MM-DD HH:MM:SS"), empty when missing."""
    us = np.asarray(us, dtype=np.int64)
    missing = us == NAT
    seconds = np.where(missing, 0, us // 1_000_000)  # floor: the stored text cut at the second
    return pc.cast(pa.array(seconds, type=pa.timestamp("s"), mask=missing), pa.string())


def _flags(values: np.ndarray) -> pa.Array:
    """1 / 0 / -1 (unknown) as true / false / empty."""
    values = np.asarray(values, dtype=np.int8)
    return _FLAG_TEXT.take(pa.array(values, mask=values < 0))


def _scores(score: np.ndarray) -> pa.Array:
    """Scores as Python prints a float rounded to 2 decimals ("75.0", "74.99"), empty when unscored."""
    score = np.round(np.asarray(score, dtype=np.float64), 2)
    missing = np.isnan(score)
    text = pc.cast(pa.array(np.where(missing, 0.0, score), mask=missing), pa.string())
    whole = pc.invert(pc.match_substring(text, "."))
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)


def _categories(codes: np.ndarray) -> pa.Array:
    codes = np.asarray(codes, dtype=np.int8)
    return _TIER_TEXT.take(pa.array(codes, mask=codes < 0))


def _batch(text: dict[str, pa.Array], times: dict[str, np.ndarray], sessions, flags: dict, scores: list) -> list:
    columns = [text[name] for name in ("external_id", "first_name", "email", "platform", "country", "language")]
    columns.append(text["timezone"])
    columns += [_times(times["created_us"]), _times(times["first_used_us"]), _times(times["last_used_us"])]
    columns.append(pc.cast(pa.array(np.asarray(sessions, dtype=np.int64)), pa.string()))
    columns += [_flags(flags["push_opt_in"]), _flags(flags["email_opt_in"])]
    for score, codes in scores:
        columns += [_scores(score), _categories(codes)]
    return columns


def export_chunks(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None, via_sql: bool = False
) -> Iterator[list[pa.Array]]:
    """The export's rows (after the header) as batches of columns, at most CHUNK_USERS rows each."""
    engine = engine or get_engine()
    used = predictions_used(definition)
    evaluator = evaluator_for(engine)
    if via_sql or not evaluator.in_memory:
        yield from _chunks_via_sql(definition, engine, now, used)
        return
    store = evaluator.store
    positions = np.flatnonzero(evaluator.mask(definition, now))
    table = store.table
    for start in range(0, len(positions), CHUNK_USERS):
        at = positions[start : start + CHUNK_USERS]
        contiguous = int(at[-1]) - int(at[0]) + 1 == len(at)  # e.g. everyone: a zero-copy slice
        rows = table.slice(int(at[0]), len(at)) if contiguous else table.take(pa.array(at))
        text = {name: rows.column(name).combine_chunks() for name in _TEXT_NAMES}
        times = {name: rows.column(name).to_numpy() for name in ("created_us", "first_used_us", "last_used_us")}
        flags = {name: rows.column(name).to_numpy() for name in ("push_opt_in", "email_opt_in")}
        scores = [(store.scores(p).score[at], store.scores(p).category[at]) for p in used]
        yield _batch(text, times, rows.column("session_count").to_numpy(), flags, scores)


_TEXT_NAMES = ("external_id", "first_name", "email", "platform", "country", "language", "timezone")


def _select():
    return sa.select(*(column for _, column, _ in EXPORT_COLUMNS)).select_from(base_from())


def _tri_state(values: list) -> np.ndarray:
    return np.array([-1 if v is None else int(bool(v)) for v in values], dtype=np.int8)


def _chunks_via_sql(
    definition: SegmentDefinition, engine: Engine, now: datetime | None, used: list[int]
) -> Iterator[list[pa.Array]]:
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
    tiers = {name: code for code, name in enumerate(TIER_NAMES)}
    for rows in streamed_rows(engine, query, CHUNK_USERS):
        columns = list(zip(*rows, strict=True))
        text = {name: pa.array(columns[k], pa.string()) for k, name in enumerate(_TEXT_NAMES)}
        times = {
            "created_us": to_us(columns[7]),
            "first_used_us": to_us(columns[8]),
            "last_used_us": to_us(columns[9]),
        }
        flags = {"push_opt_in": _tri_state(columns[11]), "email_opt_in": _tri_state(columns[12])}
        score_columns = []
        for k in range(len(used)):
            score = np.array([np.nan if v is None else v for v in columns[width + 2 * k]], dtype=float)
            codes = np.array([tiers.get(v, -1) for v in columns[width + 2 * k + 1]], dtype=np.int8)
            score_columns.append((score, codes))
        yield _batch(text, times, np.asarray(columns[10], dtype=np.int64), flags, score_columns)


def _text_flags(header: list[str]) -> list[bool]:
    """Which columns hold user text (neutralised): the user columns, not the scores we format."""
    return _TEXT + [False] * (len(header) - len(_TEXT))


def export_csv(
    definition: SegmentDefinition,
    out: IO | str | Path,
    engine: Engine | None = None,
    now: datetime | None = None,
    via_sql: bool = False,
    *,
    actor: Actor = LOCAL_ADMIN,
    subject: str = "a segment",
) -> int:
    """Write the segment as CSV to a stream (binary or text) or a path; returns the number of user rows.

    Needs the EXPORT permission; `subject` names what is exported (a saved segment's name) for the audit log.
    """
    require(actor, Permission.EXPORT)
    engine = engine or get_engine()
    header = export_header(definition, engine)
    stream, owned = open_output(out)
    try:
        writer = CsvWriter(stream, header, _text_flags(header))
        writer.write_all(export_chunks(definition, engine, now, via_sql))
    finally:
        if owned:
            stream.close()
    audit(engine, actor, "export", subject, rows=writer.rows)
    return writer.rows


def export_csv_stream(
    definition: SegmentDefinition,
    engine: Engine | None = None,
    now: datetime | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
    subject: str = "a segment",
) -> Iterator[bytes]:
    """The same CSV as UTF-8 chunks made as they are read: what a browser download streams.

    The permission and the header are checked at once; the rows are chosen when the first row
    chunk is read, and the export is audited once the last one is made.
    """
    require(actor, Permission.EXPORT)
    engine = engine or get_engine()
    header = export_header(definition, engine)
    return csv_chunks(
        header,
        export_chunks(definition, engine, now),
        _text_flags(header),
        done=lambda rows: audit(engine, actor, "export", subject, rows=rows),
    )

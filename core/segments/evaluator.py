"""The one seam between a definition and the data: `evaluator_for(engine)`.

Every answer about a segment (count, ids, funnel, overview, reach, likelihood breakdown, one
user's explanation, sample, export rows) and every fact the pages offer in pickers
(predictions, event names, attribute values) comes from the evaluator this function picks,
once, from the number of users (LIKELY_IN_MEMORY_USERS, core.segments.store):

  * `MemoryEvaluator`: numpy masks over the shared in-memory store (exact live counts in
    milliseconds; the store loads on first use, from the columnar cache when it exists);
  * `SqlEvaluator`: the definition's SQL clause on the database; it never loads the store.
    Every figure of one overview comes from a single scan (one SUM(CASE ...) per figure).

Both give the same answers (tests/test_segment_equivalence.py, tests/test_evaluator.py).
A columnar engine for data that outgrows one machine would be a third class here.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from core import models
from core.channels import CHANNELS, reachable_clauses
from core.db import data_version, get_engine
from core.errors import UserError
from core.segments import evaluate as memory
from core.segments.definition import SegmentDefinition, located_filters, truncated
from core.segments.filters import SCORES, USERS
from core.segments.sql import as_naive_utc, base_from, check_references, sql_count, sql_user_ids, where_clause
from core.segments.store import PredictionInfo, fits_in_memory, user_store
from core.tiers import TIERS


def evaluator_for(engine: Engine | None = None) -> MemoryEvaluator | SqlEvaluator:
    """The evaluator for `engine`'s data: in memory when it fits, else SQL."""
    engine = engine or get_engine()
    version = data_version(engine)  # read once: the choice and the store agree on one version
    return MemoryEvaluator(engine, version) if fits_in_memory(engine, version) else SqlEvaluator(engine)


class MemoryEvaluator:
    in_memory = True

    def __init__(self, engine: Engine, version: int | None = None):
        self.engine = engine
        self.version = version  # the data version to answer at (None: the current one, on first use)
        self._store = None

    @property
    def store(self):
        if self._store is None:
            self._store = user_store(self.engine, self.version)
        return self._store

    def mask(self, definition: SegmentDefinition, now: datetime | None = None) -> np.ndarray:
        return memory.segment_mask(definition, self.store, now)

    def count(self, definition: SegmentDefinition, now=None) -> int:
        return int(np.count_nonzero(self.mask(definition, now)))

    def user_ids(self, definition: SegmentDefinition, now=None) -> np.ndarray:
        store = self.store
        return store.ids[memory.segment_mask(definition, store, now)]

    def funnel(self, definition: SegmentDefinition, now=None, names=None) -> list[memory.FunnelStep]:
        return memory.memory_funnel(definition, self.store, now, names)

    def overview(
        self, definition: SegmentDefinition, now=None, breakdown_prediction=None, names=None
    ) -> memory.Overview:
        return memory.memory_overview(definition, self.store, now, breakdown_prediction, names)

    def reachable_counts(self, definition: SegmentDefinition, now=None) -> dict[str, int]:
        store = self.store
        mask = memory.segment_mask(definition, store, now)
        return {channel: int(np.count_nonzero(mask & store.reachable[channel])) for channel in CHANNELS}

    def likelihood_breakdown(self, definition: SegmentDefinition, prediction_id: int, now=None) -> list[dict]:
        store = self.store
        return memory.breakdown_rows(memory.segment_mask(definition, store, now), store, prediction_id)

    def explain_user(
        self, definition: SegmentDefinition, external_id: str, now=None, names=None
    ) -> memory.UserExplanation:
        return memory.memory_explain_user(definition, external_id, self.store, now, names)

    def pending_event_loads(self, definition: SegmentDefinition) -> list[str]:
        store = self.store
        needed = {item.kind.event_times_used(item.spec) for item in located_filters(definition)} - {None}
        return sorted(event for event in needed if not store.has_event_times(event))

    def total_users(self) -> int:
        return self.store.size

    def predictions(self) -> dict[int, PredictionInfo]:
        return self.store.predictions

    def event_names(self) -> set[str]:
        return self.store.event_names

    def values_of(self, column: str) -> list[str]:
        return self.store.values_of(column)

    def most_common(self, column: str, n: int = 1) -> list[str]:
        return self.store.most_common(column, n)


def _count_when(clause) -> sa.ColumnElement:
    """How many rows `clause` holds for (a NULL clause counts as false, as a mask's missing value)."""
    return sa.func.coalesce(sa.func.sum(sa.case((clause, 1), else_=0)), 0)


class SqlEvaluator:
    """The same answers as SQL on the database: nothing is loaded into memory."""

    in_memory = False

    def __init__(self, engine: Engine):
        self.engine = engine

    def _sums(self, clauses: list) -> list[int]:
        query = sa.select(*(_count_when(c) for c in clauses)).select_from(base_from())
        with self.engine.connect() as connection:
            return [int(v) for v in connection.execute(query).one()]

    def count(self, definition: SegmentDefinition, now=None) -> int:
        return sql_count(definition, self.engine, now)

    def user_ids(self, definition: SegmentDefinition, now=None) -> np.ndarray:
        return sql_user_ids(definition, self.engine, now)

    def _funnel_clauses(self, definition: SegmentDefinition, now: datetime) -> list[tuple]:
        steps = []
        for k, item in enumerate(located_filters(definition), start=1):
            steps.append((item, item.kind.clause(item.spec, now), where_clause(truncated(definition, k), now)))
        return steps

    def _evaluate(self, definition: SegmentDefinition, now, breakdown_prediction=None, names=None) -> memory.Overview:
        check_references(definition, self.engine)
        now = as_naive_utc(now)
        clause = where_clause(definition, now)
        steps = self._funnel_clauses(definition, now)
        reach = reachable_clauses()
        figures = [sa.true(), clause]
        figures += [c for _, alone, after in steps for c in (alone, after)]
        figures += [sa.and_(clause, reach[channel]) for channel in CHANNELS]
        if breakdown_prediction is not None:
            figures += self._breakdown_clauses(clause, int(breakdown_prediction))
        sums = self._sums(figures)
        total, size = sums[0], sums[1]
        at = 2
        funnel = []
        for item, _, _ in steps:
            funnel.append(memory.FunnelStep(item.where, item.kind.sentence(item.spec, names or {}), *sums[at : at + 2]))
            at += 2
        reachable = dict(zip(CHANNELS, sums[at : at + len(CHANNELS)], strict=True))
        at += len(CHANNELS)
        breakdown = None
        if breakdown_prediction is not None:
            breakdown = memory.breakdown_table([*sums[at:]], size)
        return memory.Overview(size, total, funnel, reachable, breakdown)

    def _breakdown_clauses(self, clause, prediction_id: int) -> list:
        self._check_prediction(prediction_id)
        category = (
            sa.select(SCORES.c.category)
            .where(SCORES.c.prediction_id == prediction_id, SCORES.c.user_id == USERS.c.id)
            .scalar_subquery()
        )
        tiers = [sa.and_(clause, category == tier.name) for tier in TIERS]
        return [*tiers, sa.and_(clause, category.is_(None))]

    def _check_prediction(self, prediction_id: int) -> None:
        if prediction_id not in self.predictions():
            raise UserError(f"likelihood breakdown: prediction {prediction_id} does not exist")

    def funnel(self, definition: SegmentDefinition, now=None, names=None) -> list[memory.FunnelStep]:
        return self._evaluate(definition, now, None, names).funnel

    def overview(
        self, definition: SegmentDefinition, now=None, breakdown_prediction=None, names=None
    ) -> memory.Overview:
        return self._evaluate(definition, now, breakdown_prediction, names)

    def reachable_counts(self, definition: SegmentDefinition, now=None) -> dict[str, int]:
        return self._evaluate(definition, now).reachable

    def likelihood_breakdown(self, definition: SegmentDefinition, prediction_id: int, now=None) -> list[dict]:
        return self._evaluate(definition, now, prediction_id).breakdown

    def explain_user(
        self, definition: SegmentDefinition, external_id: str, now=None, names=None
    ) -> memory.UserExplanation:
        now = as_naive_utc(now)
        external_id = str(external_id).strip()
        with self.engine.connect() as connection:
            user_id = connection.execute(sa.select(USERS.c.id).where(USERS.c.external_id == external_id)).scalar()
        if user_id is None:
            return memory.UserExplanation(external_id, None, False, [f"no user has the id {external_id!r}"], [])
        check_references(definition, self.engine)
        items = list(located_filters(definition))
        query = (
            sa.select(*(sa.case((item.kind.clause(item.spec, now), 1), else_=0) for item in items))
            .select_from(base_from())
            .where(USERS.c.id == user_id)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).one() if items else ()
        results = [bool(v) for v in row]
        return memory.explanation(definition, external_id, int(user_id), items, results, names)

    def pending_event_loads(self, definition: SegmentDefinition) -> list[str]:
        return []  # SQL reads what it needs per query: there is nothing to load first

    def total_users(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(USERS)).scalar_one())

    def predictions(self) -> dict[int, PredictionInfo]:
        table = models.Prediction.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.id, table.c.name, table.c.kind, table.c.event))
            return {int(r.id): PredictionInfo(int(r.id), r.name, r.kind or "full", r.event) for r in rows}

    def event_names(self) -> set[str]:
        table = models.UserEventFacts.__table__
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(table.c.event).distinct()).scalars())

    def values_of(self, column: str) -> list[str]:
        with self.engine.connect() as connection:
            values = connection.execute(sa.select(USERS.c[column]).where(USERS.c[column].is_not(None)).distinct())
            return sorted(str(v) for v in values.scalars())

    def most_common(self, column: str, n: int = 1) -> list[str]:
        """The `n` most frequent values; ties go to the value seen first in id order, as in memory."""
        col = USERS.c[column]
        query = (
            sa.select(col)
            .where(col.is_not(None))
            .group_by(col)
            .order_by(sa.func.count().desc(), sa.func.min(USERS.c.id))
            .limit(n)
        )
        with self.engine.connect() as connection:
            return [str(v) for v in connection.execute(query).scalars()]

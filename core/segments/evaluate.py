"""Live answers from the in-memory store: counts, ids, funnel, reach, breakdown, lookup, sample."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from core.channels import CHANNELS
from core.db import get_engine
from core.errors import UserError
from core.segments.definition import Located, SegmentDefinition, located_filters, truncated
from core.segments.filters import FILTERS, USER_FACTS, USERS, FilterError
from core.segments.sql import as_naive_utc
from core.segments.store import UserStore
from core.tiers import TIERS


def filter_mask(item: Located, store: UserStore, now: datetime, memo: dict | None = None) -> np.ndarray:
    """One filter's mask (shared from `memo` when given: do not modify it); errors name the filter."""
    key = None
    if memo is not None:
        key = item.spec  # a frozen model: equal specs share one mask
        if key in memo:
            return memo[key]
    try:
        mask = item.kind.mask(item.spec, store, now)
    except FilterError as error:
        raise UserError(f"{item.where}: {error}") from None
    if memo is not None:
        memo[key] = mask
    return mask


def _group_mask(section: str, g: int, group, store: UserStore, now: datetime, memo) -> np.ndarray | None:
    result = None
    for f, spec in enumerate(group.filters):
        mask = filter_mask(Located(section, g, f, spec, FILTERS[spec.type]), store, now, memo)
        if result is None:
            result = mask.copy() if memo is not None else mask
        elif group.match == "all":
            result &= mask
        else:
            result |= mask
    return result


def segment_mask(
    definition: SegmentDefinition, store: UserStore, now: datetime | None = None, memo: dict | None = None
) -> np.ndarray:
    """Which of the store's users the definition keeps (a boolean array aligned with store.ids).

    `memo` (a dict kept by the caller) shares filter masks between several evaluations at the
    same `now`, e.g. the funnel's prefixes.
    """
    now = as_naive_utc(now)
    result = None
    for g, group in enumerate(definition.groups):
        mask = _group_mask("groups", g, group, store, now, memo)
        if mask is None:
            continue
        if result is None:
            result = mask
        elif definition.match == "all":
            result &= mask
        else:
            result |= mask
    if result is None:
        result = np.ones(store.size, dtype=bool)
    for g, group in enumerate(definition.exclude):
        mask = _group_mask("exclude", g, group, store, now, memo)
        if mask is not None:
            result &= ~mask
    return result


def _evaluator(engine: Engine | None):
    from core.segments.evaluator import evaluator_for  # the seam builds on this module: imported here

    return evaluator_for(engine)


def matching_user_ids(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None
) -> np.ndarray:
    """The users the definition keeps: sorted int64 users.id."""
    return _evaluator(engine).user_ids(definition, now)


def pending_event_loads(definition: SegmentDefinition, engine: Engine | None = None) -> list[str]:
    """Events whose every timestamp this definition needs and the in-memory store has not loaded
    yet: the next count reads them once (from the columnar cache when it holds them)."""
    return _evaluator(engine).pending_event_loads(definition)


def count(definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None) -> int:
    """The exact audience size (in memory; as one SQL COUNT when the data is too big for memory)."""
    return _evaluator(engine).count(definition, now)


def total_users(engine: Engine | None = None) -> int:
    return _evaluator(engine).total_users()


@dataclass(frozen=True)
class FunnelStep:
    where: str
    sentence: str
    alone: int  # users this filter keeps on its own
    after: int  # audience size once this filter (and every one before it) applies


def funnel(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None, names=None
) -> list[FunnelStep]:
    """Audience size after each filter, in reading order (groups, then exclusions)."""
    return _evaluator(engine).funnel(definition, now, names)


def memory_funnel(definition: SegmentDefinition, store: UserStore, now: datetime | None, names) -> list[FunnelStep]:
    return _funnel(definition, store, as_naive_utc(now), {}, names)


def _funnel(definition: SegmentDefinition, store: UserStore, now: datetime, memo: dict, names) -> list[FunnelStep]:
    steps = []
    for k, item in enumerate(located_filters(definition), start=1):
        alone = int(np.count_nonzero(filter_mask(item, store, now, memo)))
        after = int(np.count_nonzero(segment_mask(truncated(definition, k), store, now, memo)))
        steps.append(FunnelStep(item.where, item.kind.sentence(item.spec, names or {}), alone, after))
    return steps


@dataclass(frozen=True)
class Overview:
    """Everything the segment builder shows about a definition, from one evaluation."""

    count: int
    total: int
    funnel: list[FunnelStep]
    reachable: dict[str, int]
    breakdown: list[dict] | None

    @property
    def share(self) -> float:
        return self.count / self.total * 100 if self.total else 0.0


def overview(
    definition: SegmentDefinition,
    engine: Engine | None = None,
    now: datetime | None = None,
    breakdown_prediction: int | None = None,
    names=None,
) -> Overview:
    """Count, % of all users, funnel, reach per channel and (optionally) a likelihood breakdown."""
    return _evaluator(engine).overview(definition, now, breakdown_prediction, names)


def memory_overview(
    definition: SegmentDefinition, store: UserStore, now: datetime | None, breakdown_prediction: int | None, names
) -> Overview:
    now, memo = as_naive_utc(now), {}
    mask = segment_mask(definition, store, now, memo)
    size = int(np.count_nonzero(mask))
    reach = {channel: int(np.count_nonzero(mask & store.reachable[channel])) for channel in CHANNELS}
    breakdown = breakdown_rows(mask, store, breakdown_prediction) if breakdown_prediction is not None else None
    return Overview(size, store.size, _funnel(definition, store, now, memo, names), reach, breakdown)


def reachable_counts(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None
) -> dict[str, int]:
    """For each channel (core.channels.CHANNELS), how many users of the segment it can reach."""
    return _evaluator(engine).reachable_counts(definition, now)


def likelihood_breakdown(
    definition: SegmentDefinition, prediction_id: int, engine: Engine | None = None, now: datetime | None = None
) -> list[dict]:
    """How many of the segment's users sit in each tier of a prediction (any kind), plus unscored."""
    return _evaluator(engine).likelihood_breakdown(definition, prediction_id, now)


def breakdown_rows(mask: np.ndarray, store: UserStore, prediction_id: int) -> list[dict]:
    try:
        scores = store.scores(int(prediction_id), targeting=False)
    except FilterError as error:
        raise UserError(f"likelihood breakdown: {error}") from None
    counts = [int(np.count_nonzero(mask & (scores.category == code))) for code in range(len(TIERS))]
    counts.append(int(np.count_nonzero(mask & (scores.category < 0))))
    return breakdown_table(counts, int(np.count_nonzero(mask)))


def breakdown_table(counts: list[int], total: int) -> list[dict]:
    """Rows per tier, then "Unscored", from their user counts (`counts` in that order)."""
    rows = [
        {"tier": tier.name, "label": tier.label(), "users": users} for tier, users in zip(TIERS, counts, strict=False)
    ]
    rows.append({"tier": "Unscored", "label": "Unscored", "users": counts[len(TIERS)]})
    for row in rows:
        row["share"] = row["users"] / total * 100 if total else 0.0
    return rows


@dataclass(frozen=True)
class FilterCheck:
    where: str
    sentence: str
    passed: bool
    excluding: bool  # an exclusion-group filter (passing it counts against the user)


@dataclass(frozen=True)
class UserExplanation:
    external_id: str
    user_id: int | None
    matches: bool
    reasons: list[str]
    checks: list[FilterCheck]


def explain_user(
    definition: SegmentDefinition,
    external_id: str,
    engine: Engine | None = None,
    now: datetime | None = None,
    names=None,
) -> UserExplanation:
    """Does this user match, and if not, which filters keep them out."""
    return _evaluator(engine).explain_user(definition, external_id, now, names)


def memory_explain_user(
    definition: SegmentDefinition, external_id: str, store: UserStore, now: datetime | None, names
) -> UserExplanation:
    now = as_naive_utc(now)
    external_id = str(external_id).strip()
    with store.engine.connect() as connection:
        user_id = connection.execute(sa.select(USERS.c.id).where(USERS.c.external_id == external_id)).scalar()
    if user_id is None:
        return UserExplanation(external_id, None, False, [f"no user has the id {external_id!r}"], [])
    position = store.positions_of([user_id])
    if not len(position):
        return UserExplanation(external_id, user_id, False, ["this user arrived after the data was loaded"], [])
    at = int(position[0])
    items = list(located_filters(definition))
    results = [bool(filter_mask(item, store, now)[at]) for item in items]
    return explanation(definition, external_id, int(user_id), items, results, names)


def explanation(
    definition: SegmentDefinition, external_id: str, user_id: int, items, results, names
) -> UserExplanation:
    """The verdict and reasons from each filter's result for one user (`items` in reading order)."""
    checks, passed = [], {}
    for item, ok in zip(items, results, strict=True):
        passed.setdefault((item.section, item.group), []).append((item, ok))
        checks.append(
            FilterCheck(item.where, item.kind.sentence(item.spec, names or {}), ok, item.section == "exclude")
        )

    def group_ok(section: str, g: int, match: str) -> bool:
        results = [ok for _, ok in passed.get((section, g), [])]
        return all(results) if match == "all" else any(results)

    groups = [(g, grp) for g, grp in enumerate(definition.groups) if grp.filters]
    group_results = {g: group_ok("groups", g, grp.match) for g, grp in groups}
    if not groups:
        included = True
    elif definition.match == "all":
        included = all(group_results.values())
    else:
        included = any(group_results.values())
    reasons = []
    if not included:
        for g, _group in groups:
            if group_results[g] and definition.match == "any":
                continue
            for item, ok in passed[("groups", g)]:
                if not ok:
                    reasons.append(f"fails {item.where}: {item.kind.sentence(item.spec, names or {})}")
    excluded_by = [g for g, grp in enumerate(definition.exclude) if grp.filters and group_ok("exclude", g, grp.match)]
    for g in excluded_by:
        reasons.append(f"removed by exclusion group {g + 1}")
    matches = included and not excluded_by
    if matches:
        reasons = ["matches every condition"]
    return UserExplanation(external_id, user_id, matches, reasons, checks)


SAMPLE_COLUMNS = ("external_id", "first_name", "email", "platform", "country", "language", "timezone")


def sample(
    definition: SegmentDefinition, n: int = 10, engine: Engine | None = None, now: datetime | None = None, seed: int = 0
) -> pd.DataFrame:
    """Up to `n` matching users (a reproducible random pick), with their main facts."""
    engine = engine or get_engine()
    ids = matching_user_ids(definition, engine, now)
    if len(ids) > n:
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))
    columns = [USERS.c[name] for name in SAMPLE_COLUMNS] + [USER_FACTS.c.last_used_at, USER_FACTS.c.session_count]
    query = (
        sa.select(*columns)
        .select_from(USERS.outerjoin(USER_FACTS, USER_FACTS.c.user_id == USERS.c.id))
        .where(USERS.c.id.in_([int(i) for i in ids]))
        .order_by(USERS.c.id)
    )
    with engine.connect() as connection:
        result = connection.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

"""Segments: who a campaign or an analyst targets, defined once, counted live, exported at scale.

A definition (see `definition.py` and docs/segments.md) is a small JSON document of filter
groups, parsed once at each edge into a frozen `SegmentDefinition` that core functions take.
Each filter (`filters.py`) renders three ways: an in-memory numpy mask over the shared user
store (`store.py`, loaded once per data version from the columnar cache, `columnar.py`) for
exact live counts, a parameterised SQL clause (`sql.py`) for very large databases, and a
sentence. `evaluator_for` (`evaluator.py`) picks memory or SQL once, and every answer goes
through it.
"""

from core.segments.definition import (
    VERSION,
    Group,
    SegmentDefinition,
    definition_of,
    definition_schema,
    describe,
    dumps,
    empty_definition,
    filter_sentence,
    is_empty,
    loads,
    parse_definition,
    parse_filter,
    predictions_used,
)
from core.segments.evaluate import (
    FunnelStep,
    UserExplanation,
    count,
    explain_user,
    funnel,
    likelihood_breakdown,
    matching_user_ids,
    overview,
    pending_event_loads,
    reachable_counts,
    sample,
    segment_mask,
    total_users,
)
from core.segments.evaluator import evaluator_for
from core.segments.filters import FILTERS
from core.segments.library import (
    SavedSegment,
    campaigns_using,
    delete_segment,
    duplicate_segment,
    get_segment,
    list_segments,
    rename_segment,
    save_segment,
    update_segment,
)
from core.segments.sql import sql_count, sql_user_ids, where_clause
from core.segments.store import user_store

__all__ = [
    "SavedSegment",
    "campaigns_using",
    "delete_segment",
    "duplicate_segment",
    "get_segment",
    "list_segments",
    "rename_segment",
    "save_segment",
    "update_segment",
    "FILTERS",
    "VERSION",
    "FunnelStep",
    "UserExplanation",
    "count",
    "definition_of",
    "definition_schema",
    "Group",
    "SegmentDefinition",
    "parse_definition",
    "parse_filter",
    "describe",
    "dumps",
    "empty_definition",
    "evaluator_for",
    "explain_user",
    "filter_sentence",
    "funnel",
    "is_empty",
    "likelihood_breakdown",
    "loads",
    "matching_user_ids",
    "overview",
    "pending_event_loads",
    "predictions_used",
    "reachable_counts",
    "sample",
    "segment_mask",
    "sql_count",
    "sql_user_ids",
    "total_users",
    "user_store",
    "where_clause",
]

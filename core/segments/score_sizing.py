"""Live sizing of a segment while its likelihood-score filter's slider moves.

For one `likelihood_score` filter of a definition, each user falls in one of four cases,
found by evaluating the definition with that filter forced true and forced false:
- in whatever the range: counted in `base`;
- in only when their score is in the range (the filter sits in an include group): `adds`;
- in only when their score is out of the range (it sits in an exclusion group): `removes`;
- out whatever the range.
So the segment's size for a whole-score range [a, b] is
`base + adds in [a, b] - removes in [a, b]`, and per-whole-score cumulative counts of `adds`
and `removes` let the browser size the whole segment on every pointer move.

The filter is forced by rewriting the definition, never by reaching into the evaluator: the
user's filter becomes the range 0-100 (true for every scored user; unscored users never pass
a score filter), or a one-point range no user of that point can be in (false).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Engine

from core.errors import UserError
from core.predictions.distribution import whole_score_counts
from core.predictions.store import load_scores
from core.segments.definition import SegmentDefinition
from core.segments.evaluate import matching_user_ids, segment_mask
from core.segments.store import fits_in_memory, user_store


@dataclass(frozen=True)
class ScoreFilterSizing:
    """How a definition's size depends on one score filter's range (see the module docstring)."""

    base: int
    adds_below: tuple[int, ...]  # index = whole score 0..100
    adds_at_most: tuple[int, ...]
    removes_below: tuple[int, ...]
    removes_at_most: tuple[int, ...]

    def size(self, low: int, high: int) -> int:
        """The segment's size with the filter's range set to [low, high] (whole scores)."""
        added = self.adds_at_most[high] - self.adds_below[low]
        removed = self.removes_at_most[high] - self.removes_below[low]
        return self.base + added - removed

    def users_below(self) -> tuple[int, ...]:
        """Per whole score k: the users whose membership the range decides, scoring under k."""
        return tuple(a + r for a, r in zip(self.adds_below, self.removes_below, strict=True))

    def users_by_score(self) -> tuple[int, ...]:
        """Per whole score k: the users whose membership the range decides, scoring k or less."""
        return tuple(a + r for a, r in zip(self.adds_at_most, self.removes_at_most, strict=True))

    def to_payload(self) -> dict:
        return {
            "base": self.base,
            "adds_below": list(self.adds_below),
            "adds_at_most": list(self.adds_at_most),
            "removes_below": list(self.removes_below),
            "removes_at_most": list(self.removes_at_most),
        }


def _with_filter(
    definition: SegmentDefinition, where: tuple[str, int, int], low: float, high: float
) -> SegmentDefinition:
    section, group, index = where
    groups = list(getattr(definition, section))
    filters = list(groups[group].filters)
    filters[index] = filters[index].model_copy(update={"min": low, "max": high})
    groups[group] = groups[group].model_copy(update={"filters": tuple(filters)})
    return definition.model_copy(update={section: tuple(groups)})


def score_filter_sizing(
    definition: SegmentDefinition,
    where: tuple[str, int, int],
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ScoreFilterSizing:
    """The sizing of `definition` as the likelihood-score filter at `where` = (section, group, index) moves.

    `where` indexes the definition as given ("groups" or "exclude", 0-based group, 0-based filter).
    """
    section, group, index = where
    spec = getattr(definition, section)[group].filters[index]
    if spec.type != "likelihood_score":
        raise UserError(f"{section} {group + 1}, filter {index + 1} is not a likelihood-score filter")
    prediction = spec.prediction
    # Forced false: the range [100, 100] leaves out everyone but users scoring exactly 100; for those
    # the range [0, 0] is the one that leaves them out.
    variants = [_with_filter(definition, where, *bounds) for bounds in ((0, 100), (100, 100), (0, 0))]
    if fits_in_memory(engine):
        store = user_store(engine)
        on, off_unless_100, off_unless_0 = (segment_mask(v, store, now) for v in variants)
        scores = store.scores(int(prediction)).score
    else:  # too big for memory: the evaluator's SQL path gives the ids, the scores come from the table
        chosen = [matching_user_ids(v, engine, now) for v in variants]
        scored_ids, scored = load_scores(engine, int(prediction))
        ids = np.unique(np.concatenate([*chosen, scored_ids]))
        on, off_unless_100, off_unless_0 = (np.isin(ids, c) for c in chosen)
        scores = np.full(len(ids), np.nan)
        scores[np.searchsorted(ids, scored_ids)] = scored
    off = np.where(scores == 100, off_unless_0, off_unless_100)
    adds_below, adds_at_most = whole_score_counts(scores[on & ~off])
    removes_below, removes_at_most = whole_score_counts(scores[off & ~on])
    return ScoreFilterSizing(
        base=int(np.count_nonzero(off)),
        adds_below=adds_below,
        adds_at_most=adds_at_most,
        removes_below=removes_below,
        removes_at_most=removes_at_most,
    )

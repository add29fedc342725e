"""The score distribution behind the Predictions page: histogram and live selection figures.

Scores are sorted once per prediction (and data version) and kept with their running sums,
so any slider position is answered with two binary searches, whatever the audience size.

`score_steps` condenses them into per-whole-score cumulative arrays (202 numbers of each kind):
the browser's slider answers every integer range from them while the mouse moves, with the very
same subtractions `summary` does, so the live figures equal the server's exactly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from core.predictions import store
from core.tiers import TIERS, category_for

BUCKET_WIDTH = 5
BUCKETS = 100 // BUCKET_WIDTH  # 20 buckets of 5 points
CACHE_SIZE = 4


@dataclass(frozen=True)
class SelectionSummary:
    """What a score selection targets, out of the whole prediction audience."""

    audience: int
    selected: int
    selected_share: float  # of the audience, 0-1
    expected_total: float  # expected performers in the whole audience (sum of probabilities)
    expected_captured: float  # expected performers inside the selection
    expected_captured_share: float  # of all expected performers, 0-1
    not_expected_targeted: float  # expected non-performers inside the selection (sum of 1 - p)
    conversion_rate: float  # expected performers / selected users, 0-1
    base_rate: float  # expected performers / audience: targeting at random
    lift: float  # conversion_rate / base_rate (1 = no better than random)


@dataclass(frozen=True)
class ScoreSteps:
    """Cumulative counts and expected performers at each whole score 0..100 (index = score).

    `below[k]` users score under k and `at_most[k]` score k or less; `expected_*` are the sums of
    their probabilities. A range [a, b] holds `at_most[b] - below[a]` users; a tier [lo, hi)
    holds `below[hi] - below[lo]`.
    """

    below: tuple[int, ...]
    at_most: tuple[int, ...]
    expected_below: tuple[float, ...]
    expected_at_most: tuple[float, ...]

    def to_payload(self) -> dict:
        return {
            "below": list(self.below),
            "at_most": list(self.at_most),
            "expected_below": list(self.expected_below),
            "expected_at_most": list(self.expected_at_most),
        }


WHOLE_SCORES = np.arange(0, 101, dtype=float)


def whole_score_counts(scores: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(below, at_most) per whole score 0..100 of any scores (NaN, i.e. unscored, left out)."""
    ordered = np.sort(np.asarray(scores, dtype=float))
    ordered = ordered[~np.isnan(ordered)]
    below = np.searchsorted(ordered, WHOLE_SCORES, side="left")
    at_most = np.searchsorted(ordered, WHOLE_SCORES, side="right")
    return tuple(int(v) for v in below), tuple(int(v) for v in at_most)


class ScoreDistribution:
    """A prediction's scores, sorted, with prefix sums of their probabilities."""

    def __init__(self, scores: np.ndarray):
        self.scores = np.sort(np.asarray(scores, dtype=float))
        self.cumulative = np.concatenate(([0.0], np.cumsum(self.scores / 100.0)))
        edges = np.arange(0, 100 + BUCKET_WIDTH, BUCKET_WIDTH, dtype=float)
        counts, _ = np.histogram(self.scores, bins=edges)  # the last bucket includes 100
        self.bucket_counts = counts.astype(int)
        self._steps: ScoreSteps | None = None

    def score_steps(self) -> ScoreSteps:
        """The per-whole-score arrays the live slider works from (see `ScoreSteps`); built once."""
        if self._steps is None:
            below = np.searchsorted(self.scores, WHOLE_SCORES, side="left")
            at_most = np.searchsorted(self.scores, WHOLE_SCORES, side="right")
            self._steps = ScoreSteps(
                below=tuple(int(i) for i in below),
                at_most=tuple(int(i) for i in at_most),
                expected_below=tuple(float(self.cumulative[i]) for i in below),
                expected_at_most=tuple(float(self.cumulative[i]) for i in at_most),
            )
        return self._steps

    @property
    def audience(self) -> int:
        return len(self.scores)

    def _span(self, low: float, high: float, include_high: bool = True) -> tuple[int, int]:
        start = int(np.searchsorted(self.scores, low, side="left"))
        stop = int(np.searchsorted(self.scores, high, side="right" if include_high else "left"))
        return start, max(start, stop)

    def spans(self, score_min: float = 0, score_max: float = 100, categories=()) -> list[tuple[int, int]]:
        """Index ranges of the sorted scores a selection covers.

        A score range is inclusive at both ends (like the likelihood_score filter); tiers are
        [low, high) with High including 100 (like the likelihood_category filter).
        """
        if categories:
            return [self._span(t.low, t.high, t.high >= 100) for t in TIERS if t.name in categories]
        return [self._span(score_min, score_max)]

    def summary(self, score_min: float = 0, score_max: float = 100, categories=()) -> SelectionSummary:
        spans = self.spans(score_min, score_max, tuple(categories))
        selected = sum(stop - start for start, stop in spans)
        captured = float(sum(self.cumulative[stop] - self.cumulative[start] for start, stop in spans))
        total = float(self.cumulative[-1])
        audience = self.audience
        base_rate = total / audience if audience else 0.0
        rate = captured / selected if selected else 0.0
        return SelectionSummary(
            audience=audience,
            selected=selected,
            selected_share=selected / audience if audience else 0.0,
            expected_total=total,
            expected_captured=captured,
            expected_captured_share=captured / total if total else 0.0,
            not_expected_targeted=selected - captured,
            conversion_rate=rate,
            base_rate=base_rate,
            lift=rate / base_rate if base_rate else 0.0,
        )

    def tier_figures(self) -> list[dict]:
        """Users and expected performers per tier, Low first."""
        rows = []
        for tier in TIERS:
            figures = self.summary(categories=(tier.name,))
            rows.append({"tier": tier.name, "users": figures.selected, "expected": figures.expected_captured})
        return rows

    def histogram(self, score_min: float = 0, score_max: float = 100, categories=()) -> list[dict]:
        """20 buckets of 5 points (lowest first): their tier, users, and how many of them the selection counts.

        A bar is `selected` when, and only when, the selection counts some of its users; `counted`
        below `users` makes it a partial bar (e.g. the 90-95 bar of the range 60-90 counts only
        the users scoring exactly 90).
        """
        spans = self.spans(score_min, score_max, tuple(categories))
        rows = []
        start = 0
        for number, count in enumerate(self.bucket_counts):
            low, high = number * BUCKET_WIDTH, (number + 1) * BUCKET_WIDTH
            stop = start + int(count)
            counted = sum(max(0, min(stop, span_stop) - max(start, span_start)) for span_start, span_stop in spans)
            rows.append(
                {
                    "low": low,
                    "high": high,
                    "users": int(count),
                    "counted": int(counted),
                    "tier": category_for(low),
                    "selected": counted > 0,
                }
            )
            start = stop
        return rows


_cache: OrderedDict[tuple, ScoreDistribution] = OrderedDict()
_lock = threading.Lock()


def score_distribution(engine: Engine, prediction_id: int) -> ScoreDistribution:
    """The prediction's distribution, loaded once per process and data version."""
    key = store.prediction_version(engine, prediction_id)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    _, scores = store.load_scores(engine, prediction_id)
    distribution = ScoreDistribution(scores)
    with _lock:
        _cache[key] = distribution
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return distribution


def clear_cache() -> None:
    with _lock:
        _cache.clear()

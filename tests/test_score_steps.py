"""The live slider's arithmetic in core: per-whole-score steps, partial bars and a segment's live size.

The browser repeats these subtractions on every pointer move (tests/browser/test_live_drag.py
checks it gives the same numbers); here they are held to `summary`, the histogram and `count`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core import segments
from core.predictions import ScoreDistribution, score_distribution
from core.segments import score_sizing
from core.segments import store as segment_store
from core.tiers import TIERS
from tests import prediction_fixtures
from tests.segment_fixtures import NOW, world  # noqa: F401 - the fixture

trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
RANGES = [(low, high) for low in range(101) for high in range(low, 101)]


def _from_steps(steps, spans):
    """The figures from the steps, with the summary's own operations in its own order."""
    selected = sum(stop - start for (start, _), (stop, _) in spans)
    captured = float(sum(stop - start for (_, start), (_, stop) in spans))
    return selected, captured


def _range_span(steps, low, high):
    return [((steps.below[low], steps.expected_below[low]), (steps.at_most[high], steps.expected_at_most[high]))]


def test_every_whole_score_range_from_the_steps_equals_the_summary_exactly(trained_engine):
    prediction_id = next(iter(_full_ids(trained_engine)))
    distribution = score_distribution(trained_engine, prediction_id)
    steps = distribution.score_steps()
    assert steps.at_most[100] == distribution.audience
    assert steps.expected_at_most[100] == distribution.summary().expected_total
    for low, high in RANGES:
        figures = distribution.summary(low, high)
        assert _from_steps(steps, _range_span(steps, low, high)) == (
            figures.selected,
            figures.expected_captured,
        ), (low, high)


@pytest.mark.parametrize("tiers", [("Low",), ("Medium",), ("High",), ("Medium", "High"), ("Low", "Medium", "High")])
def test_tiers_from_the_steps_are_half_open_except_high(tiers):
    scores = np.array([0, 49.99, 50, 74.99, 75, 99.5, 100, 100])
    distribution = ScoreDistribution(scores)
    steps = distribution.score_steps()
    spans = []
    for tier in TIERS:
        if tier.name in tiers:
            end = (steps.at_most[100], steps.expected_at_most[100]) if tier.high >= 100 else None
            end = end or (steps.below[int(tier.high)], steps.expected_below[int(tier.high)])
            spans.append(((steps.below[int(tier.low)], steps.expected_below[int(tier.low)]), end))
    figures = distribution.summary(categories=tiers)
    assert _from_steps(steps, spans) == (figures.selected, figures.expected_captured)


@pytest.mark.parametrize(
    ("low", "high", "categories", "partial"),
    [
        (60, 90, (), {"90-95": (1, 3)}),  # only the user scoring exactly 90 is counted
        (61, 89, (), {"60-65": (1, 2), "85-90": (1, 2)}),
        (75, 100, (), {}),
        (0, 100, ("Medium",), {}),
    ],
)
def test_a_bar_is_highlighted_when_and_only_when_its_users_are_counted(low, high, categories, partial):
    scores = np.array([60, 62.5, 70, 85, 89.5, 90, 92, 94, 99, 100, 20])
    distribution = ScoreDistribution(scores)
    bars = distribution.histogram(low, high, categories)
    figures = distribution.summary(low, high, categories)
    assert sum(bar["counted"] for bar in bars) == figures.selected
    for bar in bars:
        assert bar["selected"] == (bar["counted"] > 0)
        name = f"{bar['low']}-{bar['high']}"
        if name in partial:
            assert (bar["counted"], bar["users"]) == partial[name]
        else:
            assert bar["counted"] in (0, bar["users"]), name


def _full_ids(engine):
    from core.predictions import list_predictions

    return [p.id for p in list_predictions(engine) if p.kind == "full"]


def _score(prediction, low=75, high=100):
    return {"type": "likelihood_score", "prediction": prediction, "min": low, "max": high}


DEFINITIONS = {
    "alone": lambda p: {"groups": [{"match": "all", "filters": [_score(p)]}]},
    "and": lambda p: {"groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS"]}, _score(p)]}]},
    "or": lambda p: {"groups": [{"match": "any", "filters": [_score(p), {"type": "platform", "values": ["Web"]}]}]},
    "two groups any": lambda p: {
        "match": "any",
        "groups": [
            {"match": "all", "filters": [_score(p)]},
            {"match": "all", "filters": [{"type": "country", "values": ["FR"]}]},
        ],
    },
    "excluded": lambda p: {
        "groups": [{"match": "all", "filters": [{"type": "session_count", "min": 1, "max": None}]}],
        "exclude": [{"match": "all", "filters": [_score(p)]}],
    },
}
WHERE = {
    "alone": ("groups", 0, 0),
    "and": ("groups", 0, 1),
    "or": ("groups", 0, 0),
    "two groups any": ("groups", 0, 0),
    "excluded": ("exclude", 0, 0),
}


def _definition(name, prediction):
    return segments.parse_definition({"version": segments.VERSION, "match": "all", **DEFINITIONS[name](prediction)})


def _with_range(definition, where, low, high):
    section, group, index = where
    changed = definition.to_json()
    changed[section][group]["filters"][index] |= {"min": low, "max": high}
    return segments.parse_definition(changed)


@pytest.mark.parametrize("in_memory", [True, False], ids=["in memory", "sql"])
@pytest.mark.parametrize("name", list(DEFINITIONS))
def test_the_live_segment_size_equals_the_count_for_every_range(world, monkeypatch, name, in_memory):  # noqa: F811
    engine, predictions = world
    if not in_memory:
        monkeypatch.setattr(segment_store, "IN_MEMORY_USER_LIMIT", 0)
    definition = _definition(name, predictions["full"])
    sizing = score_sizing.score_filter_sizing(definition, WHERE[name], engine, NOW)
    # the six users score 0, 50, 74.99, 75, 100 and one is unscored: these ranges cross every edge
    edges = [0, 1, 49, 50, 51, 74, 75, 76, 99, 100]
    for low, high in itertools.combinations_with_replacement(edges, 2):
        expected = segments.count(_with_range(definition, WHERE[name], low, high), engine, NOW)
        assert sizing.size(low, high) == expected, (name, low, high)


def test_sizing_refuses_a_filter_that_is_not_a_score_filter(world):  # noqa: F811
    from core.errors import UserError

    engine, predictions = world
    definition = _definition("and", predictions["full"])
    with pytest.raises(UserError, match="not a likelihood-score filter"):
        score_sizing.score_filter_sizing(definition, ("groups", 0, 0), engine, NOW)

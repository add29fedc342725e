"""Likelihood tiers: the one place their names and boundaries live."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tier:
    name: str
    low: float  # inclusive
    high: float  # exclusive, except High which includes 100

    def label(self) -> str:
        closing = "]" if self.high >= 100 else ")"
        return f"{self.name} [{self.low:g}, {self.high:g}{closing}"


TIERS: tuple[Tier, ...] = (Tier("Low", 0, 50), Tier("Medium", 50, 75), Tier("High", 75, 100))
TIER_NAMES: tuple[str, ...] = tuple(t.name for t in TIERS)
TIER_BY_NAME = {t.name: t for t in TIERS}


def category_for(score: float) -> str:
    """The tier of a 0-100 score: Low [0,50), Medium [50,75), High [75,100]."""
    for tier in reversed(TIERS):
        if score >= tier.low:
            return tier.name
    return TIERS[0].name


def categories_for(scores: np.ndarray) -> np.ndarray:
    """Vectorised `category_for`."""
    names = np.array(TIER_NAMES, dtype=object)
    edges = np.array([t.low for t in TIERS[1:]])
    return names[np.searchsorted(edges, scores, side="right")]


def score_range_of(categories: list[str]) -> tuple[float, float]:
    """The smallest score range covering the given (adjacent) categories."""
    chosen = [TIER_BY_NAME[c] for c in categories]
    return min(t.low for t in chosen), max(t.high for t in chosen)

"""A likelihood selection made on the Predictions page, carried to segments and campaigns.

It travels as URL query parameters (shareable, survives page changes) and becomes one
segment filter: `likelihood_category` when categories were picked, else `likelihood_score`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import UserError
from core.tiers import TIER_NAMES


@dataclass(frozen=True)
class LikelihoodSelection:
    prediction_id: int
    score_min: float = 0.0
    score_max: float = 100.0
    categories: tuple[str, ...] = ()

    def __post_init__(self):
        if not 0 <= self.score_min <= self.score_max <= 100:
            raise UserError(f"score range {self.score_min:g}-{self.score_max:g} must lie within 0-100, low to high")
        unknown = [c for c in self.categories if c not in TIER_NAMES]
        if unknown:
            raise UserError(f"unknown likelihood category {', '.join(unknown)}; use {', '.join(TIER_NAMES)}")

    def to_filter(self) -> dict:
        """The segment filter this selection stands for."""
        if self.categories:
            return {
                "type": "likelihood_category",
                "prediction": self.prediction_id,
                "categories": list(self.categories),
            }
        return {
            "type": "likelihood_score",
            "prediction": self.prediction_id,
            "min": self.score_min,
            "max": self.score_max,
        }

    def to_query_params(self) -> dict[str, str]:
        params = {"prediction": str(self.prediction_id)}
        if self.categories:
            params["categories"] = ",".join(self.categories)
        else:
            params["min"] = f"{self.score_min:g}"
            params["max"] = f"{self.score_max:g}"
        return params

    @classmethod
    def from_query_params(cls, params: Mapping[str, str]) -> LikelihoodSelection | None:
        """The selection in a URL's query parameters, or None when there is none."""
        if "prediction" not in params:
            return None
        try:
            prediction_id = int(params["prediction"])
            categories = tuple(c for c in params.get("categories", "").split(",") if c)
            return cls(
                prediction_id=prediction_id,
                score_min=float(params.get("min", 0)),
                score_max=float(params.get("max", 100)),
                categories=categories,
            )
        except ValueError as error:
            raise UserError(f"the link's likelihood selection is not valid: {error}") from None

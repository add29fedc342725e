"""The tier playbook from the source document: whom each tier holds, what to send them, and
what a sliding scale of discounts would cost and earn with the expected conversions.

The money figures rest on stated assumptions the marketer can edit: an average order value
and a discount per tier. Expected conversions are the sum of the tier's probabilities; some
of those users would convert without any message, so the figures are an upper bound on what
the offer itself brings in.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.predictions.distribution import ScoreDistribution
from core.tiers import TIER_BY_NAME, TIER_NAMES

DEFAULT_AVERAGE_ORDER_VALUE = 40.0

# Most likely first: the order a marketer reads it in.
PLAYBOOK: dict[str, dict] = {
    "High": {
        "who": "Already on their way: a nudge is enough to win them quickly.",
        "messages": [
            "Cart reminder email",
            'In-app message: "Buy now!"',
            "Personalised push notification",
        ],
        "discount": 0.0,
    },
    "Medium": {
        "who": "Interested but undecided: where promotions pay off most.",
        "messages": [
            "A special discount",
            "Retargeting with relevant content",
            "Exclusive early access to a new product, feature or tier",
        ],
        "discount": 10.0,
    },
    "Low": {
        "who": "Unlikely to act soon: win them with a stronger offer, or keep the brand in mind.",
        "messages": [
            "A bigger discount, or a concentrated 3-day cross-channel push",
            "Personalised recommendations or hands-on help",
            "A lighter, passive track: weekly persona newsletter, customer stories, monthly tips",
        ],
        "discount": 25.0,
    },
}


@dataclass(frozen=True)
class TierPlan:
    tier: str
    range_label: str
    who: str
    messages: list[str]
    users: int
    expected_conversions: float
    discount_percent: float
    revenue: float  # expected conversions x order value x (1 - discount)
    discount_cost: float  # expected conversions x order value x discount


def default_discounts() -> dict[str, float]:
    return {name: PLAYBOOK[name]["discount"] for name in TIER_NAMES}


def tier_playbook(
    distribution: ScoreDistribution,
    discounts: dict[str, float] | None = None,
    average_order_value: float = DEFAULT_AVERAGE_ORDER_VALUE,
) -> list[TierPlan]:
    """One plan per tier, High first, priced with the given discounts (percent) and order value."""
    discounts = {**default_discounts(), **(discounts or {})}
    figures = {row["tier"]: row for row in distribution.tier_figures()}
    plans = []
    for name in reversed(TIER_NAMES):
        discount = float(discounts[name])
        if not 0 <= discount <= 100:
            from core.errors import UserError

            raise UserError(f"the {name} tier's discount must be between 0 and 100 percent, not {discount:g}")
        expected = figures[name]["expected"]
        gross = expected * average_order_value
        plans.append(
            TierPlan(
                tier=name,
                range_label=TIER_BY_NAME[name].label(),
                who=PLAYBOOK[name]["who"],
                messages=list(PLAYBOOK[name]["messages"]),
                users=figures[name]["users"],
                expected_conversions=expected,
                discount_percent=discount,
                revenue=gross * (1 - discount / 100),
                discount_cost=gross * discount / 100,
            )
        )
    return plans

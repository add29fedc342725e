"""Treated against control: conversion rates, uplift with a 95% interval, a p-value, and the sample
size a conclusion would need. Pure arithmetic on counts (the standard library's NormalDist).

- Absolute uplift: p_t - p_c, Wald interval with unpooled variance (statsmodels'
  `confint_proportions_2indep(method="wald")`).
- p-value: the two-sided two-proportion z-test with pooled variance (statsmodels'
  `proportions_ztest`; the same as a chi-square test without continuity correction).
- Relative uplift: p_t / p_c - 1, log (Katz) interval of the risk ratio (scipy's `relative_risk`).
- Sample size: users needed, split as treated and control are now, for a two-sided 5% test to find
  the measured uplift with 80% power (the normal approximation for two proportions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
POWER = 0.80
# The normal approximation needs a few conversions and non-conversions in each group.
MIN_EXPECTED = 5

_NORMAL = NormalDist()
Z = _NORMAL.inv_cdf(1 - (1 - CONFIDENCE) / 2)


@dataclass(frozen=True)
class Comparison:
    """One treated group against one control group."""

    treated: int
    control: int
    converted_treated: int
    converted_control: int
    rate_treated: float | None
    rate_control: float | None
    uplift: float | None  # absolute difference in conversion rate
    uplift_ci: tuple[float, float] | None
    relative_uplift: float | None
    relative_uplift_ci: tuple[float, float] | None
    p_value: float | None
    enough_data: bool  # both groups large enough for the test to mean anything
    needed_users: int | None  # users needed (both groups) to conclude on the measured uplift

    @property
    def significant(self) -> bool:
        return self.enough_data and self.p_value is not None and self.p_value < 1 - CONFIDENCE

    def verdict(self) -> str:
        """One sentence a marketer can act on."""
        if self.treated == 0 or self.control == 0:
            return "No control group to compare with." if self.control == 0 else "Nobody was messaged."
        if self.converted_treated + self.converted_control == 0:
            return f"Nobody converted within the window yet ({self.treated + self.control:,} users)."
        needed = f" About {self.needed_users:,} users would be needed to tell." if self.needed_users else ""
        if not self.enough_data:
            return f"Too small to conclude: {self.treated + self.control:,} users so far.{needed}"
        if self.significant:
            direction = "raised" if self.uplift > 0 else "lowered"
            return (
                f"The message {direction} conversion by {abs(self.uplift) * 100:.1f} points (p = {self.p_value:.3f})."
            )
        return f"No clear effect yet: the difference could be chance (p = {self.p_value:.2f}).{needed}"


def _rate(converted: int, users: int) -> float | None:
    return converted / users if users else None


def needed_users(rate_control: float, uplift: float, treated_share: float) -> int | None:
    """Users (both groups) for a two-sided 5% test with 80% power to find `uplift`, groups split as now."""
    rate_treated = rate_control + uplift
    if uplift == 0 or not 0 < treated_share < 1 or not 0 <= rate_treated <= 1:
        return None
    ratio = treated_share / (1 - treated_share)  # treated per control user
    pooled = (rate_treated * ratio + rate_control) / (ratio + 1)
    z_power = _NORMAL.inv_cdf(POWER)
    spread = Z * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + z_power * math.sqrt(
        rate_treated * (1 - rate_treated) / ratio + rate_control * (1 - rate_control)
    )
    control = (spread / uplift) ** 2
    return math.ceil(control * (1 + ratio))


def compare(treated: int, converted_treated: int, control: int, converted_control: int) -> Comparison:
    """Treated against control from counts."""
    p_t, p_c = _rate(converted_treated, treated), _rate(converted_control, control)
    if p_t is None or p_c is None:
        return Comparison(
            treated, control, converted_treated, converted_control, p_t, p_c, None, None, None, None, None, False, None
        )
    uplift = p_t - p_c
    se = math.sqrt(p_t * (1 - p_t) / treated + p_c * (1 - p_c) / control)
    interval = (uplift - Z * se, uplift + Z * se)
    pooled = (converted_treated + converted_control) / (treated + control)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / treated + 1 / control))
    p_value = 2 * (1 - _NORMAL.cdf(abs(uplift) / pooled_se)) if pooled_se > 0 else 1.0
    relative = relative_ci = None
    if converted_control > 0:
        relative = p_t / p_c - 1
        if converted_treated > 0:
            log_se = math.sqrt(1 / converted_treated - 1 / treated + 1 / converted_control - 1 / control)
            log_ratio = math.log(p_t / p_c)
            relative_ci = (math.exp(log_ratio - Z * log_se) - 1, math.exp(log_ratio + Z * log_se) - 1)
    enough = all(
        count >= MIN_EXPECTED
        for count in (converted_treated, treated - converted_treated, converted_control, control - converted_control)
    )
    needed = needed_users(p_c, uplift, treated / (treated + control))
    if needed is not None and needed <= treated + control and enough:
        needed = None  # already enough: the verdict stands on the data
    return Comparison(
        treated=treated,
        control=control,
        converted_treated=converted_treated,
        converted_control=converted_control,
        rate_treated=p_t,
        rate_control=p_c,
        uplift=uplift,
        uplift_ci=interval,
        relative_uplift=relative,
        relative_uplift_ci=relative_ci,
        p_value=p_value,
        enough_data=enough,
        needed_users=needed,
    )

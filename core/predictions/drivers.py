"""Audience-level drivers: which traits go with a higher or lower likelihood.

Like the leader's explainability table: for each group of users sharing a trait, the ratio
of the group's mean score to the audience's mean score (2.0 = twice as likely as average).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.predictions.features import CATEGORICAL, NEVER_DAYS, FeatureSpec
from core.predictions.model import describe_value

MIN_GROUP_SHARE = 0.02  # smaller groups are noise to a marketer
DRIVERS_SHOWN = 8


def _groups(column: str, values: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(description, mask) for the natural groups of one feature."""
    if column in CATEGORICAL:
        return [(str(v), (values == v).to_numpy()) for v in values.dropna().unique()]
    numbers = values.to_numpy(dtype=float)
    if set(np.unique(numbers[~np.isnan(numbers)])) <= {0.0, 1.0}:
        return [("yes", numbers >= 0.5), ("no", numbers < 0.5)]
    groups = []
    known = ~np.isnan(numbers)
    if "days_since" in column:
        never = numbers >= NEVER_DAYS
        groups.append(("never", never))
        known &= ~never
    elif (numbers[known] == 0).mean() > 0.1 if known.any() else False:
        groups.append(("0", numbers == 0))
        known &= numbers != 0
    if known.sum() == 0:
        return groups
    edges = np.unique(np.quantile(numbers[known], [0, 1 / 3, 2 / 3, 1]))
    for low, high in zip(edges[:-1], edges[1:], strict=False):
        last = high == edges[-1]
        mask = known & (numbers >= low) & ((numbers <= high) if last else (numbers < high))
        low_text, high_text = describe_value(column, low), describe_value(column, high)
        groups.append((low_text if low_text == high_text else f"{low_text} to {high_text}", mask))
    return groups


def audience_drivers(
    features: pd.DataFrame, scores: np.ndarray, spec: FeatureSpec, shown: int = DRIVERS_SHOWN
) -> list[dict]:
    """The traits that raise and lower the likelihood most, strongest first (raising, then lowering)."""
    scores = np.asarray(scores, dtype=float)
    mean = float(scores.mean()) if len(scores) else 0.0
    if mean <= 0:
        return []
    labels = spec.labels()
    rows = []
    for column in spec.columns():
        for description, mask in _groups(column, features[column]):
            share = float(mask.mean())
            if share < MIN_GROUP_SHARE or share > 1 - MIN_GROUP_SHARE:
                continue
            group_mean = float(scores[mask].mean())
            rows.append(
                {
                    "trait": labels[column],
                    "group": description,
                    "users_share": share,
                    "mean_score": group_mean,
                    "ratio": group_mean / mean,
                }
            )
    raising = sorted((r for r in rows if r["ratio"] > 1), key=lambda r: -r["ratio"])[: shown // 2]
    lowering = sorted((r for r in rows if r["ratio"] < 1), key=lambda r: r["ratio"])[: shown // 2]
    for row in raising:
        row["direction"] = "raises"
    for row in lowering:
        row["direction"] = "lowers"
    return raising + lowering

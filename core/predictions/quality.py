"""How far to trust a prediction: accuracy ratio, AUC and calibration on held-out users."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

# (lowest accuracy ratio in percent, band name), best first.
QUALITY_BANDS: tuple[tuple[float, str], ...] = ((60, "Excellent"), (40, "Good"), (20, "Fair"), (0, "Poor"))
CALIBRATION_BINS = 10


def auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Area under the ROC curve; 0.5 when only one class is present (nothing to rank)."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return 0.5
    return float(roc_auc_score(labels, probabilities))


def accuracy_ratio(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The cumulative-gains accuracy ratio in percent: 0 = random, 100 = perfect (= 2·AUC − 1)."""
    return max(0.0, 100.0 * (2.0 * auc(labels, probabilities) - 1.0))


def quality_band(ratio: float | None) -> str:
    """Excellent 60-100, Good 40-60, Fair 20-40, Poor 0-20."""
    if ratio is None:
        return "Unknown"
    for lowest, name in QUALITY_BANDS:
        if ratio >= lowest:
            return name
    return QUALITY_BANDS[-1][1]


def calibration_table(labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Expected vs observed rate per decile of predicted probability (lowest first)."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(probabilities, kind="stable")
    rows = []
    for number, part in enumerate(np.array_split(order, bins), start=1):
        if len(part) == 0:
            continue
        rows.append(
            {
                "decile": number,
                "users": int(len(part)),
                "expected_rate": float(probabilities[part].mean()),
                "observed_rate": float(labels[part].mean()),
                "score_min": float(probabilities[part].min() * 100),
                "score_max": float(probabilities[part].max() * 100),
            }
        )
    return rows


def calibration_error(table: list[dict]) -> float:
    """The largest gap between expected and observed rate across the table's bins."""
    return max((abs(row["expected_rate"] - row["observed_rate"]) for row in table), default=0.0)

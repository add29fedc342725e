"""Event logs in the shapes customers import, written as events CSV files (tests only).

Each builder returns rows `(user_id, event, timestamp, value)`; `write_csv` writes them with
the import's header. Times are in 1997, like the CDNOW log, so every test predicts with a
historic `--as-of`.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

START = datetime(1997, 1, 1)
DAYS = 365
END = START + timedelta(days=DAYS)  # the logs' "now"

Row = tuple[str, str, str, str]


def write_csv(rows: list[Row], path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "event", "timestamp", "value"))
        writer.writerows(rows)
    return path


def _day(offset: float) -> str:
    return (START + timedelta(days=int(offset))).strftime("%Y-%m-%d")


def _moment(offset: float) -> str:
    return (START + timedelta(seconds=int(offset * 86_400))).strftime("%Y-%m-%dT%H:%M:%SZ")


def repeat_buyers(users: int = 600, seed: int = 1, day_precision: bool = True, value: bool = True) -> list[Row]:
    """A purchase log: buyers with their own Poisson rate, dropping out over time (BG/NBD-like)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        rate = rng.gamma(0.8, 1 / 40)  # purchases a day while active
        born = rng.uniform(0, 120)
        life = rng.exponential(200)
        t = born
        while t < min(born + life, DAYS):
            stamp = _day(t) if day_precision else _moment(t)
            rows.append((f"b{user:05d}", "purchase", stamp, f"{rng.gamma(2, 15):.2f}" if value else ""))
            t += rng.exponential(1 / max(rate, 1e-3))
    return rows


def one_event_users(users: int = 300, seed: int = 2) -> list[Row]:
    """Everyone did the event exactly once: nobody ever repeats it."""
    rng = np.random.default_rng(seed)
    return [(f"o{user:05d}", "purchase", _day(rng.uniform(0, DAYS - 1)), "9.99") for user in range(users)]


def with_heavy_users(seed: int = 3) -> list[Row]:
    """Ordinary buyers plus a few who did the event thousands of times (resellers, bots)."""
    rng = np.random.default_rng(seed)
    rows = repeat_buyers(500, seed)
    for user in range(5):
        for t in np.sort(rng.uniform(0, DAYS, 3_000)):
            rows.append((f"h{user:02d}", "purchase", _moment(t), "1.00"))
    return rows


def planted_signal(users: int = 2_000, seed: int = 4) -> list[Row]:
    """A known answer: each user's hidden activity level drives both sessions and purchases.

    Sessions are frequent, so their count reveals the level; purchases are rare, so the time
    since the last one reveals little. A model that reads sessions must rank next window's
    buyers clearly better than "most recent buyers first".
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        level = rng.lognormal(-2.5, 1.0)  # sessions a day
        for t in np.sort(rng.uniform(0, DAYS, rng.poisson(level * DAYS))):
            rows.append((f"p{user:05d}", "session", _moment(t), ""))
        for t in np.sort(rng.uniform(0, DAYS, rng.poisson(level * DAYS / 40))):
            rows.append((f"p{user:05d}", "purchase", _moment(t), f"{rng.gamma(2, 20):.2f}"))
    return rows

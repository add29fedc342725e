"""When an audience uses the app: sessions by hour of day and weekday, in each user's local time.

The tutorial's advice is to send just before high usage; `suggest_send_hour` picks the hour
before the busiest one. All sessions are converted to local time once per data version
(vectorised per zone) and cached; an audience's chart is then a mask and a bincount.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from core.campaigns.audience import delivery_zones, users_frame
from core.campaigns.schedule import WEEKDAYS
from core.db import data_version, get_engine
from core.facts import SESSION_EVENT

_cache: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_lock = threading.Lock()


def _session_pairs(connection) -> np.ndarray:
    """(user_id, epoch seconds) of every session, through the DBAPI cursor (the fast path)."""
    if connection.dialect.name == "sqlite":
        # The (user_id, name, ts) index covers the query: no table lookups.
        queries = [
            "SELECT user_id, unixepoch(ts) FROM events INDEXED BY ix_events_user_name_ts WHERE name = ?",
            "SELECT user_id, CAST(strftime('%s', ts) AS INTEGER) FROM events WHERE name = ?",
        ]
    else:
        queries = ["SELECT user_id, CAST(EXTRACT(EPOCH FROM ts) AS BIGINT) FROM events WHERE name = %s"]
    cursor = connection.connection.driver_connection.cursor()
    try:
        for number, query in enumerate(queries):
            try:
                cursor.execute(query, (SESSION_EVENT,))
                break
            except Exception:
                if number == len(queries) - 1:
                    raise
        return np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    finally:
        cursor.close()


def _local_sessions(engine: Engine, company_zone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user_id, local hour, local weekday 0=Monday) of every session, cached per data version."""
    key = (str(engine.url), data_version(engine), company_zone)
    with _lock:
        if key in _cache:
            return _cache[key]
        with engine.connect() as connection:
            pairs = _session_pairs(connection)
        user_ids = pairs[:, 0].copy()
        stamps = pairs[:, 1].astype("datetime64[s]")
        del pairs
        users = users_frame(engine)
        zone_of_user = delivery_zones(users, company_zone)
        zones = zone_of_user.reindex(user_ids).fillna(company_zone).to_numpy(dtype=object)
        hours = np.zeros(len(user_ids), dtype=np.int8)
        weekdays = np.zeros(len(user_ids), dtype=np.int8)
        for zone in pd.unique(zones):
            where = np.flatnonzero(zones == zone)
            local = pd.DatetimeIndex(stamps[where]).tz_localize("UTC").tz_convert(zone)
            hours[where] = local.hour.to_numpy()
            weekdays[where] = local.day_of_week.to_numpy()
        for stale in [k for k in _cache if k[0] == key[0]]:
            del _cache[stale]
        _cache[key] = (user_ids, hours, weekdays)
        return _cache[key]


@dataclass(frozen=True)
class SessionRhythm:
    by_hour: np.ndarray  # sessions per local hour 0-23 (on the chosen weekdays)
    by_weekday: np.ndarray  # sessions per local weekday, Monday first
    by_weekday_hour: np.ndarray  # 7 x 24
    sessions: int

    def hour_frame(self) -> pd.DataFrame:
        total = max(int(self.by_hour.sum()), 1)
        return pd.DataFrame({"hour": np.arange(24), "sessions": self.by_hour, "share": self.by_hour / total})

    def weekday_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"weekday": list(WEEKDAYS), "sessions": self.by_weekday})


def session_rhythm(
    user_ids,
    engine: Engine | None = None,
    weekdays: list[str] | None = None,
    company_zone: str = "UTC",
) -> SessionRhythm:
    """Sessions of `user_ids` by local hour (only on `weekdays` when given) and by local weekday."""
    engine = engine or get_engine()
    owners, hours, days = _local_sessions(engine, company_zone)
    mine = np.isin(owners, np.asarray(user_ids, dtype=np.int64))
    grid = np.bincount(days[mine].astype(np.int64) * 24 + hours[mine], minlength=7 * 24).reshape(7, 24)
    chosen = [WEEKDAYS.index(d) for d in weekdays] if weekdays else list(range(7))
    return SessionRhythm(
        by_hour=grid[chosen].sum(axis=0),
        by_weekday=grid.sum(axis=1),
        by_weekday_hour=grid,
        sessions=int(mine.sum()),
    )


@dataclass(frozen=True)
class SendSuggestion:
    peak_hour: int
    send_hour: int
    peak_share: float  # share of the day's sessions in the peak hour

    def sentence(self) -> str:
        return (
            f"Sessions peak at {self.peak_hour:02d}:00-{(self.peak_hour + 1) % 24:02d}:00 local time "
            f"({self.peak_share:.0%} of the day's sessions): send at about {self.send_hour:02d}:00, just before."
        )


def suggest_send_hour(rhythm: SessionRhythm) -> SendSuggestion | None:
    """The hour just before the busiest local hour (None without sessions)."""
    if rhythm.by_hour.sum() == 0:
        return None
    peak = int(np.argmax(rhythm.by_hour))
    return SendSuggestion(
        peak_hour=peak, send_hour=(peak - 1) % 24, peak_share=float(rhythm.by_hour[peak] / rhythm.by_hour.sum())
    )

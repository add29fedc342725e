"""Per-user features at a cut-off time, computed from the raw events table.

`user_event_facts` has no notion of time, so a model that learns "what happened next"
needs features as they stood at a cut-off: one SQL aggregate per user-id chunk
(GROUP BY user_id with CASE WHEN windows on `ts`), finished in pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, Engine, bindparam, text

from core.facts import SESSION_EVENT

CATEGORICAL = ("platform", "country")
RECENT_DAYS = (7, 30)
MAX_OTHER_EVENTS = 6  # the most frequent other event names get their own features
CHUNK_USERS = 100_000
NEVER_DAYS = 9_999.0  # "days since" for something that never happened (trees split on it)


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute: the predicted event, its window, and the other event names to count."""

    event: str
    window_days: int
    other_events: tuple[str, ...] = ()
    categories: dict[str, list[str]] = field(default_factory=dict)  # fixed at training time

    def labels(self) -> dict[str, str]:
        """Feature column -> a phrase a marketer reads."""
        event = self.event
        names = {
            "tenure_days": "Days since the account was created",
            "days_since_first_event": "Days since first activity",
            "sessions_total": "Sessions, all time",
            "sessions_7d": "Sessions in the last 7 days",
            "sessions_30d": "Sessions in the last 30 days",
            "sessions_prev_30d": "Sessions 30-60 days ago",
            "days_since_last_session": "Days since last session",
            "event_total": f"'{event}' events, all time",
            "event_window": f"'{event}' events in the last {self.window_days} days",
            "event_30d": f"'{event}' events in the last 30 days",
            "days_since_last_event": f"Days since last '{event}'",
            "event_value": f"Value of '{event}' events, all time",
            "push_opt_in": "Opted in to push",
            "email_opt_in": "Subscribed to email",
            "has_email": "Has an email address",
            "has_push_token": "Has a push token",
            "platform": "Platform",
            "country": "Country",
        }
        for i, other in enumerate(self.other_events):
            names[f"other{i}_30d"] = f"'{other}' events in the last 30 days"
            names[f"other{i}_days_since"] = f"Days since last '{other}'"
        return names

    def columns(self) -> list[str]:
        return list(self.labels())


def other_event_names(engine: Engine, event: str) -> tuple[str, ...]:
    """The most frequent event names other than sessions and the predicted event."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT event FROM user_event_facts WHERE event NOT IN (:session, :event) "
                "GROUP BY event ORDER BY SUM(count) DESC LIMIT :limit"
            ),
            {"session": SESSION_EVENT, "event": event, "limit": MAX_OTHER_EVENTS},
        ).all()
    return tuple(row[0] for row in rows)


_PER_NAME_SQL = """
SELECT user_id, name, COUNT(*) AS total,
       SUM(CASE WHEN ts > :c7 THEN 1 ELSE 0 END) AS last_7d,
       SUM(CASE WHEN ts > :c30 THEN 1 ELSE 0 END) AS last_30d,
       SUM(CASE WHEN ts > :c60 AND ts <= :c30 THEN 1 ELSE 0 END) AS prev_30d,
       SUM(CASE WHEN ts > :cw THEN 1 ELSE 0 END) AS in_window,
       MAX(ts) AS last_at, MIN(ts) AS first_at
FROM events
WHERE ts <= :cut AND user_id BETWEEN :lo AND :hi
GROUP BY user_id, name
"""
# Only the predicted event's values are needed; a separate query keeps the big one on the index.
_VALUE_SQL = """
SELECT user_id, SUM(COALESCE(value, 0)) AS value
FROM events
WHERE name = :event AND ts <= :cut AND user_id BETWEEN :lo AND :hi
GROUP BY user_id
"""
_TIME_PARAMS = ("cut", "c7", "c30", "c60", "cw")


def _days_before(cutoff: datetime, moments: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(moments, format="ISO8601")
    days = (pd.Timestamp(cutoff) - stamps).dt.total_seconds().to_numpy(dtype=float) / 86_400
    return np.where(np.isnan(days), NEVER_DAYS, days)


def _query(engine: Engine, sql: str, params: dict) -> pd.DataFrame:
    statement = text(sql).bindparams(*(bindparam(k, type_=DateTime) for k in _TIME_PARAMS if f":{k}" in sql))
    with engine.connect() as connection:
        result = connection.execute(statement, params)
        # Plain tuples: pandas inspects SQLAlchemy rows attribute by attribute, which is slow.
        return pd.DataFrame.from_records([tuple(row) for row in result.fetchall()], columns=list(result.keys()))


def compute_features(
    engine: Engine,
    spec: FeatureSpec,
    cutoff: datetime,
    user_ids: Sequence[int] | np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per user (index users.id) with every feature as it stood at `cutoff`.

    `user_ids` limits the users (default: every user created by `cutoff`, or with no
    creation date). Users with no events before the cut-off get zero counts.
    """
    say = progress or (lambda _m: None)
    users = _users_frame(engine, cutoff, user_ids)
    if users.empty:
        return pd.DataFrame(columns=spec.columns(), index=pd.Index([], name="user_id"))
    ids = users.index.to_numpy()
    params = {
        "cut": cutoff,
        "c7": cutoff - timedelta(days=7),
        "c30": cutoff - timedelta(days=30),
        "c60": cutoff - timedelta(days=60),
        "cw": cutoff - timedelta(days=spec.window_days),
        "event": spec.event,
    }
    per_name, values = [], []
    for start in range(0, len(ids), CHUNK_USERS):
        chunk = ids[start : start + CHUNK_USERS]
        bounds = {"lo": int(chunk[0]), "hi": int(chunk[-1])}
        per_name.append(_query(engine, _PER_NAME_SQL, {**params, **bounds}))
        values.append(_query(engine, _VALUE_SQL, {**params, **bounds}))
        if len(ids) > CHUNK_USERS:
            say(f"features at {cutoff:%Y-%m-%d}: {min(start + CHUNK_USERS, len(ids)):,} / {len(ids):,} users")
    counts = pd.concat(per_name, ignore_index=True)
    value = pd.concat(values, ignore_index=True).set_index("user_id")["value"].reindex(ids)

    def of(name: str) -> pd.DataFrame:
        return counts[counts["name"] == name].set_index("user_id").reindex(ids)

    out = pd.DataFrame(index=pd.Index(ids, name="user_id"))
    created_days = _days_before(cutoff, users["created_at"])
    out["tenure_days"] = np.where(created_days >= NEVER_DAYS, np.nan, created_days)
    first = counts.groupby("user_id")["first_at"].min().reindex(ids)
    out["days_since_first_event"] = _days_before(cutoff, first)
    sessions = of(SESSION_EVENT)
    out["sessions_total"] = sessions["total"].fillna(0).to_numpy(dtype=float)
    out["sessions_7d"] = sessions["last_7d"].fillna(0).to_numpy(dtype=float)
    out["sessions_30d"] = sessions["last_30d"].fillna(0).to_numpy(dtype=float)
    out["sessions_prev_30d"] = sessions["prev_30d"].fillna(0).to_numpy(dtype=float)
    out["days_since_last_session"] = _days_before(cutoff, sessions["last_at"])
    target = of(spec.event)
    out["event_total"] = target["total"].fillna(0).to_numpy(dtype=float)
    out["event_window"] = target["in_window"].fillna(0).to_numpy(dtype=float)
    out["event_30d"] = target["last_30d"].fillna(0).to_numpy(dtype=float)
    out["days_since_last_event"] = _days_before(cutoff, target["last_at"])
    out["event_value"] = value.fillna(0).to_numpy(dtype=float)
    for column in ("push_opt_in", "email_opt_in", "has_push_token"):
        out[column] = users[column].fillna(False).astype(float).to_numpy()
    out["has_email"] = users["email"].notna().astype(float).to_numpy()
    for column in CATEGORICAL:
        values_ = users[column].fillna("unknown").astype(str).to_numpy(dtype=object)
        out[column] = pd.Categorical(values_, categories=spec.categories.get(column) or sorted(set(values_)))
    for i, other in enumerate(spec.other_events):
        rows = of(other)
        out[f"other{i}_30d"] = rows["last_30d"].fillna(0).to_numpy(dtype=float)
        out[f"other{i}_days_since"] = _days_before(cutoff, rows["last_at"])
    return out[spec.columns()]


def _users_frame(engine: Engine, cutoff: datetime, user_ids) -> pd.DataFrame:
    columns = "id, created_at, platform, country, email, push_opt_in, email_opt_in, has_push_token"
    if user_ids is None:
        frame = _query(
            engine, f"SELECT {columns} FROM users WHERE created_at IS NULL OR created_at <= :cut", {"cut": cutoff}
        )
    else:
        wanted = np.asarray(user_ids, dtype=np.int64)
        if len(wanted) <= 500:  # a user lookup: don't read every user
            ids = ", ".join(str(int(i)) for i in wanted) or "NULL"
            return (
                _query(engine, f"SELECT {columns} FROM users WHERE id IN ({ids})", {}).sort_values("id").set_index("id")
            )
        frame = _query(engine, f"SELECT {columns} FROM users", {})
        frame = frame[np.isin(frame["id"].to_numpy(dtype=np.int64), np.asarray(user_ids, dtype=np.int64))]
    return frame.sort_values("id").set_index("id")


def performers(engine: Engine, event: str, after: datetime, until: datetime) -> np.ndarray:
    """Sorted ids of users who performed `event` in (after, until]: the training label."""
    statement = text(
        "SELECT DISTINCT user_id FROM events WHERE name = :event AND ts > :after AND ts <= :until"
    ).bindparams(bindparam("after", type_=DateTime), bindparam("until", type_=DateTime))
    with engine.connect() as connection:
        rows = connection.execute(statement, {"event": event, "after": after, "until": until}).all()
    return np.sort(np.array([row[0] for row in rows], dtype=np.int64))


def latest_event_time(engine: Engine) -> datetime | None:
    """The newest event timestamp in the data: the default 'as of' of a prediction."""
    with engine.connect() as connection:
        value = connection.execute(text("SELECT MAX(ts) FROM events")).scalar()
    if value is None:
        return None
    return value if isinstance(value, datetime) else pd.Timestamp(value).to_pydatetime()


def event_names(engine: Engine) -> list[str]:
    """Every event name in the data, most frequent first."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event FROM user_event_facts GROUP BY event ORDER BY SUM(count) DESC")
        ).all()
    return [row[0] for row in rows]

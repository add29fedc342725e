"""Per-user features at cut-off times, computed from the raw events table.

`user_event_facts` has no notion of time, so a model that learns "what happened next" needs
features as they stood at a cut-off. Training needs two cut-offs (the training history and
"now"), a backtest two more, so one scan serves several: per user-id chunk, one SQL aggregate
(GROUP BY user_id, name with CASE WHEN windows per cut-off) for engagement, and the predicted
event's own rows, read once, for the repeat-behaviour features the classic "buy till you die"
models use (distinct days, recency, inter-event gaps), finished in numpy.

Data shapes vary: a purchase log has no sessions, no profiles and day-precision times. Every
feature is computed for every shape; the ones that carry no information in a given data set
(all missing, or constant) are left out at training time (`informative_columns`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, Engine, bindparam, text

from core.facts import SESSION_EVENT

CATEGORICAL = ("platform", "country")
COUNT_DAYS = (30, 60, 90, 180)  # counts of the predicted event in the last N days
MAX_OTHER_EVENTS = 6  # the most frequent other event names get their own features
CHUNK_USERS = 50_000  # per scan query: bounds the rows held at once (~1.5M events at 30 a user)
NEVER_DAYS = 9_999.0  # "days since" for something that never happened (trees split on it)
DAY_SECONDS = 86_400
# What models trained before the repeat-behaviour features were added used (kept readable).
LEGACY_COLUMNS = (
    "tenure_days",
    "days_since_first_event",
    "sessions_total",
    "sessions_7d",
    "sessions_30d",
    "sessions_prev_30d",
    "days_since_last_session",
    "event_total",
    "event_window",
    "event_30d",
    "days_since_last_event",
    "event_value",
    "push_opt_in",
    "email_opt_in",
    "has_email",
    "has_push_token",
    "platform",
    "country",
)


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute: the predicted event, its window, the other event names to count, and
    (fixed at training time) the categories and the columns the model uses."""

    event: str
    window_days: int
    other_events: tuple[str, ...] = ()
    categories: dict[str, list[str]] = field(default_factory=dict)
    kept: tuple[str, ...] = ()  # empty for models trained before columns were chosen

    def labels(self) -> dict[str, str]:
        """Every feature column -> a phrase a marketer reads."""
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
            "event_days": f"Days with a '{event}', all time",
            "event_window": f"'{event}' events in the last {self.window_days} days",
            **{f"event_{days}d": f"'{event}' events in the last {days} days" for days in COUNT_DAYS},
            "days_since_last_event": f"Days since last '{event}'",
            "days_since_first_target": f"Days since first '{event}'",
            "gap_mean": f"Average days between '{event}' days",
            "gap_spread": f"Spread of the days between '{event}' days",
            "gap_last": f"Days between the last two '{event}' days",
            "recency_per_gap": f"Days since last '{event}', in average gaps",
            "event_value": f"Value of '{event}' events, all time",
            "event_value_mean": f"Average value of a '{event}'",
            "btyd_p_alive": f"Chance the user still does '{event}' (repeat-purchase model)",
            "btyd_p_active": f"Chance of a '{event}' in the window (repeat-purchase model)",
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
        """The columns the model reads, in order."""
        if self.kept:
            return list(self.kept)
        return [c for c in self.labels() if c in LEGACY_COLUMNS or c.startswith("other")]


def informative_columns(frame: pd.DataFrame, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidate columns that vary in `frame`: all-missing or constant ones teach nothing."""
    kept = []
    for column in candidates:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if values.astype(str).nunique() > 1:
                kept.append(column)
        elif pd.Series(values.to_numpy(dtype=float)).dropna().nunique() > 1:
            kept.append(column)
    return tuple(kept)


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


def _per_name_sql(cutoffs: int) -> str:
    """Per (user, name): counts and first/last times at each of `cutoffs` cut-offs, one scan."""
    parts = []
    for k in range(cutoffs):
        parts += [
            f"SUM(CASE WHEN ts <= :cut{k} THEN 1 ELSE 0 END) AS total{k}",
            f"SUM(CASE WHEN ts <= :cut{k} AND ts > :c7_{k} THEN 1 ELSE 0 END) AS last_7d{k}",
            f"SUM(CASE WHEN ts <= :cut{k} AND ts > :c30_{k} THEN 1 ELSE 0 END) AS last_30d{k}",
            f"SUM(CASE WHEN ts > :c60_{k} AND ts <= :c30_{k} THEN 1 ELSE 0 END) AS prev_30d{k}",
            f"MAX(CASE WHEN ts <= :cut{k} THEN ts END) AS last_at{k}",
            f"MIN(CASE WHEN ts <= :cut{k} THEN ts END) AS first_at{k}",
        ]
    return (
        f"SELECT user_id, name, {', '.join(parts)} FROM events "
        "WHERE ts <= :latest AND name <> :event AND user_id BETWEEN :lo AND :hi GROUP BY user_id, name"
    )


# The predicted event's own rows: its repeat behaviour needs every timestamp, not aggregates.
_TARGET_SQL = (
    "SELECT user_id, ts, value FROM events "
    "WHERE name = :event AND ts <= :latest AND user_id BETWEEN :lo AND :hi ORDER BY user_id, ts"
)


def _seconds(moments) -> np.ndarray:
    """Timestamps (ISO strings from SQLite, datetimes from PostgreSQL) as float epoch seconds, NaN for none."""
    stamps = pd.to_datetime(pd.Series(moments, dtype=object), format="ISO8601")
    values = stamps.to_numpy(dtype="datetime64[us]")
    out = values.astype(np.int64).astype(float) / 1e6
    out[np.isnat(values)] = np.nan
    return out


def _epoch(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)).total_seconds()


def _days_before(cut: float, seconds: np.ndarray) -> np.ndarray:
    days = (cut - seconds) / DAY_SECONDS
    return np.where(np.isnan(days), NEVER_DAYS, days)


def _query(engine: Engine, sql: str, params: dict) -> pd.DataFrame:
    dated = [k for k, v in params.items() if isinstance(v, datetime)]
    statement = text(sql).bindparams(*(bindparam(k, type_=DateTime) for k in dated if f":{k}" in sql))
    with engine.connect() as connection:
        result = connection.execute(statement, {k: v for k, v in params.items() if f":{k}" in sql})
        # Plain tuples: pandas inspects SQLAlchemy rows attribute by attribute, which is slow.
        return pd.DataFrame.from_records([tuple(row) for row in result.fetchall()], columns=list(result.keys()))


def iter_feature_chunks(
    engine: Engine,
    spec: FeatureSpec,
    cutoffs: Sequence[datetime],
    user_ids: np.ndarray,
    progress: Callable[[str], None] | None = None,
) -> Iterator[tuple[np.ndarray, list[pd.DataFrame]]]:
    """Per chunk of `user_ids` (sorted): the ids and one feature frame per cut-off, from one scan."""
    say = progress or (lambda _m: None)
    ids_all = np.sort(np.asarray(user_ids, dtype=np.int64))
    latest = max(cutoffs)
    for start in range(0, len(ids_all), CHUNK_USERS):
        ids = ids_all[start : start + CHUNK_USERS]
        params: dict = {"latest": latest, "event": spec.event, "lo": int(ids[0]), "hi": int(ids[-1])}
        for k, cut in enumerate(cutoffs):
            params |= {f"cut{k}": cut, f"c7_{k}": cut - timedelta(days=7)}
            params |= {f"c30_{k}": cut - timedelta(days=30), f"c60_{k}": cut - timedelta(days=60)}
        users = _users_frame(engine, ids)
        per_name = _query(engine, _per_name_sql(len(cutoffs)), params)
        target = _query(engine, _TARGET_SQL, params)
        frames = [_frame_at(spec, cut, k, ids, users, per_name, target) for k, cut in enumerate(cutoffs)]
        if len(ids_all) > CHUNK_USERS:
            say(f"features: {min(start + CHUNK_USERS, len(ids_all)):,} / {len(ids_all):,} users")
        yield ids, frames


def compute_features_at(
    engine: Engine,
    spec: FeatureSpec,
    cutoffs: Sequence[datetime],
    user_ids: Sequence[int] | np.ndarray,
    progress: Callable[[str], None] | None = None,
) -> list[pd.DataFrame]:
    """One frame per cut-off (index user_id, sorted) for `user_ids`, from one scan of the events."""
    parts: list[list[pd.DataFrame]] = [[] for _ in cutoffs]
    for _ids, frames in iter_feature_chunks(engine, spec, cutoffs, np.asarray(user_ids), progress):
        for k, frame in enumerate(frames):
            parts[k].append(frame)
    empty = pd.DataFrame(columns=list(spec.labels()), index=pd.Index([], name="user_id"))
    return [_concat(p, spec) if p else empty for p in parts]


def _concat(frames: list[pd.DataFrame], spec: FeatureSpec) -> pd.DataFrame:
    out = pd.concat(frames)
    for column in CATEGORICAL:
        known = spec.categories.get(column) or sorted(set(out[column].astype(str)))
        out[column] = pd.Categorical(out[column].astype(str), categories=known)
    return out


def compute_features(
    engine: Engine,
    spec: FeatureSpec,
    cutoff: datetime,
    user_ids: Sequence[int] | np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per user (index users.id) with every feature as it stood at `cutoff`.

    `user_ids` limits the users (default: every user who existed by `cutoff`).
    Users with no events before the cut-off get zero counts.
    """
    ids = all_user_ids(engine) if user_ids is None else np.asarray(user_ids, dtype=np.int64)
    (frame,) = compute_features_at(engine, spec, [cutoff], ids, progress)
    return frame[existed(frame)] if user_ids is None else frame


def existed(features: pd.DataFrame) -> np.ndarray:
    """Users who existed at the frame's cut-off: created by then, or (no creation date) active by then."""
    tenure = features["tenure_days"].to_numpy(dtype=float)
    active = features["days_since_first_event"].to_numpy(dtype=float) < NEVER_DAYS
    return np.where(np.isnan(tenure), active, tenure >= 0)


def all_user_ids(engine: Engine) -> np.ndarray:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id FROM users ORDER BY id")).all()
    return np.array([row[0] for row in rows], dtype=np.int64)


def _users_frame(engine: Engine, ids: np.ndarray) -> pd.DataFrame:
    columns = "id, created_at, platform, country, email, push_opt_in, email_opt_in, has_push_token"
    frame = _query(
        engine, f"SELECT {columns} FROM users WHERE id BETWEEN :lo AND :hi", {"lo": int(ids[0]), "hi": int(ids[-1])}
    )
    return frame.set_index("id").reindex(ids)


def _frame_at(
    spec: FeatureSpec,
    cutoff: datetime,
    k: int,
    ids: np.ndarray,
    users: pd.DataFrame,
    per_name: pd.DataFrame,
    target: pd.DataFrame,
) -> pd.DataFrame:
    cut = _epoch(cutoff)
    out: dict[str, np.ndarray] = {}
    created = _seconds(users["created_at"].to_numpy())
    out["tenure_days"] = (cut - created) / DAY_SECONDS  # NaN when unknown

    def of(name: str) -> pd.DataFrame:
        return per_name[per_name["name"] == name].set_index("user_id").reindex(ids)

    first_seconds = _seconds(per_name[f"first_at{k}"].to_numpy()) if len(per_name) else np.zeros(0)
    first_any = pd.Series(first_seconds, index=per_name["user_id"].to_numpy()).groupby(level=0).min()
    repeat = _repeat_features(spec, cut, ids, target)
    first_any = np.fmin(first_any.reindex(ids).to_numpy(dtype=float), repeat.pop("_first_seconds"))
    out["days_since_first_event"] = _days_before(cut, first_any)
    sessions = of(SESSION_EVENT)
    out["sessions_total"] = sessions[f"total{k}"].fillna(0).to_numpy(dtype=float)
    out["sessions_7d"] = sessions[f"last_7d{k}"].fillna(0).to_numpy(dtype=float)
    out["sessions_30d"] = sessions[f"last_30d{k}"].fillna(0).to_numpy(dtype=float)
    out["sessions_prev_30d"] = sessions[f"prev_30d{k}"].fillna(0).to_numpy(dtype=float)
    out["days_since_last_session"] = _days_before(cut, _seconds(sessions[f"last_at{k}"].to_numpy()))
    out |= repeat
    for column in ("push_opt_in", "email_opt_in", "has_push_token"):
        out[column] = users[column].astype(float).fillna(0.0).to_numpy()
    out["has_email"] = users["email"].notna().to_numpy(dtype=float)
    # float32 halves what a million users' features hold in memory; days keep ~1 minute precision.
    frame = pd.DataFrame(
        {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, index=pd.Index(ids, name="user_id")
    )
    for column in CATEGORICAL:
        values = users[column].astype(object).where(users[column].notna(), "unknown").astype(str).to_numpy()
        frame[column] = pd.Categorical(values, categories=spec.categories.get(column) or sorted(set(values)))
    for i, other in enumerate(spec.other_events):
        rows = of(other)
        frame[f"other{i}_30d"] = rows[f"last_30d{k}"].fillna(0).to_numpy(dtype=np.float32)
        frame[f"other{i}_days_since"] = _days_before(cut, _seconds(rows[f"last_at{k}"].to_numpy())).astype(np.float32)
    return frame[[c for c in spec.labels() if c in frame.columns]]


def _repeat_features(spec: FeatureSpec, cut: float, ids: np.ndarray, target: pd.DataFrame) -> dict[str, np.ndarray]:
    """The predicted event's repeat behaviour per user at `cut` (epoch seconds), vectorised."""
    n = len(ids)
    seconds = _seconds(target["ts"].to_numpy()) if len(target) else np.zeros(0)
    row_users = target["user_id"].to_numpy(dtype=np.int64) if len(target) else np.zeros(0, np.int64)
    position = np.minimum(np.searchsorted(ids, row_users), max(n - 1, 0))
    keep = (seconds <= cut) & (ids[position] == row_users)  # a chunk's id range may hold users not asked for
    users, seconds = position[keep], seconds[keep]
    values = target["value"].to_numpy(dtype=float)[keep] if len(target) else np.zeros(0)
    out: dict[str, np.ndarray] = {}

    def per_user(weights: np.ndarray) -> np.ndarray:
        return np.bincount(users, weights=weights, minlength=n).astype(float)

    total = per_user(np.ones(len(users)))
    out["event_total"] = total
    days = np.floor(seconds / DAY_SECONDS)
    # Rows come ordered by (user, ts): a new distinct day starts where the user or the day changes.
    new_day = np.ones(len(users), dtype=bool)
    new_day[1:] = (users[1:] != users[:-1]) | (days[1:] != days[:-1])
    day_users, day_values = users[new_day], days[new_day]
    distinct = np.bincount(day_users, minlength=n).astype(float)
    out["event_days"] = distinct
    out["event_window"] = per_user((seconds > cut - spec.window_days * DAY_SECONDS).astype(float))
    for count_days in COUNT_DAYS:
        out[f"event_{count_days}d"] = per_user((seconds > cut - count_days * DAY_SECONDS).astype(float))
    # Rows are ordered by (user, ts): a user's first row opens a run, the last closes it.
    starts, ends = _run_edges(users)
    first, last = np.full(n, np.nan), np.full(n, np.nan)
    first[users[starts]] = seconds[starts]
    last[users[ends]] = seconds[ends]
    out["days_since_last_event"] = _days_before(cut, last)
    out["days_since_first_target"] = _days_before(cut, first)
    # Gaps between consecutive distinct days of the same user.
    same_user = day_users[1:] == day_users[:-1]
    gaps = np.diff(day_values)[same_user]
    gap_users = day_users[1:][same_user]
    gap_count = np.bincount(gap_users, minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap_mean = np.bincount(gap_users, weights=gaps, minlength=n) / gap_count
        gap_square = np.bincount(gap_users, weights=gaps**2, minlength=n) / gap_count
        out["gap_mean"] = gap_mean
        out["gap_spread"] = np.where(gap_count >= 2, np.sqrt(np.maximum(gap_square - gap_mean**2, 0)), np.nan)
        gap_last = np.full(n, np.nan)
        _gap_starts, gap_ends = _run_edges(gap_users)
        gap_last[gap_users[gap_ends]] = gaps[gap_ends]
        out["gap_last"] = gap_last
        out["recency_per_gap"] = np.where(gap_count > 0, out["days_since_last_event"] / gap_mean, np.nan)
        known = ~np.isnan(values)
        value_total = np.bincount(users[known], weights=values[known], minlength=n)
        value_rows = np.bincount(users[known], minlength=n)
        out["event_value"] = value_total
        out["event_value_mean"] = np.where(value_rows > 0, value_total / np.maximum(value_rows, 1), np.nan)
    out["_first_seconds"] = first
    return out


def _run_edges(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the first and the last row of each run of equal values in sorted `users`."""
    change = users[1:] != users[:-1]
    return np.concatenate([[True], change])[: len(users)], np.concatenate([change, [True]])[: len(users)]


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

"""The in-memory user table behind live counts: numpy columns, loaded once per data version.

One `UserStore` per (database url, data version) lives in a module-level cache shared by
every caller in the process (all Streamlit sessions, the CLI, campaigns): pages never copy
it. The base columns (users + user_facts) load eagerly; the rest loads lazily, once, the
first time a filter needs it:

  * per-event facts (count, first/last time) from user_event_facts, one event at a time;
  * prediction scores (NaN for unscored users) and category codes, one prediction at a time;
  * per-event sorted timestamps (a CSR: `offsets` per user into one `times` array) from the
    events table, for "N times in the last D days" filters. Reading events happens once per
    data version and event name, never per keystroke: `at_least(k, since)` answers "did the
    user do it at least k times since `since`" with one gather of each user's k-th most
    recent time, O(users) per query, whatever the number of events.

Times are int64 microseconds since the epoch (naive UTC); a missing time is `NAT`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from core.channels import reachable_masks
from core.db import data_version, get_engine
from core.segments.filters import FilterError
from core.settings import load_settings
from core.tiers import TIER_NAMES

NAT = np.iinfo(np.int64).min
TARGETABLE_KINDS = ("full",)
CATEGORICAL = ("platform", "country", "language", "timezone")
_MAX_CACHED_DATABASES = 4
_FETCH_ROWS = 250_000
_KTH_KEPT = 8  # k-th latest arrays kept per event (8 MB each at a million users)


def to_us(values) -> np.ndarray:
    """Database timestamps (text or datetime, None for missing) as int64 microseconds."""
    values = np.array(values, dtype=object)
    values[pd.isna(values)] = None  # a LEFT JOIN's missing row arrives as NaN
    return values.astype("datetime64[us]").astype(np.int64)


@dataclass(frozen=True)
class EventFacts:
    count: np.ndarray  # int64, 0 when the user never did the event
    first_us: np.ndarray
    last_us: np.ndarray


@dataclass(frozen=True)
class Scores:
    score: np.ndarray  # float64 0-100, NaN when unscored
    category: np.ndarray  # int8 index into TIER_NAMES, -1 when unscored


@dataclass(frozen=True)
class PredictionInfo:
    id: int
    name: str
    kind: str
    event: str


class EventTimes:
    """Each user's times of one event, sorted: times[offsets[u]:offsets[u+1]]."""

    def __init__(self, offsets: np.ndarray, times: np.ndarray):
        self.offsets = offsets
        self.times = times
        self.lengths = np.diff(offsets)
        self._kth: dict[int, np.ndarray] = {}  # k -> each user's k-th latest time (NAT when fewer)

    def kth_latest(self, k: int) -> np.ndarray:
        """Each user's k-th most recent time (NAT when they have fewer than k), kept for reuse."""
        if k not in self._kth:
            enough = self.lengths >= k
            kth = np.full(len(self.lengths), NAT, dtype=np.int64)
            if len(self.times):
                kth[enough] = self.times[self.offsets[1:][enough] - k]
            if len(self._kth) >= _KTH_KEPT:
                self._kth.pop(next(iter(self._kth)))
            self._kth[k] = kth
        return self._kth[k]

    def at_least(self, k: int, since_us: int) -> np.ndarray:
        """Users with at least `k` events at or after `since_us`."""
        if k <= 0:
            return np.ones(len(self.lengths), dtype=bool)
        kth = self.kth_latest(k)
        return kth >= since_us  # NAT (fewer than k events) is never at or after a real time


class UserStore:
    """Every user's filterable facts as numpy arrays aligned with `ids` (sorted users.id)."""

    NAT = NAT

    def __init__(self, engine: Engine, version: int):
        self.engine = engine
        self.version = version
        self._lock = threading.Lock()
        self._event_facts: dict[str, EventFacts] = {}
        self._event_times: dict[str, EventTimes] = {}
        self._scores: dict[int, Scores] = {}
        self._load_users()
        self.predictions = self._load_predictions()
        self.event_names = self._load_event_names()

    # -- loading -----------------------------------------------------------------------

    def _fetch(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """Rows of a raw query as a frame, fetched through the DBAPI cursor in chunks.

        Plain DBAPI tuples are several times faster than ORM rows at a million users; `?`
        markers are rewritten to the driver's paramstyle.
        """
        with self.engine.connect() as connection:
            if connection.dialect.paramstyle != "qmark":
                sql = sql.replace("?", "%s")
            cursor = connection.connection.driver_connection.cursor()
            try:
                cursor.execute(sql, params)
                names = [d[0] for d in cursor.description]
                parts = []
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    parts.append(pd.DataFrame.from_records(rows, columns=names, coerce_float=False))
            finally:
                cursor.close()
        if not parts:
            return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _load_users(self) -> None:
        frame = self._fetch(
            """
            SELECT u.id, u.platform, u.country, u.language, u.timezone,
                   u.push_opt_in, u.has_push_token, u.email IS NOT NULL AS has_email, u.email_opt_in,
                   u.random_bucket, f.first_used_at, f.last_used_at, f.session_count,
                   f.purchase_count, f.total_spent
            FROM users u LEFT JOIN user_facts f ON f.user_id = u.id
            ORDER BY u.id
            """
        )
        self.ids = frame["id"].to_numpy(dtype=np.int64)
        self.size = len(self.ids)

        def flag(name: str) -> np.ndarray:
            return frame[name].fillna(False).to_numpy(dtype=bool)

        def number(name: str, dtype) -> np.ndarray:
            return pd.to_numeric(frame[name]).fillna(0).to_numpy(dtype=dtype)

        self._cols: dict[str, np.ndarray] = {
            "push_enabled": flag("push_opt_in") & flag("has_push_token"),
            "email_opt_in": flag("email_opt_in"),
            "random_bucket": number("random_bucket", np.int32),
            "first_used_us": to_us(frame["first_used_at"]),
            "last_used_us": to_us(frame["last_used_at"]),
            "session_count": number("session_count", np.int64),
            "purchase_count": number("purchase_count", np.int64),
            "total_spent": number("total_spent", np.float64),
        }
        self._codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        for name in CATEGORICAL:
            codes, uniques = pd.factorize(frame[name].astype(object), use_na_sentinel=True)
            self._codes[name] = (codes.astype(np.int32), {str(v): i for i, v in enumerate(uniques)})
        reach_frame = pd.DataFrame(
            {
                "platform": frame["platform"].astype(object),
                "has_push_token": flag("has_push_token"),
                "push_opt_in": flag("push_opt_in"),
                "email": np.where(flag("has_email"), "", None),
                "email_opt_in": flag("email_opt_in"),
            }
        )
        self.reachable = reachable_masks(reach_frame)

    def _load_predictions(self) -> dict[int, PredictionInfo]:
        frame = self._fetch("SELECT id, name, kind, event FROM predictions")
        return {
            int(row.id): PredictionInfo(int(row.id), row.name, row.kind or "full", row.event)
            for row in frame.itertuples()
        }

    def _load_event_names(self) -> set[str]:
        return set(self._fetch("SELECT DISTINCT event FROM user_event_facts")["event"])

    def _positions(self, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of `user_ids` in the store, and which of them are known users."""
        pos = np.searchsorted(self.ids, user_ids)
        pos = np.minimum(pos, max(self.size - 1, 0))
        known = self.ids[pos] == user_ids if self.size else np.zeros(len(user_ids), dtype=bool)
        return pos, known

    # -- columns -----------------------------------------------------------------------

    def col(self, name: str) -> np.ndarray:
        return self._cols[name]

    def one_of(self, column: str, values: Iterable[str]) -> np.ndarray:
        """Users whose categorical `column` is one of `values` (missing matches nothing)."""
        codes, lookup = self._codes[column]
        wanted = [lookup[v] for v in values if v in lookup]
        result = np.zeros(self.size, dtype=bool)
        for code in wanted:
            result |= codes == code
        return result

    def values_of(self, column: str) -> list[str]:
        """The distinct values a categorical column holds, sorted (for pickers)."""
        return sorted(self._codes[column][1])

    def most_common(self, column: str, n: int = 1) -> list[str]:
        """The `n` most frequent values of a categorical column (a sensible default for pickers)."""
        codes, lookup = self._codes[column]
        counts = np.bincount(codes[codes >= 0], minlength=len(lookup))
        names = {code: name for name, code in lookup.items()}
        return [names[int(code)] for code in np.argsort(-counts, kind="stable")[:n] if counts[code]]

    def _check_event(self, event: str) -> None:
        if event not in self.event_names:
            known = ", ".join(sorted(self.event_names)) or "none yet"
            raise FilterError(f"no user ever did an event named {event!r} (events: {known})")

    def event_facts(self, event: str) -> EventFacts:
        if event not in self._event_facts:
            self._check_event(event)
            with self._lock:
                if event not in self._event_facts:
                    self._event_facts[event] = self._load_event_facts(event)
        return self._event_facts[event]

    def _load_event_facts(self, event: str) -> EventFacts:
        frame = self._fetch("SELECT user_id, count, first_at, last_at FROM user_event_facts WHERE event = ?", (event,))
        pos, known = self._positions(frame["user_id"].to_numpy(dtype=np.int64))
        pos = pos[known]
        count = np.zeros(self.size, dtype=np.int64)
        first = np.full(self.size, NAT, dtype=np.int64)
        last = np.full(self.size, NAT, dtype=np.int64)
        count[pos] = frame["count"].to_numpy(dtype=np.int64)[known]
        first[pos] = to_us(frame["first_at"])[known]
        last[pos] = to_us(frame["last_at"])[known]
        return EventFacts(count, first, last)

    def has_event_times(self, event: str) -> bool:
        return event in self._event_times

    def event_times(self, event: str) -> EventTimes:
        if event not in self._event_times:
            self._check_event(event)
            with self._lock:
                if event not in self._event_times:
                    self._event_times[event] = self._load_event_times(event)
        return self._event_times[event]

    def _load_event_times(self, event: str) -> EventTimes:
        # On SQLite the (user_id, name, ts) index covers this query: scanning it beats ~one random
        # table read per event through the (name, ts) index, and yields rows already sorted.
        hint = " INDEXED BY ix_events_user_name_ts" if self.engine.dialect.name == "sqlite" else ""
        frame = self._fetch(f"SELECT user_id, ts FROM events{hint} WHERE name = ?", (event,))
        pos, known = self._positions(frame["user_id"].to_numpy(dtype=np.int64))
        times = to_us(frame["ts"])[known]
        pos = pos[known]
        del frame
        order = np.lexsort((times, pos))
        counts = np.bincount(pos, minlength=self.size)
        offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return EventTimes(offsets, times[order])

    def prediction(self, prediction_id: int, *, targeting: bool = True) -> PredictionInfo:
        """The prediction's facts; refuses unknown ones, and (when targeting) previews and demos."""
        info = self.predictions.get(prediction_id)
        if info is None:
            self.predictions = self._load_predictions()  # a prediction created since we loaded
            info = self.predictions.get(prediction_id)
        if info is None:
            raise FilterError(f"prediction {prediction_id} does not exist")
        if targeting and info.kind not in TARGETABLE_KINDS:
            raise FilterError(f"“{info.name}” is a {info.kind} prediction: only full predictions can target users")
        return info

    def scores(self, prediction_id: int, *, targeting: bool = True) -> Scores:
        self.prediction(prediction_id, targeting=targeting)
        if prediction_id not in self._scores:
            with self._lock:
                if prediction_id not in self._scores:
                    self._scores[prediction_id] = self._load_scores(prediction_id)
        return self._scores[prediction_id]

    def _load_scores(self, prediction_id: int) -> Scores:
        frame = self._fetch(
            "SELECT user_id, score, category FROM prediction_scores WHERE prediction_id = ?", (prediction_id,)
        )
        pos, known = self._positions(frame["user_id"].to_numpy(dtype=np.int64))
        pos = pos[known]
        score = np.full(self.size, np.nan)
        category = np.full(self.size, -1, dtype=np.int8)
        score[pos] = pd.to_numeric(frame["score"]).to_numpy(dtype=np.float64)[known]
        lookup = {name: i for i, name in enumerate(TIER_NAMES)}
        category[pos] = frame["category"].map(lookup).fillna(-1).to_numpy(dtype=np.int8)[known]
        return Scores(score, category)

    def positions_of(self, user_ids) -> np.ndarray:
        """Store positions of known user ids (unknown ids are dropped)."""
        user_ids = np.asarray(user_ids, dtype=np.int64)
        pos, known = self._positions(user_ids)
        return pos[known]


_stores: OrderedDict[str, UserStore] = OrderedDict()
_stores_lock = threading.Lock()


def user_store(engine: Engine | None = None) -> UserStore:
    """The shared store for `engine`'s current data version (loaded on first use)."""
    engine = engine or get_engine()
    key = engine.url.render_as_string(hide_password=False)
    version = data_version(engine)
    store = _stores.get(key)
    if store is not None and store.version == version:
        return store
    with _stores_lock:
        store = _stores.get(key)
        if store is None or store.version != version:
            _stores.pop(key, None)  # drop the stale version before loading: one copy at a time
            store = UserStore(engine, version)
            _stores[key] = store
            while len(_stores) > _MAX_CACHED_DATABASES:
                _stores.popitem(last=False)
        _stores.move_to_end(key)
        return store


def clear_cache() -> None:
    with _stores_lock:
        _stores.clear()


IN_MEMORY_USER_LIMIT = load_settings().in_memory_users
_user_counts: dict[tuple[str, int], int] = {}


def fits_in_memory(engine: Engine | None = None) -> bool:
    """Whether the user table is small enough for the in-memory store (LIKELY_IN_MEMORY_USERS,
    default 5,000,000 users); above it counts and exports run as SQL on the database."""
    engine = engine or get_engine()
    key = (engine.url.render_as_string(hide_password=False), data_version(engine))
    if key not in _user_counts:
        with engine.connect() as connection:
            _user_counts[key] = int(connection.execute(sa.text("SELECT COUNT(*) FROM users")).scalar_one())
    return _user_counts[key] <= IN_MEMORY_USER_LIMIT

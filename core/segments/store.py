"""The in-memory user table behind live counts: numpy columns, loaded once per data version.

One `UserStore` per (database url, data version) lives in a module-level cache shared by
every caller in the process (all Streamlit sessions, the CLI, campaigns): pages never copy
it. The base columns (users + user_facts) load eagerly, memory-mapped from the columnar
cache beside the database when it has them (core.segments.columnar); the rest loads lazily,
once, the first time a filter needs it:

  * per-event facts (count, first/last time) from user_event_facts, one event at a time;
  * prediction scores (NaN for unscored users) and category codes, one prediction at a time;
  * per-event sorted timestamps (a CSR: `offsets` per user into one `times` array), from the
    columnar cache (kept up to date by imports) or else once from the events table, for "N times in the last D days" filters. Reading events happens once per
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
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import Engine

from core.channels import reachable_masks
from core.db import data_version, get_engine
from core.segments.columnar import (
    NAT,
    fetch_frame,
    load_event_times,
    load_scores,
    load_users,
    save_scores,
    to_us,
)
from core.segments.filters import FilterError
from core.settings import load_settings
from core.tiers import TIER_NAMES

TARGETABLE_KINDS = ("full",)
CATEGORICAL = ("platform", "country", "language", "timezone")
_MAX_CACHED_DATABASES = 4
_KTH_KEPT = 8  # k-th latest arrays kept per event (8 MB each at a million users)


def _numpy(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as numpy: a view of the (memory-mapped) buffer when it has one chunk."""
    column = table.column(name)
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy()
    return column.to_numpy()


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
        with self.engine.connect() as connection:
            return fetch_frame(connection, sql, params)

    def _load_users(self) -> None:
        table, self.users_version = load_users(self.engine)
        self.table = table  # every column the filters and the export read (memory-mapped when cached)
        self.ids = _numpy(table, "id")
        self.size = len(self.ids)
        push_opt_in, has_token = _numpy(table, "push_opt_in") == 1, _numpy(table, "has_push_token") == 1
        email_opt_in = _numpy(table, "email_opt_in") == 1
        self._cols: dict[str, np.ndarray] = {
            "push_enabled": push_opt_in & has_token,
            "email_opt_in": email_opt_in,
            "random_bucket": _numpy(table, "random_bucket"),
            "first_used_us": _numpy(table, "first_used_us"),
            "last_used_us": _numpy(table, "last_used_us"),
            "session_count": _numpy(table, "session_count"),
            "purchase_count": _numpy(table, "purchase_count"),
            "total_spent": _numpy(table, "total_spent"),
        }
        self._codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        for name in CATEGORICAL:
            encoded = pc.dictionary_encode(table.column(name)).combine_chunks()
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            self._codes[name] = (codes, {str(v): i for i, v in enumerate(encoded.dictionary.to_pylist())})
        platform_codes, platform_lookup = self._codes["platform"]
        reach_frame = pd.DataFrame(
            {
                "platform": pd.Categorical.from_codes(platform_codes, categories=list(platform_lookup)),
                "has_push_token": has_token,
                "push_opt_in": push_opt_in,
                "email": np.where(table.column("email").is_valid().to_numpy(zero_copy_only=False), "", None),
                "email_opt_in": email_opt_in,
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
        offsets, times = load_event_times(self.engine, event, self.ids, self.users_version)
        return EventTimes(offsets, times)

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
        cached = load_scores(self.engine, self.users_version, self.version, prediction_id)
        if cached is not None:
            return Scores(*cached)
        scores = self._read_scores(prediction_id)
        if data_version(self.engine) == self.version:  # nothing was rescored while we read
            save_scores(self.engine, self.users_version, self.version, prediction_id, scores.score, scores.category)
        return scores

    def _read_scores(self, prediction_id: int) -> Scores:
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


def user_store(engine: Engine | None = None, version: int | None = None) -> UserStore:
    """The shared store for `engine`'s current data version (loaded on first use).

    `version` is the data version when the caller has just read it (one query less per count).
    """
    engine = engine or get_engine()
    key = engine.url.render_as_string(hide_password=False)
    version = data_version(engine) if version is None else version
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


def fits_in_memory(engine: Engine | None = None, version: int | None = None) -> bool:
    """Whether the user table is small enough for the in-memory store (LIKELY_IN_MEMORY_USERS,
    default 5,000,000 users); above it counts and exports run as SQL on the database."""
    engine = engine or get_engine()
    version = data_version(engine) if version is None else version
    key = (engine.url.render_as_string(hide_password=False), version)
    if key not in _user_counts:
        with engine.connect() as connection:
            _user_counts[key] = int(connection.execute(sa.text("SELECT COUNT(*) FROM users")).scalar_one())
    return _user_counts[key] <= IN_MEMORY_USER_LIMIT

"""The columnar cache behind the in-memory store: what it needs, in files that load in milliseconds.

Reading a million users (and tens of millions of session times) out of SQLite takes tens of
seconds; memory-mapping the same columns takes milliseconds. So the store's columns live in a
cache folder beside the SQLite file (`<database>.cache/`), keyed on `users_version` (a random
token that every change to users, events or facts renews, core.db.bump_data_version):

  users-<version>.arrow                  one row per user (sorted users.id): the columns the
                                         filters and the CSV export read (Arrow IPC, one chunk,
                                         memory-mapped)
  times-<version>-<event key>.{offsets,times}.npy
                                         each user's sorted times of one event (a CSR), for
                                         "N times in the last D days" filters
  scores-<version>-d<data version>-p<prediction>.{score,category}.npy
                                         a prediction's scores aligned with the users

An import does not throw the cache away: `carry_forward` rereads only the users it touched
(their row, their events) and writes the next version from the previous one. A version with
no files is built once from the database on first use. Databases that are not SQLite files
(PostgreSQL, in-memory SQLite) build the same columns from the database, without files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine

from core.db import users_version

NAT = np.iinfo(np.int64).min
_FETCH_ROWS = 250_000
_IN_CHUNK = 5_000  # ids per IN list when rereading touched users
_CARRY_LIMIT = 0.25  # above this share of touched users, rebuilding beats carrying forward

_USERS_SQL = """
    SELECT u.id, u.external_id, u.first_name, u.email, u.platform, u.country, u.language, u.timezone,
           u.created_at, u.push_opt_in, u.has_push_token, u.email_opt_in, u.random_bucket,
           f.first_used_at, f.last_used_at, f.session_count, f.purchase_count, f.total_spent
    FROM users u LEFT JOIN user_facts f ON f.user_id = u.id {where}
    ORDER BY u.id
"""
TEXT_COLUMNS = ("external_id", "first_name", "email", "platform", "country", "language", "timezone")
TIME_COLUMNS = {"created_at": "created_us", "first_used_at": "first_used_us", "last_used_at": "last_used_us"}
FLAG_COLUMNS = ("push_opt_in", "has_push_token", "email_opt_in")  # int8: 1 yes, 0 no, -1 unknown


def to_us(values) -> np.ndarray:
    """Database timestamps (text or datetime, None for missing) as int64 microseconds (NAT when missing)."""
    values = np.array(values, dtype=object)
    values[pd.isna(values)] = None  # a LEFT JOIN's missing row arrives as NaN
    return values.astype("datetime64[us]").astype(np.int64)


def cache_dir(engine: Engine) -> Path | None:
    """`<database file>.cache/` for a SQLite file; None (no files) for anything else."""
    if engine.dialect.name != "sqlite" or os.environ.get("LIKELY_COLUMNAR_CACHE") == "0":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve().with_name(Path(database).name + ".cache")


def fetch_frame(connection, sql: str, params: tuple | list = ()) -> pd.DataFrame:
    """Rows of a raw query as a frame, fetched through the DBAPI cursor in chunks.

    Plain DBAPI tuples are several times faster than ORM rows at a million users; `?`
    markers are rewritten to the driver's paramstyle.
    """
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


def _flag(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy()
    return np.where(missing, -1, series.fillna(False).to_numpy(dtype=bool)).astype(np.int8)


def _number(series: pd.Series, dtype) -> np.ndarray:
    return pd.to_numeric(series).fillna(0).to_numpy(dtype=dtype)


def _users_table(frame: pd.DataFrame) -> pa.Table:
    columns: dict[str, pa.Array] = {"id": pa.array(frame["id"].to_numpy(dtype=np.int64))}
    for name in TEXT_COLUMNS:
        values = frame[name].astype(object).where(frame[name].notna(), None)
        columns[name] = pa.array(values.tolist(), type=pa.string())
    for source, name in TIME_COLUMNS.items():
        columns[name] = pa.array(to_us(frame[source]))
    for name in FLAG_COLUMNS:
        columns[name] = pa.array(_flag(frame[name]))
    columns["random_bucket"] = pa.array(_number(frame["random_bucket"], np.int32))
    columns["session_count"] = pa.array(_number(frame["session_count"], np.int64))
    columns["purchase_count"] = pa.array(_number(frame["purchase_count"], np.int64))
    columns["total_spent"] = pa.array(_number(frame["total_spent"], np.float64))
    return pa.table(columns)


def _read_users(connection, ids: np.ndarray | None = None) -> pa.Table:
    if ids is None:
        return _users_table(fetch_frame(connection, _USERS_SQL.format(where="")))
    parts = []
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK].tolist()
        where = f"WHERE u.id IN ({', '.join('?' * len(chunk))})"
        parts.append(_users_table(fetch_frame(connection, _USERS_SQL.format(where=where), chunk)))
    return (
        pa.concat_tables(parts)
        if parts
        else _users_table(fetch_frame(connection, _USERS_SQL.format(where="WHERE 1 = 0")))
    )


def _write_atomically(path: Path, write) -> None:
    """Write through a temporary name, so a reader never maps half a file.

    The cache is an optimisation: where the folder cannot be written (a read-only database,
    a full disk) the store simply loads from the database, as it would without the cache.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise CacheUnwritable(str(path)) from None


class CacheUnwritable(Exception):
    """The cache folder could not be written; callers go on without the cache."""


def _write_table(path: Path, table: pa.Table) -> None:
    table = table.combine_chunks()  # one chunk: every numeric column maps to numpy without a copy

    def write(target: Path) -> None:
        with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    _write_atomically(path, write)


def _read_table(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _users_path(folder: Path, version: str) -> Path:
    return folder / f"users-{version}.arrow"


def _event_key(event: str) -> str:
    return hashlib.sha1(event.encode("utf-8")).hexdigest()[:16]  # event names are user text: never a file name


def _times_paths(folder: Path, version: str, event: str) -> tuple[Path, Path]:
    stem = f"times-{version}-{_event_key(event)}"
    return folder / f"{stem}.offsets.npy", folder / f"{stem}.times.npy"


def _drop_other_versions(folder: Path, version: str) -> None:
    """Delete other versions' files (a process still mapping one keeps reading it: Linux unlinks lazily)."""
    for path in folder.glob("*"):
        if path.name.startswith(("users-", "times-", "scores-")) and f"-{version}" not in path.name:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def load_users(engine: Engine) -> tuple[pa.Table, str]:
    """Every user's columns (sorted users.id) and the users_version they reflect."""
    folder = cache_dir(engine)
    with engine.connect() as connection:
        version = users_version(connection)
        if folder is not None and _users_path(folder, version).exists():
            return _read_table(_users_path(folder, version)), version
        table = _read_users(connection)
        if folder is not None and users_version(connection) == version:  # nothing changed while we read
            with contextlib.suppress(CacheUnwritable):
                _write_table(_users_path(folder, version), table)
                _drop_other_versions(folder, version)
    return table, version


def _fetch_times(connection, sql: str, params) -> tuple[np.ndarray, np.ndarray]:
    """(user_id, time in us) rows of `sql`, converted a chunk at a time: tens of millions of
    timestamps never sit in memory as Python strings at once."""
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = connection.connection.driver_connection.cursor()
    users, times = [], []
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_FETCH_ROWS):
            who, when = zip(*rows, strict=True)
            users.append(np.array(who, dtype=np.int64))
            times.append(to_us(when))
    finally:
        cursor.close()
    if not users:
        return np.array([], np.int64), np.array([], np.int64)
    return np.concatenate(users), np.concatenate(times)


def _read_times(connection, event: str, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(user_id, time in us) of `event`, sorted by user then time; all users, or only `ids`."""
    # On SQLite the (user_id, name, ts) index covers this query: scanning it beats ~one random
    # table read per event through the (name, ts) index, and yields rows already sorted.
    hint = " INDEXED BY ix_events_user_name_ts" if connection.dialect.name == "sqlite" else ""
    sql = f"SELECT user_id, ts FROM events{hint} WHERE name = ?"
    parts = []
    if ids is None:
        parts.append(_fetch_times(connection, sql, (event,)))
    else:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK].tolist()
            where = f"{sql} AND user_id IN ({', '.join('?' * len(chunk))})"
            parts.append(_fetch_times(connection, where, [event, *chunk]))
    users = np.concatenate([p[0] for p in parts]) if parts else np.array([], np.int64)
    times = np.concatenate([p[1] for p in parts]) if parts else np.array([], np.int64)
    if _sorted(users, times):  # the index scan usually hands them over in order already
        return users, times
    order = np.lexsort((times, users))
    return users[order], times[order]


def _sorted(users: np.ndarray, times: np.ndarray) -> bool:
    step = np.diff(users)
    return bool((step >= 0).all() and (np.diff(times)[step == 0] >= 0).all())


def _csr(store_ids: np.ndarray, users: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets per store user into `times` (sorted by user, then time); unknown users are dropped."""
    pos = np.minimum(np.searchsorted(store_ids, users), max(len(store_ids) - 1, 0))
    known = store_ids[pos] == users if len(store_ids) else np.zeros(len(users), dtype=bool)
    counts = np.bincount(pos[known], minlength=len(store_ids))
    offsets = np.zeros(len(store_ids) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, times[known]


def load_event_times(engine: Engine, event: str, store_ids: np.ndarray, version: str) -> tuple[np.ndarray, np.ndarray]:
    """Each store user's sorted times of `event` as (offsets, times), from the cache when it has them."""
    folder = cache_dir(engine)
    if folder is not None:
        offsets_path, times_path = _times_paths(folder, version, event)
        if offsets_path.exists() and times_path.exists():
            return np.load(offsets_path, mmap_mode="r"), np.load(times_path, mmap_mode="r")
    with engine.connect() as connection:
        users, times = _read_times(connection, event, None)
        offsets, times = _csr(store_ids, users, times)
        if folder is not None and users_version(connection) == version:
            with contextlib.suppress(CacheUnwritable):
                _save_times(folder, version, event, offsets, times)
    return offsets, times


def _save_times(folder: Path, version: str, event: str, offsets: np.ndarray, times: np.ndarray) -> None:
    offsets_path, times_path = _times_paths(folder, version, event)
    _write_atomically(times_path, lambda target: _save_npy(target, times))
    _write_atomically(offsets_path, lambda target: _save_npy(target, offsets))
    names = sorted({*_cached_events(folder, version), event})
    _write_atomically(_events_index(folder, version), lambda target: target.write_text(json.dumps(names), "utf-8"))


def _save_npy(target: Path, values: np.ndarray) -> None:
    with open(target, "wb") as handle:
        np.save(handle, np.ascontiguousarray(values))


def _scores_paths(folder: Path, users: str, data: int, prediction_id: int) -> tuple[Path, Path]:
    stem = f"scores-{users}-d{data}-p{prediction_id}"
    return folder / f"{stem}.score.npy", folder / f"{stem}.category.npy"


def load_scores(engine: Engine, users: str, data: int, prediction_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A prediction's cached (score, category code) arrays for this users and data version, if any.

    Scores change without touching users (a rescore bumps only the data version), so they are
    keyed on both: a rescore or an import makes the next load read them from the database once.
    """
    folder = cache_dir(engine)
    if folder is None:
        return None
    score_path, category_path = _scores_paths(folder, users, data, prediction_id)
    if not (score_path.exists() and category_path.exists()):
        return None
    return np.load(score_path, mmap_mode="r"), np.load(category_path, mmap_mode="r")


def save_scores(engine: Engine, users: str, data: int, prediction_id: int, score, category) -> None:
    folder = cache_dir(engine)
    if folder is None:
        return
    score_path, category_path = _scores_paths(folder, users, data, prediction_id)
    with contextlib.suppress(CacheUnwritable):
        _write_atomically(category_path, lambda target: _save_npy(target, category))
        _write_atomically(score_path, lambda target: _save_npy(target, score))
    for stale in folder.glob(f"scores-*-p{prediction_id}.*.npy"):  # older data versions of this prediction
        if not stale.name.startswith(f"scores-{users}-d{data}-"):
            with contextlib.suppress(OSError):
                stale.unlink(missing_ok=True)


def carry_forward(
    engine: Engine, before: str, after: str, touched, scores_from: int | None = None, scores_to: int | None = None
) -> bool:
    """Write version `after`'s cache from version `before`'s, rereading only the `touched` users.

    `after` must be the version the caller's commit produced: when the data moved on since
    (another writer), nothing is written and the next load builds the newest version.
    Scores cached at data version `scores_from` (the one just before the caller's change, which
    did not rescore) are carried to `scores_to`; new users are unscored. Returns whether the
    cache was carried forward.
    """
    folder = cache_dir(engine)
    if folder is None or not _users_path(folder, before).exists():
        return False
    touched = np.unique(np.asarray(list(touched), dtype=np.int64))
    old = _read_table(_users_path(folder, before))
    if len(touched) > _CARRY_LIMIT * max(old.num_rows, 1):
        return False
    events = _cached_events(folder, before)
    with engine.connect() as connection:
        if users_version(connection) != after:
            return False
        fresh = _read_users(connection, touched)
        fresh_times = {event: _read_times(connection, event, touched) for event in events}
        if users_version(connection) != after:  # a writer committed while we read: leave it to the next load
            return False
    old_ids = old.column("id").to_numpy()
    table = _carry_users(old, fresh.cast(old.schema))
    new_ids = table.column("id").to_numpy()
    try:
        for event, paths in events.items():  # times first: a users file alone is a valid, smaller cache
            users, times = fresh_times[event]
            offsets, old_times = np.load(paths[0], mmap_mode="r"), np.load(paths[1], mmap_mode="r")
            new_offsets, new_times = _carry_times(offsets, old_times, old_ids, new_ids, touched, users, times)
            _save_times(folder, after, event, new_offsets, new_times)
        if scores_from is not None and scores_to is not None:
            _carry_scores(folder, before, after, scores_from, scores_to, old_ids, new_ids)
        _write_table(_users_path(folder, after), table)
    except CacheUnwritable:
        return False
    _drop_other_versions(folder, after)
    return True


def _carry_users(old: pa.Table, fresh: pa.Table) -> pa.Table:
    """`old` with the rows of `fresh` (same schema, sorted by id) replacing or joining them.

    Column by column: a column the change left alone is reused as it is, a number column is
    patched in numpy, and only a changed text column is rebuilt. Users new to the table must
    come after every old id (ids only grow), else the whole table is re-sorted.
    """
    old_ids, fresh_ids = old.column("id").to_numpy(), fresh.column("id").to_numpy()
    present = np.isin(fresh_ids, old_ids)
    added = np.flatnonzero(~present)
    if len(added) and len(old_ids) and fresh_ids[added].min() <= old_ids[-1]:
        table = pa.concat_tables([old.filter(pc.invert(pc.is_in(old.column("id"), pa.array(fresh_ids)))), fresh])
        return table.take(pc.sort_indices(table, [("id", "ascending")]))
    replaced = np.flatnonzero(present)
    at = np.searchsorted(old_ids, fresh_ids[replaced])
    columns = []
    for name in old.column_names:
        before = old.column(name).combine_chunks()
        after = fresh.column(name).combine_chunks()
        if not len(added) and before.take(pa.array(at)).equals(after):
            columns.append(before)  # untouched by this change: the same (memory-mapped) values
        elif pa.types.is_string(before.type):
            source = np.arange(len(old_ids) + len(added))
            source[at] = len(old_ids) + replaced
            source[len(old_ids) :] = len(old_ids) + added
            columns.append(pa.concat_arrays([before, after]).take(pa.array(source)))
        else:
            values = np.concatenate([before.to_numpy(), after.to_numpy()[added]])
            values[at] = after.to_numpy()[replaced]
            columns.append(pa.array(values))
    return pa.table(columns, schema=old.schema)


def _carry_scores(folder: Path, before: str, after: str, data_from: int, data_to: int, old_ids, new_ids) -> None:
    at = np.searchsorted(new_ids, old_ids)  # every old user is still there: imports never delete
    for score_path in folder.glob(f"scores-{before}-d{data_from}-p*.score.npy"):
        prediction_id = int(score_path.name.split("-p")[-1].split(".")[0])
        old_score = np.load(score_path, mmap_mode="r")
        old_category = np.load(_scores_paths(folder, before, data_from, prediction_id)[1], mmap_mode="r")
        score = np.full(len(new_ids), np.nan)
        category = np.full(len(new_ids), -1, dtype=np.int8)
        score[at], category[at] = old_score, old_category
        new_score_path, new_category_path = _scores_paths(folder, after, data_to, prediction_id)
        _write_atomically(new_category_path, lambda target, values=category: _save_npy(target, values))
        _write_atomically(new_score_path, lambda target, values=score: _save_npy(target, values))


def _events_index(folder: Path, version: str) -> Path:
    return folder / f"times-{version}.events.json"


def _cached_events(folder: Path, version: str) -> dict[str, tuple[Path, Path]]:
    """The events whose times the cache holds for `version`, with their files."""
    index = _events_index(folder, version)
    names = json.loads(index.read_text(encoding="utf-8")) if index.exists() else []
    found = {}
    for event in names:
        paths = _times_paths(folder, version, event)
        if paths[0].exists() and paths[1].exists():
            found[event] = paths
    return found


def _carry_times(
    old_offsets: np.ndarray,
    old_times: np.ndarray,
    old_ids: np.ndarray,
    new_ids: np.ndarray,
    touched: np.ndarray,
    fresh_users: np.ndarray,
    fresh_times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The next CSR: untouched users keep their old slice, touched (and new) users get `fresh_*`.

    Untouched users come in runs (between two touched users), each one slice copy: a few
    thousand copies for an import of thousands of users, not a pass per event.
    """
    old_lengths = np.diff(old_offsets)
    fresh_pos = np.searchsorted(new_ids, fresh_users)
    lengths = np.bincount(fresh_pos, minlength=len(new_ids)).astype(np.int64)
    kept = np.flatnonzero(~np.isin(old_ids, touched))  # old positions of untouched users
    at = np.searchsorted(new_ids, old_ids[kept])  # their new positions
    lengths[at] = old_lengths[kept]
    offsets = np.zeros(len(new_ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    times = np.empty(int(offsets[-1]), dtype=np.int64)
    if len(kept):
        breaks = np.flatnonzero((np.diff(kept) != 1) | (np.diff(at) != 1)) + 1
        starts, stops = np.r_[0, breaks], np.r_[breaks, len(kept)]
        for first, last in zip(starts.tolist(), stops.tolist(), strict=True):
            source = slice(int(old_offsets[kept[first]]), int(old_offsets[kept[last - 1] + 1]))
            target = int(offsets[at[first]])
            times[target : target + source.stop - source.start] = old_times[source]
    if len(fresh_pos):
        rank = np.arange(len(fresh_pos)) - np.searchsorted(fresh_pos, fresh_pos, side="left")
        times[offsets[fresh_pos] + rank] = fresh_times
    return offsets, times

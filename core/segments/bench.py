"""`python -m core bench --users N`: live-count and export figures on an N-user database.

The database lives in bench-data/bench-N.db (git-ignored) and is reused when it already holds
N users and a full purchase prediction. The measured definition is a score range plus three
other filters: purchase likelihood 50-100, platform iOS or Android, last used less than 30 days
ago, push enabled. Figures:

  count_p50_ms / count_p95_ms   parse_definition + core.segments.count (parsing, data-version check, masks)
  sql_count_p50_ms              the same definition as one SQL COUNT (the naive peer)
  mask_floor_p50_ms             the same filters as bare numpy masks over ready arrays (the floor)
  windowed_*                    "3+ sessions in the last D days": first use (loads the session times),
                                then per count as D changes, and per count with a new minimum
  store_cold_load_ms            a fresh load of the store and the prediction's scores (columnar cache)
  import_10k_events_to_count_ms import 10,000 sessions (core.importer), then the next count
  first_recent_sessions_ms      the first "3+ sessions in the last 14 days" count after that import
  export_rows_per_s             a CSV export of every scored user, in process (written to bench-data/)
  export_peak_rss_mb, cli_export_s
                                the same export as `python -m core segment export`: its process's
                                peak RSS and wall time
  cli_count_ms                  `python -m core segment count` of the definition: the whole process
  drag_payload_bytes            the live drag's per-score cumulative arrays of the prediction, as JSON
  duckdb_*                      the named peer: DuckDB over the same columns (the store's Arrow table):
                                the definition's count, and a CSV COPY of the same users (raw values,
                                no formula neutralisation)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from core import models
from core.db import bulk_insert, bump_data_version, init_db, make_engine, session_scope
from core.progress import printer
from core.segments.definition import SegmentDefinition
from core.summary import user_count
from core.timeutil import utcnow


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return round(statistics.median(ordered) * 1000, 3), round(p95 * 1000, 3)


def _ensure_prediction(engine, say, random_scores: bool = False) -> tuple[int, str]:
    """A full purchase prediction: trained when core.predictions can, else random scores (said so)."""
    with session_scope(engine) as session:
        row = session.query(models.Prediction).filter_by(kind="full", event="purchase").first()
        if row is not None:
            return row.id, (row.details or {}).get("bench_scores", "trained")
    if random_scores:
        say("writing random scores (--random-scores)")
        return _random_prediction(engine), "random"
    from core.predictions import train_prediction  # predictions use segments: imported here, not at the top

    say("training a purchase prediction (core.predictions.train_prediction)")
    return train_prediction(engine, "purchase", 30, kind="full", name="Bench purchase in 30 days"), "trained"


def _random_prediction(engine) -> int:
    from core.seed import default_anchor
    from core.tiers import categories_for

    with session_scope(engine) as session:
        prediction = models.Prediction(
            name="Bench random purchase scores",
            event="purchase",
            window_days=30,
            kind="full",
            as_of=default_anchor(),
            details={"bench_scores": "random"},
        )
        session.add(prediction)
        session.flush()
        ids = np.array(
            [r[0] for r in session.execute(models.User.__table__.select().with_only_columns(models.User.id))]
        )
        scores = np.round(np.random.default_rng(1).beta(1.2, 3.0, len(ids)) * 100, 2)
        rows = zip(
            [prediction.id] * len(ids), ids.tolist(), scores.tolist(), categories_for(scores).tolist(), strict=True
        )
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        bump_data_version(session, users_changed=False)
        return prediction.id


def run_bench(users: int, directory: str = "bench-data", repeat: int = 50, random_scores: bool = False) -> dict:
    from core.importer import import_events
    from core.segments import count, parse_definition, sql_count
    from core.segments.export import export_csv
    from core.segments.store import clear_cache, user_store

    say = printer("bench ")
    path = Path(directory).resolve() / f"bench-{users}.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    if user_count(engine) != users:
        from core.seed import generate

        say(f"seeding {users:,} users into {path} (several minutes at a million)")
        generate(engine, users=users, progress=say)
    prediction, scores_kind = _ensure_prediction(engine, say, random_scores)

    started = time.perf_counter()
    store = user_store(engine)
    store.scores(prediction)
    load_s = time.perf_counter() - started
    now = utcnow()
    definition = {
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "likelihood_score", "prediction": prediction, "min": 50, "max": 100},
                    {"type": "platform", "values": ["iOS", "Android"]},
                    {"type": "last_used", "op": "less_than", "value": 30, "unit": "days"},
                    {"type": "push_enabled", "value": True},
                ],
            }
        ]
    }
    size = count(parse_definition(definition), engine, now)
    samples = []
    for k in range(repeat):
        definition["groups"][0]["filters"][0]["min"] = 50 + k % 10  # a slider being dragged
        t = time.perf_counter()
        count(parse_definition(definition), engine, now)  # what a page pays per move: parse, then count
        samples.append(time.perf_counter() - t)
    count_p50, count_p95 = _ms(samples)
    definition["groups"][0]["filters"][0]["min"] = 50

    sql_samples = []
    for _ in range(3):
        t = time.perf_counter()
        sql_size = sql_count(parse_definition(definition), engine, now)
        sql_samples.append(time.perf_counter() - t)

    score = store.scores(prediction).score
    codes, lookup = store._codes["platform"]
    ios, android = lookup.get("iOS", -2), lookup.get("Android", -2)
    last_used, push = store.col("last_used_us"), store.col("push_enabled")
    cut = int(np.datetime64(now - timedelta(days=30), "us").astype(np.int64))
    floor = []
    for _ in range(repeat):
        t = time.perf_counter()
        mask = (score >= 50) & (score <= 100) & ((codes == ios) | (codes == android)) & (last_used > cut) & push
        np.count_nonzero(mask)
        floor.append(time.perf_counter() - t)

    windowed = {"groups": [{"filters": [{"type": "recent_sessions", "min": 3, "days": 14}]}]}
    t = time.perf_counter()
    count(parse_definition(windowed), engine, now)
    windowed_load_s = time.perf_counter() - t
    windowed_samples = []
    for k in range(max(5, repeat // 5)):
        windowed["groups"][0]["filters"][0]["days"] = 7 + k  # the days box being edited: same k
        t = time.perf_counter()
        count(parse_definition(windowed), engine, now)
        windowed_samples.append(time.perf_counter() - t)
    new_k_samples = []
    for k in range(4, 9):  # a new minimum: the k-th latest times are gathered once, then kept
        windowed["groups"][0]["filters"][0]["min"] = k
        t = time.perf_counter()
        count(parse_definition(windowed), engine, now)
        new_k_samples.append(time.perf_counter() - t)

    everyone = parse_definition(
        {"groups": [{"filters": [{"type": "likelihood_score", "prediction": prediction, "min": 0, "max": 100}]}]}
    )
    expected = count(everyone, engine, now)
    out = path.with_suffix(".export.csv")
    say(f"exporting {expected:,} users to {out}")
    t = time.perf_counter()
    rows = export_csv(everyone, out, engine, now)
    export_s = time.perf_counter() - t
    with open(out, encoding="utf-8") as handle:
        lines = sum(1 for _ in handle) - 1

    say("a cold store load (from the columnar cache)")
    clear_cache()
    t = time.perf_counter()
    user_store(engine).scores(prediction)
    cold_ms = (time.perf_counter() - t) * 1000

    say("importing 10,000 events, then the next count")
    events_file = path.with_suffix(".events.csv")
    _write_events(events_file, users, now)
    t = time.perf_counter()
    import_events(engine, events_file)
    count(parse_definition(definition), engine, now)
    import_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    count(parse_definition({"groups": [{"filters": [{"type": "recent_sessions", "min": 3, "days": 14}]}]}), engine, now)
    first_recent_ms = (time.perf_counter() - t) * 1000

    say("the CLI: one count, one export (separate processes)")
    _saved(engine, "Bench definition", parse_definition(definition))
    _saved(engine, "Bench everyone", everyone)
    cli_count_s, _ = _cli(path, ["segment", "count", "Bench definition", "--now", now.isoformat()])
    cli_export_s, cli_export_rss = _cli(path, ["segment", "export", "Bench everyone", "-o", str(out)])

    peers = _duckdb_peers(user_store(engine), prediction, now, out.with_suffix(".duckdb.csv"))
    return {
        "users": users,
        "scores": scores_kind,
        "definition": "likelihood 50-100, platform iOS/Android, last used < 30 days, push enabled",
        "count": size,
        "sql_count": sql_size,
        "store_load_s": round(load_s, 2),
        "store_cold_load_ms": round(cold_ms),
        "count_p50_ms": count_p50,
        "count_p95_ms": count_p95,
        "sql_count_p50_ms": _ms(sql_samples)[0],
        "mask_floor_p50_ms": _ms(floor)[0],
        "windowed_first_use_s": round(windowed_load_s, 2),
        "windowed_count_p50_ms": _ms(windowed_samples)[0],
        "windowed_new_min_p50_ms": _ms(new_k_samples)[0],
        "import_10k_events_to_count_ms": round(import_ms),
        "first_recent_sessions_ms": round(first_recent_ms),
        "export_rows": rows,
        "export_file_rows": lines,
        "export_count": expected,
        "export_s": round(export_s, 2),
        "export_rows_per_s": round(rows / export_s) if export_s else None,
        "export_peak_rss_mb": cli_export_rss,
        "cli_export_s": round(cli_export_s, 2),
        "cli_count_ms": round(cli_count_s * 1000),
        "drag_payload_bytes": drag_payload_bytes(user_store(engine).scores(prediction).score),
        **peers,
    }


def _write_events(target: Path, users: int, now) -> None:
    """10,000 sessions of random demo users (seed external ids) in the last three days."""
    rng = np.random.default_rng(11)
    who = rng.integers(1, users + 1, 10_000)
    seconds = rng.integers(60, 3 * 86_400, 10_000)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write("user_id,event,timestamp\n")
        for user, ago in zip(who.tolist(), seconds.tolist(), strict=True):
            handle.write(f"u{user:07d},session,{(now - timedelta(seconds=ago)).isoformat()}Z\n")


def _saved(engine, name: str, definition: SegmentDefinition) -> None:
    from core.segments import list_segments, save_segment, update_segment

    existing = {s.name: s for s in list_segments(engine)}
    if name in existing:
        update_segment(engine, existing[name].id, definition)
    else:
        save_segment(engine, name, definition)


_PEAK_RSS = (
    "import runpy, sys\n"
    "sys.argv = ['core', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('core', run_name='__main__')\n"
    "finally:\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(line.split()[1] for line in status if line.startswith('VmHWM'))\n"
    "    print('peak-rss-kb', peak, file=sys.stderr)\n"
)


def _cli(database: Path, command: list[str]) -> tuple[float, float | None]:
    """Wall seconds and peak RSS (MB) of one `python -m core ...` process on the bench database.

    The peak is the process's own VmHWM: ru_maxrss of a child also counts the pages it shared
    with this (large) process between fork and exec.
    """
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr[-500:]}")
    peaks = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak-rss-kb")]
    return elapsed, round(int(peaks[-1]) / 1024, 1) if peaks else None


def drag_payload_bytes(score: np.ndarray) -> int:
    """Size of what the live drag sends once per prediction: per integer score 0-100, the users and
    expected performers below it and at most it (4 arrays of 101 numbers), as JSON."""
    scores = np.sort(score[~np.isnan(score)])
    expected = np.concatenate(([0.0], np.cumsum(scores / 100)))
    marks = np.arange(101)
    below, at_most = np.searchsorted(scores, marks, "left"), np.searchsorted(scores, marks, "right")
    payload = {
        "users_below": below.tolist(),
        "users_at_most": at_most.tolist(),
        "expected_below": np.round(expected[below], 2).tolist(),
        "expected_at_most": np.round(expected[at_most], 2).tolist(),
    }
    return len(json.dumps(payload, separators=(",", ":")))


def _duckdb_peers(store, prediction: int, now, out: Path) -> dict:
    """DuckDB over the same columns (the store's Arrow table plus the scores): count and CSV COPY."""
    import duckdb
    import pyarrow as pa

    table = store.table.append_column("score", pa.array(store.scores(prediction).score, from_pandas=True))
    cut = np.datetime64(now - timedelta(days=30), "us").astype(np.int64)
    connection = duckdb.connect()
    connection.register("users", table)
    sql = (
        "SELECT count(*) FROM users WHERE score BETWEEN 50 AND 100 AND platform IN ('iOS', 'Android')"
        f" AND last_used_us > {int(cut)} AND push_opt_in = 1 AND has_push_token = 1"
    )
    connection.execute(sql).fetchall()
    samples = []
    for _ in range(20):
        t = time.perf_counter()
        connection.execute(sql).fetchall()
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    connection.execute(
        "COPY (SELECT external_id, first_name, email, platform, country, language, timezone, created_us,"
        " first_used_us, last_used_us, session_count, push_opt_in, email_opt_in, score FROM users"
        f" WHERE score IS NOT NULL ORDER BY id) TO '{out}' (HEADER, DELIMITER ',')"
    )
    copy_s = time.perf_counter() - t
    connection.close()
    return {
        "duckdb_count_p50_ms": _ms(samples)[0],
        "duckdb_copy_rows_per_s": round(int(np.count_nonzero(~np.isnan(table.column("score").to_numpy()))) / copy_s),
    }

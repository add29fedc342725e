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
  export_rows_per_s             a CSV export of every scored user (written to bench-data/)
  export_peak_mb                tracemalloc peak during a second, traced export
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np

from core import models
from core.db import bulk_insert, bump_data_version, init_db, make_engine, session_scope
from core.progress import printer
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
        bump_data_version(session)
        return prediction.id


def run_bench(users: int, directory: str = "bench-data", repeat: int = 50, random_scores: bool = False) -> dict:
    from core.segments import count, parse_definition, sql_count
    from core.segments.export import export_csv
    from core.segments.store import user_store

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
    say("exporting again under tracemalloc for the peak")
    tracemalloc.start()
    export_csv(everyone, os.devnull, engine, now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "users": users,
        "scores": scores_kind,
        "definition": "likelihood 50-100, platform iOS/Android, last used < 30 days, push enabled",
        "count": size,
        "sql_count": sql_size,
        "store_load_s": round(load_s, 2),
        "count_p50_ms": count_p50,
        "count_p95_ms": count_p95,
        "sql_count_p50_ms": _ms(sql_samples)[0],
        "mask_floor_p50_ms": _ms(floor)[0],
        "windowed_first_use_s": round(windowed_load_s, 2),
        "windowed_count_p50_ms": _ms(windowed_samples)[0],
        "windowed_new_min_p50_ms": _ms(new_k_samples)[0],
        "export_rows": rows,
        "export_file_rows": lines,
        "export_count": expected,
        "export_s": round(export_s, 2),
        "export_rows_per_s": round(rows / export_s) if export_s else None,
        "export_peak_mb": round(peak / 1e6, 1),
    }

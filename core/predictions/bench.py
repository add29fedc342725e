"""The slider benchmark: server time to answer one slider move, at any audience size.

`python -m core bench-slider --users 1000000` builds a throw-away database holding one
synthetic prediction with that many scores (no events needed: the slider only reads
scores), then times what a slider move costs the server: the cache check, the selection
figures and the 20-bar histogram (`python -m tests.page_benchmark` times whole page reruns).
Without --users it measures the current database's prediction.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from core import db
from core.predictions import store
from core.predictions.distribution import clear_cache, score_distribution
from core.timeutil import utcnow


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def synthetic_prediction(engine: Engine, users: int, seed: int = 1) -> int:
    """Fill an empty database with `users` bare users and one full prediction scoring them."""
    rng = np.random.default_rng(seed)
    probabilities = rng.beta(0.6, 3.5, users)
    ids = np.arange(1, users + 1)
    with db.session_scope(engine) as session:
        connection = session.connection()
        for start in range(0, users, 200_000):
            chunk = ids[start : start + 200_000].tolist()
            bulk_insert_rows = ((i, f"u{i:07d}", 0, 0, 0, i % 10_000) for i in chunk)
            db.bulk_insert(
                connection,
                "users",
                ("id", "external_id", "push_opt_in", "email_opt_in", "has_push_token", "random_bucket"),
                bulk_insert_rows,
            )
        prediction_id = store.save_prediction(
            session,
            name="Synthetic purchase in next 30 days",
            event="purchase",
            window_days=30,
            kind="full",
            as_of=utcnow(),
            quality=50.0,
            auc=0.75,
            details={"audience_size": users, "calibration": [], "drivers": [], "synthetic": True},
        )
        store.write_scores(session, prediction_id, ids, probabilities)
    return prediction_id


def bench_slider(engine: Engine, users: int | None = None, prediction: str | None = None, moves: int = 200) -> dict:
    workdir = None
    try:
        if users:
            workdir = Path(tempfile.mkdtemp(prefix="likely-bench-"))
            engine = db.make_engine(f"sqlite:///{workdir / 'bench.db'}")
            db.init_db(engine)
            started = time.perf_counter()
            prediction_id = synthetic_prediction(engine, users)
            build_s = time.perf_counter() - started
        else:
            chosen = (
                store.find_prediction(engine, prediction)
                if prediction
                else next((p for p in store.list_predictions(engine) if p.kind == "full"), None)
            )
            if chosen is None:
                from core.errors import UserError

                raise UserError("no full prediction to measure; train one or pass --users N")
            prediction_id, build_s = chosen.id, 0.0
        clear_cache()
        started = time.perf_counter()
        distribution = score_distribution(engine, prediction_id)
        cold_ms = (time.perf_counter() - started) * 1000
        rng = np.random.default_rng(3)
        samples = []
        for _ in range(moves):
            low, high = sorted(rng.integers(0, 101, 2).tolist())
            started = time.perf_counter()
            distribution = score_distribution(engine, prediction_id)  # the per-move cache check
            distribution.summary(low, high)
            distribution.histogram(low, high)
            samples.append((time.perf_counter() - started) * 1000)
        core = _percentiles(samples)
        started = time.perf_counter()
        payload = json.dumps(distribution.score_steps().to_payload())  # what the browser gets once
        steps_ms = (time.perf_counter() - started) * 1000
        result = {
            "users": distribution.audience,
            "setup_s": round(build_s, 1),
            "cold_load_ms": round(cold_ms, 1),
            "slider_p50_ms": core["p50"],
            "slider_p95_ms": core["p95"],
            "slider_max_ms": core["max"],
            "drag_payload_bytes": len(payload.encode()),
            "drag_payload_ms": round(steps_ms, 1),
        }
        return result
    finally:
        if workdir is not None:
            engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)

"""The training benchmark: time and peak memory of `predict` and `backtest` at any size.

`python -m core bench-predict --users 1000000` writes a throw-away SQLite database of that
many users with about 30 events each (sessions, product views, carts, purchases; the demo
generator is too slow for this size), then runs `predict` and `backtest` in child processes
so each one's peak memory is its own, and prints one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from core import db, facts

DAYS = 180
EVENTS_PER_USER = 30
# (event name, share of a user's events)
MIX = (("session", 0.55), ("viewed_product", 0.3), ("added_to_cart", 0.1), ("purchase", 0.05))
CHUNK_USERS = 50_000


def build_database(path: Path, users: int, seed: int = 11, end: datetime = datetime(2026, 6, 30)) -> int:
    """Users with a lasting activity level; returns the number of events written."""
    engine = db.make_engine(f"sqlite:///{path}")
    db.init_db(engine)
    rng = np.random.default_rng(seed)
    start = np.datetime64(end - timedelta(days=DAYS), "s")
    names = np.array([name for name, _share in MIX], dtype=object)
    shares = np.array([share for _name, share in MIX])
    written = 0
    with db.session_scope(engine) as session:
        connection = session.connection()
        for first in range(1, users + 1, CHUNK_USERS):
            ids = np.arange(first, min(first + CHUNK_USERS, users + 1))
            db.bulk_insert(
                connection,
                "users",
                ("id", "external_id", "push_opt_in", "email_opt_in", "has_push_token", "random_bucket"),
                (
                    (int(i), f"u{i:07d}", int(i % 3 == 0), int(i % 2 == 0), int(i % 3 == 0), int(i % 10_000))
                    for i in ids
                ),
            )
            level = rng.lognormal(0, 1.0, len(ids))
            counts = rng.poisson(EVENTS_PER_USER * level / np.exp(0.5))
            owners = np.repeat(ids, counts)
            # Active users stay active: their events lean towards the end of the period.
            ages = DAYS * rng.beta(1 + np.repeat(level, counts), 1.0)
            stamps = start + (ages * 86_400).astype("timedelta64[s]")
            text_stamps = np.char.replace(np.datetime_as_string(stamps, unit="us"), "T", " ")
            kinds = names[rng.choice(len(MIX), len(owners), p=shares)]
            values = np.where(kinds == "purchase", np.round(rng.gamma(2, 20, len(owners)), 2), np.nan)
            rows = zip(
                owners.tolist(),
                kinds.tolist(),
                text_stamps.tolist(),
                [None if np.isnan(v) else float(v) for v in values],
                strict=True,
            )
            db.bulk_insert(connection, "events", ("user_id", "name", "ts", "value"), rows)
            written += len(owners)
        facts.refresh(session)
    engine.dispose()
    return written


# A small Python in between runs the job: a child forked from this (large) process would
# inherit its memory high-water mark and report it as its own peak.
_MEASURE = (
    "import json, resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(json.dumps([code, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))"
)


def _child(url: str, *arguments: str) -> tuple[float, float, float]:
    """Run `python -m core ARGS` on `url`: (wall seconds, CPU seconds, its peak memory in MB).

    CPU seconds say what the job costs on a machine shared with other work, where wall time
    mostly measures the neighbours."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        completed = subprocess.run(
            [sys.executable, "-c", _MEASURE, sys.executable, "-m", "core", "--database-url", url, *arguments],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        code, cpu, peak_kb = json.loads(completed.stdout.strip().splitlines()[-1])
        if code != 0:
            errors.seek(0)
            raise RuntimeError(errors.read().strip().splitlines()[-1])
    return time.perf_counter() - started, cpu, peak_kb / 1024


def bench_predict(users: int, window_days: int = 30, keep: Path | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="likely-bench-predict-"))
    path = keep or workdir / "bench.db"
    try:
        started = time.perf_counter()
        events = build_database(path, users) if not path.exists() else None
        build_s = time.perf_counter() - started
        url = f"sqlite:///{path}"
        predict_s, predict_cpu, predict_mb = _child(
            url, "predict", "--event", "purchase", "--window-days", str(window_days), "--name", f"bench {time.time()}"
        )
        backtest_s, backtest_cpu, backtest_mb = _child(
            url, "backtest", "--event", "purchase", "--window-days", str(window_days)
        )
        return {
            "users": users,
            "events": events,
            "build_s": round(build_s, 1),
            "predict_s": round(predict_s, 1),
            "predict_cpu_s": round(predict_cpu, 1),
            "predict_peak_mb": round(predict_mb),
            "backtest_s": round(backtest_s, 1),
            "backtest_cpu_s": round(backtest_cpu, 1),
            "backtest_peak_mb": round(backtest_mb),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

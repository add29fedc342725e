"""Whole-page reruns of the Predictions page after a slider move, through Streamlit's AppTest.

    .venv/bin/python -m tests.page_benchmark --users 1000000

Builds a throw-away database with one synthetic prediction of N scores (as
`python -m core bench-slider --users N` does) and prints one JSON line with the page rerun
p50/p95 in ms. An upper bound: in the browser only the slider's fragment reruns. It lives
beside the tests because core never imports Streamlit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core import db
from core.predictions.bench import synthetic_prediction


def page_rerun_timings(users: int, moves: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="likely-page-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    try:
        engine = db.make_engine(url)
        db.init_db(engine)
        prediction_id = synthetic_prediction(engine, users)
        engine.dispose()
        os.environ["DATABASE_URL"] = url
        db._engines.clear()
        app = AppTest.from_file(str(db.ROOT / "app.py"), default_timeout=600)
        app.query_params["prediction"] = str(prediction_id)
        app.run()
        rng = np.random.default_rng(5)
        samples = []
        for _ in range(moves):
            low, high = sorted(rng.integers(0, 101, 2).tolist())
            # what the score slider's release commits (its callback sets these two)
            app.session_state["score_range"] = (low, high)
            app.session_state["tier_pick"] = []
            started = time.perf_counter()
            app.run()
            samples.append((time.perf_counter() - started) * 1000)
        ordered = sorted(samples)
        return {
            "users": users,
            "page_rerun_p50_ms": round(statistics.median(ordered), 1),
            "page_rerun_p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        }
    finally:
        db._engines.clear()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(page_rerun_timings(args.users, args.moves)))


if __name__ == "__main__":
    main()

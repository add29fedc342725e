"""The demo database's life cycle: created on first start, regenerated on request."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from core import summary
from core.access import Actor, audit, require_replace
from core.predictions import ensure_demo_predictions, list_predictions, refresh_scores
from core.progress import heartbeat
from core.seed import generate

Progress = Callable[[str], None]


def ensure_demo_database(engine: Engine, users: int, progress: Progress) -> None:
    """Generate demo data into an empty database, and the demo predictions when there are none."""
    if summary.user_count(engine) == 0:
        progress(f"no data yet: generating the demo database ({users:,} users)")
        # The generator reports per chunk of users, which can be most of a minute apart.
        with heartbeat(progress, "generating the demo database") as say:
            generate(engine, users=users, progress=say)
    else:
        progress("the database already holds data: nothing to generate")
    if list_predictions(engine):
        progress("predictions exist: nothing to train")
    else:
        ensure_demo_predictions(engine, progress)


def regenerate_demo_data(
    engine: Engine, users: int, seed: int, progress: Progress, *, actor: Actor, confirmation: str
) -> None:
    """Replace every user and event with fresh demo data; saved predictions are re-scored on it.

    Only an admin, only over demo data (never over an import), only with the typed confirmation.
    """
    require_replace(actor, confirmation, engine)
    generate(engine, users=users, seed=seed, progress=progress)
    audit(engine, actor, "replace data", "all users and events", users=users, seed=seed)
    predictions = list_predictions(engine)
    for prediction in predictions:
        progress(f"re-scoring '{prediction.name}'")
        refresh_scores(engine, prediction.id, progress, data_replaced=True, actor=actor)
    if not predictions:
        ensure_demo_predictions(engine, progress)

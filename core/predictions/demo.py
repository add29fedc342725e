"""The predictions a fresh demo database comes with: one full, one preview."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from core.facts import PURCHASE_EVENT
from core.predictions import store
from core.predictions.training import train_prediction

# (name, event, window days, kind)
DEMO_PREDICTIONS: tuple[tuple[str, str, int, str], ...] = (
    ("Purchase in next 30 days", PURCHASE_EVENT, 30, "full"),
    ("Add to cart in next 14 days (preview)", "added_to_cart", 14, "preview"),
)


def ensure_demo_predictions(engine: Engine, progress: Callable[[str], None] | None = None) -> list[int]:
    """Train the demo predictions that do not exist yet; returns the ids trained now."""
    say = progress or (lambda _m: None)
    known = {p.name for p in store.list_predictions(engine)}
    from core.predictions.features import event_names

    events = set(event_names(engine))
    trained = []
    for name, event, window, kind in DEMO_PREDICTIONS:
        if name in known or event not in events:
            continue
        say(f"training the demo prediction '{name}'")
        trained.append(train_prediction(engine, event, window, kind=kind, name=name, progress=say))
    return trained

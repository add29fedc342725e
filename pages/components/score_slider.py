"""The score histogram and range slider that sizes a selection live, while the thumb moves.

The browser gets per-whole-score cumulative counts once (a prediction's `ScoreSteps`, or a
segment's `ScoreFilterSizing`) and recomputes the figures, bars and label on every pointer move
(score_slider.js); releasing commits the selection back here through `on_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.tiers import TIERS

HERE = Path(__file__).parent
TIER_COLOURS = {"Low": "#8fa3bf", "Medium": "#f0a43a", "High": "#2e9e6b"}
LOG_SCALE_RATIO = 50  # the tallest bar this many times the selection's tallest: a log scale by default

_score_slider = st.components.v2.component(
    "likely.score_slider",
    html='<div class="score-slider"></div>',
    css=(HERE / "score_slider.css").read_text(encoding="utf-8"),
    js=(HERE / "score_slider.js").read_text(encoding="utf-8"),
)


def tiers_payload() -> list[dict]:
    return [{"name": t.name, "low": int(t.low), "high": int(t.high), "colour": TIER_COLOURS[t.name]} for t in TIERS]


def committed_selection(key: str) -> dict | None:
    """The selection the browser last committed for the component `key`: {"min", "max", "categories"}."""
    state = st.session_state.get(key) or {}
    selection = state.get("selection") if hasattr(state, "get") else None
    if not isinstance(selection, dict):
        return None
    try:
        low, high = int(selection["min"]), int(selection["max"])
        categories = [str(c) for c in selection.get("categories") or []]
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= low <= high <= 100:
        return None
    return {"min": low, "max": high, "categories": categories}


def score_slider(
    *,
    key: str,
    label: str,
    selection: dict,
    on_change: Callable[[], None],
    steps: dict,
    log_scale: bool | str,
    sizing: dict | None = None,
    tier_buttons: bool = True,
) -> None:
    """Mount the slider. `selection` = {"min", "max", "categories"} (whole scores) is what it shows.

    `steps` = {"below", "at_most"[, "expected_below", "expected_at_most"]} per whole score drives the
    bars (and, with expected sums, the Predictions figures); `sizing` switches to the Segments mode,
    where the figure is the whole segment's size. `log_scale` "auto" lets the browser apply
    `readable_scale`'s rule to the committed selection.
    """
    data = {
        "mode": "segment" if sizing is not None else "prediction",
        "label": label,
        "steps": steps,
        "sizing": sizing,
        "tiers": tiers_payload(),
        "tier_buttons": tier_buttons,
        "selection": selection,
        "log_scale": log_scale,
        "log_ratio": LOG_SCALE_RATIO,
    }
    _score_slider(key=key, data=data, on_selection_change=on_change)


def readable_scale(bars: list[dict]) -> bool:
    """Whether a log scale is needed for the selection to read: the tallest bar is more than
    LOG_SCALE_RATIO times the tallest bar the selection counts users in."""
    tallest = max((b["users"] for b in bars), default=0)
    selected = max((b["users"] for b in bars if b["counted"]), default=0)
    return selected > 0 and tallest > LOG_SCALE_RATIO * selected

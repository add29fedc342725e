"""Delivery channels and who each can reach: the one definition of 'reachable'.

A user is reachable on a push channel when they are on that platform, have a push token
and opted in; by email when they have an address and subscribed; in-app when they use the
app (any platform).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

CHANNELS: dict[str, str] = {
    "push_ios": "iOS push",
    "push_android": "Android push",
    "push_web": "Web push",
    "email": "Email",
    "in_app": "In-app message",
}
PUSH_PLATFORM = {"push_ios": "iOS", "push_android": "Android", "push_web": "Web"}
REACHABILITY_COLUMNS = ("platform", "has_push_token", "push_opt_in", "email", "email_opt_in")


def reachable_masks(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each channel, a boolean mask over `users` (which needs REACHABILITY_COLUMNS)."""
    push_ok = users["has_push_token"].to_numpy(dtype=bool) & users["push_opt_in"].to_numpy(dtype=bool)
    platform = users["platform"].to_numpy(dtype=object)
    masks = {channel: push_ok & (platform == name) for channel, name in PUSH_PLATFORM.items()}
    masks["email"] = users["email"].notna().to_numpy() & users["email_opt_in"].to_numpy(dtype=bool)
    masks["in_app"] = np.ones(len(users), dtype=bool)
    return masks


def reachable_clauses() -> dict[str, sa.ColumnElement[bool]]:
    """`reachable_masks` as SQL over users (a NULL flag counts as no, as in the masks)."""
    from core.models import User  # models import nothing from here; kept local to stay light

    users = User.__table__.c

    def yes(column) -> sa.ColumnElement[bool]:
        return sa.func.coalesce(column, sa.false()) == sa.true()

    push_ok = sa.and_(yes(users.has_push_token), yes(users.push_opt_in))
    clauses = {channel: sa.and_(push_ok, users.platform == name) for channel, name in PUSH_PLATFORM.items()}
    clauses["email"] = sa.and_(users.email.is_not(None), yes(users.email_opt_in))
    clauses["in_app"] = sa.true()
    return clauses

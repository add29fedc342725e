"""Who a campaign reaches: its audience definition, the users in it, and who the channel can reach."""

from __future__ import annotations

import threading
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from core.campaigns.schedule import delivery_zone
from core.channels import PUSH_PLATFORM, reachable_masks
from core.db import data_version, get_engine, session_scope
from core.errors import UserError
from core.models import Segment
from core.segments.definition import SegmentDefinition, parse_definition

CAMPAIGN_CHANNELS: dict[str, str] = {"push": "Push notification", "email": "Email", "in_app": "In-app message"}
PLATFORMS: tuple[str, ...] = ("iOS", "Android", "Web")
_PLATFORM_PUSH_CHANNEL = {platform: channel for channel, platform in PUSH_PLATFORM.items()}

_USER_COLUMNS = """
    SELECT u.id, u.external_id, u.first_name, u.email, u.platform, u.country, u.language, u.timezone,
           u.push_opt_in, u.email_opt_in, u.has_push_token, u.random_bucket,
           COALESCE(f.session_count, 0) AS session_count, COALESCE(f.purchase_count, 0) AS purchase_count,
           COALESCE(f.total_spent, 0) AS total_spent, f.last_used_at
    FROM users u LEFT JOIN user_facts f ON f.user_id = u.id ORDER BY u.id
"""
_cache: dict[tuple[str, int], pd.DataFrame] = {}
_lock = threading.Lock()


def users_frame(engine: Engine | None = None) -> pd.DataFrame:
    """Every user with the attributes messages and reachability need, indexed by id; cached per data version."""
    engine = engine or get_engine()
    key = (str(engine.url), data_version(engine))
    with _lock:
        if key not in _cache:
            with engine.connect() as connection:
                frame = pd.read_sql_query(text(_USER_COLUMNS), connection)
            for column in ("push_opt_in", "email_opt_in", "has_push_token"):
                frame[column] = frame[column].fillna(False).astype(bool)
            frame["last_used_at"] = pd.to_datetime(frame["last_used_at"])
            frame = frame.set_index("id", drop=False)
            for stale in [k for k in _cache if k[0] == key[0]]:
                del _cache[stale]
            _cache[key] = frame
        return _cache[key]


def segment_definition(engine: Engine, segment_id: int) -> tuple[str, SegmentDefinition]:
    """A saved segment's name and definition (parsed from its row)."""
    with session_scope(engine) as session:
        row = session.execute(select(Segment.name, Segment.definition).where(Segment.id == segment_id)).first()
    if row is None:
        raise UserError(f"segment {segment_id} no longer exists; choose another audience")
    return row.name, parse_definition(row.definition)


def list_segments(engine: Engine | None = None) -> pd.DataFrame:
    """Saved segments (id, name, definition), by name."""
    with session_scope(engine or get_engine()) as session:
        rows = session.execute(select(Segment.id, Segment.name, Segment.definition).order_by(Segment.name)).all()
    return pd.DataFrame(rows, columns=["id", "name", "definition"])


def campaign_definition(
    engine: Engine, segment_id: int | None, audience: SegmentDefinition | None
) -> SegmentDefinition | None:
    """The segment definition a campaign targets (None when it has no audience yet)."""
    if segment_id is not None:
        return segment_definition(engine, segment_id)[1]
    return audience


def matching_user_ids(
    definition: SegmentDefinition, engine: Engine | None = None, now: datetime | None = None
) -> np.ndarray:
    """Sorted ids of the users a segment definition matches at `now` (core.segments owns the format)."""
    from core import segments

    return np.asarray(segments.matching_user_ids(definition, engine=engine, now=now), dtype=np.int64)


def reachable_mask(users: pd.DataFrame, channel: str, platforms: list[str] | None) -> np.ndarray:
    """Which of `users` the channel reaches, restricted to `platforms` (empty: every platform)."""
    chosen = list(platforms or PLATFORMS)
    masks = reachable_masks(users)
    on_platform = users["platform"].isin(chosen).to_numpy()
    if channel == "push":
        return np.logical_or.reduce([masks[_PLATFORM_PUSH_CHANNEL[p]] for p in chosen]) & on_platform
    if channel == "email":
        return masks["email"] & on_platform
    if channel == "in_app":
        return masks["in_app"] & on_platform
    raise UserError(f"unknown channel {channel!r}; choose {', '.join(CAMPAIGN_CHANNELS)}")


def reachable_user_ids(
    engine: Engine,
    definition: SegmentDefinition,
    channel: str,
    platforms: list[str] | None,
    now: datetime | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(audience ids, reachable ids): who the definition matches, and whom the channel reaches."""
    audience = matching_user_ids(definition, engine=engine, now=now)
    users = users_frame(engine).reindex(audience)
    users = users[users["id"].notna()]
    mask = reachable_mask(users, channel, platforms)
    return audience, users.index.to_numpy(dtype=np.int64)[mask]


def delivery_zones(users: pd.DataFrame, company_zone: str, local_time: bool = True) -> pd.Series:
    """Each user's delivery zone: their own IANA zone with local-time delivery, else the company zone."""
    zones = users["timezone"].astype(object)
    lookup = {z: delivery_zone(z, company_zone, local_time) for z in pd.unique(zones)}
    return zones.map(lookup).astype(object)


def zone_counts(engine: Engine, user_ids, company_zone: str, local_time: bool = True) -> dict[str, int]:
    """How many of these users each delivery zone holds, largest first."""
    users = users_frame(engine).reindex(user_ids)
    return delivery_zones(users, company_zone, local_time).value_counts().to_dict()

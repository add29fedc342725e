"""Deterministic, realistic demo data: users, sessions, custom events and purchases.

Everything is drawn with numpy from one seed, anchored at a date (default: today, UTC
midnight), so the same seed and anchor give the same database. Behaviour is driven by
hidden per-user traits (engagement, purchase propensity, lapse date) that a model can
learn, but not perfectly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, delete

from core import facts, models
from core.db import bulk_insert, bump_data_version, session_scope, sync_id_sequence

HISTORY_DAYS = 120
DAY_S = 86_400

# (country, language, IANA zone, share of users)
LOCALES: list[tuple[str, str, str, float]] = [
    ("US", "en", "America/New_York", 0.13),
    ("US", "en", "America/Chicago", 0.07),
    ("US", "en", "America/Denver", 0.02),
    ("US", "en", "America/Los_Angeles", 0.08),
    ("CA", "en", "America/Toronto", 0.04),
    ("CA", "fr", "America/Toronto", 0.01),
    ("BR", "pt", "America/Sao_Paulo", 0.07),
    ("GB", "en", "Europe/London", 0.10),
    ("FR", "fr", "Europe/Paris", 0.12),
    ("DE", "de", "Europe/Berlin", 0.10),
    ("ES", "es", "Europe/Madrid", 0.06),
    ("IN", "en", "Asia/Kolkata", 0.07),
    ("JP", "ja", "Asia/Tokyo", 0.05),
    ("AU", "en", "Australia/Sydney", 0.05),
    ("NZ", "en", "Pacific/Auckland", 0.03),
]
PLATFORMS = ["iOS", "Android", "Web"]
PLATFORM_SHARE = [0.46, 0.39, 0.15]
PUSH_OPT_IN_RATE = {"iOS": 0.55, "Android": 0.78, "Web": 0.30}
PUSH_TOKEN_RATE = {"iOS": 0.93, "Android": 0.95, "Web": 0.60}
APP_VERSIONS = {"iOS": ["5.1.0", "5.2.0", "5.2.1"], "Android": ["5.0.3", "5.2.0", "5.2.1"], "Web": ["web"]}
FIRST_NAMES = {
    "en": ["Olivia", "Liam", "Emma", "Noah", "Ava", "James", "Mia", "Lucas", "Grace", "Henry", "Chloe", "Jack"],
    "fr": ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Gabriel", "Inès", "Arthur", "Zoé", "Théo"],
    "de": ["Mia", "Ben", "Emilia", "Paul", "Hannah", "Leon", "Lina", "Finn", "Lea", "Elias", "Marie", "Jonas"],
    "es": ["Lucía", "Hugo", "Sofía", "Martín", "María", "Pablo", "Julia", "Daniel", "Paula", "Álvaro", "Sara", "Mateo"],
    "pt": [
        "Helena",
        "Miguel",
        "Alice",
        "Arthur",
        "Laura",
        "Heitor",
        "Valentina",
        "Davi",
        "Júlia",
        "Gael",
        "Sophia",
        "Théo",
    ],
    "ja": ["Yui", "Haruto", "Aoi", "Sota", "Hina", "Minato", "Mei", "Riku", "Sakura", "Yuto", "Rin", "Ren"],
}
ITEM_CATEGORIES = ["shoes", "jackets", "bags", "accessories", "sportswear", "home"]
# Share of a day's sessions per local hour: weekdays peak in the evening, weekends from late morning.
WEEKDAY_HOURS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1.2, 2.5, 3, 2.2, 2, 2.3, 3.2, 3, 2.4, 2.3, 2.6, 3.4, 4.6, 6, 6.6, 5.6, 3.8, 2]
)
WEEKEND_HOURS = np.array(
    [1.6, 1, 0.6, 0.3, 0.2, 0.2, 0.4, 0.9, 1.8, 3, 4, 4.6, 4.8, 4.5, 4.2, 4, 4, 4.2, 4.6, 5, 5.2, 4.6, 3.4, 2.4]
)
WEEKEND_BOOST = 1.25  # sessions are a quarter more frequent on a weekend day


@dataclass(frozen=True)
class SeedSummary:
    users: int
    events: int
    anchor: datetime


def default_anchor() -> datetime:
    """Today at 00:00 UTC: the demo data's 'now'."""
    return datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _format_ts(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds to the database's naive-UTC text form."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return np.char.add(np.char.replace(text, "T", " "), ".000000")


def _utc_offsets(zones: list[str], first_day: int, days: int) -> np.ndarray:
    """Offset in seconds of each zone (rows) on each day since epoch (columns)."""
    table = np.zeros((len(zones), days), dtype=np.int64)
    for row, zone in enumerate(zones):
        tz = ZoneInfo(zone)
        for col in range(days):
            moment = datetime.fromtimestamp((first_day + col) * DAY_S + 12 * 3600, UTC)
            table[row, col] = int(moment.astimezone(tz).utcoffset().total_seconds())
    return table


def generate(
    engine: Engine,
    users: int = 50_000,
    seed: int = 7,
    anchor: datetime | None = None,
    chunk_users: int = 50_000,
    progress: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Replace all users and events with demo data, then refresh the per-user facts."""
    say = progress or (lambda _msg: None)
    anchor = anchor or default_anchor()
    rng = np.random.default_rng(seed)
    anchor_s = int(anchor.replace(tzinfo=UTC).timestamp())
    window_start_s = anchor_s - HISTORY_DAYS * DAY_S

    zones = sorted({zone for _, _, zone, _ in LOCALES})
    first_day = (anchor_s - 420 * DAY_S) // DAY_S
    offsets = _utc_offsets(zones, first_day, 425)
    zone_index = {zone: i for i, zone in enumerate(zones)}

    with session_scope(engine) as session:
        for table in (
            models.OutboxMessage,
            models.PredictionScore,
            models.UserEventFacts,
            models.UserFacts,
            models.Event,
        ):
            session.execute(delete(table))
        session.execute(delete(models.User))
        session.flush()
        connection = session.connection()
        dropped = _drop_event_indexes(connection)
        total_events = 0
        for start in range(0, users, chunk_users):
            count = min(chunk_users, users - start)
            ids = np.arange(start + 1, start + count + 1)
            user_rows, event_rows = _chunk(rng, ids, anchor_s, window_start_s, offsets, zones, zone_index, first_day)
            bulk_insert(connection, "users", _USER_COLUMNS, user_rows)
            bulk_insert(connection, "events", _EVENT_COLUMNS, event_rows)
            total_events += len(event_rows)
            say(f"generated {start + count:,} / {users:,} users, {total_events:,} events")
        if dropped:
            say("indexing events")
            for index in dropped:
                index.create(connection)
        sync_id_sequence(connection, "users")
        session.merge(models.AppMeta(key="demo_anchor", value=anchor.isoformat()))
        say("refreshing per-user facts")
        facts.refresh(session)
        bump_data_version(session)
    return SeedSummary(users=users, events=total_events, anchor=anchor)


def _drop_event_indexes(connection) -> list:
    """On SQLite, drop the events indexes for the bulk load (the caller recreates them after).

    Keeping them while inserting tens of millions of rows costs a B-tree update per row and
    index, most of the load's time; building each once over the sorted rows is several times
    faster. PostgreSQL loads with COPY, where this matters less.
    """
    if connection.dialect.name != "sqlite":
        return []
    indexes = list(models.Event.__table__.indexes)
    for index in indexes:
        index.drop(connection)
    connection.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MB for building the indexes
    return indexes


_USER_COLUMNS = (
    "id",
    "external_id",
    "first_name",
    "email",
    "platform",
    "country",
    "language",
    "timezone",
    "created_at",
    "push_opt_in",
    "email_opt_in",
    "has_push_token",
    "app_version",
    "random_bucket",
)
_EVENT_COLUMNS = ("user_id", "name", "ts", "value", "properties")


def _chunk(rng, ids, anchor_s, window_start_s, offsets, zones, zone_index, first_day):
    n = len(ids)
    locale_share = np.array([share for *_, share in LOCALES])
    locale = rng.choice(len(LOCALES), size=n, p=locale_share / locale_share.sum())
    platform = rng.choice(3, size=n, p=PLATFORM_SHARE)
    platform_name = np.array(PLATFORMS)[platform]
    country = np.array([LOCALES[i][0] for i in range(len(LOCALES))])[locale]
    language = np.array([LOCALES[i][1] for i in range(len(LOCALES))])[locale]
    zone = np.array([LOCALES[i][2] for i in range(len(LOCALES))])[locale]
    zone_row = np.array([zone_index[z] for z in zone])

    # Hidden traits.
    tenure_days = rng.uniform(1, 400, n)
    created_s = (anchor_s - tenure_days * DAY_S).astype(np.int64)
    engagement = np.exp(rng.normal(np.log(0.12), 0.85, n))  # sessions per day while active
    lapsed = rng.random(n) < 0.5
    lapse_days = np.where(lapsed, rng.exponential(28, n), 0.0)
    active_from = np.maximum(created_s, window_start_s)
    active_until = np.maximum(anchor_s - (lapse_days * DAY_S).astype(np.int64), active_from + 3600)
    active_until = np.minimum(active_until, anchor_s - 60)
    platform_effect = np.array([0.35, 0.0, -0.4])[platform]
    country_effect = {"US": 0.25, "GB": 0.15, "DE": 0.1, "JP": 0.2, "IN": -0.5, "BR": -0.3}
    country_lift = np.array([country_effect.get(c, 0.0) for c in country])
    push_opt_in = rng.random(n) < np.array([PUSH_OPT_IN_RATE[p] for p in PLATFORMS])[platform]
    has_email = rng.random(n) < 0.88
    email_opt_in = has_email & (rng.random(n) < 0.45)
    propensity = _sigmoid(
        -2.5
        + 0.7 * np.log(engagement / 0.12)
        + platform_effect
        + country_lift
        + 0.3 * email_opt_in
        + rng.normal(0, 0.7, n)
    )

    # Users.
    first_names = np.array(
        [FIRST_NAMES[lang][k] for lang, k in zip(language, rng.integers(0, 12, n), strict=True)], dtype=object
    )
    external = np.array([f"u{i:07d}" for i in ids], dtype=object)
    emails = np.where(has_email, [f"{f.lower()}.{i}@example.com" for f, i in zip(first_names, ids, strict=True)], None)
    token = rng.random(n) < np.array([PUSH_TOKEN_RATE[p] for p in PLATFORMS])[platform]
    versions = [
        APP_VERSIONS[p][k % len(APP_VERSIONS[p])] for p, k in zip(platform_name, rng.integers(0, 3, n), strict=True)
    ]
    buckets = rng.integers(0, 10_000, n)
    created_text = _format_ts(created_s)
    user_rows = list(
        zip(
            ids.tolist(),
            external.tolist(),
            first_names.tolist(),
            emails.tolist(),
            platform_name.tolist(),
            country.tolist(),
            language.tolist(),
            zone.tolist(),
            created_text.tolist(),
            push_opt_in.tolist(),
            email_opt_in.tolist(),
            token.tolist(),
            versions,
            buckets.tolist(),
            strict=True,
        )
    )

    # Sessions: a first session when the user became active, then Poisson over the active span.
    span_days = (active_until - active_from) / DAY_S
    extra = rng.poisson(engagement * span_days * 1.07)
    per_user = 1 + extra
    owner = np.repeat(np.arange(n), per_user)
    first_of_user = np.zeros(len(owner), dtype=bool)
    first_of_user[np.concatenate(([0], np.cumsum(per_user)[:-1]))] = True
    instant = active_from[owner] + (rng.random(len(owner)) * (active_until - active_from)[owner]).astype(np.int64)
    instant = np.where(first_of_user, active_from[owner] + 60, instant)
    # Re-draw the local hour from the daily rhythm, keeping the local day.
    day_col = np.clip(instant // DAY_S - first_day, 0, offsets.shape[1] - 1)
    offset = offsets[zone_row[owner], day_col]
    local = instant + offset
    local_day = local // DAY_S
    weekend = ((local_day + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    # Thin weekdays so weekends carry more sessions per day.
    keep = weekend | (rng.random(len(owner)) < 1 / WEEKEND_BOOST) | first_of_user
    hour = np.where(
        weekend,
        rng.choice(24, len(owner), p=WEEKEND_HOURS / WEEKEND_HOURS.sum()),
        rng.choice(24, len(owner), p=WEEKDAY_HOURS / WEEKDAY_HOURS.sum()),
    )
    rhythm = local_day * DAY_S + hour * 3600 + rng.integers(0, 3600, len(owner)) - offset
    session_s = np.where(first_of_user, instant, rhythm)
    valid = keep & (session_s >= active_from[owner]) & (session_s < anchor_s)
    owner, session_s = owner[valid], session_s[valid]

    # Custom events within sessions, and purchases driven by propensity.
    n_sessions = len(owner)
    views = rng.poisson(0.7, n_sessions)
    view_owner = np.repeat(owner, views)
    view_s = np.repeat(session_s, views) + rng.integers(20, 900, views.sum())
    view_props = np.array([json.dumps({"category": c}) for c in ITEM_CATEGORIES], dtype=object)[
        rng.integers(0, len(ITEM_CATEGORIES), len(view_owner))
    ]
    cart = rng.random(n_sessions) < (0.04 + 0.5 * propensity[owner])
    buy = rng.random(n_sessions) < (0.55 * propensity[owner] * np.where(cart, 1.6, 0.6))
    cart_s = session_s[cart] + rng.integers(300, 1200, cart.sum())
    buy_s = session_s[buy] + rng.integers(600, 1800, buy.sum())
    buy_value = np.round(np.exp(rng.normal(np.log(38), 0.55, buy.sum())), 2)

    parts = [
        (owner, "session", session_s, None, None),
        (view_owner, "viewed_item", view_s, None, view_props),
        (owner[cart], "added_to_cart", cart_s, None, None),
        (owner[buy], "purchase", buy_s, buy_value, None),
    ]
    user_col, name_col, ts_col, value_col, props_col = [], [], [], [], []
    for who, name, when, value, props in parts:
        inside = when < anchor_s
        m = int(inside.sum())
        user_col.append(ids[who[inside]])
        name_col.append(np.full(m, name, dtype=object))
        ts_col.append(when[inside])
        value_col.append(value[inside] if value is not None else np.full(m, None, dtype=object))
        props_col.append(props[inside] if props is not None else np.full(m, None, dtype=object))
    user_all = np.concatenate(user_col)
    ts_all = np.concatenate(ts_col)
    order = np.lexsort((ts_all, user_all))
    value_all = np.concatenate([v.astype(object) for v in value_col])[order]
    event_rows = list(
        zip(
            user_all[order].tolist(),
            np.concatenate(name_col)[order].tolist(),
            _format_ts(ts_all[order]).tolist(),
            value_all.tolist(),
            np.concatenate(props_col)[order].tolist(),
            strict=True,
        )
    )
    return user_rows, event_rows

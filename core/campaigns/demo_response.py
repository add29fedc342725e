"""The demo world answers campaigns: a hidden response model, so Results on the demo tells a true story.

The demo data stops at its anchor: nobody does anything afterwards unless this model plays it. For
every outbox row of a demo database (treated and control alike) it draws one uniform number u from a
hash of (campaign, occurrence, user), so a run is reproducible and re-running never changes a draw.
In the send's conversion window the user then performs the campaign's conversion event
- anyway, when u < BASELINE[tier] (what the user would have done without any message), or
- because of the message, when the message was delivered (status 'sent') and
  BASELINE[tier] <= u < BASELINE[tier] + PLANTED_UPLIFT[tier].
So a delivered message raises the chance to convert by exactly PLANTED_UPLIFT[tier] (absolute), and a
control row, never delivered, converts with BASELINE[tier] only. The planted uplift follows the
playbook's worry: a discount lifts Medium most, and High - who buy anyway - barely.

Events appear as time passes: each call writes the events whose time falls in (last call, now], and
remembers `now` (app_meta 'demo_response_until'), so calling it every worker cycle writes each event
once. A conversion caused by the message happens after its delivery (sent_at), one the user would
have made anyway after the planned send (send_at).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from core import facts
from core.campaigns import experiment
from core.campaigns.spec import parse_message, parse_settings
from core.db import bulk_insert, bump_data_version, session_scope
from core.errors import UserError
from core.models import AppMeta, Campaign, Prediction

BASELINE: dict[str | None, float] = {"High": 0.30, "Medium": 0.12, "Low": 0.04, None: 0.06}
PLANTED_UPLIFT: dict[str | None, float] = {"High": 0.01, "Medium": 0.08, "Low": 0.03, None: 0.03}
WATERMARK_KEY = "demo_response_until"
DEMO_KEY = "demo_anchor"  # written by core.seed: this database holds demo data


def _uniforms(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms in [0, 1) per key: whether the user converts, and when."""
    digests = [hashlib.sha256(f"likely-demo-response:{k}".encode()).digest() for k in keys]
    first = np.array([int.from_bytes(d[:8], "big") for d in digests], dtype=np.float64) / 2.0**64
    second = np.array([int.from_bytes(d[8:16], "big") for d in digests], dtype=np.float64) / 2.0**64
    return first, second


def is_demo(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1 FROM app_meta WHERE key = :k"), {"k": DEMO_KEY}).first() is not None


def _watermark(engine: Engine) -> datetime | None:
    with engine.connect() as connection:
        value = connection.execute(text("SELECT value FROM app_meta WHERE key = :k"), {"k": WATERMARK_KEY}).scalar()
    return datetime.fromisoformat(value) if value else None


def _measurements(engine: Engine) -> dict[int, experiment.Measurement]:
    """Each campaign's conversion event and window."""
    with session_scope(engine) as session:
        predictions = dict(session.execute(select(Prediction.id, Prediction.event)).all())
        rows = [(c.id, c.settings, c.message) for c in session.scalars(select(Campaign))]
    found = {}
    for campaign_id, settings, message in rows:
        try:
            settings, message = parse_settings(settings), parse_message(message)
        except UserError:  # a hand-edited row dispatch refuses too: the demo world does not answer it
            continue
        found[campaign_id] = experiment.measurement_of(settings, predictions.get(message.prediction_id))
    return found


def _rows(engine: Engine, since: datetime | None, longest_window_days: int) -> pd.DataFrame:
    query = "SELECT campaign_id, occurrence, user_id, send_at, sent_at, status, tier FROM outbox "
    params: dict = {}
    if since is not None:  # rows whose window may still hold events after `since` (a day's slack for late delivery)
        query += "WHERE send_at >= :oldest "
        params["oldest"] = since - timedelta(days=longest_window_days + 1)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text(query + "ORDER BY id"), params)]
    return pd.DataFrame(rows, columns=["campaign", "occurrence", "user", "send_at", "sent_at", "status", "tier"])


def _events(rows: pd.DataFrame, measurements: dict, since: datetime | None, until: datetime) -> pd.DataFrame:
    """The events the model plays for `rows` with a time in (since, until]: user_id, name, ts, value."""
    if rows.empty:
        return pd.DataFrame(columns=["user_id", "name", "ts", "value"])
    keys = [f"{c}:{o}:{u}" for c, o, u in zip(rows["campaign"], rows["occurrence"], rows["user"], strict=True)]
    draw, when = _uniforms(keys)
    tiers = [t if t in BASELINE else None for t in rows["tier"]]
    baseline = np.array([BASELINE[t] for t in tiers])
    lift = np.array([PLANTED_UPLIFT[t] for t in tiers])
    delivered = rows["status"].eq("sent").to_numpy()
    anyway = draw < baseline
    caused = delivered & ~anyway & (draw < baseline + lift)
    measured = [measurements[c] for c in rows["campaign"]]
    window_seconds = np.array([m.window_days * 86_400 for m in measured], dtype=np.float64)
    send_at = pd.to_datetime(pd.Series(rows["send_at"], dtype=object), format="ISO8601")
    sent_at = pd.to_datetime(pd.Series(rows["sent_at"], dtype=object), format="ISO8601").fillna(send_at)
    start = pd.DatetimeIndex(np.where(caused, sent_at.to_numpy(), send_at.to_numpy()))
    ts = (start + pd.to_timedelta(np.floor(when * window_seconds), unit="s")).to_numpy()
    happens = (anyway | caused) & (ts <= np.datetime64(until))
    if since is not None:
        happens &= ts > np.datetime64(since)
    names = np.array([m.conversion_event for m in measured], dtype=object)
    values = np.where(names == facts.PURCHASE_EVENT, np.round(20 + 60 * when, 2), None)
    frame = pd.DataFrame(
        {
            "user_id": rows["user"].to_numpy()[happens],
            "name": names[happens],
            "ts": ts[happens],
            "value": values[happens],
        }
    )
    return frame.sort_values(["ts", "user_id"], kind="stable").reset_index(drop=True)


def respond(engine: Engine, now: datetime) -> int:
    """Write the demo users' conversions up to `now` (naive UTC); returns how many. Nothing outside the demo."""
    if not is_demo(engine):
        return 0
    since = _watermark(engine)
    if since is not None and now <= since:
        return 0  # already played up to `now`; moving the mark back would play events twice
    measurements = _measurements(engine)
    longest = max((m.window_days for m in measurements.values()), default=experiment.DEFAULT_WINDOW_DAYS)
    events = _events(_rows(engine, since, longest), measurements, since, now)
    with session_scope(engine) as session:
        if len(events):
            rows = [
                (int(u), n, pd.Timestamp(t).isoformat(sep=" "), None if v is None else float(v), None)
                for u, n, t, v in events.itertuples(index=False)
            ]
            bulk_insert(session.connection(), "events", ("user_id", "name", "ts", "value", "properties"), rows)
            facts.refresh_users(session, {int(u) for u in events.iloc[:, 0]})  # only who answered
            bump_data_version(session)
        session.merge(AppMeta(key=WATERMARK_KEY, value=now.isoformat(timespec="seconds")))
    return len(events)

"""Did it work? A campaign's conversions, treated against its control group, per send and overall.

Who is compared: every outbox row of the campaign is a user "sent" at `send_at`. Rows with status
'control' are the control group (recorded when the send would have happened, never delivered);
every other row is treated, whether the provider delivered it yet or not ('queued', 'sent',
'failed'): comparing the groups as randomised keeps the comparison fair (intent to treat), and
`delivered` (status 'sent') says how many were actually reached.

What counts: a user converts when they perform the campaign's conversion event in
[send_at, send_at + window), at most at `now`. Per send, each user counts once. Overall, each user
counts once (a user stays in or out of control across sends): converted when they converted after
any of their sends, their revenue the sum of the distinct conversion events inside any of their
windows. Per tier uses the tier each user was in when the message was written (outbox.tier); a user
whose tier changed between sends counts in each tier they were in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from core.campaigns import experiment
from core.campaigns.spec import parse_message
from core.campaigns.store import spec_from_row
from core.campaigns.uplift import Comparison, compare
from core.db import get_engine, session_scope
from core.errors import UserError
from core.models import Campaign, Prediction
from core.tiers import TIER_NAMES
from core.timeutil import utcnow

CONTROL = experiment.CONTROL_STATUS
DELIVERED = "sent"


@dataclass(frozen=True)
class GroupResult:
    """One treated-against-control comparison, with what was delivered and the revenue."""

    audience: int
    delivered: int
    comparison: Comparison
    revenue_per_user_treated: float | None  # None when the conversion event carries no value
    revenue_per_user_control: float | None

    def as_dict(self) -> dict:
        c = self.comparison
        return {
            "audience": self.audience,
            "treated": c.treated,
            "control": c.control,
            "delivered": self.delivered,
            "converted_treated": c.converted_treated,
            "converted_control": c.converted_control,
            "rate_treated": c.rate_treated,
            "rate_control": c.rate_control,
            "uplift": c.uplift,
            "uplift_ci": list(c.uplift_ci) if c.uplift_ci else None,
            "relative_uplift": c.relative_uplift,
            "relative_uplift_ci": list(c.relative_uplift_ci) if c.relative_uplift_ci else None,
            "p_value": c.p_value,
            "significant": c.significant,
            "needed_users": c.needed_users,
            "verdict": c.verdict(),
            "revenue_per_user_treated": self.revenue_per_user_treated,
            "revenue_per_user_control": self.revenue_per_user_control,
        }


@dataclass(frozen=True)
class SendResult:
    occurrence: str
    first_send_at: datetime
    window_complete: bool  # every user's window has closed by `as_of`
    result: GroupResult


@dataclass(frozen=True)
class CampaignResults:
    campaign_id: int
    name: str
    measurement: experiment.Measurement
    prediction: str | None  # the prediction whose tiers break results down
    as_of: datetime
    overall: GroupResult
    sends: list[SendResult]
    by_tier: dict[str, GroupResult]
    by_variant: dict[str, GroupResult]  # each variant against control
    variants_vs_first: dict[str, Comparison]  # each later variant (as treated) against the first
    curve: pd.DataFrame  # time, group, converted (cumulative), rate
    has_values: bool = field(default=False)

    def as_json(self) -> dict:
        return {
            "campaign": self.name,
            "conversion_event": self.measurement.conversion_event,
            "window_days": self.measurement.window_days,
            "control_percent": self.measurement.control_percent,
            "prediction": self.prediction,
            "as_of": self.as_of.isoformat(timespec="seconds"),
            **self.overall.as_dict(),
            "by_tier": {tier: result.as_dict() for tier, result in self.by_tier.items()},
            "by_variant": {name: result.as_dict() for name, result in self.by_variant.items()},
            "variants_vs_first": {
                name: {
                    "uplift": c.uplift,
                    "uplift_ci": list(c.uplift_ci) if c.uplift_ci else None,
                    "p_value": c.p_value,
                    "verdict": c.verdict(),
                }
                for name, c in self.variants_vs_first.items()
            },
            "sends": [
                {
                    "occurrence": send.occurrence,
                    "first_send_at": send.first_send_at.isoformat(timespec="seconds"),
                    "window_complete": send.window_complete,
                    **send.result.as_dict(),
                }
                for send in self.sends
            ],
        }


def campaign_id_by_name(name: str, engine: Engine | None = None) -> int:
    with session_scope(engine or get_engine()) as session:
        found = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if found is None:
        raise UserError(f"no campaign named {name!r}; `python -m core campaign list` shows them")
    return found


def _times(values) -> pd.Series:
    # SQLite hands back text, PostgreSQL datetimes: one naive datetime64 either way.
    return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601").astype("datetime64[ns]")


def _outbox_rows(engine: Engine, campaign_id: int) -> pd.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, occurrence, user_id, send_at, status, variant, tier FROM outbox "
                "WHERE campaign_id = :c ORDER BY id"
            ),
            {"c": campaign_id},
        )
        rows = [tuple(row) for row in rows]  # plain tuples: pandas reads them ten times faster
    frame = pd.DataFrame(rows, columns=["row_id", "occurrence", "user_id", "send_at", "status", "variant", "tier"])
    frame["send_at"] = _times(frame["send_at"])
    frame["row_id"] = frame["row_id"].astype(np.int64)
    frame["user_id"] = frame["user_id"].astype(np.int64)
    frame["control"] = frame["status"].eq(CONTROL)
    frame["delivered"] = frame["status"].eq(DELIVERED)
    return frame


def _conversion_events(
    engine: Engine, campaign_id: int, event: str, low: datetime, high: datetime, now: datetime
) -> pd.DataFrame:
    """The conversion events of the campaign's users between its first send and last window's end."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT e.id, e.user_id, e.ts, e.value FROM events e "
                "WHERE e.name = :n AND e.ts >= :low AND e.ts < :high AND e.ts <= :now "
                "AND e.user_id IN (SELECT DISTINCT user_id FROM outbox WHERE campaign_id = :c) ORDER BY e.id"
            ),
            {"n": event, "low": low, "high": high, "now": now, "c": campaign_id},
        )
        rows = [tuple(row) for row in rows]  # plain tuples: pandas reads them ten times faster
    frame = pd.DataFrame(rows, columns=["event_id", "user_id", "ts", "value"])
    frame["ts"] = _times(frame["ts"])
    frame["user_id"] = frame["user_id"].astype(np.int64)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def _matches(rows: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """(row_id, user_id, event_id, ts, value): each conversion event inside a row's window."""
    joined = rows[["row_id", "user_id", "send_at"]].merge(events, on="user_id")
    inside = (joined["ts"] >= joined["send_at"]) & (joined["ts"] < joined["send_at"] + window)
    return joined.loc[inside, ["row_id", "user_id", "event_id", "ts", "value"]]


def _group(rows: pd.DataFrame, matches: pd.DataFrame, has_values: bool) -> GroupResult:
    """Treated against control over `rows`, each user once (see the module docstring)."""
    users = rows.groupby("user_id").agg(control=("control", "any"), delivered=("delivered", "any"))
    mine = matches[matches["row_id"].isin(rows["row_id"])].drop_duplicates(["user_id", "event_id"])
    converted = users.index.isin(mine["user_id"].unique())
    control = users["control"].to_numpy()
    revenue = mine.groupby("user_id")["value"].sum().reindex(users.index, fill_value=0.0).to_numpy()
    treated_n, control_n = int((~control).sum()), int(control.sum())

    def per_user(mask: np.ndarray, count: int) -> float | None:
        return float(revenue[mask].sum() / count) if has_values and count else None

    return GroupResult(
        audience=len(users),
        delivered=int(users["delivered"].sum()),
        comparison=compare(treated_n, int(converted[~control].sum()), control_n, int(converted[control].sum())),
        revenue_per_user_treated=per_user(~control, treated_n),
        revenue_per_user_control=per_user(control, control_n),
    )


def _curve(rows: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """Cumulative share of each group converted over calendar time (first conversion per user)."""
    users = rows.groupby("user_id")["control"].any()
    first = matches.groupby("user_id")["ts"].min()
    start = rows["send_at"].min()
    frames = []
    for label, is_control in (("Treated", False), ("Control", True)):
        members = users.index[users.to_numpy() == is_control]
        if len(members) == 0:
            continue
        times = np.sort(first.reindex(members).dropna().to_numpy())
        frames.append(
            pd.DataFrame(
                {
                    "time": pd.to_datetime(np.concatenate([[np.datetime64(start, "ns")], times])),
                    "group": label,
                    "converted": np.arange(len(times) + 1),
                    "rate": np.arange(len(times) + 1) / len(members),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["time", "group", "converted", "rate"])
    return pd.concat(frames, ignore_index=True)


def campaign_results(campaign_id: int, engine: Engine | None = None, now: datetime | None = None) -> CampaignResults:
    """Everything the Results view and `campaign results` show, as of `now` (naive UTC)."""
    engine = engine or get_engine()
    now = now or utcnow()
    with session_scope(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise UserError(f"campaign {campaign_id} does not exist")
        spec = spec_from_row(campaign)  # the row's edge: typed from here on
        prediction_id = spec.message.prediction_id
        prediction = session.get(Prediction, prediction_id) if prediction_id else None
        prediction_name = prediction.name if prediction else None
        prediction_event = prediction.event if prediction else None
    name = spec.name
    measurement = experiment.measurement_of(spec.settings, prediction_event)
    variants = spec.message.ab_variants
    window = timedelta(days=measurement.window_days)
    rows = _outbox_rows(engine, campaign_id)
    if rows.empty:
        events = pd.DataFrame(columns=["event_id", "user_id", "ts", "value"])
    else:
        low, high = rows["send_at"].min().to_pydatetime(), (rows["send_at"].max() + window).to_pydatetime()
        events = _conversion_events(engine, campaign_id, measurement.conversion_event, low, high, now)
    matches = _matches(rows, events, window) if not rows.empty else events.assign(row_id=[])
    has_values = bool(matches["value"].notna().any())
    control_rows = rows[rows["control"]]

    sends = []
    for occurrence, send_rows in rows.groupby("occurrence", sort=True):
        sends.append(
            SendResult(
                occurrence=str(occurrence),
                first_send_at=send_rows["send_at"].min().to_pydatetime(),
                window_complete=bool(send_rows["send_at"].max() + window <= now),
                result=_group(send_rows, matches, has_values),
            )
        )
    by_tier = {}
    if prediction_name is not None:
        by_tier = {
            tier: _group(rows[rows["tier"] == tier], matches, has_values)
            for tier in reversed(TIER_NAMES)
            if (rows["tier"] == tier).any()
        }
    by_variant, versus_first = {}, {}
    for variant in variants:
        treated = rows[rows["variant"] == variant.name]
        by_variant[variant.name] = _group(pd.concat([treated, control_rows]), matches, has_values)
    if variants:
        first = by_variant[variants[0].name].comparison
        for variant in variants[1:]:
            other = by_variant[variant.name].comparison
            versus_first[variant.name] = compare(
                other.treated, other.converted_treated, first.treated, first.converted_treated
            )
    return CampaignResults(
        campaign_id=campaign_id,
        name=name,
        measurement=measurement,
        prediction=prediction_name,
        as_of=now,
        overall=_group(rows, matches, has_values),
        sends=sends,
        by_tier=by_tier,
        by_variant=by_variant,
        variants_vs_first=versus_first,
        curve=_curve(rows, matches),
        has_values=has_values,
    )


def comparison_columns(c: Comparison) -> dict:
    """A comparison's figures as a table row's columns (the interval as two numbers)."""
    return {
        "treated": c.treated,
        "control": c.control,
        "converted_treated": c.converted_treated,
        "converted_control": c.converted_control,
        "rate_treated": c.rate_treated,
        "rate_control": c.rate_control,
        "uplift": c.uplift,
        "uplift_low": c.uplift_ci[0] if c.uplift_ci else None,
        "uplift_high": c.uplift_ci[1] if c.uplift_ci else None,
        "p_value": c.p_value,
        "verdict": c.verdict(),
    }


_UPLIFT_COLUMNS = ["rate_treated", "rate_control", "uplift", "uplift_low", "uplift_high", "p_value"]
# The Results view's group tables and the Predictions page's evidence, in the order they are shown.
SUMMARY_COLUMNS = [
    "group",
    "audience",
    "treated",
    "control",
    "delivered",
    "converted_treated",
    "converted_control",
    *_UPLIFT_COLUMNS,
    "revenue_per_user_treated",
    "revenue_per_user_control",
    "verdict",
]
EVIDENCE_COLUMNS = ["campaign", "tier", "offer", "playbook_discount", "treated", "control", *_UPLIFT_COLUMNS, "verdict"]


def launched_campaigns(engine: Engine | None = None) -> pd.DataFrame:
    """Campaigns that have been launched (id, name, status), newest first: the ones with results."""
    with session_scope(engine or get_engine()) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.name, Campaign.status)
            .where(Campaign.launched_at.is_not(None))
            .order_by(Campaign.launched_at.desc(), Campaign.id.desc())
        ).all()
    return pd.DataFrame(rows, columns=["id", "name", "status"])


def evidence_for_prediction(
    prediction_id: int, engine: Engine | None = None, now: datetime | None = None
) -> pd.DataFrame:
    """Per launched campaign that targeted this prediction, and per tier: the offer it sent, the
    playbook's assumed discount, and the uplift measured against its control group."""
    from core.predictions.playbook import PLAYBOOK

    engine = engine or get_engine()
    with session_scope(engine) as session:
        launched = session.scalars(
            select(Campaign).where(Campaign.launched_at.is_not(None)).order_by(Campaign.launched_at, Campaign.id)
        )
        messages = [(c.id, c.name, parse_message(c.message)) for c in launched]
    campaigns = [(i, name, message.offers) for i, name, message in messages if message.prediction_id == prediction_id]
    records = []
    for campaign_id, name, offers in campaigns:
        results = campaign_results(campaign_id, engine, now)
        for tier, result in results.by_tier.items():
            records.append(
                {
                    "campaign": name,
                    "tier": tier,
                    "offer": offers.get(tier) or "",
                    "playbook_discount": PLAYBOOK[tier]["discount"],
                    **comparison_columns(result.comparison),
                }
            )
    return pd.DataFrame(records, columns=EVIDENCE_COLUMNS)


def summary_frame(groups: dict[str, GroupResult]) -> pd.DataFrame:
    """One row per group (tier, variant or send): the figures the Results view tabulates."""
    rows = [
        {
            "group": label,
            "audience": result.audience,
            "delivered": result.delivered,
            "revenue_per_user_treated": result.revenue_per_user_treated,
            "revenue_per_user_control": result.revenue_per_user_control,
            **comparison_columns(result.comparison),
        }
        for label, result in groups.items()
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

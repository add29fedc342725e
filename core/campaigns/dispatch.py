"""The outbox writer: every send that is due, rendered per user, written exactly once.

For each scheduled campaign, each occurrence since launch (or since the last resume) and
each reachable user of the audience whose local send instant is at most `until`, one
outbox row (campaign, occurrence, user) holds the rendered title and body. Rows are
written in batches, one transaction each; users already written for an occurrence are
skipped, so running it again, or after a crash half way, neither doubles nor skips a message
(the UniqueConstraint on campaign, occurrence and user is the last guard).

The audience of an occurrence is evaluated at the occurrence's wall-clock time read as UTC,
so every run sees the same audience for the same occurrence. Re-eligibility: with
`reeligible` false a user gets the campaign at most once; with `reeligible_after_days` N,
again only N days after their previous message of this campaign.

Delivery rules (core/campaigns/rules.py; company-wide, off by default; a campaign obeys each
unless its settings 'obeys_frequency_cap' / 'obeys_quiet_hours' say otherwise). For each
message the checks run in this order: already written, quiet hours ("don't send"),
re-eligibility, frequency cap.

- Quiet hours: a send instant inside the window (local time in the user's delivery zone)
  moves to the window's end in that zone, or is dropped in "don't send" mode. A message is
  due when its *moved* instant is at most `until` (the outbox never holds future sends); its
  occurrence still counts from its original instant for `active_from`.
- Frequency cap: messages are decided in a fixed order - campaigns by id, then occurrences in
  time order, then users by id - and each run writes an occurrence before deciding the next.
  A capped message at instant t is held back when some window of D days containing t
  (looking backwards *and* forwards from t) already holds N messages of capped campaigns in
  the outbox. So the cap holds in every D-day window whatever order messages are written in
  (a later message written first wins over an earlier one decided after it; with dispatch
  run every few minutes up to "now" that order is the send order). Only campaigns that obey
  the cap count toward it: an opted-out (transactional) message is neither held back nor
  counted. A message written is never withdrawn.
- Why crash and re-run are safe with the cap: holding back is monotone (more rows in the
  outbox can only hold back more), each decision depends only on that user's capped rows,
  and the order is fixed; so a resumed or repeated run reaches exactly the rows one
  uninterrupted run would have written, given the same outbox content before it started.
- A message whose copy cannot render for its user (data only that user has) is written with
  status 'failed' and the reason in last_error; the campaign's other users, and the other
  campaigns, carry on. A campaign whose copy cannot even be parsed is skipped with the reason.
- Held-back and dropped messages are not stored: DispatchReport counts what this run found
  held back (`capped`) or dropped in quiet hours (`quiet_dropped`); a re-run counts them
  again. `deferred` counts the rows this run wrote with a send instant moved by quiet hours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from core import leases
from core.campaigns import experiment
from core.campaigns import rules as delivery
from core.campaigns import schedule as schedules
from core.campaigns.audience import campaign_definition, delivery_zones, reachable_user_ids, users_frame
from core.campaigns.personalise import CompiledMessage, scores_for
from core.campaigns.spec import parse_message, parse_schedule, parse_settings
from core.campaigns.store import company_timezone
from core.campaigns.templating import TemplateError
from core.db import bulk_insert, get_engine, session_scope
from core.errors import UserError
from core.models import Campaign, OutboxMessage
from core.segments.definition import parse_definition
from core.timeutil import utcnow

OUTBOX_COLUMNS = (
    *("campaign_id", "occurrence", "user_id", "channel", "send_at", "title", "body", "created_at"),
    *("status", "last_error", "variant", "tier"),
)


@dataclass
class DispatchReport:
    written: int = 0
    by_campaign: dict[int, int] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)  # campaigns skipped, and why
    capped: dict[int, int] = field(default_factory=dict)  # messages held back by the frequency cap
    quiet_dropped: dict[int, int] = field(default_factory=dict)  # not sent: due in quiet hours ("don't send")
    deferred: dict[int, int] = field(default_factory=dict)  # written with a send instant moved past quiet hours
    failed: dict[int, int] = field(default_factory=dict)  # written as 'failed': the copy could not render for them
    held_out: dict[int, int] = field(default_factory=dict)  # written as control rows: recorded, never delivered

    @property
    def total_capped(self) -> int:
        return sum(self.capped.values())

    @property
    def total_quiet_dropped(self) -> int:
        return sum(self.quiet_dropped.values())

    @property
    def total_deferred(self) -> int:
        return sum(self.deferred.values())


def _previous_sends(engine: Engine, campaign_id: int, key: str) -> pd.Series:
    """Each user's latest message of this campaign from an earlier occurrence."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT user_id, MAX(send_at) FROM outbox WHERE campaign_id = :c AND occurrence < :k GROUP BY user_id"
            ),
            {"c": campaign_id, "k": key},
        ).all()
    return pd.Series(pd.to_datetime([r[1] for r in rows]), index=[r[0] for r in rows], dtype="datetime64[ns]")


def _already_written(engine: Engine, campaign_id: int, key: str) -> np.ndarray:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id FROM outbox WHERE campaign_id = :c AND occurrence = :k"), {"c": campaign_id, "k": key}
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64)


@leases.exclusive("dispatch", what="another dispatch")  # two at once would each miss the other's capped rows
def dispatch(
    engine: Engine | None = None,
    until: datetime | None = None,
    batch_size: int = 1_000,
    on_batch: Callable[[int], None] | None = None,
    campaign_ids: list[int] | None = None,
) -> DispatchReport:
    """Write every due message (send instant <= `until`, naive UTC; default now) to the outbox.

    `on_batch(total written so far)` runs after each committed batch (progress, tests). One
    dispatch runs at a time (lease "dispatch"); `lease_wait=seconds` waits for a running one,
    else a second gets LeaseBusy ("another dispatch is running ...").
    """
    engine = engine or get_engine()
    until = until or utcnow()
    report = DispatchReport()
    with session_scope(engine) as session:
        query = select(Campaign).where(Campaign.status == "scheduled", Campaign.launched_at.is_not(None))
        if campaign_ids is not None:
            query = query.where(Campaign.id.in_(campaign_ids))
        campaigns = list(session.scalars(query.order_by(Campaign.id)))
        # Every campaign whose messages count toward the cap, whatever its status now.
        capped_ids = [
            c for c, settings in session.execute(select(Campaign.id, Campaign.settings)) if delivery.obeys_cap(settings)
        ]
    company_zone = company_timezone(engine)
    context = _Rules(delivery.delivery_rules(engine), capped_ids)
    for campaign in campaigns:
        try:
            written = _dispatch_campaign(engine, campaign, until, company_zone, batch_size, report, on_batch, context)
        except (TemplateError, UserError) as error:
            report.problems[campaign.id] = str(error)
            continue
        report.by_campaign[campaign.id] = written
    return report


@dataclass(frozen=True)
class _Rules:
    rules: delivery.DeliveryRules
    capped_campaigns: list[int]


def _capped_sends(engine: Engine, campaign_ids: list[int], low: datetime, high: datetime) -> pd.DataFrame:
    """(user_id, send_at) of messages of capped campaigns sent within [low, high]."""
    if not campaign_ids:
        return pd.DataFrame({"user_id": np.array([], dtype=np.int64), "send_at": pd.to_datetime([])})
    query = select(OutboxMessage.user_id, OutboxMessage.send_at).where(
        OutboxMessage.campaign_id.in_(campaign_ids),
        OutboxMessage.send_at >= low,
        OutboxMessage.send_at <= high,
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(
        {
            "user_id": np.array([r[0] for r in rows], dtype=np.int64),
            "send_at": pd.to_datetime([r[1] for r in rows]).astype("datetime64[ns]"),
        }
    )


def _send_instants(instants: dict[str, datetime], quiet: delivery.QuietHours | None) -> dict[str, datetime | None]:
    """Per delivery zone, when the occurrence goes out after quiet hours (None: not sent)."""
    if quiet is None:
        return dict(instants)
    return {zone: quiet.send_instant(at, zone) for zone, at in instants.items()}


def _dispatch_campaign(
    engine: Engine,
    campaign: Campaign,
    until: datetime,
    company_zone: str,
    batch_size: int,
    report: DispatchReport,
    on_batch: Callable[[int], None] | None,
    context: _Rules,
) -> int:
    schedule = parse_schedule(campaign.schedule or {"kind": "now"})  # the row's edge: typed from here on
    settings = parse_settings(campaign.settings)
    message = parse_message(campaign.message)
    since = campaign.launched_at
    if settings.active_from:
        since = max(since, datetime.fromisoformat(settings.active_from))
    compiled = CompiledMessage(message.to_json(), campaign.channel)
    audience = parse_definition(campaign.audience) if campaign.audience else None
    # Control group and A/B/n variants (core/campaigns/experiment.py): control users go through every
    # rule below exactly like the others and are written as 'control' rows, which count as sends for
    # re-eligibility and the frequency cap, so both groups are built the same way.
    measurement = experiment.measurement_of(settings)
    variants = message.ab_variants
    by_variant = {v.name: CompiledMessage(v.message(message).to_json(), campaign.channel) for v in variants}
    delay = {v.name: timedelta(minutes=v.delay_minutes) for v in variants}
    definition = campaign_definition(engine, campaign.segment_id, audience)
    if definition is None:
        raise UserError("the campaign has no audience")
    users = users_frame(engine)
    zones = delivery_zones(users, company_zone, schedules.uses_local_time(schedule))
    walls = schedules.wall_occurrences(
        schedule, since - schedules.ZONE_SPREAD, until + schedules.ZONE_SPREAD, launched_at=campaign.launched_at
    )
    prediction_id = message.prediction_id
    reeligible = settings.reeligible
    after_days = settings.reeligible_after_days
    quiet = context.rules.quiet if context.rules.quiet.enabled and settings.obeys_quiet_hours else None
    cap = context.rules.cap if context.rules.cap.enabled and settings.obeys_frequency_cap else None
    written = 0

    def split(ids: pd.Index) -> experiment.Assignment:
        buckets = users["random_bucket"].reindex(ids).fillna(0).to_numpy()
        return experiment.assign(campaign.id, buckets, measurement.control_percent, variants)

    def delays(ids: pd.Index) -> pd.TimedeltaIndex:  # a variant's later send time (control: the schedule's)
        return pd.to_timedelta([delay.get(v, timedelta(0)) for v in split(ids).variant])

    for wall in walls:
        key = schedules.occurrence_key(wall)
        instants = schedules.instants(wall, pd.unique(zones), schedule, company_zone)
        sends = _send_instants(instants, quiet)
        started = {z for z, at in instants.items() if since <= at <= until}
        due_zones = [z for z in started if sends[z] is not None and sends[z] <= until]
        dropped_zones = [z for z in started if sends[z] is None]
        if not due_zones and not dropped_zones:
            continue
        _, reachable = reachable_user_ids(engine, definition, campaign.channel, campaign.platforms, now=wall)
        candidates = pd.Index(reachable)
        candidates = candidates[zones.reindex(candidates).isin(due_zones + dropped_zones).to_numpy()]
        candidates = candidates.difference(pd.Index(_already_written(engine, campaign.id, key))).sort_values()
        if dropped_zones:
            dropped = zones.reindex(candidates).isin(dropped_zones).to_numpy()
            if dropped.any():
                report.quiet_dropped[campaign.id] = report.quiet_dropped.get(campaign.id, 0) + int(dropped.sum())
            candidates = candidates[~dropped]
        if len(candidates) == 0:
            continue
        send_at = zones.reindex(candidates).map(sends).astype("datetime64[ns]")
        if variants:  # a variant sent later is written once due, by a later run
            send_at = send_at + delays(candidates)
            due = (send_at <= until).to_numpy()
            candidates, send_at = candidates[due], send_at[due]
        previous = _previous_sends(engine, campaign.id, key)
        if len(previous):
            last = previous.reindex(candidates)
            had = last.notna().to_numpy()
            if not reeligible:
                blocked = had
            elif after_days is not None:
                blocked = had & (last.to_numpy() > (send_at - timedelta(days=float(after_days))).to_numpy())
            else:
                blocked = np.zeros(len(candidates), dtype=bool)
            candidates, send_at = candidates[~blocked], send_at[~blocked]
        if cap is not None and len(candidates):
            low, high = send_at.min() - cap.window, send_at.max() + cap.window
            existing = _capped_sends(engine, context.capped_campaigns, low.to_pydatetime(), high.to_pydatetime())
            held = delivery.cap_blocked(candidates.to_numpy(), send_at.to_numpy(), existing, cap)
            if held.any():
                report.capped[campaign.id] = report.capped.get(campaign.id, 0) + int(held.sum())
                candidates, send_at = candidates[~held], send_at[~held]
        if quiet is not None and len(candidates):
            planned = zones.reindex(candidates).map(instants).astype("datetime64[ns]") + delays(candidates)
            moved = int((send_at.to_numpy() != planned.to_numpy()).sum())
            if moved:
                report.deferred[campaign.id] = report.deferred.get(campaign.id, 0) + moved
        scores = scores_for(engine, prediction_id, candidates)
        people = users.loc[candidates]
        assignment = split(candidates)
        rows: list[tuple] = []
        created = utcnow()
        for user_id, user, score, tier, at, held_out, variant in zip(
            people.index,
            people.to_dict("records"),  # plain dicts: rendering reads a few fields per user
            scores["score"].to_numpy(),
            scores["category"].to_numpy(),
            send_at.to_numpy(),
            assignment.control,
            assignment.variant,
            strict=True,
        ):
            tier = tier if isinstance(tier, str) else None  # the tier at send time, for results per tier
            problem = None
            if held_out:
                title, body, status = None, None, experiment.CONTROL_STATUS
                report.held_out[campaign.id] = report.held_out.get(campaign.id, 0) + 1
            else:
                # One user's data can break copy that passed every check (a branch only they reach):
                # that message alone is written as failed, with the reason, and the rest carry on.
                try:
                    rendered = by_variant.get(variant, compiled).render(user, score, tier)
                    title, body, status = rendered.title, rendered.body, "queued"
                except TemplateError as error:
                    title, body, status, problem = None, None, "failed", str(error)
                    report.failed[campaign.id] = report.failed.get(campaign.id, 0) + 1
            rows.append(
                (
                    *(campaign.id, key, int(user_id), campaign.channel, pd.Timestamp(at).to_pydatetime()),
                    *(title, body, created, status, problem, variant, tier),
                )
            )
            if len(rows) >= batch_size:
                written += _write(engine, rows, report, on_batch)
                rows = []
        if rows:
            written += _write(engine, rows, report, on_batch)
    return written


def _write(engine: Engine, rows: list[tuple], report: DispatchReport, on_batch) -> int:
    with engine.begin() as connection:
        bulk_insert(connection, "outbox", OUTBOX_COLUMNS, [_sql_row(r) for r in rows])
    report.written += len(rows)
    if on_batch is not None:
        on_batch(report.written)
    return len(rows)


def _sql_row(row: tuple) -> tuple:
    # The DBAPI path bypasses SQLAlchemy's type handling: store datetimes as SQLite text.
    return tuple(v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in row)

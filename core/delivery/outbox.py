"""Delivering the outbox: claim what is due, hand it to the channel's provider, record the answer.

A message's status moves:

    queued --claim--> sending --provider accepts--> sent
                              --permanent error---> failed (last_error says why)
                              --temporary error---> queued again, next_attempt_at = backoff
    queued, its send time over a day past -------> expired (never sent late)
    failed --"retry failed"--> queued
    control (a control group's row, written by dispatch) is never delivered.

Never twice from our side: a message is marked `sending` (attempts + 1) and committed before
the provider is called, and marked with the answer right after. A crash in between leaves
it `sending`; the next cycle sends it again **with the same idempotency key** (the message id:
the webhook's `id`, the email's Message-ID, the demo channel's row key). So every message is
delivered at least once, and exactly once at a provider that keeps the first message of each
key; a plain SMTP server does not, so a crash inside a 20-message SMTP batch can give those
recipients a second copy with the same Message-ID. Only one worker delivers at a time (the
worker's lease), so a `sending` row at the start of a cycle is always a crash's leftover.

Retries: temporary errors wait 30 s, 1, 2, 4 ... minutes (doubling, at most an hour, with
jitter: half the delay plus a random part of the other half; longer when the provider's
Retry-After says so), and fail after MAX_ATTEMPTS attempts with the last error.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, Select, and_, bindparam, func, or_, select, update

from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, require
from core.db import session_scope
from core.delivery.connectors import Connector, Envelope, Outcome
from core.models import Campaign, OutboxMessage, User
from core.timeutil import utcnow

STATUSES = ("queued", "sending", "sent", "failed", "expired", "control")
DELIVERABLE = ("queued", "sending")
MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=1)
MAX_LATENESS = timedelta(days=1)  # a message not sent within a day of its send time is expired
CLAIM_SIZE = 1_000
NO_PROVIDER = "no provider is set up for the {channel} channel (Data page)"

OUTBOX = OutboxMessage.__table__


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    expired: int = 0
    resent_after_crash: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # last errors seen, with how many messages

    def add(self, other: DeliveryReport) -> None:
        for name in ("sent", "failed", "retrying", "expired", "resent_after_crash"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for error, count in other.errors.items():
            self.errors[error] = self.errors.get(error, 0) + count


def backoff(attempts: int, rng: random.Random, retry_after: float | None = None) -> timedelta:
    """The wait before attempt `attempts + 1`: exponential, capped, with jitter."""
    delay = min(FIRST_DELAY * (2 ** max(0, attempts - 1)), LONGEST_DELAY)
    jittered = delay / 2 + delay / 2 * rng.random()
    if retry_after is not None:
        jittered = max(jittered, timedelta(seconds=min(retry_after, LONGEST_DELAY.total_seconds())))
    return jittered


def expire_late(engine: Engine, now: datetime) -> int:
    """Queued messages whose send time (or granted retry) is over a day past become 'expired', with the reason."""
    cutoff = now - MAX_LATENESS
    late = and_(
        OUTBOX.c.status == "queued",
        func.coalesce(OUTBOX.c.next_attempt_at, OUTBOX.c.send_at) < cutoff,
    )
    with engine.begin() as connection:
        return connection.execute(
            update(OUTBOX)
            .where(late)
            .values(
                status="expired",
                last_error=func.coalesce(OUTBOX.c.last_error + " - ", "")
                + "not sent within a day of its send time (was the worker running?)",
            )
        ).rowcount


def _due(now: datetime):
    return and_(
        OUTBOX.c.status.in_(DELIVERABLE),
        OUTBOX.c.send_at <= now,
        or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at <= now),
    )


def claim(engine: Engine, now: datetime, limit: int = CLAIM_SIZE) -> tuple[list[Envelope], dict[int, int], int]:
    """Mark up to `limit` due messages 'sending' (attempts + 1) and return them, their attempts,
    and how many were already 'sending' (left by a crash)."""
    query = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.campaign_id,
            OUTBOX.c.channel,
            OUTBOX.c.title,
            OUTBOX.c.body,
            OUTBOX.c.send_at,
            OUTBOX.c.attempts,
            OUTBOX.c.status,
            User.external_id,
            User.email,
            User.first_name,
        )
        .join(User, User.id == OUTBOX.c.user_id)
        .where(_due(now))
        .order_by(OUTBOX.c.send_at, OUTBOX.c.id)
        .limit(limit)
    )
    with engine.begin() as connection:
        rows = connection.execute(query).all()
        if not rows:
            return [], {}, 0
        ids = [r.id for r in rows]
        for start in range(0, len(ids), 500):  # bounded IN lists
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids[start : start + 500]), OUTBOX.c.status.in_(DELIVERABLE))
                .values(status="sending", attempts=OUTBOX.c.attempts + 1)
            )
    envelopes = [
        Envelope(r.id, r.campaign_id, r.channel, r.external_id, r.email, r.first_name, r.title, r.body, r.send_at)
        for r in rows
    ]
    return envelopes, {r.id: r.attempts + 1 for r in rows}, sum(r.status == "sending" for r in rows)


def record(
    engine: Engine, outcomes: list[Outcome], attempts: Mapping[int, int], now: datetime, rng: random.Random
) -> DeliveryReport:
    """Write each outcome to its message: sent, failed, or queued again for a later attempt."""
    report = DeliveryReport()
    changes = []
    for outcome in outcomes:
        change = {"b_id": outcome.message_id, "b_provider": None, "b_error": None, "b_sent": None, "b_next": None}
        if outcome.sent:
            change.update(b_status="sent", b_provider=outcome.provider_id, b_sent=now)
            report.sent += 1
        else:
            report.errors[outcome.error or "unknown error"] = report.errors.get(outcome.error or "unknown error", 0) + 1
            tries = attempts[outcome.message_id]
            if outcome.temporary and tries < MAX_ATTEMPTS:
                wait = backoff(tries, rng, outcome.retry_after)
                change.update(b_status="queued", b_error=outcome.error, b_next=now + wait)
                report.retrying += 1
            else:
                reason = outcome.error if not outcome.temporary else f"gave up after {tries} attempts: {outcome.error}"
                change.update(b_status="failed", b_error=reason)
                report.failed += 1
        changes.append(change)
    if changes:
        statement = (
            update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.status == "sending")
            .values(
                status=bindparam("b_status"),
                provider_id=bindparam("b_provider"),
                last_error=bindparam("b_error"),
                sent_at=bindparam("b_sent"),
                next_attempt_at=bindparam("b_next"),
            )
        )
        with engine.begin() as connection:
            connection.execute(statement, changes)
    return report


def deliver_due(
    engine: Engine,
    now: datetime,
    connectors: Mapping[str, Connector],
    keep_going: Callable[[], bool] = lambda: True,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
    on_batch: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Send every message due at `now` through its channel's connector; returns what happened.

    `clock` stamps sent_at and retries (default: `now` throughout, for a fixed clock);
    `keep_going()` is asked before each batch (the worker's lease, a stop signal).
    """
    clock = clock or (lambda: now)
    rng = rng or random.Random()
    report = DeliveryReport(expired=expire_late(engine, now))
    while keep_going():
        envelopes, attempts, resent = claim(engine, now)
        if not envelopes:
            break
        report.resent_after_crash += resent
        by_channel: dict[str, list[Envelope]] = defaultdict(list)
        for envelope in envelopes:
            by_channel[envelope.channel].append(envelope)
        for channel, group in by_channel.items():
            connector = connectors.get(channel)
            if connector is None:
                error = NO_PROVIDER.format(channel=channel)
                outcomes = [Outcome(e.message_id, False, error=error, temporary=True) for e in group]
                report.add(record(engine, outcomes, attempts, clock(), rng))
                continue
            for start in range(0, len(group), connector.batch_size):
                batch = group[start : start + connector.batch_size]
                try:
                    outcomes = connector.send(batch)
                except Exception as error:  # noqa: BLE001 - a bug or odd data must not leave the batch 'sending'
                    failure = f"the {connector.name} connector failed: {type(error).__name__}: {error}"
                    outcomes = [Outcome(e.message_id, False, error=failure[:300], temporary=True) for e in batch]
                part = record(engine, outcomes, attempts, clock(), rng)
                report.add(part)
                if on_batch is not None:
                    on_batch(part)
    return report


def retry_failed(
    engine: Engine,
    campaign_id: int,
    occurrence: str | None = None,
    now: datetime | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> int:
    """Queue a campaign's failed (and expired) messages again, now; returns how many.

    Sending again is launching again: marketers and above, recorded in the audit log.
    """
    require(actor, Permission.LAUNCH_CAMPAIGN)
    now = now or utcnow()
    where = [OUTBOX.c.campaign_id == campaign_id, OUTBOX.c.status.in_(("failed", "expired"))]
    if occurrence is not None:
        where.append(OUTBOX.c.occurrence == occurrence)
    with session_scope(engine) as session:
        count = session.execute(
            update(OUTBOX).where(*where).values(status="queued", attempts=0, next_attempt_at=now)
        ).rowcount
        name = session.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
        details = {"campaign_id": campaign_id, "messages": count} | ({"send": occurrence} if occurrence else {})
        session.add(audit_entry(actor, "retry", f"campaign {name!r}", details))
    return count


def status_counts(engine: Engine, campaign_id: int | None = None) -> pd.DataFrame:
    """Messages per campaign, send (occurrence) and status: one row per campaign and occurrence."""
    query = (
        select(OUTBOX.c.campaign_id, Campaign.name, OUTBOX.c.occurrence, OUTBOX.c.status, func.count())
        .join(Campaign, Campaign.id == OUTBOX.c.campaign_id)
        .group_by(OUTBOX.c.campaign_id, Campaign.name, OUTBOX.c.occurrence, OUTBOX.c.status)
    )
    if campaign_id is not None:
        query = query.where(OUTBOX.c.campaign_id == campaign_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=["campaign_id", "campaign", "occurrence", "status", "messages"])
    table = frame.pivot_table(
        index=["campaign_id", "campaign", "occurrence"],
        columns="status",
        values="messages",
        aggfunc="sum",
        fill_value=0,
    )
    table = table.reindex(columns=list(STATUSES), fill_value=0).reset_index()
    table.columns.name = None
    table["total"] = table[list(STATUSES)].sum(axis=1)
    return table.sort_values(["campaign_id", "occurrence"], ascending=[True, False], ignore_index=True)


def failures(engine: Engine, campaign_id: int | None = None, limit: int = 1_000) -> pd.DataFrame:
    """Failed and expired messages, the reasons grouped: reason, status, messages, latest send."""
    query = (
        select(
            OUTBOX.c.last_error.label("reason"),
            OUTBOX.c.status,
            func.count().label("messages"),
            func.max(OUTBOX.c.send_at).label("latest_send_utc"),
        )
        .where(OUTBOX.c.status.in_(("failed", "expired")))
        .group_by(OUTBOX.c.last_error, OUTBOX.c.status)
        .order_by(func.count().desc())
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(OUTBOX.c.campaign_id == campaign_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["reason", "status", "messages", "latest_send_utc"])


def messages_query(campaign_id: int | None = None) -> Select:
    """Messages with their delivery status, newest send first, of one campaign or of all: what the
    Outbox view lists and what its CSV holds."""
    query = (
        select(
            OUTBOX.c.id,
            Campaign.name.label("campaign"),
            OUTBOX.c.occurrence,
            User.external_id.label("user"),
            User.timezone.label("time_zone"),
            OUTBOX.c.channel,
            OUTBOX.c.variant,
            OUTBOX.c.send_at.label("send_at_utc"),
            OUTBOX.c.status,
            OUTBOX.c.attempts,
            OUTBOX.c.sent_at.label("sent_at_utc"),
            OUTBOX.c.last_error,
            OUTBOX.c.title,
            OUTBOX.c.body,
        )
        .join(Campaign, Campaign.id == OUTBOX.c.campaign_id)
        .join(User, User.id == OUTBOX.c.user_id)
        .order_by(OUTBOX.c.send_at.desc(), OUTBOX.c.id.desc())
    )
    return query if campaign_id is None else query.where(OUTBOX.c.campaign_id == campaign_id)


def recent_messages(engine: Engine, campaign_id: int | None = None, limit: int = 200) -> pd.DataFrame:
    """The latest `limit` messages (see messages_query)."""
    query = messages_query(campaign_id).limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=list(query.selected_columns.keys()))

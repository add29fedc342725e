"""The schema: every table the app keeps. Timestamps are naive UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.timeutil import utcnow


class Base(DeclarativeBase):
    pass


class AppMeta(Base):
    """Small key/value facts about the database itself (data version, seed used...)."""

    __tablename__ = "app_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    platform: Mapped[str | None] = mapped_column(String(16))  # iOS / Android / Web
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    push_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    has_push_token: Mapped[bool] = mapped_column(Boolean, default=False)
    app_version: Mapped[str | None] = mapped_column(String(32))
    random_bucket: Mapped[int] = mapped_column(Integer, default=0)  # 0-9999, stable per user


class Event(Base):
    """Everything a user did; sessions are events named `session`."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    ts: Mapped[datetime] = mapped_column(DateTime)
    value: Mapped[float | None] = mapped_column(Float)
    properties: Mapped[dict | None] = mapped_column(JSON)
    __table_args__ = (
        Index("ix_events_user_name_ts", "user_id", "name", "ts"),
        Index("ix_events_name_ts", "name", "ts"),
    )


class UserFacts(Base):
    """Per-user facts derived from events, refreshed whenever data changes (core.facts)."""

    __tablename__ = "user_facts"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    first_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    session_count: Mapped[int] = mapped_column(Integer, default=0)
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[float] = mapped_column(Float, default=0.0)
    first_purchase_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_purchase_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserEventFacts(Base):
    """Per-user, per-event-name counts and first/last times (for 'did event E' filters)."""

    __tablename__ = "user_event_facts"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0)
    __table_args__ = (Index("ix_user_event_facts_event", "event"),)


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(100))
    window_days: Mapped[int] = mapped_column(Integer)
    audience: Mapped[dict | None] = mapped_column(JSON)  # a segment definition; None = all users
    kind: Mapped[str] = mapped_column(String(16), default="full")  # full / preview / demo
    as_of: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    quality: Mapped[float | None] = mapped_column(Float)  # accuracy ratio, 0-100
    auc: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict | None] = mapped_column(JSON)  # calibration table, drivers, sizes...
    model: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PredictionScore(Base):
    __tablename__ = "prediction_scores"
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)  # 0-100
    category: Mapped[str] = mapped_column(String(8))  # Low / Medium / High


class Segment(Base):
    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Every UPDATE checks the version it read (WHERE version = ...): a concurrent edit fails
    # instead of being overwritten. The code sets the next version itself.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="RESTRICT"))
    audience: Mapped[dict | None] = mapped_column(JSON)  # a definition when not a saved segment
    channel: Mapped[str] = mapped_column(String(16))
    platforms: Mapped[list | None] = mapped_column(JSON)
    message: Mapped[dict] = mapped_column(JSON)
    schedule: Mapped[dict] = mapped_column(JSON)
    settings: Mapped[dict | None] = mapped_column(JSON)  # re-eligibility, offers...
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime)
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}  # see Segment


class OutboxMessage(Base):
    """A rendered message ready for a provider: one per campaign, occurrence and user."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(String(32))  # the local wall-clock occurrence, ISO
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    send_at: Mapped[datetime] = mapped_column(DateTime)  # UTC instant
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Delivery: queued -> sent | failed (the worker's connectors), with what the provider said.
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    variant: Mapped[str | None] = mapped_column(String(16))  # the message variant (A/B/n), None with one
    tier: Mapped[str | None] = mapped_column(String(8))  # the user's likelihood tier when written (results)
    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence", "user_id", name="uq_outbox_once"),
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
    )


class Lease(Base):
    """A named lease (core.leases): who may run the worker, a dispatch or an import right now."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class DemoDelivery(Base):
    """What the demo channel 'delivered': nothing leaves the machine, each message is recorded once."""

    __tablename__ = "demo_deliveries"
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the outbox id (the idempotency key)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime] = mapped_column(DateTime)


class Member(Base):
    """A person who signed in (team deployments): their role decides what core lets them do."""

    __tablename__ = "members"
    email: Mapped[str] = mapped_column(String(254), primary_key=True)  # lower case
    role: Mapped[str] = mapped_column(String(16))  # viewer / analyst / marketer / admin
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    added_by: Mapped[str | None] = mapped_column(String(254))


class AuditEntry(Base):
    """Who did what, when, on which object: exports, imports, launches, rule and role changes..."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict | None] = mapped_column(JSON)
    __table_args__ = (Index("ix_audit_log_at", "at"),)

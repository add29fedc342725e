"""Campaigns: drafts, validation, launch and the status lifecycle.

Status moves draft -> scheduled (launch) -> paused <-> scheduled -> stopped. Only drafts
are edited; a launched campaign is duplicated to change it. Every write checks the row's
`version` (optimistic concurrency): a stale edit is refused, never silently merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, require
from core.campaigns import experiment, limits, personalise, rules
from core.campaigns import schedule as schedules
from core.campaigns.audience import (
    CAMPAIGN_CHANNELS,
    campaign_definition,
    reachable_user_ids,
    zone_counts,
)
from core.campaigns.spec import CampaignSpec, Schedule, parse_campaign_spec, parse_schedule
from core.campaigns.templating import TemplateError
from core.db import get_engine, session_scope
from core.errors import UserError
from core.models import AppMeta, Campaign, OutboxMessage, Prediction, Segment
from core.timeutil import utcnow

STATUSES = ("draft", "scheduled", "paused", "stopped")
TRANSITIONS: dict[str, dict[str, str]] = {
    # action -> {from status: to status}
    "launch": {"draft": "scheduled"},
    "pause": {"scheduled": "paused"},
    "resume": {"paused": "scheduled"},
    "stop": {"scheduled": "stopped", "paused": "stopped"},
}
TINY_AUDIENCE = 100
SAMPLE_FOR_LENGTHS = 300
COMPANY_TIMEZONE_KEY = "company_timezone"


def company_timezone(engine: Engine | None = None) -> str:
    """The company's IANA zone (app_meta 'company_timezone'; default UTC): the fallback for users without one."""
    with session_scope(engine or get_engine()) as session:
        row = session.get(AppMeta, COMPANY_TIMEZONE_KEY)
        return row.value if row and row.value else schedules.DEFAULT_COMPANY_TIMEZONE


def set_company_timezone(zone: str, engine: Engine | None = None, *, actor: Actor = LOCAL_ADMIN) -> None:
    require(actor, Permission.CHANGE_RULES)
    if not schedules.is_valid_zone(zone):
        raise UserError(f"{zone!r} is not a known IANA time zone (e.g. Europe/Paris)")
    with session_scope(engine or get_engine()) as session:
        row = session.get(AppMeta, COMPANY_TIMEZONE_KEY)
        if row is None:
            session.add(AppMeta(key=COMPANY_TIMEZONE_KEY, value=zone))
        else:
            row.value = zone
        session.add(audit_entry(actor, "rule change", "company time zone", {"zone": zone}))


def spec_from_row(row: Campaign) -> CampaignSpec:
    """A campaigns row as its spec (the database-row edge: parsed once here)."""
    return parse_campaign_spec(
        {
            "name": row.name,
            "segment_id": row.segment_id,
            "audience": row.audience,
            "channel": row.channel,
            "platforms": row.platforms or [],
            "message": row.message or {},
            "schedule": row.schedule or {"kind": "now"},
            "settings": row.settings or {},
        },
        what=f"campaign {row.name!r}",
    )


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audience_users: int = 0
    reachable_users: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _missed_at_launch(engine: Engine, schedule: Schedule, reachable, now: datetime) -> str | None:
    """A warning when, launched now, the first local-time send has already passed in some zones."""
    company_zone = company_timezone(engine)
    zone_users = zone_counts(engine, reachable, company_zone, schedules.uses_local_time(schedule))
    wall, missed = schedules.passed_at_launch(schedule, zone_users, now, company_zone)
    if not missed:
        return None
    users = sum(missed.values())
    zones = ", ".join(list(missed)[:3]) + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")
    then = (
        "they will not receive it. Launch at least a day ahead to reach every zone"
        if schedule.kind == "once"
        else "they get their first message at the next send"
    )
    return (
        f"Launched now, the first send ({wall:%a %d %b %H:%M} local time) has already passed in {zones} "
        f"({users:,} reachable users): {then}."
    )


def validate(spec: CampaignSpec, engine: Engine | None = None, now: datetime | None = None) -> Validation:
    """Blocking errors and warnings for launching `spec` (nothing is written)."""
    engine = engine or get_engine()
    now = now or utcnow()
    result = Validation()
    reachable = None
    if not spec.name.strip():
        result.errors.append("The campaign has no name.")
    if spec.segment_id is None and spec.audience is None:
        result.errors.append("No audience: choose a saved segment or come from a Predictions selection.")
    else:
        try:
            definition = campaign_definition(engine, spec.segment_id, spec.audience)
            audience, reachable = reachable_user_ids(engine, definition, spec.channel, spec.platforms, now)
            result.audience_users, result.reachable_users = len(audience), len(reachable)
            if len(reachable) == 0:
                result.warnings.append("Nobody in the audience is reachable on this channel today.")
            elif len(reachable) < TINY_AUDIENCE:
                result.warnings.append(f"The audience is tiny: {len(reachable):,} reachable users today.")
        except UserError as error:
            result.errors.append(f"Audience: {error}.")
    message = spec.message.to_json()  # personalise reads the stored form
    if not spec.message.body.strip():
        result.errors.append("The message body is empty.")
    if spec.channel in ("push", "email") and not spec.message.title.strip():
        if spec.channel == "email":
            result.errors.append("The email has no subject.")
        else:
            result.warnings.append("The push has no title: devices show the app name instead.")
    for key, problem in personalise.template_problems(message, spec.channel).items():
        label = personalise.field_label(spec.channel, key.split(".")[-1])
        where = f"{key.split('.')[0]} variant {label.lower()}" if "." in key else label
        result.errors.append(f"Template error in {where}, {problem}.")
    if spec.channel in ("push", "email") and not any("Template error" in e for e in result.errors):
        # Judge lengths on real renderings: a sample of the reachable audience, else the template text.
        sample = reachable[:SAMPLE_FOR_LENGTHS] if reachable is not None else []
        try:
            renderings = list(personalise.render_for_users(engine, message, spec.channel, sample).values())
        except TemplateError as error:  # a real user's data breaks the copy: fix it before launch
            result.errors.append(f"Template error in {error.field}, {error.problem} (for a user of this audience).")
            renderings = []
        title, body = (
            personalise.longest_copy(renderings) if renderings else (message.get("title", ""), message.get("body", ""))
        )
        result.warnings.extend(limits.copy_warnings(spec.channel, title, body, spec.platforms))
        if spec.channel == "push":
            result.errors.extend(limits.payload_errors(title, body, spec.platforms))
    missing = personalise.likelihood_without_prediction(spec.message)
    if missing:
        result.errors.append(missing)
    schedule_errors = schedules.problems(spec.schedule, now, company_timezone(engine))
    result.errors.extend(schedule_errors)
    if not schedule_errors and reachable is not None and len(reachable):
        missed = _missed_at_launch(engine, spec.schedule, reachable, now)
        if missed:
            result.warnings.append(missed)
    try:
        company_rules = rules.delivery_rules(engine)
    except UserError as error:  # fail closed: no launch while a safety rule cannot be read
        result.errors.append(str(error))
    else:
        quiet = rules.schedule_verdict(spec.schedule, company_rules, spec.settings, company_timezone(engine), now)
        if quiet:
            result.warnings.append(quiet)
    return result


def _save_name_conflict(error: IntegrityError, name: str) -> UserError:
    return UserError(f"a campaign named {name!r} already exists; choose another name")


def save_draft(
    spec: CampaignSpec,
    engine: Engine | None = None,
    campaign_id: int | None = None,
    expected_version: int | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> int:
    """Create or update a draft (only drafts can be edited); returns its id."""
    require(actor, Permission.COMPOSE_CAMPAIGN)
    engine = engine or get_engine()
    name = spec.name.strip()
    if not name:
        raise UserError("give the campaign a name before saving it")
    if any(ord(char) < 32 for char in name):  # PostgreSQL cannot store NUL; no name needs a control character
        raise UserError("a campaign name cannot contain control characters (tabs, line breaks, NUL)")
    row_values = spec.to_row()
    try:
        with session_scope(engine) as session:
            if campaign_id is None:
                row = Campaign(**row_values, status="draft", version=1)
                session.add(row)
            else:
                row = _load_for_update(session, campaign_id, expected_version)
                if row.status != "draft":
                    raise UserError(f"campaign {row.name!r} is {row.status}: only drafts can be edited; duplicate it")
                for key, value in row_values.items():
                    setattr(row, key, value)
                row.version += 1
                row.updated_at = utcnow()
            session.flush()
            return row.id
    except IntegrityError as error:
        raise _save_name_conflict(error, name) from None


def _load_for_update(session, campaign_id: int, expected_version: int | None) -> Campaign:
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise UserError(f"campaign {campaign_id} does not exist")
    if expected_version is not None and row.version != expected_version:
        raise UserError(f"campaign {row.name!r} was changed elsewhere meanwhile; reload it and try again")
    return row


def launch(
    spec: CampaignSpec,
    engine: Engine | None = None,
    campaign_id: int | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> int:
    """Validate and store `spec` as scheduled (saving the draft first); returns the campaign id."""
    require(actor, Permission.LAUNCH_CAMPAIGN)
    engine = engine or get_engine()
    now = now or utcnow()
    check = validate(spec, engine, now)
    if check.errors:
        raise UserError("cannot launch: " + " ".join(check.errors))
    campaign_id = save_draft(spec, engine, campaign_id, expected_version, actor=actor)
    with session_scope(engine) as session:
        row = session.get(Campaign, campaign_id)
        row.status = "scheduled"
        row.launched_at = now
        prediction_event = (
            session.scalar(select(Prediction.event).where(Prediction.id == spec.message.prediction_id))
            if spec.message.prediction_id is not None
            else None
        )
        frozen = experiment.frozen_at_launch(spec.settings, prediction_event)
        row.settings = frozen.model_copy(update={"active_from": now.isoformat(timespec="seconds")}).to_json()
        row.version += 1
        row.updated_at = now
        session.add(audit_entry(actor, "launch", f"campaign {row.name!r}", {"campaign_id": campaign_id}))
    return campaign_id


def transition(
    campaign_id: int,
    action: str,
    engine: Engine | None = None,
    expected_version: int | None = None,
    now=None,
    *,
    actor: Actor = LOCAL_ADMIN,
) -> str:
    """Pause, resume or stop a campaign; returns its new status.

    Resuming does not catch up: sends that fell due while paused are skipped.
    """
    require(actor, Permission.LAUNCH_CAMPAIGN)
    if action not in TRANSITIONS or action == "launch":
        raise UserError(f"unknown action {action!r}; use pause, resume or stop")
    now = now or utcnow()
    with session_scope(engine or get_engine()) as session:
        row = _load_for_update(session, campaign_id, expected_version)
        target = TRANSITIONS[action].get(row.status)
        if target is None:
            raise UserError(f"campaign {row.name!r} is {row.status}: it cannot {action}")
        row.status = target
        if action == "resume":
            row.settings = {**(row.settings or {}), "active_from": now.isoformat(timespec="seconds")}
        row.version += 1
        row.updated_at = now
        session.add(
            audit_entry(actor, action, f"campaign {row.name!r}", {"campaign_id": campaign_id, "status": target})
        )
        return target


def duplicate(campaign_id: int, engine: Engine | None = None, *, actor: Actor = LOCAL_ADMIN) -> int:
    """A new draft with the same settings, named 'Copy of ...' (numbered when taken)."""
    require(actor, Permission.COMPOSE_CAMPAIGN)
    engine = engine or get_engine()
    with session_scope(engine) as session:
        row = session.get(Campaign, campaign_id)
        if row is None:
            raise UserError(f"campaign {campaign_id} does not exist")
        spec = spec_from_row(row)
        taken = set(session.scalars(select(Campaign.name)))
    base = f"Copy of {spec.name}"
    name, number = base, 2
    while name in taken:
        name, number = f"{base} ({number})", number + 1
    copy = spec.model_copy(update={"name": name, "settings": spec.settings.model_copy(update={"active_from": None})})
    return save_draft(copy, engine, actor=actor)


def get_campaign(campaign_id: int, engine: Engine | None = None) -> tuple[CampaignSpec, dict]:
    """A campaign's spec and its record (id, status, version, launched_at, created_at)."""
    with session_scope(engine or get_engine()) as session:
        row = session.get(Campaign, campaign_id)
        if row is None:
            raise UserError(f"campaign {campaign_id} does not exist")
        record = {
            "id": row.id,
            "status": row.status,
            "version": row.version,
            "launched_at": row.launched_at,
            "created_at": row.created_at,
        }
        return spec_from_row(row), record


def next_send(schedule: Schedule, status: str, launched_at: datetime | None, now: datetime) -> datetime | None:
    """The next occurrence's wall-clock time (None when nothing more will be sent)."""
    if status in ("stopped",):
        return None
    if schedule.kind == "now":
        return None if launched_at is not None else now
    upcoming = schedules.wall_occurrences(schedule, now - schedules.ZONE_SPREAD, None, limit=3)
    for wall in upcoming:
        if schedules.to_utc(wall, "Etc/GMT+12") >= now:  # some zone still ahead of it
            return wall
    return None


def list_campaigns(engine: Engine | None = None, now: datetime | None = None) -> pd.DataFrame:
    """Every campaign with what the list shows: name, audience, channel, status, next send, messages."""
    engine = engine or get_engine()
    now = now or utcnow()
    with session_scope(engine) as session:
        rows = session.execute(
            select(Campaign, Segment.name)
            .outerjoin(Segment, Segment.id == Campaign.segment_id)
            .order_by(Campaign.updated_at.desc(), Campaign.id.desc())
        ).all()
        sent = dict(
            session.execute(select(OutboxMessage.campaign_id, func.count()).group_by(OutboxMessage.campaign_id)).all()
        )
    records = []
    for campaign, segment_name in rows:
        try:
            schedule = parse_schedule(campaign.schedule or {"kind": "now"})
        except UserError as error:  # a hand-edited row: listed, with what is wrong, never a crash
            schedule, unreadable = None, str(error)
        nxt = next_send(schedule, campaign.status, campaign.launched_at, now) if schedule else None
        platforms = ", ".join(campaign.platforms or []) or "all platforms"
        records.append(
            {
                "id": campaign.id,
                "name": campaign.name,
                "audience": segment_name or ("Predictions selection" if campaign.audience else "—"),
                "channel": f"{CAMPAIGN_CHANNELS.get(campaign.channel, campaign.channel)} ({platforms})",
                "status": campaign.status,
                "schedule": schedules.describe(schedule) if schedule else unreadable,
                "next_send": nxt.strftime("%a %d %b %Y %H:%M")
                + (" local" if schedules.uses_local_time(schedule) else "")
                if nxt and campaign.status in ("scheduled", "draft")
                else ("(paused) " + nxt.strftime("%a %d %b %Y %H:%M") if nxt and campaign.status == "paused" else "—"),
                "messages_written": int(sent.get(campaign.id, 0)),
                "version": campaign.version,
                "updated_at": campaign.updated_at,
            }
        )
    columns = [
        "id",
        "name",
        "audience",
        "channel",
        "status",
        "schedule",
        "next_send",
        "messages_written",
        "version",
        "updated_at",
    ]
    return pd.DataFrame(records, columns=columns)

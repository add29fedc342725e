"""The outbox as a CSV download: formula-safe, for analysts and above, and recorded in the audit log."""

from __future__ import annotations

from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.campaigns.dispatch import outbox_frame
from core.segments.export import neutralise

TEXT_COLUMNS = ("campaign", "occurrence", "external_id", "timezone", "channel", "title", "body")


def outbox_csv_bytes(engine: Engine, campaign_id: int | None = None, *, actor: Actor = LOCAL_ADMIN) -> bytes:
    """Every outbox row of one campaign (or of all) as UTF-8 CSV bytes."""
    require(actor, Permission.EXPORT)
    rows = outbox_frame(engine, campaign_id)
    for column in TEXT_COLUMNS:
        rows[column] = rows[column].map(lambda value: neutralise(value) if isinstance(value, str) else value)
    audit(
        engine,
        actor,
        "export",
        "outbox" if campaign_id is None else f"outbox of campaign {campaign_id}",
        rows=len(rows),
    )
    return rows.to_csv(index=False).encode("utf-8")

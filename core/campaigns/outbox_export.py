"""The outbox as a CSV download: formula-safe, for analysts and above, and recorded in the audit log."""

from __future__ import annotations

from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.campaigns.dispatch import outbox_frame
from core.csvout import frame_csv_bytes


def outbox_csv_bytes(engine: Engine, campaign_id: int | None = None, *, actor: Actor = LOCAL_ADMIN) -> bytes:
    """Every outbox row of one campaign (or of all) as UTF-8 CSV bytes, through the one CSV writer."""
    require(actor, Permission.EXPORT)
    rows = outbox_frame(engine, campaign_id)
    target = "outbox" if campaign_id is None else f"outbox of campaign {campaign_id}"
    data = frame_csv_bytes(rows)
    audit(engine, actor, "export", target, rows=len(rows))
    return data

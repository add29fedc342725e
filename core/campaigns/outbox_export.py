"""The outbox as a CSV download: formula-safe, for analysts and above, and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.campaigns.dispatch import outbox_frame
from core.csvout import frame_csv_chunks


def outbox_csv_stream(engine: Engine, campaign_id: int | None = None, *, actor: Actor = LOCAL_ADMIN) -> Iterator[bytes]:
    """Every outbox row of one campaign (or of all) as UTF-8 CSV chunks, through the one CSV writer;
    audited once the last chunk is made."""
    require(actor, Permission.EXPORT)
    rows = outbox_frame(engine, campaign_id)
    target = "outbox" if campaign_id is None else f"outbox of campaign {campaign_id}"
    return frame_csv_chunks(rows, done=lambda count: audit(engine, actor, "export", target, rows=count))

"""The outbox as a CSV download: formula-safe, for analysts and above, and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit, require
from core.csvout import csv_chunks, text_columns
from core.db import streamed_rows
from core.delivery.outbox import messages_query

BATCH_ROWS = 50_000


def outbox_csv_stream(engine: Engine, campaign_id: int | None = None, *, actor: Actor = LOCAL_ADMIN) -> Iterator[bytes]:
    """Every message of one campaign (or of all), with its delivery status, as UTF-8 CSV chunks made
    as they are read (one streamed query, a batch at a time); audited once the last chunk is made.
    Every cell is written as text, so campaign names and copy are neutralised."""
    require(actor, Permission.EXPORT)
    query = messages_query(campaign_id)
    target = "outbox" if campaign_id is None else f"outbox of campaign {campaign_id}"
    return csv_chunks(
        list(query.selected_columns.keys()),
        (text_columns(rows) for rows in streamed_rows(engine, query, BATCH_ROWS)),
        done=lambda rows: audit(engine, actor, "export", target, rows=rows),
    )

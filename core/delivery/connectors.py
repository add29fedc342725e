"""The one interface every provider sits behind, and the demo channel.

A connector takes a batch of envelopes and answers one Outcome per envelope: sent (with the
provider's id), or not sent with the reason and whether trying again may help (timeouts,
5xx, 429) or not (a refused address, a 4xx). It never raises for a provider's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from core.models import DemoDelivery
from core.timeutil import utcnow

ANSWER_CHARS = 300  # how much of a provider's answer a message's last error keeps


@dataclass(frozen=True)
class Envelope:
    """One outbox message as a provider needs it. `message_id` is also the idempotency key."""

    message_id: int
    campaign_id: int
    channel: str  # push / email / in_app
    user_id: str  # the customer's own id for the user (external_id)
    email: str | None
    first_name: str | None
    title: str | None
    body: str | None
    send_at: datetime
    key: str | None = None  # only test messages, which are not in the outbox, set their own

    @property
    def idempotency_key(self) -> str:
        return self.key or f"likely-{self.message_id}"


@dataclass(frozen=True)
class Outcome:
    message_id: int
    sent: bool
    provider_id: str | None = None
    error: str | None = None
    temporary: bool = False  # not sent, but trying again later may work
    retry_after: float | None = None  # seconds the provider asked us to wait


class Connector(Protocol):
    name: str  # demo / webhook / smtp
    batch_size: int  # envelopes per send() call

    def send(self, envelopes: list[Envelope]) -> list[Outcome]: ...

    def close(self) -> None: ...


def clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


class DemoConnector:
    """Records each message in `demo_deliveries`; nothing leaves the machine.

    The message id is the row's key, so sending a message twice records it once: the demo
    channel deduplicates exactly as a provider honouring the idempotency key does.
    """

    name = "demo"
    batch_size = 500

    def __init__(self, engine: Engine):
        self.engine = engine

    def send(self, envelopes: list[Envelope]) -> list[Outcome]:
        if not envelopes:
            return []
        now = utcnow()
        rows = [
            {
                "message_id": e.message_id,
                "channel": e.channel,
                "recipient": e.email if e.channel == "email" else e.user_id,
                "title": e.title,
                "body": e.body,
                "delivered_at": now,
            }
            for e in envelopes
        ]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as connection:
            connection.execute(
                dialect.insert(DemoDelivery.__table__).on_conflict_do_nothing(index_elements=["message_id"]), rows
            )
        return [Outcome(e.message_id, True, provider_id=f"demo-{e.message_id}") for e in envelopes]

    def close(self) -> None:
        pass
